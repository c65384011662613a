"""SQL store over SQLAlchemy Core: one schema for SQLite (default) and PostgreSQL.

Everything the engine derives from a batch of lines and the sources' checkpoints
for that batch are written in ONE transaction (:meth:`SqlStore.transaction`), so a
crash at any moment, kill -9 included, leaves either both or neither: on restart
the sources resume exactly after the last committed line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from soc.errors import StoreError

#: Bumped whenever the schema changes; ``open_store`` migrates older stores.
SCHEMA_VERSION = 1

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),  # JSON written by the source
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Running totals per source: lines read, events by kind, unparsed by reason, anomalies.
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


def _enable_sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the UI read while the engine writes; NORMAL sync is durable in WAL
    # mode across application crashes (only an OS crash can lose the last commit).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Transaction:
    """One store transaction: derived data and checkpoints commit together."""

    def __init__(self, connection: Connection, now: float) -> None:
        self.connection = connection
        self._now = now

    def save_checkpoint(self, source: str, state: Mapping[str, Any] | None) -> None:
        """Record where ``source`` is; ``None`` forgets it."""
        self.connection.execute(checkpoints.delete().where(checkpoints.c.source == source))
        if state is not None:
            self.connection.execute(
                checkpoints.insert().values(
                    source=source,
                    state=json.dumps(state, sort_keys=True),
                    updated_at=self._now,
                )
            )

    def add_counters(self, source: str, values: Mapping[str, int]) -> None:
        """Add ``values`` to the running totals of ``source``."""
        for name, value in values.items():
            if not value:
                continue
            updated = self.connection.execute(
                counters.update()
                .where(counters.c.source == source, counters.c.name == name)
                .values(value=counters.c.value + value)
            )
            if updated.rowcount == 0:
                self.connection.execute(
                    counters.insert().values(source=source, name=name, value=value)
                )


class SqlStore:
    """The product's store. Open it with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self, now: float = 0.0) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``now`` stamps the checkpoints written in it.
        """
        with self.engine.begin() as conn:
            yield Transaction(conn, now)

    def load_checkpoint(self, source: str) -> dict[str, Any] | None:
        """The last committed checkpoint of ``source``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(checkpoints.c.state).where(checkpoints.c.source == source)
            ).first()
        if row is None:
            return None
        state = json.loads(row[0])
        if not isinstance(state, dict):
            raise StoreError(f"checkpoint of {source!r} is not an object", where=self.url)
        return state

    def counters(self, source: str | None = None) -> dict[str, int]:
        """Running totals, summed over sources unless ``source`` is given."""
        query = sa.select(counters.c.name, sa.func.sum(counters.c.value)).group_by(counters.c.name)
        if source is not None:
            query = query.where(counters.c.source == source)
        with self.engine.connect() as conn:
            return {name: int(total) for name, total in conn.execute(query)}

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str) -> SqlStore:
    """Open (creating or migrating) the store at ``url``.

    ``sqlite:///data/soc.db`` (relative path) or ``sqlite:////abs/path.db``, or
    ``postgresql+psycopg2://user@host/db``.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r}", where="store.url") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(str(exc), where="store.url") from exc
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_wal)
    try:
        _migrate(engine)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot open the store: {exc.orig}", where=url) from exc
    return SqlStore(engine)


def _migrate(engine: Engine) -> None:
    with engine.begin() as conn:
        metadata.create_all(conn)
        version = conn.execute(sa.select(schema_version.c.version)).scalar()
        if version is None:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version} is newer than this program's "
                f"{SCHEMA_VERSION}; upgrade the program",
                where=engine.url.render_as_string(hide_password=True),
            )
