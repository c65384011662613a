"""The outbox: alerts wait in the store until their sink has them, so an outage loses nothing.

The engine writes an incident's alert into the store's ``export_outbox`` table in
the same transaction as the incident itself (:func:`enqueue_alert`). Then, off
the hot path, :func:`deliver_pending` moves what is due from the outbox to a sink:
delivered rows are marked exported, failed ones get ``next_attempt_at`` pushed out
with exponential backoff (:class:`~soc.export.base.RetryPolicy`). A document is
delivered at least once; sinks make that exactly once in effect with stable
document ids (Elasticsearch ``_id``, webhook ``Idempotency-Key``).

Updates of one incident supersede each other: ``Transaction.enqueue_export``
replaces the incident's undelivered row (keeping its backoff) unless told
``replace_pending=False``, so there is one row per incident and sink and a stale
update can never be sent after a newer one. For a ``latest_only`` sink,
:func:`deliver_pending` also sends only the newest of several rows of one incident
found in the same batch and marks the older ones exported.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from soc.events import Incident
from soc.export.base import Sink, to_ecs_alert
from soc.redact import redact

_log = logging.getLogger(__name__)

#: Longest error text kept per outbox row.
MAX_ERROR_CHARS = 500


class OutboxRow(Protocol):
    """One queued document, as the store returns it."""

    @property
    def id(self) -> int: ...

    @property
    def incident_id(self) -> int | None: ...

    @property
    def document(self) -> dict[str, Any]: ...

    @property
    def attempts(self) -> int: ...


class Outbox(Protocol):
    """The part of the store :func:`deliver_pending` needs (``SqlStore`` has it)."""

    def pending_exports(self, sink: str, now: float, limit: int, /) -> Sequence[OutboxRow]:
        """Undelivered rows for ``sink`` due at ``now`` (next attempt <= now), oldest first."""
        ...

    def mark_exported(self, ids: Sequence[int], now: float, /) -> object:
        """Mark rows delivered."""
        ...

    def outbox_depth(self, sink: str | None = None, /) -> int:
        """Rows not delivered yet (for ``sink``, or for every sink)."""
        ...

    def mark_export_failed(self, outbox_id: int, error: str, next_attempt_at: float, /) -> object:
        """Record a failed attempt and when to try again."""
        ...


class OutboxWriter(Protocol):
    """The part of a store transaction :func:`enqueue_alert` needs."""

    def enqueue_export(
        self, sink: str, incident_id: int | None, document: dict[str, Any], /
    ) -> object: ...


@dataclass(slots=True)
class ExportReport:
    """What one :func:`deliver_pending` pass did.

    ``superseded`` rows were older updates of an incident whose newer update was
    sent instead (they count as done). ``errors`` counts failures by reason.
    ``next_attempt_at`` is the earliest retry this pass scheduled, if any.
    """

    sink: str
    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    superseded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    next_attempt_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "attempted": self.attempted,
            "delivered": self.delivered,
            "failed": self.failed,
            "superseded": self.superseded,
            "errors": dict(self.errors),
            "next_attempt_at": self.next_attempt_at,
        }


def enqueue_alert(
    tx: OutboxWriter,
    sinks: Iterable[str],
    incident: Incident,
    *,
    host_name: str | None = None,
    max_evidence: int = 10,
) -> dict[str, Any]:
    """Queue the incident's ECS alert for every sink, inside the caller's transaction."""
    if incident.id is None:
        raise ValueError("an incident must be stored (have an id) before it is exported")
    document = to_ecs_alert(incident, host_name=host_name, max_evidence=max_evidence)
    for sink in sinks:
        tx.enqueue_export(sink, incident.id, document)
    return document


def deliver_pending(
    store: Outbox, sink: Sink, now: float, *, limit: int | None = None
) -> ExportReport:
    """Send what is due in ``sink``'s outbox and record the outcome.

    A sink problem (down, slow, refusing) never raises: it is recorded on the rows
    and in the report. ``now`` is wall-clock time: backoff is about the sink's
    recovery, not event time (rows queued with an event-time ``now`` in replay are
    simply due at once). At most ``limit`` rows (default: the sink's
    ``batch_size``) are sent per call; to drain a backlog, call again while
    ``report.attempted`` is non-zero and ``report.failed`` is zero. Run it off the
    engine's hot path: a sink may take up to its timeout to answer.
    """
    batch = limit if limit is not None else sink.batch_size
    report = ExportReport(sink=sink.name)
    due = list(store.pending_exports(sink.name, now, batch))
    if not due:
        return report
    superseded: list[int] = []
    if sink.latest_only:
        due, superseded = _newest_per_incident(due)
    if superseded:
        # Done before sending: the newer row carries everything the older one had.
        store.mark_exported(superseded, now)
        report.superseded = len(superseded)
    if not due:
        return report
    report.attempted = len(due)
    result = sink.deliver([row.document for row in due])
    if len(result.results) != len(due):
        raise RuntimeError(
            f"sink {sink.name!r} returned {len(result.results)} results for {len(due)} documents"
        )
    delivered = [row.id for row, r in zip(due, result.results, strict=True) if r.ok]
    if delivered:
        store.mark_exported(delivered, now)
    report.delivered = len(delivered)
    for row, outcome in zip(due, result.results, strict=True):
        if outcome.ok:
            continue
        # Redacted before it is stored and cut: the sinks mask their own secrets;
        # this masks the process's others and any URL credential a message quotes.
        error = redact(outcome.error or "failed")[:MAX_ERROR_CHARS]
        wait = sink.retry.delay(row.attempts, retryable=outcome.retryable)
        next_at = now + wait
        store.mark_export_failed(row.id, error, next_at)
        report.failed += 1
        report.errors[_reason(outcome.status, error)] += 1
        if report.next_attempt_at is None or next_at < report.next_attempt_at:
            report.next_attempt_at = next_at
    if report.failed:
        _log.warning(
            "export to %s: %d delivered, %d failed (%s); next attempt in %.1fs",
            sink.name,
            report.delivered,
            report.failed,
            ", ".join(f"{k}×{v}" for k, v in report.errors.most_common(3)),
            (report.next_attempt_at or now) - now,
        )
    return report


def _newest_per_incident(due: list[OutboxRow]) -> tuple[list[OutboxRow], list[int]]:
    """Split due rows into the newest per incident and the older, superseded ones."""
    newest: dict[object, OutboxRow] = {}
    for row in sorted(due, key=lambda r: r.id):
        # A row without an incident stands alone.
        key = row.incident_id if row.incident_id is not None else ("row", row.id)
        newest[key] = row
    keep = {row.id for row in newest.values()}
    return [row for row in due if row.id in keep], [row.id for row in due if row.id not in keep]


def _reason(status: int | None, error: str) -> str:
    if status is None:
        return error.split(":", 1)[0][:60] or "no_response"
    return f"http_{status}"
