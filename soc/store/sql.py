"""SQL store over SQLAlchemy Core: one schema for SQLite (default) and PostgreSQL.

(Why this file is long: it is the schema and every query over it, for two SQL
dialects, behind one transaction type; the house rule puts queries in
``soc/store/`` and the write path must stay in one transaction. Splitting reads
from writes is the next step when it grows.)

Everything the engine derives from a batch of lines (incidents, their evidence,
window aggregates, queued exports) and the sources' checkpoints for that batch are
written in ONE transaction (:meth:`SqlStore.transaction`), so a crash at any
moment, kill -9 included, leaves either both or neither: on restart the sources
resume exactly after the last committed line.

One writer (the engine) and any number of readers (the UI, the exporter) share a
store. On SQLite the journal is in WAL mode, so readers never block the writer
and the writer never blocks readers; every write transaction starts with
``BEGIN IMMEDIATE`` so writers from other threads (a status change from the UI,
the exporter marking deliveries) queue on the busy timeout instead of failing
halfway through a transaction.

Attacker-controlled text is stored as data. Lists and objects go into JSON text
columns written with ``ensure_ascii`` (every string round-trips exactly, NUL and
lone surrogates included). Plain text columns cannot hold NUL on PostgreSQL and
lone surrogates cannot be encoded at all, so in those (incident keys, evidence
lines, notes) such characters become U+FFFD, on both backends alike.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from soc.errors import StoreError
from soc.events import SEVERITIES, STATUSES, Incident, WindowStats
from soc.redact import MASK, process_secrets, redact, redact_url
from soc.store.files import make_store_private

#: Bumped whenever the schema changes; ``open_store`` migrates older stores.
SCHEMA_VERSION = 7

#: Evidence lines kept per incident when the caller does not say.
DEFAULT_EVIDENCE_LIMIT = 20

_DAY = 86400.0
#: What a driver says when the database is down, restarting or cut off (worth
#: retrying), as opposed to a wrong name, password or permission (not).
_UNREACHABLE = re.compile(
    r"could not connect|connection refused|connection timed out|timeout expired"
    r"|server closed the connection|the database system is (starting up|shutting down"
    r"|in recovery mode|not yet accepting connections)|database is locked",
    re.IGNORECASE,
)
# Keys of an IN (...) list per statement: well under SQLite's and psycopg2's limits.
_IN_CHUNK = 500


#: A value as a JSON text column holds it (what ``JsonText`` writes). ensure_ascii: NUL
#: and lone surrogates (both possible in attacker text) become escapes, which any text
#: column can hold. One encoder for all: ``json.dumps`` with options makes one per call.
_json_text: Final = json.JSONEncoder(ensure_ascii=True, sort_keys=True).encode


class JsonText(sa.types.TypeDecorator[Any]):
    """A JSON value kept in a TEXT column, identical on SQLite and PostgreSQL."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return _json_text(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)


metadata = sa.MetaData()

# --- version 1: checkpoints and counters ---------------------------------------------

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

