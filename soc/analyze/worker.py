"""Dispatch: which incidents get a report, when, off the ingestion path.

The engine tells the worker which incidents a batch opened or updated
(:meth:`AnalysisWorker.notify`); the worker, on a thread of its own, writes a
report for every incident that has none, and again only when the incident
changed materially (its severity rose, or it became a credential compromise),
at most once per ``reanalyze_interval_seconds``. Other updates keep the report
they have (counted as cache hits). Whatever is pending when the engine stops is
analysed by :meth:`drain`, so no incident is left without a report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from soc.analyze.analyst import Analyst, Report
from soc.clock import Clock
from soc.events import CREDENTIAL_COMPROMISE, SEVERITIES, Incident
from soc.redact import redact

_log = logging.getLogger(__name__)


class Precedents(Protocol):
    """Earlier incidents whose report a new one may reuse (see :mod:`soc.similar`)."""

    #: How old (seconds) a reused report may be.
    max_age_seconds: float

    def candidates(self, incident: Incident) -> list[tuple[int, float]]:
        """Ids and similarity of earlier incidents of the same kind above the bar, best first."""
        ...


@dataclass(slots=True)
class _Analysed:
    """What an incident looked like when it was last analysed, and when (wall clock)."""

    kind: str
    severity: str
    at: float


class AnalysisWorker:
    """Analyses notified incidents on demand (:meth:`run_pending`) or on its own thread."""

    def __init__(
        self,
        store: Any,
        analyst: Analyst,
        clock: Clock,
        *,
        poll: float = 0.5,
        offline_first: bool = False,
        precedents: Precedents | None = None,
    ) -> None:
        self.store = store
        #: Where a report to reuse may come from (None: every report is written anew).
        self.precedents = precedents
        self.analyst = analyst
        self.clock = clock
        self.poll = poll
        self.interval = analyst.config.reanalyze_interval_seconds
        self.reports: dict[int, Report] = {}  # the latest report per incident, this run
        self._pending: dict[int, None] = {}
        self._last: dict[int, _Analysed] = {}
        # With offline_first, a new incident gets the offline report at once; then
        # its batch's report, or the model's own ("upgrades", one at a time, new
        # incidents first; none when the chain has no model).
        self.offline_first = offline_first
        self._models = any(n != "offline" for n in analyst.chain)
        self._upgrades: dict[int, None] = {}
        self._batch: dict[int, None] = {}  # incidents waiting for the next batch report
        self._batch_since: float | None = None  # when the first of them joined (wall clock)
        self._in_flight = 0  # taken off the queues by the pass that is running
        self._lock = threading.Lock()
        self._restore_budget()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _restore_budget(self) -> None:
        """The budget counts what this store's analyses spent this hour and today."""
        now = self.clock.now()
        since = min(now - 3600, now - now % 86_400)
        self.analyst.budget.restore(
            (r.created_at, _model_calls(r), r.tokens_in + r.tokens_out, r.cost_usd)
            for r in self.store.analyses_that_spent(since)
        )

    @property
    def pending(self) -> int:
        """Incidents waiting for a report (their own, or their batch's), or being analysed."""
        with self._lock:
            return len(self._pending) + len(self._batch) + self._in_flight

    def notify(self, incident_ids: Iterable[int]) -> None:
        """Incidents opened or updated (thread-safe; the engine calls this after a commit)."""
        with self._lock:
            self._pending.update(dict.fromkeys(incident_ids))
        self._wake.set()

    def run_pending(self, *, force: bool = False, chain: Sequence[str] | None = None) -> int:
        """Analyse what is due now (with ``force``: everything changed); returns how many.

        ``chain``: the providers to use instead of the configured chain.
        """
        with self._lock:
            pending = [i for i in self._pending if i not in self._upgrades]
            upgrades = [i for i in self._pending if i in self._upgrades]
            self._pending.clear()
            self._in_flight = len(pending) + len(upgrades)
        done = 0
        keep: list[int] = []
        for incident_id in pending:
            if self._stop.is_set() and not force:
                keep.append(incident_id)
                continue
            incident = self.store.get_incident(incident_id)
            if incident is None:
                continue
            decision = self._decide(incident, force=force)
            if decision == "later":
                keep.append(incident_id)
                continue
            if decision == "keep":
                self.analyst.usage.cache_hits += 1
                continue
            first = self.offline_first and chain is None and incident_id not in self._last
            if chain is None and self._reuse(incident):
                done += 1
                continue
            if self.analyst.config.batched(incident.severity, incident.kind):
                if first:
                    self._analyse(incident, ["offline"], provisional=True)
                    done += 1
                self._batch.setdefault(incident_id, None)
                if self._batch_since is None:
                    self._batch_since = self.clock.now()
            elif first and self._models:
                self._analyse(incident, ["offline"], provisional=True)  # the model's later
                self._upgrades[incident_id] = None
                keep.append(incident_id)
                done += 1
            else:
                self._analyse(incident, chain)
                done += 1
        for n, incident_id in enumerate(upgrades):
            # One model upgrade per pass (unless forced): new incidents go first.
            incident = self.store.get_incident(incident_id)
            if incident is None:
                self._upgrades.pop(incident_id, None)
            elif (n > 0 and not force) or (self._stop.is_set() and not force):
                keep.append(incident_id)
            elif chain == ["offline"]:
                self._upgrades.pop(incident_id, None)  # a shutdown: the offline report stands
            else:
                self._upgrades.pop(incident_id, None)
                if chain is None and self._reuse(incident):
                    done += 1
                    continue
                self._analyse(incident, chain)
                done += 1
        with self._lock:
            for incident_id in keep:
                self._pending.setdefault(incident_id, None)
            self._in_flight = 0
        if not self._stop.is_set() or force:
            done += self._write_batches(force=force, chain=chain)
        return done

    def _write_batches(self, *, force: bool, chain: Sequence[str] | None) -> int:
        """Write the batch reports that are due; returns how many incidents got theirs."""
        size = self.analyst.config.batch_max_incidents
        waited = self._batch_since is not None and (
            self.clock.now() - self._batch_since >= self.analyst.config.batch_wait_seconds
        )
        if not self._batch or not (force or waited or len(self._batch) >= size):
            return 0
        with self._lock:
            ids, since = list(self._batch), self._batch_since
            self._batch.clear()
            self._batch_since = None
            self._in_flight = len(ids)
        try:
            return self._write(ids, since, force=force or waited, chain=chain)
        finally:
            with self._lock:
                self._in_flight = 0

    def _write(
        self, ids: list[int], since: float | None, *, force: bool, chain: Sequence[str] | None
    ) -> int:
        """Batch reports for ``ids``: all of them with ``force``, else full batches only
        (the rest go back to the open batch, which keeps its ``since``)."""
        size = self.analyst.config.batch_max_incidents
        members = [
            i
            for i in self.store.get_incidents(ids)
            # one that rose above the batch severity meanwhile got a report of its own
            if self.analyst.config.batched(i.severity, i.kind)
        ]
        if chain == ["offline"] and self.offline_first:
            # a shutdown: the provisional offline reports stand
            members = [i for i in members if int(i.id or 0) not in self._last]
        members.sort(key=lambda i: (i.first_seen, i.id or 0))
        if not force:
            # full batches now; the rest waits for more company
            full = len(members) - len(members) % size
            for incident in members[full:]:
                self._batch[int(incident.id or 0)] = None
            self._batch_since = since if full < len(members) else None
            members = members[:full]
        done = 0
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            if len(chunk) == 1:  # alone: the same one call buys a report of its own
                self._analyse(chunk[0], chain)
                done += 1
                continue
            batch = self.analyst.analyze_batch(chunk, chain=chain)
            now = self.clock.now()
            for n, incident in enumerate(chunk):
                incident_id = int(incident.id or 0)
                evidence = self.store.evidence(incident_id)
                report = self.analyst.batch_member(batch, incident, evidence, carries_cost=n == 0)
                store_report(self.store, incident, report, now)
                self.reports[incident_id] = report
                self._last[incident_id] = _Analysed(incident.kind, incident.severity, now)
                done += 1
        return done

    def _decide(self, incident: Incident, *, force: bool) -> str:
        """``now``: analyse; ``keep``: the report stands; ``later``: changed, too soon."""
        incident_id = int(incident.id or 0)
        last = self._last.get(incident_id) or self._stored(incident_id)
        if last is None:
            return "now"
        rose = SEVERITIES.index(incident.severity) > SEVERITIES.index(last.severity)
        compromised = incident.kind == CREDENTIAL_COMPROMISE != last.kind
        if not (rose or compromised):
            return "keep"
        if force or self.clock.now() - last.at >= self.interval:
            return "now"
        return "later"

    def _stored(self, incident_id: int) -> _Analysed | None:
        records = self.store.analyses(incident_id)
        if not records:
            return None
        latest = records[-1]
        seen = (latest.structured or {}).get("incident", {})
        last = _Analysed(
            kind=str(seen.get("kind", "")),
            severity=str(seen.get("severity", SEVERITIES[0])),
            at=latest.created_at,
        )
        self._last[incident_id] = last
        return last

    def _reuse(self, incident: Incident) -> bool:
        """Give ``incident`` a similar earlier incident's report instead of a model call.

        Only with a model in the chain (the offline analyst costs nothing), from a
        report a model wrote for that incident alone (not a batch's, not offline),
        grounded, younger than ``max_age_seconds``, and only when its fields hold
        against this incident's own facts (:meth:`Analyst.reuse`).
        """
        if self.precedents is None or not self._models:
            return False
        incident_id = int(incident.id or 0)
        try:
            candidates = self.precedents.candidates(incident)
        except Exception:  # the memory is an aid: a failure there costs a model call
            _log.exception("similar-incident lookup failed for incident %s", incident_id)
            return False
        now = self.clock.now()
        evidence: list[str] | None = None
        for other_id, score in candidates:
            if other_id == incident_id:
                continue
            record = _reusable(self.store.analyses(other_id))
            if record is None or now - record.created_at > self.precedents.max_age_seconds:
                continue
            if evidence is None:
                evidence = self.store.evidence(incident_id)
            origin = {"incident_id": other_id, "analysis_id": record.id, "score": score}
            report = self.analyst.reuse(
                incident,
                evidence,
                record.structured or {},
                provider=record.provider,
                model=record.model,
                origin=origin,
            )
            if report is None:
                continue
            store_report(self.store, incident, report, now)
            self.reports[incident_id] = report
            self._upgrades.pop(incident_id, None)
            self._last[incident_id] = _Analysed(incident.kind, incident.severity, now)
            return True
        return False

    def _analyse(
        self,
        incident: Incident,
        chain: Sequence[str] | None = None,
        *,
        provisional: bool = False,
    ) -> None:
        """Analyse and store; a ``provisional`` report does not hold off re-analysis."""
        incident_id = int(incident.id or 0)
        evidence = self.store.evidence(incident_id)
        report = self.analyst.analyze(incident, evidence, chain=chain)
        now = self.clock.now()
        store_report(self.store, incident, report, now)
        self.reports[incident_id] = report
        at = float("-inf") if provisional else now
        self._last[incident_id] = _Analysed(incident.kind, incident.severity, at)

    # --- on a thread -----------------------------------------------------------------
    def start(self) -> None:
        """Analyse on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="soc-analyst", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            try:
                self.run_pending()
            except Exception:  # a store hiccup must not end analysis for good
                _log.exception("analysis pass failed; retrying")
                self._stop.wait(self.poll)

    def stop(self) -> None:
        """Stop the thread after the incident it is on."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def drain(self, *, offline_only: bool = False) -> int:
        """Stop, then analyse everything still pending, changes within the interval included.

        ``offline_only``: with the offline analyst alone (a shutdown must not wait
        for a slow model; every incident still leaves with a report).
        """
        self.stop()
        return self.run_pending(force=True, chain=["offline"] if offline_only else None)


