"""The delivery worker: moves queued alerts from the outbox to every sink, off the hot path.

The engine only queues alerts (in the same transaction as their incidents); this
worker, on a thread of its own, calls :func:`~soc.export.outbox.deliver_pending`
for every sink every ``interval`` seconds, so a slow or unreachable sink never
holds up ingestion. What a sink does not take stays in the outbox, with its
backoff, for the next pass or the next run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from soc.config import ExportSpec, Secret
from soc.export.base import Sink
from soc.export.outbox import ExportReport, Outbox, deliver_pending

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class SinkTotals:
    """What the worker did for one sink since it started."""

    delivered: int = 0
    failed: int = 0
    superseded: int = 0
    passes: int = 0
    last_error: str | None = None

    def add(self, report: ExportReport) -> None:
        self.delivered += report.delivered
        self.failed += report.failed
        self.superseded += report.superseded
        self.passes += 1
        if report.failed:
            self.last_error = ", ".join(sorted(report.errors))
        elif report.delivered:
            self.last_error = None


@dataclass(slots=True)
class ExportWorker:
    """Delivers what is due in the outbox to each sink, on demand or on its own thread."""

    store: Outbox
    sinks: Sequence[Sink]
    interval: float = 2.0
    totals: dict[str, SinkTotals] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        for sink in self.sinks:
            self.totals.setdefault(sink.name, SinkTotals())

    def deliver_due(self, *, interruptible: bool = False) -> int:
        """One pass over every sink, draining what is due; returns how many were delivered.

        A sink that fails is left for its backoff: the pass moves on to the next
        sink. A sink that raises (a bug, not an outage) is logged, not fatal.
        ``interruptible``: stop between batches once :meth:`stop` is called (the
        thread's passes; :meth:`drain` finishes its own).
        """
        delivered = 0
        for sink in self.sinks:
            totals = self.totals[sink.name]
            while not (interruptible and self._stop.is_set()):
                try:
                    report = deliver_pending(self.store, sink, time.time())
                except Exception as exc:  # a sink's bug must not stop the others
                    _log.exception("export to %s failed", sink.name)
                    totals.failed += 1
                    totals.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    break
                totals.add(report)
                delivered += report.delivered
                if not report.attempted or report.failed:
                    break
        return delivered

    def drain(self, timeout: float) -> bool:
        """Deliver until the outbox is empty or ``timeout`` seconds pass; True if emptied.

        Rows waiting for their backoff are waited for within the timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.deliver_due()
            if all(self.store.outbox_depth(sink.name) == 0 for sink in self.sinks):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def start(self) -> None:
        """Deliver every ``interval`` seconds on a daemon thread until :meth:`stop`."""
        if self._thread is not None or not self.sinks:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="soc-export", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after its current pass)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop and release every sink's connections."""
        self.stop()
        for sink in self.sinks:
            sink.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.deliver_due(interruptible=True)


def build_sinks(specs: Sequence[ExportSpec], secrets: Mapping[str, Secret]) -> list[Sink]:
    """The configured sinks, built (closing those already built if one fails)."""
    from soc.export import build_sink

    sinks: list[Sink] = []
    try:
        for spec in specs:
            sinks.append(build_sink(spec.type, spec.options, name=spec.name, secrets=secrets))
    except Exception:
        for sink in sinks:
            sink.close()
        raise
    return sinks


__all__ = ["ExportWorker", "SinkTotals", "build_sinks"]
