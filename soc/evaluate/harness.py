"""The runner: each scenario's logs through the real pipeline, scored against their labels.

For every scenario it writes the logs into a temporary folder and replays them
as ``soc replay`` does: :class:`~soc.engine.Engine` over a ``replay`` source, an
in-memory store, no host addresses, no resume, the default detection settings
(unless given), year 2025 and UTC for stamps that carry neither. The analyst's
real dispatch counts the model calls on the way (:mod:`soc.evaluate.calls`);
the incidents are then scored (:mod:`soc.evaluate.score`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from soc.acquire.replay import ReplaySourceConfig
from soc.analyze.base import AnalyzeConfig
from soc.config import Settings, SourceSpec
from soc.detect import DetectConfig
from soc.engine import Engine, build_sources
from soc.evaluate.calls import CallCount, CallCounter, count_replay_calls
from soc.evaluate.labels import Labels
from soc.evaluate.scenarios import SCENARIOS, SIZES, Scenario, Size
from soc.evaluate.score import CORRECT, KindScore, Score, empty_kinds, score
from soc.evaluate.traffic import FILES, START, YEAR
from soc.parse.base import ParseConfig
from soc.store import open_store

#: Lines the engine commits at a time. Live, it commits what each turn brought (a
#: few seconds of lines), and the analyst sees each incident change as it happens;
#: in commits of 20,000 lines (``soc replay``'s default) an incident can open, grow
#: and turn severe within one commit and be analysed once instead of twice. Model
#: calls on the small background: 33 at 20,000 lines, 38 at 500, 41 at 200, 42 at 25.
COMMIT_LINES: Final = 200
#: Evidence lines kept for each incident that is not correct (to show what went wrong).
EVIDENCE_SHOWN: Final = 4


@dataclass(slots=True)
class ScenarioResult:
    """One scenario's run: what was written, found, scored and reported, and how long it took."""

    name: str
    group: str
    description: str
    labels: Labels
    lines: int
    unparsed: int
    score: Score
    calls: CallCount  #: live: each incident handed over as it changes, in event time
    replay_calls: CallCount  #: as ``soc replay``: every incident at the end
    seconds_generate: float
    seconds_pipeline: float

    @property
    def incidents(self) -> int:
        return len(self.score.verdicts)


@dataclass(slots=True)
class EvalResult:
    """Every scenario's result, and the totals."""

    size: str
    seed: int
    scenarios: list[ScenarioResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.scenarios)

    @property
    def incidents(self) -> int:
        return sum(r.incidents for r in self.scenarios)

    @property
    def calls(self) -> CallCount:
        total = CallCount()
        for result in self.scenarios:
            total.add(result.calls)
        return total

    @property
    def replay_calls(self) -> CallCount:
        total = CallCount()
        for result in self.scenarios:
            total.add(result.replay_calls)
        return total

    @property
    def kinds(self) -> dict[str, KindScore]:
        total = empty_kinds()
        for result in self.scenarios:
            for kind, tally in result.score.kinds.items():
                total.setdefault(kind, KindScore(kind)).add(tally)
        return total

    @property
    def legitimate_addresses(self) -> int:
        return sum(r.score.legitimate_addresses for r in self.scenarios)

    @property
    def legitimate_flagged(self) -> int:
        return sum(len(r.score.legitimate_flagged) for r in self.scenarios)


def run_scenario(
    scenario: Scenario,
    size: Size,
    seed: int,
    folder: Path,
    *,
    detect: DetectConfig | None = None,
    analyze: AnalyzeConfig | None = None,
) -> ScenarioResult:
    """Write ``scenario``'s logs into ``folder``, run the pipeline over them, and score it."""
    started = time.perf_counter()
    labels = scenario.write(folder, size, seed)
    generated = time.perf_counter()
    paths = [str(folder / name) for name in FILES if (folder / name).exists()]
    settings = Settings(detect=detect or DetectConfig(), analyze=analyze or AnalyzeConfig())
    settings.engine = replace(settings.engine, batch_lines=COMMIT_LINES)
    settings.sources = [
        SourceSpec(
            name="replay",
            type="replay",
            parse=ParseConfig(timezone="UTC", year=YEAR),
            options=ReplaySourceConfig(paths=paths),
        )
    ]
    store = open_store("sqlite://")
    try:
        counter = CallCounter(store, settings.analyze, START)
        engine = Engine(
            settings,
            store,
            counter.clock,
            sources=build_sources(settings, counter.clock),
            host_addresses=(),
            resume=False,
            on_incidents=counter.notify,
        )
        counter.follow(lambda: engine.detector.watermark)
        try:
            engine.run(until_exhausted=True)
            engine.finish()
        finally:
            engine.close()
        calls = counter.drain()
        final = store.get_incidents(engine.report.incident_ids)
        end = engine.detector.watermark or START
        replay_calls = count_replay_calls(final, settings.analyze, end)
        scored = score(labels, store.get_incidents(engine.report.incident_ids))
        for verdict in scored.verdicts:
            if verdict.verdict != CORRECT:
                verdict.evidence = store.evidence(verdict.id)[:EVIDENCE_SHOWN]
    finally:
        store.close()
    stats = engine.report.parse
    return ScenarioResult(
        name=scenario.name,
        group=scenario.group,
        description=scenario.description,
        labels=labels,
        lines=stats.lines,
        unparsed=stats.unparsed_total,
        score=scored,
        calls=calls,
        replay_calls=replay_calls,
        seconds_generate=generated - started,
        seconds_pipeline=time.perf_counter() - generated,
    )


def run_evaluation(
    size: str = "small",
    seed: int = 7,
    *,
    scenarios: Sequence[Scenario] = SCENARIOS,
    detect: DetectConfig | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> EvalResult:
    """Every scenario of ``size`` (``small`` or ``full``), each in a temporary folder."""
    chosen = SIZES[size]
    result = EvalResult(size=size, seed=seed)
    started = time.perf_counter()
    for scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix=f"soc-eval-{scenario.name}-") as tmp:
            done = run_scenario(scenario, chosen, seed, Path(tmp), detect=detect)
        result.scenarios.append(done)
        if on_result is not None:
            on_result(done)
    result.seconds = time.perf_counter() - started
    return result


__all__ = ["COMMIT_LINES", "EvalResult", "ScenarioResult", "run_evaluation", "run_scenario"]