# --- version 2: incidents, evidence, aggregates, analyses, playbooks, outbox --------

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # The detector's stable name for the campaign may be long attacker text; the
    # unique index is on its digest so that it always fits a B-tree entry.
    sa.Column("detector_key", sa.Text, nullable=False),
    sa.Column("detector_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String, nullable=False, index=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("source_ips", JsonText, nullable=False),
    sa.Column("users", JsonText, nullable=False),
    sa.Column("distinct_users", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("successes", sa.BigInteger, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False, index=True),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("technique", sa.String, nullable=False),
    sa.Column("technique_name", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False, index=True),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("facts", JsonText, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("evidence_count", sa.Integer, nullable=False),
    # key, source IPs and users, lower-cased, one per line: what search matches.
    sa.Column("search_text", sa.Text, nullable=False),
)

evidence = sa.Table(
    "evidence",
    metadata,
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("line", sa.Text, nullable=False),
)

window_aggregates = sa.Table(
    "window_aggregates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.String(64), nullable=False),  # digest of key_type + key
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("key_type", sa.String, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False, index=True),
    sa.Column("window_end", sa.Float, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("successes", sa.BigInteger, nullable=False),
    sa.Column("distinct_users", sa.BigInteger, nullable=False),
    sa.Column("users", JsonText, nullable=False),
    sa.Column("distinct_ports", sa.BigInteger, nullable=False),
    sa.Column("ports", JsonText, nullable=False),
    sa.Column("distinct_paths", sa.BigInteger, nullable=False),
    sa.Column("paths", JsonText, nullable=False),
    sa.Column("by_kind", JsonText, nullable=False),
    sa.Column("first_seen", sa.Float),
    sa.Column("last_seen", sa.Float),
    sa.UniqueConstraint("key_hash", "window_start", "window_end", name="uq_window_key_span"),
)

#: ``window_aggregates.by_kind`` as rows, so charts can GROUP BY kind in SQL. Keyed like
#: their window (key hash and span), not by its id, so that windows and their kinds are
#: written in bulk without reading ids back (version 6; before, ``window_kinds`` was
#: keyed by window id). The key leads with the window's start (version 7): new rows are
#: appended near the end of its index instead of scattered by hash, and the retention
#: delete by start needs no second index; SQLite stores the rows in the key's order
#: (no rowid table beside it).
window_kinds = sa.Table(
    "window_kind_counts",
    metadata,
    sa.Column("window_start", sa.Float, primary_key=True),
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("window_end", sa.Float, primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
#: The window a ``window_kinds`` row belongs to (the join of the charts' queries).
same_window = sa.and_(
    window_kinds.c.key_hash == window_aggregates.c.key_hash,
    window_kinds.c.window_start == window_aggregates.c.window_start,
    window_kinds.c.window_end == window_aggregates.c.window_end,
)

analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False, index=True),
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("structured", JsonText),
    sa.Column("tokens_in", sa.BigInteger, nullable=False),
    sa.Column("tokens_out", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("latency_s", sa.Float, nullable=False),
    sa.Column("grounded", sa.Boolean, nullable=False),
    sa.Column("grounding_errors", JsonText, nullable=False),
    sa.Column("fallback_reason", sa.Text),
    sa.Column("reused", sa.Boolean, nullable=False),
)

playbook_runs = sa.Table(
    "playbook_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False, index=True),
    sa.Column("playbook", sa.String, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("output", JsonText),
    sa.Column("actor", sa.String, nullable=False),
)

export_outbox = sa.Table(
    "export_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sink", sa.String, nullable=False),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id")),
    sa.Column("document", JsonText, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", sa.Float),
    sa.Index("ix_export_outbox_pending", "sink", "delivered_at", "next_attempt_at"),
    # enqueue_export replaces an incident's undelivered row: looked up per incident.
    sa.Index("ix_export_outbox_incident", "sink", "incident_id"),
    # Ids are never reused (SQLite would reuse a deleted maximum): an exporter
    # marking a replaced row must not hit the row that replaced it.
    sqlite_autoincrement=True,
)

_V2_TABLES = (
    incidents,
    evidence,
    window_aggregates,
    window_kinds,
    analyses,
    playbook_runs,
    export_outbox,
)

# --- version 3: settings the analyst tunes at run time ---------------------------------

#: One row per tuned setting (``threshold``): the running engine picks changes up.
tuning = sa.Table(
    "tuning",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", JsonText, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# --- version 4: response (soc.respond): every step audited, blocks with their expiry ----

#: One row per playbook step (or expiry, restore, manual unblock): who, what, how it ended.
response_audit = sa.Table(
    "response_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("playbook_runs.id"), index=True),
    sa.Column("incident_id", sa.Integer, index=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("client", sa.String, nullable=False),
    sa.Column("playbook", sa.String, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("backend", sa.String, nullable=False),
    sa.Column("target", sa.String, nullable=False),
    sa.Column("argv", JsonText, nullable=False),
    sa.Column("mode", sa.String, nullable=False),
    sa.Column("result", sa.String, nullable=False),
    sa.Column("exit_status", sa.Integer),
    sa.Column("output", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

#: Blocks in force (``ended_at`` null) and ended; the expiry worker and a restart read it.
blocks = sa.Table(
    "blocks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("network", sa.String(64), nullable=False),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("incident_id", sa.Integer),
    sa.Column("playbook", sa.String, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("ended_by", sa.String),
    sa.Column("end_reason", sa.String),
    sa.Index("ix_blocks_active", "ended_at", "expires_at"),
    sa.Index("ix_blocks_network", "network", "backend"),
    sqlite_autoincrement=True,
)

# --- version 5: the REST API (soc.api) and the playbook policy (soc.respond.policy) ----

#: API bearer tokens, stored as SHA-256 digests of the token (shown once, never stored).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", JsonText, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)

#: Every API request: when, which token, from where, what, and how it was answered.
api_requests = sa.Table(
    "api_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("token_name", sa.String(100)),
    sa.Column("client", sa.String(100), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

#: Alerts taken in through the API, by a digest of (intake, alert id): a repeat is a no-op.
intake_alerts = sa.Table(
    "intake_alerts",
    metadata,
    sa.Column("alert_hash", sa.String(64), primary_key=True),
    sa.Column("intake", sa.String(32), nullable=False),
    sa.Column("alert_id", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
)

#: The analyst's answer to a policy recommendation (accepted or not, and what ran instead).
policy_feedback = sa.Table(
    "policy_feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("recommended", sa.String, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("chosen", sa.String),
    sa.Column("features", JsonText, nullable=False),
)

# --- what the readers return -----------------------------------------------------------


@dataclass(slots=True)
class Bucket:
    """Window aggregates summed over one chart bucket (and one key, if asked).

    ``start`` is a multiple of the bucket size since the epoch, so buckets do not
    shift when a chart's time range moves. ``keys`` counts distinct keys.
    """

    start: float
    key: str | None
    events: int
    failures: int
    successes: int
    windows: int
    keys: int
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Attacker:
    """One key's totals over the window aggregates since a time."""

    key: str
    key_type: str
    events: int
    failures: int
    successes: int
    windows: int
    max_distinct_users: int
    first_seen: float | None
    last_seen: float | None


@dataclass(slots=True)
class AnalysisRecord:
    """One stored model (or offline) analysis of an incident."""

    id: int
    incident_id: int
    provider: str
    model: str
    created_at: float
    markdown: str
    structured: Any
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    grounded: bool
    grounding_errors: list[Any]
    fallback_reason: str | None
    reused: bool


@dataclass(slots=True)
class PlaybookRun:
    """One run of a response playbook against an incident."""

    id: int
    incident_id: int
    playbook: str
    started_at: float
    finished_at: float | None
    status: str
    output: Any
    actor: str


@dataclass(slots=True)
class OutboxItem:
    """A document waiting in the export outbox for its sink."""

    id: int
    sink: str
    incident_id: int | None
    document: dict[str, Any]
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None


# --- text hygiene ------------------------------------------------------------------------


def _clean(value: str) -> str:
    """``value`` as any text column can hold it: NUL and lone surrogates become U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


def _digest(*parts: str) -> str:
    joined = "\x00".join(parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


def _search_text(key: str, source_ips: Iterable[str], users: Iterable[str]) -> str:
    return _clean("\n".join([key, *source_ips, *users]).lower())


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- writing -------------------------------------------------------------------------------


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

    def upsert_incident(
        self,
        incident: Incident,
        detector_key: str,
        evidence_limit: int = DEFAULT_EVIDENCE_LIMIT,
    ) -> int:
        """Insert or update the incident the detector calls ``detector_key``; returns its id.

        The detector's figures (counts, users, last seen, severity, facts, closed)
        replace the stored ones; the analyst's status and notes are never
        overwritten by an update. ``incident.evidence`` lines not stored yet are
        added; past ``evidence_limit`` the incident keeps its first
        ``evidence_limit // 2`` lines and the latest others. Sets ``incident.id``
        and copies the stored status, notes and ``opened_at`` back onto
        ``incident``.
        """
        return self.upsert_incidents([(incident, detector_key)], evidence_limit)[0]

    def upsert_incidents(
        self,
        items: Sequence[tuple[Incident, str]],
        evidence_limit: int = DEFAULT_EVIDENCE_LIMIT,
    ) -> list[int]:
        """:meth:`upsert_incident` for many (incident, detector key) pairs at once.

        A handful of statements whatever the number of incidents: one lookup,
        one bulk insert, one bulk update, and the evidence in bulk. Returns the
        ids in the order given. Detector keys must be distinct.
        """
        if not items:
            return []
        conn = self.connection
        keyed = [(incident, _clean(key), _digest(_clean(key))) for incident, key in items]
        if len({h for _, _, h in keyed}) != len(keyed):
            raise StoreError("the same detector key twice in one upsert", where="incident")
        found: dict[str, Any] = {}
        for chunk in _chunks([h for _, _, h in keyed]):
            query = sa.select(
                incidents.c.id,
                incidents.c.status,
                incidents.c.notes,
                incidents.c.opened_at,
                incidents.c.detector_hash,
            ).where(incidents.c.detector_hash.in_(chunk))
            found.update((row.detector_hash, row) for row in conn.execute(query))
        inserts: list[tuple[Incident, dict[str, Any]]] = []
        updates: list[dict[str, Any]] = []
        for incident, key, digest in keyed:
            figures = self._figures(incident)
            row = found.get(digest)
            if row is None:
                if incident.status not in STATUSES:
                    raise StoreError(
                        f"unknown incident status {incident.status!r}", where="incident"
                    )
                opened_at = incident.opened_at if incident.opened_at is not None else self._now
                inserts.append(
                    (
                        incident,
                        {
                            "detector_key": key,
                            "detector_hash": digest,
                            "status": incident.status,
                            "notes": _clean(incident.notes),
                            "opened_at": opened_at,
                            "evidence_count": 0,
                            **figures,
                        },
                    )
                )
                incident.opened_at = opened_at
            else:
                updates.append({"_id": int(row.id), **figures})
                incident.id = int(row.id)
                incident.status = row.status
                incident.notes = row.notes
                incident.opened_at = row.opened_at
            incident.updated_at = figures["updated_at"]
        if inserts:
            ids = (
                conn.execute(
                    incidents.insert().returning(incidents.c.id, sort_by_parameter_order=True),
                    [values for _, values in inserts],
                )
                .scalars()
                .all()
            )
            for (incident, _), new_id in zip(inserts, ids, strict=True):
                incident.id = int(new_id)
        if updates:
            conn.execute(
                incidents.update()
                .where(incidents.c.id == sa.bindparam("_id"))
                .values({name: sa.bindparam(name) for name in updates[0] if name != "_id"}),
                updates,
            )
        with_evidence = [(i, i.evidence) for i, _, _ in keyed if i.evidence]
        if with_evidence and evidence_limit > 0:
            self._merge_evidence(with_evidence, evidence_limit)
        return [int(i.id) for i, _, _ in keyed if i.id is not None]

    def _figures(self, incident: Incident) -> dict[str, Any]:
        """The columns a detector update replaces."""
        return {
            "kind": incident.kind,
            "key": _clean(incident.key),
            "source_ips": list(incident.source_ips),
            "users": list(incident.users),
            "distinct_users": incident.distinct_users,
            "failures": incident.failures,
            "successes": incident.successes,
            "events": incident.events,
            "first_seen": incident.first_seen,
            "last_seen": incident.last_seen,
            "severity": incident.severity,
            "technique": incident.technique,
            "technique_name": incident.technique_name,
            "facts": dict(incident.facts),
            "closed": incident.closed,
            "updated_at": incident.updated_at if incident.updated_at is not None else self._now,
            "search_text": _search_text(incident.key, incident.source_ips, incident.users),
        }

    def _merge_evidence(self, items: Sequence[tuple[Incident, Sequence[str]]], limit: int) -> None:
        # A detector may hand over all its lines each time or only the new ones.
        # Kept: the first ``limit // 2`` lines ever stored and the latest others, so
        # a long campaign shows how it began and what it does now.
        conn = self.connection
        stored: dict[int, list[str]] = {}
        for chunk in _chunks([int(i.id) for i, _ in items if i.id is not None]):
            query = (
                sa.select(evidence.c.incident_id, evidence.c.line)
                .where(evidence.c.incident_id.in_(chunk))
                .order_by(evidence.c.incident_id, evidence.c.seq)
            )
            for row in conn.execute(query):
                stored.setdefault(row.incident_id, []).append(row.line)
        rewrite: list[int] = []
        rows: list[tuple[int, int, str]] = []
        counts: list[dict[str, Any]] = []
        for incident, lines in items:
            incident_id = int(incident.id or 0)
            old = stored.get(incident_id, [])
            merged = list(dict.fromkeys([*old, *(_clean(line) for line in lines)]))
            if len(merged) > limit:
                half = limit // 2
                merged = merged[:half] + merged[len(merged) - (limit - half) :]
            if merged == old:
                continue
            keep = len(old) if merged[: len(old)] == old else 0
            if keep < len(old):
                rewrite.append(incident_id)
            rows.extend((incident_id, seq, line) for seq, line in enumerate(merged) if seq >= keep)
            counts.append({"_id": incident_id, "evidence_count": len(merged)})
        for chunk in _chunks(rewrite):
            conn.execute(evidence.delete().where(evidence.c.incident_id.in_(chunk)))
        if rows:
            _insert_many(conn, evidence, ("incident_id", "seq", "line"), rows)
        if counts:
            conn.execute(
                incidents.update()
                .where(incidents.c.id == sa.bindparam("_id"))
                .values(evidence_count=sa.bindparam("evidence_count")),
                counts,
            )

    def save_windows(self, rows: Sequence[WindowStats]) -> None:
        """Store window aggregates; a window written twice (late lines) is merged.

        Merging adds the counts and ``by_kind``, widens first/last seen and unions
        the samples. A distinct count is exact when both samples were complete,
        else the best lower bound (the larger count, or the union's size).
        """
        if not rows:
            return
        conn = self.connection
        # Each window once (rows of the same window in one call are merged): the
        # plain row _insert_many writes and its stats, or where merged, the values.
        windows: dict[tuple[str, float, float], _Window | dict[str, Any]] = {}
        for stats in rows:
            row = _window_row(stats)
            ident = (row[0], row[3], row[4])
            seen = windows.get(ident)
            windows[ident] = (
                (row, stats.by_kind)
                if seen is None
                else _merge_window(_values_of(seen), _values_of((row, stats.by_kind)))
            )
        existing: dict[tuple[str, float, float], dict[str, Any]] = {}
        hashes = sorted({ident[0] for ident in windows})
        earliest = min(ident[1] for ident in windows)
        for chunk in _chunks(hashes):
            query = sa.select(window_aggregates).where(
                window_aggregates.c.key_hash.in_(chunk),
                window_aggregates.c.window_start >= earliest,
            )
            for found in conn.execute(query).mappings():
                ident = (found["key_hash"], found["window_start"], found["window_end"])
                if ident in windows:
                    existing[ident] = dict(found)
        updates = []
        for ident, old in existing.items():
            values = _merge_window(old, _values_of(windows.pop(ident)))
            values["window_id"] = old["id"]
            updates.append(values)
        if updates:
            columns = _MERGED_COLUMNS
            conn.execute(
                window_aggregates.update()
                .where(window_aggregates.c.id == sa.bindparam("window_id"))
                .values({name: sa.bindparam(name) for name in columns}),
                [{name: values[name] for name in (*columns, "window_id")} for values in updates],
            )
            conn.execute(
                window_kinds.delete().where(
                    window_kinds.c.key_hash == sa.bindparam("hash"),
                    window_kinds.c.window_start == sa.bindparam("start"),
                    window_kinds.c.window_end == sa.bindparam("end"),
                ),
                [
                    {"hash": v["key_hash"], "start": v["window_start"], "end": v["window_end"]}
                    for v in updates
                ],
            )
        inserts: list[tuple[Any, ...]] = []
        kind_rows: list[tuple[Any, ...]] = []
        for ident, entry in windows.items():
            if isinstance(entry, dict):
                inserts.append(
                    tuple(
                        _json_text(entry[name]) if name in _JSON_COLUMNS else entry[name]
                        for name in _WINDOW_COLUMNS
                    )
                )
                kind_rows.extend((*ident, kind, count) for kind, count in entry["by_kind"].items())
            else:
                inserts.append(entry[0])
                kind_rows.extend((*ident, str(k), int(n)) for k, n in entry[1].items())
        if inserts:
            _insert_many(conn, window_aggregates, _WINDOW_COLUMNS, inserts)
        kind_rows.extend(
            (v["key_hash"], v["window_start"], v["window_end"], kind, count)
            for v in updates
            for kind, count in v["by_kind"].items()
        )
        if kind_rows:
            _insert_many(conn, window_kinds, _KIND_COLUMNS, kind_rows)

    def enqueue_export(
        self,
        sink: str,
        incident_id: int | None,
        document: Mapping[str, Any],
        *,
        replace_pending: bool = True,
    ) -> int:
        """Queue ``document`` for ``sink``; returns the outbox id.

        With ``replace_pending`` (the default) an undelivered document of the same
        incident for the same sink is replaced: a sink wants the incident's latest
        state, and a long outage must not pile up one row per update. The new row
        keeps the old one's attempts, back-off and age. A replaced row that an
        exporter is delivering right now is simply gone when it marks it, and the
        new row is delivered next.
        """
        conn = self.connection
        created_at, attempts, next_attempt_at = self._now, 0, self._now
        if replace_pending and incident_id is not None:
            pending = export_outbox.c.delivered_at.is_(None)
            same = (export_outbox.c.sink == sink, export_outbox.c.incident_id == incident_id)
            old = conn.execute(
                sa.select(
                    sa.func.min(export_outbox.c.created_at),
                    sa.func.max(export_outbox.c.attempts),
                    sa.func.max(export_outbox.c.next_attempt_at),
                ).where(*same, pending)
            ).one()
            if old[0] is not None:
                created_at = min(created_at, float(old[0]))
                attempts = int(old[1])
                next_attempt_at = max(next_attempt_at, float(old[2]))
                conn.execute(export_outbox.delete().where(*same, pending))
        return int(
            conn.execute(
                export_outbox.insert()
                .values(
                    sink=sink,
                    incident_id=incident_id,
                    document=dict(document),
                    created_at=created_at,
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                )
                .returning(export_outbox.c.id)
            ).scalar_one()
        )


_MERGED_COLUMNS = (
    "events",
    "failures",
    "successes",
    "distinct_users",
    "users",
    "distinct_ports",
    "ports",
    "distinct_paths",
    "paths",
    "by_kind",
    "first_seen",
    "last_seen",
)


#: A window row's columns in the order ``_insert_many`` writes them; the JSON ones.
_WINDOW_COLUMNS: Final = (
    "key_hash",
    "key",
    "key_type",
    "window_start",
    "window_end",
    *_MERGED_COLUMNS,
)
_JSON_COLUMNS: Final = frozenset({"users", "ports", "paths", "by_kind"})
_KIND_COLUMNS: Final = ("key_hash", "window_start", "window_end", "kind", "count")


class _CopyNull(float):
    """``None`` in a ``COPY … (FORMAT csv)`` row: written unquoted as ``\\N``.

    The CSV writer quotes every string and leaves numbers bare; a float subclass is
    left bare too, so this one value comes out as the NULL marker ``COPY`` is told
    about, while a string ``"\\N"`` stays a quoted string.
    """

    def __str__(self) -> str:
        return "\\N"

    __repr__ = __str__


_COPY_NULL: Final = _CopyNull()


def _insert_many(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert plain rows in bulk through the driver, in ``conn``'s transaction.

    Values must be what the columns hold (JSON already text; str, int, float or
    None): SQLAlchemy's per-row statement and type processing is skipped, which is
    most of what writing a window costs. SQLite gets one prepared ``executemany``;
    PostgreSQL one ``COPY … FROM STDIN`` in CSV, every string quoted (so an empty
    string is not NULL and no value can end the data), NULL as a bare ``\\N``.
    """
    # Table and column names are this module's constants, never input.
    names = ", ".join(columns)
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            data = io.StringIO()
            writer = csv.writer(data, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
            null = _COPY_NULL
            writer.writerows([null if v is None else v for v in row] for row in rows)
            data.seek(0)
            cursor.copy_expert(
                f"COPY {table.name} ({names}) FROM STDIN WITH (FORMAT csv, NULL '\\N')",
                data,
            )
        else:
            marks = ", ".join("?" * len(columns))
            insert = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(insert, rows)
    finally:
        cursor.close()


def _window_key(key_type: str, key: str) -> tuple[str, str]:
    """A window's key as stored, and its hash."""
    clean = _clean(key)
    return clean, _digest(key_type, clean)


#: Keys up to this length are remembered (an address, a user name: a key has a window
#: every 15 s), at most 16,384 of them: a few MiB whatever names an attacker sends.
_SHORT_KEY: Final = 64
_short_window_key: Final = functools.lru_cache(maxsize=16_384)(_window_key)


@functools.lru_cache(maxsize=4_096)
def _kinds_json(counts: tuple[tuple[str, int], ...]) -> str:
    """A window's counts by kind as JSON (a few combinations recur)."""
    return _json_text({str(k): int(v) for k, v in counts})


def _window_row(stats: WindowStats) -> tuple[Any, ...]:
    """``stats`` as the row ``_insert_many`` writes (``_WINDOW_COLUMNS``, JSON as text)."""
    raw = stats.key
    window_key = _short_window_key if len(raw) <= _SHORT_KEY else _window_key
    key, key_hash = window_key(stats.key_type, raw)
    return (
        key_hash,
        key,
        stats.key_type,
        float(stats.window_start),
        float(stats.window_end),
        stats.events,
        stats.failures,
        stats.successes,
        stats.distinct_users,
        _json_list(stats.users),
        stats.distinct_ports,
        _json_list(stats.ports),
        stats.distinct_paths,
        _json_list(stats.paths),
        _kinds_json(tuple(stats.by_kind.items())),
        stats.first_seen,
        stats.last_seen,
    )


#: A window about to be written: its row (``_window_row``) and its counts by kind.
_Window = tuple[tuple[Any, ...], Mapping[str, int]]


def _values_of(entry: _Window | dict[str, Any]) -> dict[str, Any]:
    """A window about to be written as the values ``_merge_window`` merges."""
    if isinstance(entry, dict):
        return entry
    values = dict(zip(_WINDOW_COLUMNS, entry[0], strict=True))
    for name in ("users", "ports", "paths"):
        values[name] = json.loads(values[name])
    values["by_kind"] = {str(k): int(n) for k, n in entry[1].items()}
    return values


def _json_list(values: Sequence[Any]) -> str:
    """A sample as ``_json_text`` writes it (most samples of a window are empty)."""
    return _json_text(list(values)) if values else "[]"


def _merge_window(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(new)
    for name in ("events", "failures", "successes"):
        merged[name] = int(old[name]) + int(new[name])
    by_kind = dict(old["by_kind"])
    for kind, count in new["by_kind"].items():
        by_kind[kind] = by_kind.get(kind, 0) + count
    merged["by_kind"] = by_kind
    samples = (
        ("users", "distinct_users"),
        ("ports", "distinct_ports"),
        ("paths", "distinct_paths"),
    )
    for sample, distinct in samples:
        union = list(dict.fromkeys([*old[sample], *new[sample]]))
        complete = len(old[sample]) >= old[distinct] and len(new[sample]) >= new[distinct]
        merged[distinct] = (
            len(union) if complete else max(int(old[distinct]), int(new[distinct]), len(union))
        )
        # A truncated sample reveals the sampler's bound: stay within it. Two
        # complete samples union into a complete one.
        merged[sample] = union if complete else union[: max(len(old[sample]), len(new[sample]))]
    firsts = [t for t in (old["first_seen"], new["first_seen"]) if t is not None]
    lasts = [t for t in (old["last_seen"], new["last_seen"]) if t is not None]
    merged["first_seen"] = min(firsts) if firsts else None
    merged["last_seen"] = max(lasts) if lasts else None
    return merged


# --- reading ---------------------------------------------------------------------------

#: Columns ``list_incidents(order=...)`` accepts, mapped to what they sort by.
_ORDERABLE: Mapping[str, sa.ColumnElement[Any]] = {
    "id": incidents.c.id,
    "last_seen": incidents.c.last_seen,
    "first_seen": incidents.c.first_seen,
    "opened_at": incidents.c.opened_at,
    "updated_at": incidents.c.updated_at,
    "failures": incidents.c.failures,
    "successes": incidents.c.successes,
    "events": incidents.c.events,
    "distinct_users": incidents.c.distinct_users,
    "kind": incidents.c.kind,
    "status": incidents.c.status,
    "severity": sa.case(
        {name: rank for rank, name in enumerate(SEVERITIES)},
        value=incidents.c.severity,
        else_=-1,
    ),
}
_ORDER_TERM = re.compile(r"\s*([a-z_]+)(?:\s+(asc|desc))?\s*", re.IGNORECASE)


def _order_by(order: str) -> list[sa.ColumnElement[Any]]:
    terms: list[sa.ColumnElement[Any]] = []
    for part in order.split(","):
        match = _ORDER_TERM.fullmatch(part)
        if match is None or match.group(1).lower() not in _ORDERABLE:
            raise StoreError(
                f"cannot order incidents by {part.strip()!r}; "
                f"use one of {', '.join(sorted(_ORDERABLE))} with asc or desc",
                where="list_incidents.order",
            )
        column = _ORDERABLE[match.group(1).lower()]
        descending = (match.group(2) or "asc").lower() == "desc"
        terms.append(column.desc() if descending else column.asc())
    terms.append(incidents.c.id.desc())  # a stable order, so pages do not overlap
    return terms


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _incident_from_row(row: Any) -> Incident:
    return Incident(
        key=row.key,
        kind=row.kind,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        source_ips=list(row.source_ips),
        users=list(row.users),
        distinct_users=int(row.distinct_users),
        failures=int(row.failures),
        successes=int(row.successes),
        events=int(row.events),
        severity=row.severity,
        technique=row.technique,
        technique_name=row.technique_name,
        status=row.status,
        facts=dict(row.facts),
        id=int(row.id),
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        closed=bool(row.closed),
        notes=row.notes,
    )


_INCIDENT_COLUMNS = [c for c in incidents.c if c.name not in ("search_text", "detector_hash")]


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the UI read while the engine writes; NORMAL sync is durable in WAL
    # mode across application crashes (only an OS crash can lose the last commit).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Same referential behaviour as PostgreSQL.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SqlStore:
    """The product's store. Open it with :func:`open_store`; safe to share between threads."""

    def __init__(self, engine: Engine, *, temporary_dir: Path | None = None) -> None:
        self.engine = engine
        #: The URL as it may be shown (``user:***@``, no secret query values).
        self.url = _shown_url(engine.url)
        self._password = engine.url.password
        self._sqlite = engine.dialect.name == "sqlite"
        self._temporary_dir = temporary_dir

    # --- transactions -------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                if self._sqlite:
                    # Take the write lock up front: a deferred transaction that
                    # reads first fails at once, busy timeout or not, if another
                    # writer committed in between.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except sa.exc.DBAPIError as exc:
            raise self._error("write", exc) from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reads whose driver errors become :class:`StoreError`.

        (The engine's reads: an unreachable database is then ``transient`` and
        retried like a commit, instead of a traceback.)
        """
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise self._error("read", exc) from exc

    def _error(self, doing: str, exc: sa.exc.DBAPIError) -> StoreError:
        transient = exc.connection_invalidated or isinstance(
            exc, sa.exc.OperationalError | sa.exc.InterfaceError
        )
        return StoreError(
            f"cannot {doing} the store: {_driver_said(exc, self._password)}",
            where=self.url,
            transient=transient,
        )

    def writing(self) -> AbstractContextManager[Connection]:
        """A connection in one write transaction, for the other query modules of ``soc.store``."""
        return self._writing()

    @contextmanager
    def transaction(self, now: float = 0.0) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``now`` stamps what is written in it (checkpoints, queued exports, and
        incidents that carry no ``updated_at``/``opened_at`` of their own).
        """
        with self._writing() as conn:
            yield Transaction(conn, now)

    # --- checkpoints and counters ------------------------------------------------------
    def load_checkpoint(self, source: str) -> dict[str, Any] | None:
        """The last committed checkpoint of ``source``, or None."""
        with self._reading() as conn:
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

    def schema_version(self) -> int:
        """The schema version this store is at."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(schema_version.c.version)).scalar_one())

    # --- incidents -----------------------------------------------------------------
    def get_incident(self, incident_id: int) -> Incident | None:
        """The incident with this id, its evidence lines included, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(*_INCIDENT_COLUMNS).where(incidents.c.id == incident_id)
            ).first()
            if row is None:
                return None
            incident = _incident_from_row(row)
            incident.evidence = self._evidence(conn, incident_id)
        return incident

    def get_incidents(self, ids: Iterable[int]) -> list[Incident]:
        """The incidents with these ids (those that exist), without evidence, by id."""
        found: list[Incident] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(ids))):
                query = sa.select(*_INCIDENT_COLUMNS).where(incidents.c.id.in_(chunk))
                found.extend(_incident_from_row(row) for row in conn.execute(query))
        return sorted(found, key=lambda i: i.id or 0)

    def iter_incidents(self, ids: Iterable[int], *, page: int = 1_000) -> Iterator[Incident]:
        """The incidents with these ids (those that exist), by first seen then id, read a
        page at a time: a summary of tens of thousands of incidents holds one page."""
        wanted = sorted(set(ids))
        if not wanted:
            return
        keep = set(wanted)
        low, high = wanted[0], wanted[-1]
        after: tuple[float, int] | None = None
        order = sa.tuple_(incidents.c.first_seen, incidents.c.id)
        while True:
            query = sa.select(*_INCIDENT_COLUMNS).where(incidents.c.id.between(low, high))
            if after is not None:
                query = query.where(order > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
            query = query.order_by(incidents.c.first_seen, incidents.c.id).limit(page)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                if row.id in keep:
                    yield _incident_from_row(row)
            if len(rows) < page:
                return
            after = (rows[-1].first_seen, rows[-1].id)

    def _filters(
        self,
        status: str | Sequence[str] | None,
        kind: str | Sequence[str] | None,
        since: float | None,
        search: str | None,
    ) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        statuses = _as_list(status)
        if statuses is not None:
            where.append(incidents.c.status.in_(statuses))
        kinds = _as_list(kind)
        if kinds is not None:
            where.append(incidents.c.kind.in_(kinds))
        if since is not None:
            where.append(incidents.c.last_seen >= since)
        if search:
            # A bound parameter with LIKE wildcards escaped: the text is data.
            needle = _clean(search.lower())
            where.append(incidents.c.search_text.contains(needle, autoescape=True))
        return where

    def list_incidents(
        self,
        status: str | Sequence[str] | None = None,
        kind: str | Sequence[str] | None = None,
        since: float | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
        order: str = "last_seen desc",
    ) -> list[Incident]:
        """Incidents matching every filter given, without their evidence lines.

        ``since`` keeps incidents last seen at or after it; ``search`` is a
        case-insensitive substring of the key, a source IP or a user; ``order``
        is ``"column [asc|desc], …"`` over a fixed set of columns (severity sorts
        by rank, not alphabetically).
        """
        query = (
            sa.select(*_INCIDENT_COLUMNS)
            .where(*self._filters(status, kind, since, search))
            .order_by(*_order_by(order))
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        with self.engine.connect() as conn:
            return [_incident_from_row(row) for row in conn.execute(query)]

    def count_incidents(
        self,
        status: str | Sequence[str] | None = None,
        kind: str | Sequence[str] | None = None,
        since: float | None = None,
        search: str | None = None,
    ) -> int:
        """How many incidents ``list_incidents`` would page through with these filters."""
        query = (
            sa.select(sa.func.count())
            .select_from(incidents)
            .where(*self._filters(status, kind, since, search))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def open_incidents(self) -> dict[str, Incident]:
        """Incidents the detector has not closed, by detector key (to resume after a restart)."""
        query = sa.select(*_INCIDENT_COLUMNS).where(incidents.c.closed.is_(False))
        with self.engine.connect() as conn:
            return {row.detector_key: _incident_from_row(row) for row in conn.execute(query)}

    def set_status(self, incident_id: int, status: str, notes: str | None = None) -> None:
        """Set the analyst's status (one of ``STATUSES``) and, if given, notes."""
        if status not in STATUSES:
            raise StoreError(
                f"unknown status {status!r}; use one of {', '.join(STATUSES)}",
                where=f"incident {incident_id}",
            )
        values: dict[str, Any] = {"status": status}
        if notes is not None:
            values["notes"] = _clean(notes)
        with self._writing() as conn:
            updated = conn.execute(
                incidents.update().where(incidents.c.id == incident_id).values(**values)
            )
            if updated.rowcount == 0:
                raise StoreError("no such incident", where=f"incident {incident_id}")

    def evidence(self, incident_id: int) -> list[str]:
        """The incident's evidence lines, oldest first."""
        with self.engine.connect() as conn:
            return self._evidence(conn, incident_id)

    @staticmethod
    def _evidence(conn: Connection, incident_id: int) -> list[str]:
        query = (
            sa.select(evidence.c.line)
            .where(evidence.c.incident_id == incident_id)
            .order_by(evidence.c.seq)
        )
        return list(conn.execute(query).scalars().all())

    # --- window aggregates ----------------------------------------------------------
    def aggregates(
        self,
        since: float,
        until: float,
        bucket_seconds: float,
        *,
        key_types: Sequence[str] | None = None,
        by_key: bool = False,
    ) -> list[Bucket]:
        """Window aggregates summed per time bucket (and per key), computed by the database.

        Windows starting in ``[since, until)`` count in the bucket their start falls
        in. ``key_types`` limits the key types summed: if the windows are keyed
        both per address and per IPv6 /64 or per user, sum one of them, or the
        same events count twice. Buckets with no window are absent.
        """
        if bucket_seconds <= 0:
            raise StoreError("bucket_seconds must be positive", where="aggregates")
        w = window_aggregates
        bucket = self._floor(w.c.window_start / bucket_seconds).label("bucket")
        where = [w.c.window_start >= since, w.c.window_start < until]
        if key_types is not None:
            where.append(w.c.key_type.in_(list(key_types)))
        group: list[sa.ColumnElement[Any]] = [bucket]
        if by_key:
            group.append(w.c.key)
        totals = (
            sa.select(
                *group,
                sa.func.sum(w.c.events),
                sa.func.sum(w.c.failures),
                sa.func.sum(w.c.successes),
                sa.func.count(),
                sa.func.count(sa.distinct(w.c.key_hash)),
            )
            .where(*where)
            .group_by(*group)
        )
        kinds = (
            sa.select(*group, window_kinds.c.kind, sa.func.sum(window_kinds.c.count))
            .select_from(w.join(window_kinds, same_window))
            .where(*where)
            .group_by(*group, window_kinds.c.kind)
        )
        buckets: dict[tuple[int, str | None], Bucket] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(totals):
                ident = (int(row[0]), row[1] if by_key else None)
                first = 2 if by_key else 1
                buckets[ident] = Bucket(
                    start=ident[0] * bucket_seconds,
                    key=ident[1],
                    events=int(row[first]),
                    failures=int(row[first + 1]),
                    successes=int(row[first + 2]),
                    windows=int(row[first + 3]),
                    keys=int(row[first + 4]),
                )
            for row in conn.execute(kinds):
                ident = (int(row[0]), row[1] if by_key else None)
                kind, count = (row[2], row[3]) if by_key else (row[1], row[2])
                buckets[ident].by_kind[kind] = int(count)
        return [buckets[ident] for ident in sorted(buckets, key=lambda i: (i[0], i[1] or ""))]

    def _floor(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        # PostgreSQL rounds a float cast to integer; SQLite truncates, which is the
        # floor for the non-negative epoch times stored here.
        if self._sqlite:
            return sa.cast(value, sa.BigInteger)
        return sa.cast(sa.func.floor(value), sa.BigInteger)

    def top_attackers(
        self, since: float, limit: int = 10, *, key_types: Sequence[str] | None = None
    ) -> list[Attacker]:
        """The keys with the most failures (then events) in windows starting from ``since``."""
        w = window_aggregates
        failures = sa.func.sum(w.c.failures)
        events = sa.func.sum(w.c.events)
        where = [w.c.window_start >= since]
        if key_types is not None:
            where.append(w.c.key_type.in_(list(key_types)))
        query = (
            sa.select(
                w.c.key,
                w.c.key_type,
                events,
                failures,
                sa.func.sum(w.c.successes),
                sa.func.count(),
                sa.func.max(w.c.distinct_users),
                sa.func.min(w.c.first_seen),
                sa.func.max(w.c.last_seen),
            )
            .where(*where)
            .group_by(w.c.key, w.c.key_type)
            .order_by(failures.desc(), events.desc(), w.c.key)
            .limit(max(0, limit))
        )
        with self.engine.connect() as conn:
            return [
                Attacker(
                    key=row[0],
                    key_type=row[1],
                    events=int(row[2]),
                    failures=int(row[3]),
                    successes=int(row[4]),
                    windows=int(row[5]),
                    max_distinct_users=int(row[6]),
                    first_seen=row[7],
                    last_seen=row[8],
                )
                for row in conn.execute(query)
            ]

    # --- analyses and playbook runs ------------------------------------------------------
    def add_analysis(
        self,
        incident_id: int,
        *,
        provider: str,
        model: str,
        created_at: float,
        markdown: str,
        structured: Any = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        latency_s: float = 0.0,
        grounded: bool = False,
        grounding_errors: Sequence[Any] = (),
        fallback_reason: str | None = None,
        reused: bool = False,
    ) -> int:
        """Store one analysis of an incident; returns its id."""
        with self._writing() as conn:
            return int(
                conn.execute(
                    analyses.insert()
                    .values(
                        incident_id=incident_id,
                        provider=provider,
                        model=model,
                        created_at=created_at,
                        markdown=_clean(markdown),
                        structured=structured,
                        tokens_in=tokens_in,
                        tokens_out=tokens_out,
                        cost_usd=cost_usd,
                        latency_s=latency_s,
                        grounded=grounded,
                        grounding_errors=list(grounding_errors),
                        fallback_reason=(
                            None if fallback_reason is None else _clean(fallback_reason)
                        ),
                        reused=reused,
                    )
                    .returning(analyses.c.id)
                ).scalar_one()
            )

    def analyses(self, incident_id: int) -> list[AnalysisRecord]:
        """The incident's analyses, oldest first."""
        return self._analyses(analyses.c.incident_id == incident_id)

    def analyses_that_spent(self, since: float) -> list[AnalysisRecord]:
        """Analyses since ``since`` that may have called a model, oldest first.

        Not the reused ones (their cost is another row's), nor the plain offline
        reports (no provider was tried): what the analyst's budget counts again
        after a restart.
        """
        a = analyses.c
        return self._analyses(
            sa.and_(
                a.created_at >= since,
                sa.not_(a.reused),
                sa.or_(
                    a.provider != "offline",
                    a.tokens_in + a.tokens_out > 0,
                    a.cost_usd > 0,
                    a.fallback_reason.is_not(None),
                ),
            )
        )

    def _analyses(self, where: sa.ColumnElement[bool]) -> list[AnalysisRecord]:
        query = sa.select(analyses).where(where).order_by(analyses.c.created_at, analyses.c.id)
        with self.engine.connect() as conn:
            return [
                AnalysisRecord(
                    id=int(r.id),
                    incident_id=int(r.incident_id),
                    provider=r.provider,
                    model=r.model,
                    created_at=r.created_at,
                    markdown=r.markdown,
                    structured=r.structured,
                    tokens_in=int(r.tokens_in),
                    tokens_out=int(r.tokens_out),
                    cost_usd=r.cost_usd,
                    latency_s=r.latency_s,
                    grounded=bool(r.grounded),
                    grounding_errors=list(r.grounding_errors),
                    fallback_reason=r.fallback_reason,
                    reused=bool(r.reused),
                )
                for r in conn.execute(query)
            ]

    def add_playbook_run(
        self,
        incident_id: int,
        playbook: str,
        *,
        started_at: float,
        status: str,
        actor: str,
        finished_at: float | None = None,
        output: Any = None,
    ) -> int:
        """Record a playbook run against an incident; returns its id."""
        with self._writing() as conn:
            return int(
                conn.execute(
                    playbook_runs.insert()
                    .values(
                        incident_id=incident_id,
                        playbook=playbook,
                        started_at=started_at,
                        finished_at=finished_at,
                        status=status,
                        output=output,
                        actor=actor,
                    )
                    .returning(playbook_runs.c.id)
                ).scalar_one()
            )

    def finish_playbook_run(
        self, run_id: int, *, finished_at: float, status: str, output: Any = None
    ) -> None:
        """Record how a playbook run ended."""
        with self._writing() as conn:
            updated = conn.execute(
                playbook_runs.update()
                .where(playbook_runs.c.id == run_id)
                .values(finished_at=finished_at, status=status, output=output)
            )
            if updated.rowcount == 0:
                raise StoreError("no such playbook run", where=f"playbook run {run_id}")

    def playbook_runs(self, incident_id: int) -> list[PlaybookRun]:
        """The incident's playbook runs, oldest first."""
        query = (
            sa.select(playbook_runs)
            .where(playbook_runs.c.incident_id == incident_id)
            .order_by(playbook_runs.c.started_at, playbook_runs.c.id)
        )
        with self.engine.connect() as conn:
            return [
                PlaybookRun(
                    id=int(r.id),
                    incident_id=int(r.incident_id),
                    playbook=r.playbook,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    status=r.status,
                    output=r.output,
                    actor=r.actor,
                )
                for r in conn.execute(query)
            ]

    # --- export outbox ------------------------------------------------------------------
    def pending_exports(self, sink: str, now: float, limit: int = 500) -> list[OutboxItem]:
        """Undelivered documents for ``sink`` whose next attempt is due, oldest first."""
        o = export_outbox
        query = (
            sa.select(o)
            .where(o.c.sink == sink, o.c.delivered_at.is_(None), o.c.next_attempt_at <= now)
            .order_by(o.c.id)
            .limit(max(0, limit))
        )
        with self.engine.connect() as conn:
            return [
                OutboxItem(
                    id=int(r.id),
                    sink=r.sink,
                    incident_id=None if r.incident_id is None else int(r.incident_id),
                    document=r.document,
                    created_at=r.created_at,
                    attempts=int(r.attempts),
                    next_attempt_at=r.next_attempt_at,
                    last_error=r.last_error,
                )
                for r in conn.execute(query)
            ]

    def mark_exported(self, ids: Iterable[int], now: float) -> int:
        """Mark outbox documents delivered; returns how many were still pending."""
        o = export_outbox
        id_list = sorted(set(ids))
        marked = 0
        if not id_list:
            return 0
        with self._writing() as conn:
            for chunk in _chunks(id_list):
                result = conn.execute(
                    o.update()
                    .where(o.c.id.in_(chunk), o.c.delivered_at.is_(None))
                    .values(delivered_at=now, attempts=o.c.attempts + 1, last_error=None)
                )
                marked += result.rowcount
        return marked

    def mark_export_failed(self, outbox_id: int, error: str, next_attempt_at: float) -> bool:
        """Count a failed delivery and schedule the next attempt; False if the row is gone."""
        o = export_outbox
        with self._writing() as conn:
            result = conn.execute(
                o.update()
                .where(o.c.id == outbox_id, o.c.delivered_at.is_(None))
                .values(
                    attempts=o.c.attempts + 1,
                    last_error=_clean(error),
                    next_attempt_at=next_attempt_at,
                )
            )
            return bool(result.rowcount)

    def outbox_depth(self, sink: str | None = None) -> int:
        """How many documents wait for delivery (to ``sink``, or to any sink)."""
        o = export_outbox
        query = sa.select(sa.func.count()).select_from(o).where(o.c.delivered_at.is_(None))
        if sink is not None:
            query = query.where(o.c.sink == sink)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # --- retention ----------------------------------------------------------------------
    def apply_retention(
        self, now: float, aggregates_days: float, *, outbox_days: float | None = None
    ) -> dict[str, int]:
        """Delete window aggregates (and delivered exports) older than their retention.

        Windows that started more than ``aggregates_days`` before ``now`` go;
        delivered outbox rows go after ``outbox_days`` (default: the same).
        Incidents, their evidence, analyses and playbook runs are never deleted
        here. Returns the rows deleted per table.
        """
        w = window_aggregates
        window_cutoff = now - aggregates_days * _DAY
        outbox_cutoff = now - (aggregates_days if outbox_days is None else outbox_days) * _DAY
        with self._writing() as conn:
            kinds = conn.execute(
                window_kinds.delete().where(window_kinds.c.window_start < window_cutoff)
            ).rowcount
            windows = conn.execute(w.delete().where(w.c.window_start < window_cutoff)).rowcount
            delivered = conn.execute(
                export_outbox.delete().where(
                    export_outbox.c.delivered_at.is_not(None),
                    export_outbox.c.delivered_at < outbox_cutoff,
                )
            ).rowcount
        return {"window_aggregates": windows, "window_kinds": kinds, "export_outbox": delivered}

    def set_tuning(self, name: str, value: Any, now: float) -> None:
        """Record a setting the analyst tuned at run time (``None`` removes it)."""
        with self._writing() as conn:
            conn.execute(tuning.delete().where(tuning.c.name == name))
            if value is not None:
                conn.execute(tuning.insert().values(name=name, value=value, updated_at=now))

    def tuning(self) -> dict[str, Any]:
        """Every setting tuned at run time, by name."""
        with self._reading() as conn:
            return {row.name: row.value for row in conn.execute(sa.select(tuning))}

    # --- similar incidents (soc.similar) ---
    def incident_changes(
        self, since: float | None, *, after_id: int = 0, seen_since: float | None = None
    ) -> list[tuple[int, float]]:
        """(id, updated_at) of incidents updated since ``since`` or with an id past ``after_id``.

        Updated since: ``updated_at`` at or after it (None: every incident).
        ``seen_since`` keeps only incidents last seen at or after it. By id.
        """
        i = incidents.c
        where: list[sa.ColumnElement[bool]] = []
        if since is not None:
            where.append(sa.or_(i.updated_at >= since, i.id > after_id))
        if seen_since is not None:
            where.append(i.last_seen >= seen_since)
        query = sa.select(i.id, i.updated_at).where(*where).order_by(i.id)
        with self.engine.connect() as conn:
            return [(int(row.id), float(row.updated_at)) for row in conn.execute(query)]

    def latest_incident_seen(self) -> float | None:
        """The newest ``last_seen`` of any incident (event time), or None without incidents."""
        with self._reading() as conn:
            value = conn.execute(sa.select(sa.func.max(incidents.c.last_seen))).scalar()
        return None if value is None else float(value)

    def incident_ids(self, *, seen_before: float | None = None) -> list[int]:
        """Every incident's id (or those last seen before ``seen_before``), ascending."""
        query = sa.select(incidents.c.id).order_by(incidents.c.id)
        if seen_before is not None:
            query = query.where(incidents.c.last_seen < seen_before)
        with self.engine.connect() as conn:
            return [int(value) for value in conn.execute(query).scalars()]

    def incident_summaries(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Kind, status, severity, last_seen, updated_at and newest analysis of each existing id.

        The analysis fields (``analysis_id``, ``analysed_at``, ``structured``,
        ``provider``, ``reused``) are None for an incident without one. One
        statement per 500 ids, however many analyses the incidents have.
        """
        i, a = incidents.c, analyses.c
        latest = analyses.alias("latest")
        out: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(ids))):
                # Analyses are only ever added: the highest id is the newest.
                newest = (
                    sa.select(a.incident_id, sa.func.max(a.id).label("analysis_id"))
                    .where(a.incident_id.in_(chunk))
                    .group_by(a.incident_id)
                    .subquery("newest")
                )
                query = (
                    sa.select(
                        i.id,
                        i.kind,
                        i.status,
                        i.severity,
                        i.last_seen,
                        i.updated_at,
                        latest.c.id.label("analysis_id"),
                        latest.c.created_at,
                        latest.c.structured,
                        latest.c.provider,
                        latest.c.reused,
                    )
                    .select_from(
                        incidents.outerjoin(newest, newest.c.incident_id == i.id).outerjoin(
                            latest, latest.c.id == newest.c.analysis_id
                        )
                    )
                    .where(i.id.in_(chunk))
                )
                for row in conn.execute(query):
                    out[int(row.id)] = {
                        "kind": row.kind,
                        "status": row.status,
                        "severity": row.severity,
                        "last_seen": float(row.last_seen),
                        "updated_at": float(row.updated_at),
                        "analysis_id": None if row.analysis_id is None else int(row.analysis_id),
                        "analysed_at": row.created_at,
                        "structured": row.structured,
                        "provider": row.provider,
                        "reused": None if row.reused is None else bool(row.reused),
                    }
        return out

    def close(self) -> None:
        """Release every connection (and delete a temporary in-memory store's file)."""
        self.engine.dispose()
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
            self._temporary_dir = None


#: The PostgreSQL driver of a URL that names none (``postgresql://…``).
POSTGRES_DRIVER: Final = "postgresql+psycopg2"


def open_store(url: str) -> SqlStore:
    """Open (creating or migrating) the store at ``url``.

    ``sqlite:///data/soc.db`` (relative path) or ``sqlite:////abs/path.db``, or
    ``postgresql://user@host/db`` (psycopg2 unless the URL names another driver,
    as in ``postgresql+psycopg2://``). ``sqlite://`` (in memory) is a
    temporary file deleted by :meth:`SqlStore.close`: an in-memory SQLite
    database is private to one connection, and the store is read from other
    threads.

    A SQLite store's folder and files are made private first
    (:func:`soc.store.files.make_store_private`). The URL's password is
    registered with :mod:`soc.redact`, and no error names the URL with it: a
    :class:`StoreError` shows the URL as ``user:***@host``.
    """
    process_secrets().add_url(url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        # Not parsed, so its parts are unknown: whatever precedes an "@" may be a password.
        shown = f"{MASK}@{url.rpartition('@')[2]}" if "@" in url else redact_url(url)
        raise StoreError(f"not a database URL: {shown!r}", where="store.url") from None
    if parsed.drivername in ("postgresql", "postgres"):
        # No driver named: psycopg2, the one installed (SQLAlchemy 2.1's default for
        # a bare "postgresql://" is psycopg 3, which is not a dependency).
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
    shown = _shown_url(parsed)
    temporary_dir: Path | None = None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            temporary_dir = Path(tempfile.mkdtemp(prefix="soc-store-"))
            parsed = parsed.set(database=str(temporary_dir / "soc.db"))
        database = parsed.database or ""
        if not database.startswith("file:") and not parsed.query.get("uri"):
            try:
                make_store_private(Path(database))
            except OSError as exc:
                if temporary_dir is not None:
                    shutil.rmtree(temporary_dir, ignore_errors=True)
                raise StoreError(
                    f"cannot create the store's folder or file: {exc.strerror}", where=shown
                ) from exc
    try:
        if parsed.get_backend_name() == "postgresql":
            # A server restart leaves dead connections in the pool; test before use.
            engine = sa.create_engine(parsed, pool_pre_ping=True)
        else:
            engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, ImportError) as exc:
        if temporary_dir is not None:
            shutil.rmtree(temporary_dir, ignore_errors=True)
        raise StoreError(str(exc), where="store.url") from exc
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_pragmas)
    try:
        _migrate(engine)
    except (sa.exc.OperationalError, StoreError) as exc:
        engine.dispose()
        if temporary_dir is not None:
            shutil.rmtree(temporary_dir, ignore_errors=True)
        if isinstance(exc, StoreError):
            raise
        said = _driver_said(exc, parsed.password)
        raise StoreError(
            f"cannot open the store: {said}",
            where=shown,
            transient=_UNREACHABLE.search(said) is not None,
        ) from exc
    return SqlStore(engine, temporary_dir=temporary_dir)


def _driver_said(exc: sa.exc.DBAPIError, password: str | None) -> str:
    """The database driver's message, on one line, with the URL's password masked."""
    return " ".join(redact(str(exc.orig), [password]).split())


def _shown_url(url: sa.URL) -> str:
    """``url`` as errors and pages may show it: no password, no secret query value."""
    return redact_url(url.render_as_string(hide_password=True))


# --- schema versions -------------------------------------------------------------------


def _to_v2(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V2_TABLES))


def _to_v3(conn: Connection) -> None:
    metadata.create_all(conn, tables=[tuning])


def _to_v4(conn: Connection) -> None:
    metadata.create_all(conn, tables=[response_audit, blocks])


def _to_v5(conn: Connection) -> None:
    metadata.create_all(conn, tables=[api_tokens, api_requests, intake_alerts, policy_feedback])


def _to_v6(conn: Connection) -> None:
    # Kinds keyed by their window's key and span instead of its id (bulk writes).
    metadata.create_all(conn, tables=[window_kinds])
    if sa.inspect(conn).has_table("window_kinds"):
        conn.execute(
            sa.text(
                "INSERT INTO window_kind_counts (key_hash, window_start, window_end, kind, count)"
                " SELECT w.key_hash, w.window_start, w.window_end, k.kind, k.count"
                " FROM window_kinds k JOIN window_aggregates w ON w.id = k.window_id"
            )
        )
        conn.execute(sa.text("DROP TABLE window_kinds"))


def _to_v7(conn: Connection) -> None:
    # Kinds keyed start first, without a rowid table on SQLite: the table is rebuilt.
    conn.execute(sa.text("DROP TABLE IF EXISTS window_kind_counts_v6"))
    conn.execute(sa.text("ALTER TABLE window_kind_counts RENAME TO window_kind_counts_v6"))
    if conn.dialect.name == "postgresql":
        # Renaming keeps the key's name, which the rebuilt table's key takes.
        conn.execute(
            sa.text("ALTER TABLE window_kind_counts_v6 DROP CONSTRAINT window_kind_counts_pkey")
        )
    metadata.create_all(conn, tables=[window_kinds])
    conn.execute(
        sa.text(
            "INSERT INTO window_kind_counts (window_start, key_hash, window_end, kind, count)"
            " SELECT window_start, key_hash, window_end, kind, count FROM window_kind_counts_v6"
        )
    )
    conn.execute(sa.text("DROP TABLE window_kind_counts_v6"))


#: (version reached, step) in order; each step must be safe to run again.
_MIGRATIONS = ((2, _to_v2), (3, _to_v3), (4, _to_v4), (5, _to_v5), (6, _to_v6), (7, _to_v7))

# An arbitrary constant: the advisory lock that serialises migrations on PostgreSQL.
_PG_MIGRATION_LOCK = 0x50C5_0001


def _migrate(engine: Engine) -> None:
    where = _shown_url(engine.url)
    with engine.connect() as conn, conn.begin():
        # One migration at a time: the engine and the UI may open a new store at once.
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        if not sa.inspect(conn).has_table(schema_version.name):
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            return
        version = conn.execute(sa.select(schema_version.c.version)).scalar()
        if version is None:  # a first open that died before writing its version
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version} is newer than this program's "
                f"{SCHEMA_VERSION}; upgrade the program",
                where=where,
            )
        for target, step in _MIGRATIONS:
            if version < target:
                step(conn)
                version = target
        conn.execute(schema_version.update().values(version=version))
