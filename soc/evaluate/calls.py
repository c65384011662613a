"""Counting the model calls the analyst would make, by running its real dispatch.

The analyst's worker (:class:`~soc.analyze.worker.AnalysisWorker`) and the
analyst (:class:`~soc.analyze.analyst.Analyst`) run as they do in the product,
with the default :class:`~soc.analyze.base.AnalyzeConfig` unless told otherwise;
only the model is a stand-in (:class:`CountingModel`) that counts the calls it
gets and answers each with a valid, grounded report. The worker's clock follows
event time (the detector's watermark), and it looks at its queues after every
commit of the engine, as the live worker's thread would while lines arrive: so
incidents below the batch severity are gathered into one call per batch of up
to ``batch_max_incidents``, written ``batch_wait_seconds`` of event time after
the first joined, and the rest get a call of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from soc.analyze.analyst import Analyst
from soc.analyze.base import AnalyzeConfig, Completion
from soc.analyze.report import sheet_subject
from soc.analyze.worker import AnalysisWorker
from soc.clock import ManualClock
from soc.events import Incident
from soc.store import open_store

_SHEET_HEAD: Final = "FACT SHEET (trusted, from the detector):\n"
_SHEET_END: Final = "\n\nATTACKER-CONTROLLED VALUES"


class CountingModel:
    """A provider that counts its calls and answers with a short report that passes validation.

    It takes the place of the chain's first model (``local`` by default); the
    report states no address, name or number, so it is always grounded, and it
    repeats the fact sheet's severity, as a model must.
    """

    model = "stand-in"

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.batch_calls = 0
        self.prompt_chars = 0

    def unavailable(self) -> str | None:
        return None

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def complete(self, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        """One call: counted, and answered."""
        self.calls += 1
        self.prompt_chars += len(system) + len(user)
        sheet = json.loads(user.removeprefix(_SHEET_HEAD).split(_SHEET_END, 1)[0])
        if "batch" in sheet:
            self.batch_calls += 1
        reply = json.dumps(
            {
                "summary": "Written by the evaluation's stand-in model.",
                "what_happened": "The fact sheet says what happened.",
                "assessment": "Not assessed: the evaluation only counts model calls.",
                "severity": sheet_subject(sheet).get("severity", "low"),
                "confidence": "low",
            }
        )
        # about four characters a token, for an idea of the prompt's size
        return Completion(reply, len(system + user) // 4, len(reply) // 4, self.model, 0.0)


@dataclass(slots=True)
class CallCount:
    """What the analyst did for one run's incidents."""

    model_calls: int = 0
    batch_calls: int = 0
    reports: int = 0
    batched_incidents: int = 0
    over_budget: int = 0
    prompt_tokens: int = 0

    def add(self, other: CallCount) -> None:
        """Add another run's counts to these."""
        self.model_calls += other.model_calls
        self.batch_calls += other.batch_calls
        self.reports += other.reports
        self.batched_incidents += other.batched_incidents
        self.over_budget += other.over_budget
        self.prompt_tokens += other.prompt_tokens

    def as_dict(self) -> dict[str, int]:
        """The counts as plain data."""
        return {
            "model_calls": self.model_calls,
            "batch_calls": self.batch_calls,
            "reports": self.reports,
            "batched_incidents": self.batched_incidents,
            "over_budget": self.over_budget,
            "prompt_tokens": self.prompt_tokens,
        }


class CallCounter:
    """The real analysis worker on an event-time clock, with a counting model.

    Hand :meth:`notify` to the engine as ``on_incidents`` and tell
    :meth:`follow` where event time is; call :meth:`drain` at the end.
    """

    def __init__(self, store: Any, config: AnalyzeConfig, start: float) -> None:
        self.store = store
        self.clock = ManualClock(start)
        first = next((n for n in config.chain if n != "offline"), "local")
        self.model = CountingModel(first)
        self.analyst = Analyst(config, {first: self.model}, self.clock)
        self.worker = AnalysisWorker(store, self.analyst, self.clock)
        self._now: Callable[[], float | None] = lambda: None

    def follow(self, now: Callable[[], float | None]) -> None:
        """Where event time is (the engine's watermark)."""
        self._now = now

    def notify(self, incident_ids: list[int]) -> None:
        """The engine committed these incidents: hand them over one by one, in event time.

        Each is handed over at the time of its latest event, after what was due
        by then has been written (a batch that was due holds only the incidents
        that joined before it), as the live worker would have seen them while
        the lines arrived; the engine's commits are far coarser than that.
        """
        now = self._now()
        for incident in sorted(self.store.get_incidents(incident_ids), key=_last_seen):
            self.clock.set(incident.last_seen if now is None else min(incident.last_seen, now))
            self.worker.run_pending()
            self.worker.notify([int(incident.id or 0)])
            self.worker.run_pending()
        if now is not None:
            self.clock.set(now)
            self.worker.run_pending()

    def drain(self) -> CallCount:
        """Report everything still waiting (the end of input), and return the counts."""
        self.worker.drain()
        usage = self.analyst.usage
        return CallCount(
            model_calls=self.model.calls,
            batch_calls=self.model.batch_calls,
            reports=usage.analyses,
            batched_incidents=usage.batched_incidents,
            over_budget=sum(n for reason, n in usage.fallbacks.items() if "budget" in reason),
            prompt_tokens=usage.tokens_in,
        )


def count_replay_calls(incidents: list[Incident], config: AnalyzeConfig, now: float) -> CallCount:
    """The calls ``soc replay`` makes for these incidents: all at the end, on their final state.

    A replay has no reader waiting for early reports, so every incident is handed
    over once input ends: the small ones fill batches of up to
    ``batch_max_incidents``, the severe ones get a call each. (In a store of their
    own: the live count's reports must not stand in for these.)
    """
    store = open_store("sqlite://")
    try:
        with store.transaction(now) as tx:
            ids = tx.upsert_incidents([(i, f"incident {i.id}") for i in incidents])
        counter = CallCounter(store, config, now)
        counter.worker.notify(ids)
        return counter.drain()
    finally:
        store.close()


def _last_seen(incident: Incident) -> tuple[float, int]:
    return (incident.last_seen, incident.id or 0)


__all__ = ["CallCount", "CallCounter", "CountingModel", "count_replay_calls"]
