"""The store: checkpoints and derived data commit together, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from soc.errors import StoreError
from soc.store import open_store
from soc.store.sql import SCHEMA_VERSION, schema_version


def test_checkpoint_roundtrip_and_counters(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.load_checkpoint("auth") is None
        with store.transaction(now=100.0) as tx:
            tx.save_checkpoint("auth", {"files": [{"inode": 7, "offset": 120}]})
            tx.add_counters("auth", {"lines": 10, "events": 8, "unparsed.no_match": 0})
        with store.transaction(now=101.0) as tx:
            tx.save_checkpoint("auth", {"files": [{"inode": 7, "offset": 240}]})
            tx.add_counters("auth", {"lines": 5, "events": 5})
            tx.add_counters("web", {"lines": 1})
        assert store.load_checkpoint("auth") == {"files": [{"inode": 7, "offset": 240}]}
        assert store.counters("auth") == {"lines": 15, "events": 13}
        assert store.counters() == {"lines": 16, "events": 13}
        with store.transaction() as tx:
            tx.save_checkpoint("auth", None)
        assert store.load_checkpoint("auth") is None
    finally:
        store.close()


def test_failed_batch_commits_neither_data_nor_checkpoint(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with store.transaction() as tx:
            tx.save_checkpoint("auth", {"offset": 1})
            tx.add_counters("auth", {"lines": 1})
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.add_counters("auth", {"lines": 100})
            tx.save_checkpoint("auth", {"offset": 101})
            raise RuntimeError("the engine died mid-batch")
        assert store.load_checkpoint("auth") == {"offset": 1}
        assert store.counters("auth") == {"lines": 1}
    finally:
        store.close()


def test_reopening_keeps_data_and_schema_version(store_url: str) -> None:
    store = open_store(store_url)
    with store.transaction() as tx:
        tx.save_checkpoint("s", {"offset": 5})
    store.close()
    store = open_store(store_url)
    try:
        assert store.load_checkpoint("s") == {"offset": 5}
        with store.engine.connect() as conn:
            versions = conn.execute(sa.select(schema_version.c.version)).scalars().all()
        assert versions == [SCHEMA_VERSION]
    finally:
        store.close()


def test_store_from_a_newer_program_is_refused(store_url: str) -> None:
    store = open_store(store_url)
    with store.engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than this program"):
        open_store(store_url)


def test_sqlite_uses_wal_so_readers_do_not_block_the_writer(tmp_path: object) -> None:
    store = open_store(f"sqlite:///{tmp_path}/wal.db")
    try:
        with store.engine.connect() as conn:
            mode = conn.execute(sa.text("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
        # a reader holding an open read transaction does not stop a write
        with store.engine.connect() as reader:
            reader.execute(sa.text("BEGIN"))
            reader.execute(sa.text("SELECT count(*) FROM checkpoints")).scalar()
            with store.transaction() as tx:
                tx.save_checkpoint("w", {"offset": 1})
            reader.execute(sa.text("ROLLBACK"))
        assert store.load_checkpoint("w") == {"offset": 1}
    finally:
        store.close()


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("not a url")
    with pytest.raises(StoreError, match=r"store\.url"):
        open_store("nosuchdb://x")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_without_a_driver_uses_psycopg2(postgres_url: str, scheme: str) -> None:
    # SQLAlchemy's own default for a bare "postgresql://" is psycopg 3, not installed.
    plain = sa.make_url(postgres_url).set(drivername=scheme).render_as_string(False)
    assert plain.startswith(f"{scheme}://")
    store = open_store(plain)
    try:
        assert store.engine.dialect.driver == "psycopg2"
        with store.transaction() as tx:
            tx.save_checkpoint("s", {"offset": 1})
        assert store.load_checkpoint("s") == {"offset": 1}
    finally:
        store.close()
