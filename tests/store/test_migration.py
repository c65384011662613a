"""Schema versions: a version-1 store (checkpoints and counters only) is migrated in place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from soc.store import SCHEMA_VERSION, Bucket, SqlStore, open_store
from tests.store.builders import make_incident, make_window


def _create_v1_store(url: str) -> None:
    """The schema exactly as version 1 of the program created it, with some data."""
    v1 = sa.MetaData()
    version = sa.Table("schema_version", v1, sa.Column("version", sa.Integer, nullable=False))
    checkpoints = sa.Table(
        "checkpoints",
        v1,
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    counters = sa.Table(
        "counters",
        v1,
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            v1.create_all(conn)
            conn.execute(version.insert().values(version=1))
            conn.execute(
                checkpoints.insert().values(
                    source="auth", state='{"files": [{"inode": 7, "offset": 120}]}', updated_at=5.0
                )
            )
            conn.execute(counters.insert().values(source="auth", name="lines", value=42))
    finally:
        engine.dispose()


def test_version_1_store_is_migrated_in_place(store_url: str) -> None:
    assert SCHEMA_VERSION == 7
    _create_v1_store(store_url)
    store = open_store(store_url)
    try:
        assert store.schema_version() == 7
        assert store.load_checkpoint("auth") == {"files": [{"inode": 7, "offset": 120}]}
        assert store.counters() == {"lines": 42}
        with store.transaction(now=1.0) as tx:
            incident_id = tx.upsert_incident(make_incident(evidence=["x"]), "k")
            tx.save_windows([make_window("203.0.113.9", 0.0, events=3)])
            tx.enqueue_export("elasticsearch", incident_id, {"a": 1})
            tx.add_counters("auth", {"lines": 1})
        assert store.evidence(incident_id) == ["x"]
        assert store.counters() == {"lines": 43}
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
        assert {"incidents", "evidence", "window_aggregates", "export_outbox"} <= tables
        assert {"analyses", "playbook_runs", "window_kind_counts", "tuning"} <= tables
        assert "window_kinds" not in tables
        assert {"response_audit", "blocks"} <= tables
        assert {"api_tokens", "api_requests", "intake_alerts", "policy_feedback"} <= tables
        assert versions == [7]
        store.set_tuning("threshold", 7, now=2.0)
        assert store.tuning() == {"threshold": 7}
    finally:
        store.close()
    # opening again is a no-op
    store = open_store(store_url)
    try:
        assert store.schema_version() == 7
        assert store.count_incidents() == 1
        assert store.tuning() == {"threshold": 7}
        store.set_tuning("threshold", None, now=3.0)
        assert store.tuning() == {}
    finally:
        store.close()


def test_a_first_open_that_died_before_its_version_is_completed(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
    finally:
        engine.dispose()
    store = open_store(store_url)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.count_incidents() == 0
    finally:
        store.close()


def _two_windows_stored(store_url: str) -> list[Bucket]:
    """Two windows with their kinds written to a new store; its aggregates."""
    store = open_store(store_url)
    try:
        with store.transaction(now=1.0) as tx:
            tx.save_windows(
                [
                    make_window("203.0.113.9", 0.0, events=3, by_kind={"auth_failure": 3}),
                    make_window("203.0.113.10", 15.0, events=2, by_kind={"preauth": 2}),
                ]
            )
        return store.aggregates(0.0, 60.0, 60)
    finally:
        store.close()


def _assert_a_new_row_merges_with_the_old(store: SqlStore) -> None:
    """Windows written after an upgrade merge with those from before it."""
    with store.transaction(now=2.0) as tx:
        tx.save_windows([make_window("203.0.113.9", 0.0, events=4, by_kind={"auth_failure": 4})])
    after = store.aggregates(0.0, 60.0, 60)
    assert after[0].by_kind == {"auth_failure": 7, "preauth": 2}


@contextmanager
def _upgraded(store_url: str, before: list[Bucket]) -> Iterator[sa.Connection]:
    """The store opened (and so upgraded): at version 7, its aggregates as ``before``.

    Yields a connection for the caller's checks of the schema; afterwards a window
    written to the upgraded store must merge with the one from before.
    """
    store = open_store(store_url)
    try:
        assert store.schema_version() == 7
        assert store.aggregates(0.0, 60.0, 60) == before
        with store.engine.connect() as conn:
            yield conn
        _assert_a_new_row_merges_with_the_old(store)
    finally:
        store.close()


def test_version_5_window_kinds_move_to_rows_keyed_by_window(store_url: str) -> None:
    # Version 5 kept a window's kinds keyed by the window's id; version 6 by its key
    # hash and span. The kinds of windows stored before the upgrade keep counting.
    before = _two_windows_stored(store_url)
    assert before[0].by_kind and sum(before[0].by_kind.values()) == 5
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            # Back to version 5's table, rows keyed by window id.
            conn.execute(
                sa.text(
                    "CREATE TABLE window_kinds (window_id INTEGER NOT NULL"
                    " REFERENCES window_aggregates (id), kind VARCHAR NOT NULL,"
                    " count BIGINT NOT NULL, PRIMARY KEY (window_id, kind))"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO window_kinds (window_id, kind, count)"
                    " SELECT w.id, k.kind, k.count FROM window_kind_counts k"
                    " JOIN window_aggregates w ON w.key_hash = k.key_hash"
                    " AND w.window_start = k.window_start AND w.window_end = k.window_end"
                )
            )
            conn.execute(sa.text("DROP TABLE window_kind_counts"))
            conn.execute(sa.text("UPDATE schema_version SET version = 5"))
    finally:
        engine.dispose()
    with _upgraded(store_url, before) as conn:
        assert not sa.inspect(conn).has_table("window_kinds")


def _kinds_key(conn: sa.Connection) -> list[str]:
    return list(sa.inspect(conn).get_pk_constraint("window_kind_counts")["constrained_columns"])


def test_version_6_window_kinds_are_rebuilt_keyed_by_start_first(store_url: str) -> None:
    # Version 6 keyed a window's kind rows by key hash first, with an index on the
    # start and (SQLite) a rowid table; version 7 keys them by start first. The rows
    # stored before the upgrade keep counting and merging.
    before = _two_windows_stored(store_url)
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            assert _kinds_key(conn) == ["window_start", "key_hash", "window_end", "kind"]
            # Back to version 6's table.
            conn.execute(sa.text("ALTER TABLE window_kind_counts RENAME TO kinds_now"))
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("ALTER TABLE kinds_now DROP CONSTRAINT window_kind_counts_pkey")
                )
            conn.execute(
                sa.text(
                    "CREATE TABLE window_kind_counts (key_hash VARCHAR(64) NOT NULL,"
                    " window_start FLOAT NOT NULL, window_end FLOAT NOT NULL,"
                    " kind VARCHAR NOT NULL, count BIGINT NOT NULL,"
                    " PRIMARY KEY (key_hash, window_start, window_end, kind))"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE INDEX ix_window_kind_counts_window_start"
                    " ON window_kind_counts (window_start)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO window_kind_counts SELECT key_hash, window_start,"
                    " window_end, kind, count FROM kinds_now"
                )
            )
            conn.execute(sa.text("DROP TABLE kinds_now"))
            conn.execute(sa.text("UPDATE schema_version SET version = 6"))
            assert _kinds_key(conn) == ["key_hash", "window_start", "window_end", "kind"]
    finally:
        engine.dispose()
    with _upgraded(store_url, before) as conn:
        assert _kinds_key(conn) == ["window_start", "key_hash", "window_end", "kind"]
        assert sa.inspect(conn).get_indexes("window_kind_counts") == []
        assert not sa.inspect(conn).has_table("window_kind_counts_v6")
        if conn.dialect.name == "sqlite":
            sql = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'window_kind_counts'")
            ).scalar_one()
            assert "WITHOUT ROWID" in sql
