"""The engine: wires sources, parsers and the store together and owns the loop.

Each turn it asks every source for the lines available now, parses them with a
parser per stream (auto-detected from the stream's first lines unless the source
names a format), and commits what it derived together with the source's
checkpoint in one store transaction per batch. It never waits on a source: a
source that has nothing returns at once, and the live loop sleeps only when no
source had anything.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from soc.acquire import Source, source_classes
from soc.acquire.base import AcquireStats
from soc.clock import Clock
from soc.config import Settings, SourceSpec
from soc.errors import SourceError
from soc.events import AUTH_SUCCESS, FAILURE, Event, Line
from soc.parse import make_parser
from soc.parse.base import Parser, ParseStats, Skip

#: Lines of a new stream looked at to detect its format.
DETECT_SAMPLE_LINES = 50


@dataclass(slots=True)
class Findings:
    """What the lines showed, in brief: who failed, how often, as whom, and who got in."""

    failures_by_address: Counter[str] = field(default_factory=Counter)
    successes_by_address: Counter[str] = field(default_factory=Counter)
    targeted_users: Counter[str] = field(default_factory=Counter)
    first_seen: float | None = None
    last_seen: float | None = None

    def add(self, event: Event) -> None:
        """Account for one event."""
        ts = event.timestamp
        if ts is not None:
            if self.first_seen is None or ts < self.first_seen:
                self.first_seen = ts
            if self.last_seen is None or ts > self.last_seen:
                self.last_seen = ts
        address = event.key_address
        if address is None:
            return
        if event.outcome == FAILURE:
            self.failures_by_address[address] += event.count
            if event.user is not None:
                self.targeted_users[event.user] += event.count
        elif event.kind == AUTH_SUCCESS:
            self.successes_by_address[address] += event.count


@dataclass(slots=True)
class IngestReport:
    """Totals of one engine run, for the CLI and the tests."""

    parse: ParseStats = field(default_factory=ParseStats)
    acquire: dict[str, AcquireStats] = field(default_factory=dict)
    findings: Findings = field(default_factory=Findings)
    batches: int = 0


class Engine:
    """Runs the pipeline over configured sources until stopped or exhausted."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        clock: Clock,
        *,
        sources: Sequence[tuple[SourceSpec, Source]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.report = IngestReport()
        self._parsers: dict[tuple[str, str], Parser] = {}  # one per (source, stream)
        self._acquire_committed: dict[str, Counter[str]] = {}
        self.sources = list(sources) if sources is not None else build_sources(settings, clock)
        for spec, source in self.sources:
            self.report.acquire[spec.name] = source.stats
            state = store.load_checkpoint(spec.name)
            if state is not None:
                source.restore(state)

    # --- the loop ---------------------------------------------------------------
    def step(self) -> int:
        """One turn over every source; returns how many lines were processed."""
        total = 0
        batch_size = self.settings.engine.batch_lines
        for spec, source in self.sources:
            batch: list[Line] = []
            for line in source.read():
                batch.append(line)
                if len(batch) >= batch_size:
                    # The generator is suspended just after this line, so the
                    # source's checkpoint is exactly the end of this batch.
                    self._process(spec, source, batch)
                    total += len(batch)
                    batch = []
            if batch:
                self._process(spec, source, batch)
                total += len(batch)
        return total

    @property
    def exhausted(self) -> bool:
        """True when every source is finished (replay, stdin at end of input)."""
        return all(source.exhausted for _, source in self.sources)

    def run(self, stop: threading.Event | None = None, *, until_exhausted: bool = False) -> None:
        """Loop until ``stop`` is set (or every source is exhausted, if asked)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            processed = self.step()
            if until_exhausted and self.exhausted:
                break
            if processed == 0:
                stop.wait(self.settings.engine.idle_sleep)

    def close(self) -> None:
        """Close every source (the store belongs to the caller)."""
        for _, source in self.sources:
            source.close()

    # --- one batch --------------------------------------------------------------
    def _process(self, spec: SourceSpec, source: Source, batch: list[Line]) -> None:
        stats = ParseStats()
        findings = self.report.findings
        stream_key = (spec.name, batch[0].stream)
        parser = self._parser_for(spec, stream_key, batch, 0)
        for index, line in enumerate(batch):
            if line.stream != stream_key[1]:
                stream_key = (spec.name, line.stream)
                parser = self._parser_for(spec, stream_key, batch, index)
            result = parser.parse(line.text, line.line_no)
            stats.count(result)
            if isinstance(result, Event):
                findings.add(result)
        self.report.parse.merge(stats)
        self.report.batches += 1
        with self.store.transaction(now=self.clock.now()) as tx:
            tx.add_counters(spec.name, self._counter_deltas(spec.name, source, stats))
            tx.save_checkpoint(spec.name, source.checkpoint())

    def _parser_for(
        self, spec: SourceSpec, key: tuple[str, str], batch: list[Line], index: int
    ) -> Parser:
        parser = self._parsers.get(key)
        if parser is None:
            same_stream = (line.text for line in batch[index:] if line.stream == key[1])
            sample = list(islice(same_stream, DETECT_SAMPLE_LINES))
            reference = _reference_time(key[1], self.clock)
            parser = make_parser(spec.parse, reference_time=reference, sample=sample)
            self._parsers[key] = parser
        return parser

    def _counter_deltas(self, name: str, source: Source, stats: ParseStats) -> dict[str, int]:
        deltas: Counter[str] = Counter({"lines": stats.lines, "events": stats.events})
        for kind, n in stats.by_kind.items():
            deltas[f"kind.{kind}"] += n
        for reason, n in stats.unparsed.items():
            deltas[f"unparsed.{reason}"] += n
        deltas["ignored"] += sum(stats.ignored.values())
        committed = self._acquire_committed.setdefault(name, Counter())
        for reason, n in source.stats.anomalies.items():
            if n != committed[reason]:
                deltas[f"acquire.{reason}"] += n - committed[reason]
                committed[reason] = n
        return dict(deltas)


def _reference_time(stream: str, clock: Clock) -> float:
    # Year-less timestamps are dated relative to the file's last write (a replayed
    # log from last December stays in last December), else to now.
    try:
        return Path(stream).stat().st_mtime
    except (OSError, ValueError):
        return clock.now()


def build_sources(settings: Settings, clock: Clock) -> list[tuple[SourceSpec, Source]]:
    """Instantiate every configured source (validated already by the config loader)."""
    sources: list[tuple[SourceSpec, Source]] = []
    try:
        for spec in settings.sources:
            _, source_cls = source_classes(spec.type)
            if spec.type == "replay" and spec.options.speed > 0:
                source = source_cls(
                    spec.name, spec.options, clock, timestamp_of=timestamp_extractor(spec, clock)
                )
            else:
                source = source_cls(spec.name, spec.options, clock)
            sources.append((spec, source))
    except Exception:
        for _, source in sources:
            source.close()
        raise
    return sources


def timestamp_extractor(spec: SourceSpec, clock: Clock) -> Callable[[str], float | None]:
    """A function giving a line's event time, for pacing a replay at a speed factor."""
    parser: Parser | None = None

    def timestamp_of(text: str) -> float | None:
        nonlocal parser
        if parser is None:
            parser = make_parser(spec.parse, reference_time=clock.now(), sample=[text])
        result = parser.parse(text)
        return None if isinstance(result, Skip) else result.timestamp

    return timestamp_of


__all__ = [
    "Engine",
    "Findings",
    "IngestReport",
    "SourceError",
    "build_sources",
    "timestamp_extractor",
]