def _reusable(records: Sequence[Any]) -> Any | None:
    """The newest report a model wrote for this incident alone and that passed grounding."""
    for record in reversed(records):
        structured = record.structured or {}
        if record.provider != "offline" and record.grounded and "batch" not in structured:
            return record
    return None


def _model_calls(record: Any) -> int:
    """Model calls a stored analysis made (older rows did not say: one, if a model wrote it)."""
    calls = (record.structured or {}).get("model_calls")
    if isinstance(calls, int) and not isinstance(calls, bool):
        return calls
    return 0 if record.provider == "offline" else 1


def store_report(store: Any, incident: Incident, report: Report, now: float) -> int:
    """Store ``report`` as the incident's newest analysis; returns its id.

    The incident's kind, severity and failures at the time go with it, so a
    later run knows what the report was written about (see ``AnalysisWorker``).
    """
    structured = {
        **report.structured,
        "model_calls": report.calls,
        "incident": {
            "kind": incident.kind,
            "severity": incident.severity,
            "failures": incident.failures,
        },
    }
    analysis_id: int = store.add_analysis(
        int(incident.id or 0),
        provider=report.provider,
        model=report.model,
        created_at=now,
        markdown=report.markdown,
        structured=structured,
        tokens_in=report.tokens_in,
        tokens_out=report.tokens_out,
        cost_usd=report.cost_usd,
        latency_s=report.latency_s,
        grounded=report.grounded,
        grounding_errors=report.grounding_errors,
        # Redacted again where it is stored: a report may come from elsewhere.
        fallback_reason=redact(report.fallback_reason) if report.fallback_reason else None,
        reused=report.reused,
    )
    return analysis_id


__all__ = ["AnalysisWorker", "Precedents", "store_report"]
