"""The engine: wires sources, parsers, windows, detection and the store together.

Each turn it asks every source for the lines available now, parses them with a
parser per stream (auto-detected from the stream's first lines unless the source
names a format), aggregates the events into windows and runs the detector over
them, and commits what it derived (counters, closed windows, new and updated
incidents, their queued alerts) together with the source's checkpoint in one
store transaction per batch. It never waits on a source: a source that has
nothing returns at once, and the live loop sleeps only when no source had
anything. Delivering the queued alerts is not the engine's job: see
:class:`soc.export.worker.ExportWorker`.

(Why past 600 lines: stages meet only here, so the loop's commits, their retries
through a store outage and the continuing of a saved state (its format is
:mod:`soc.engine_state`) live here, and so do the builders of the workers beside
the loop, memory, intel and responder.)
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby, islice
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, TypeVar

from soc import engine_state
from soc.acquire import Source, source_classes
from soc.acquire.base import AcquireStats, batches
from soc.clock import Clock
from soc.columns import EventColumns
from soc.config import Settings, SourceSpec, build_dataclass
from soc.detect import DetectConfig, Detector, DetectorStats, discover_host_addresses
from soc.detect.rules import playbooks_by_kind
from soc.engine_state import STATE_CHECKPOINT
from soc.enrich import Enricher
from soc.errors import ConfigError, ParseError, SourceError, StoreError
from soc.events import Event, Incident, Line, WindowStats
from soc.export import enqueue_alert
from soc.findings import Findings
from soc.parse import FormatParser, make_parser, parser_class
from soc.parse.base import Parser, ParseStats, Skip, parse_lines
from soc.respond import Protected, Responder
from soc.window import WindowConfig, Windower, WindowerStats

#: Lines of a new stream looked at to detect its format.
DETECT_SAMPLE_LINES = 50
#: The counters' source name for what the windows and the detector counted.
PIPELINE_COUNTERS: Final = "(pipeline)"
#: The run-time tuning the engine follows (``SqlStore.set_tuning``).
TUNED_THRESHOLD: Final = "threshold"
#: How often (seconds of wall-clock time) a live engine applies aggregate retention.
RETENTION_EVERY = 3600.0
#: A commit carrying the state may take at most this share of a durable engine's time.
STATE_SHARE = 0.1

_T = TypeVar("_T")

_log = logging.getLogger(__name__)
_STREAM: Final = attrgetter("stream")

#: The pipeline's stages as ``IngestReport.seconds`` names them, in order; the
#: commit's parts (windows, incidents) are included in ``commit``.
STAGES: Final = ("acquire", "parse", "findings", "window", "detect", "commit")
COMMIT_PARTS: Final = ("commit_windows", "commit_incidents")


@dataclass(slots=True)
class IngestReport:
    """Totals of one engine run, for the CLI and the tests."""

    parse: ParseStats = field(default_factory=ParseStats)
    acquire: dict[str, AcquireStats] = field(default_factory=dict)
    findings: Findings = field(default_factory=Findings)
    window: WindowerStats = field(default_factory=WindowerStats)
    detect: DetectorStats = field(default_factory=DetectorStats)
    batches: int = 0
    windows_stored: int = 0
    #: Store ids of the incidents this run opened or updated, in order of first touch.
    incident_ids: dict[int, None] = field(default_factory=dict)
    alerts_queued: int = 0
    #: Store accesses (commits, reads) retried because the database was unreachable.
    store_retries: int = 0
    #: Durable engines: what became of the saved state at start ("continued",
    #: "none saved", or why it was discarded), and its size as last committed.
    state: str = ""
    state_bytes: int = 0
    #: Wall-clock seconds spent in each stage (:data:`STAGES`, :data:`COMMIT_PARTS`):
    #: where a run's time goes, measured by the engine itself. ``acquire`` is the
    #: time the sources took to hand over their lines; ``findings`` the batch's
    #: columns and the summary's top lists; a column first read by the windower
    #: counts in ``window``; ``commit`` includes the intel facts, a durable engine's
    #: state and the retries of a store outage.
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys((*STAGES, *COMMIT_PARTS), 0.0)
    )


@dataclass(slots=True)
class _Pending:
    """What batches derived and no transaction has committed yet (a durable engine's)."""

    windows: list[WindowStats] = field(default_factory=list)
    incidents: dict[str, Incident] = field(default_factory=dict)  # by detector key, latest
    counters: dict[str, Counter[str]] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.windows or self.incidents or self.counters or self.checkpoints)


class Engine:
    """Runs the pipeline over configured sources until stopped or exhausted.

    ``host_addresses``: this machine's addresses, allow-listed when
    ``[detect] include_host_addresses`` (default: discovered; a replay of
    another machine's logs passes none). ``follow_tuning``: apply a threshold
    the analyst tunes at run time through the store (``soc threshold``, the UI),
    at start and then every ``tick_seconds``; a replay follows only its own
    settings. ``resume``: continue every source from its stored checkpoint (a
    replay starts over: its detector has no memory of an earlier run). Call
    :meth:`finish` at the end of input or before stopping: it hands over every
    open window and incident. ``on_incidents`` is told the store ids of the
    incidents each commit opened or updated (the analyst's dispatch); it must
    return at once. ``intel``: threat intel applied to every incident before it
    is stored (its hits in ``facts["intel"]``, its severity raised by the rule of
    :mod:`soc.enrich.enricher`); its feeds are read by the caller
    (``Enricher.refresh_now``, an ``IntelRefresher``), never by the engine.

    ``durable`` (a live engine: ``soc run``, the command center following its
    sources): the open windows and the detector's state are saved with the
    sources' checkpoints in every commit and continued at the next start, so a
    restart (``kill -9`` included) goes on as if the engine had never stopped;
    stop it with :meth:`persist`, not :meth:`finish`. Its batches are committed
    together, at most every ``[engine] commit_seconds`` while lines keep coming
    (longer when the state is large: see :data:`STATE_SHARE`), at once when the
    sources are idle. Every store access (reads too) is retried through an
    outage for ``store_retry_seconds``.
    """

    def __init__(
        self,
        settings: Settings,
        store: Any,
        clock: Clock,
        *,
        sources: Sequence[tuple[SourceSpec, Source]] | None = None,
        host_addresses: Iterable[str] | None = None,
        follow_tuning: bool = False,
        resume: bool = True,
        on_incidents: Callable[[list[int]], None] | None = None,
        intel: Enricher | None = None,
        durable: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.report = IngestReport()
        self._parsers: dict[tuple[str, str], FormatParser] = {}  # one per (source, stream)
        self._acquire_committed: dict[str, Counter[str]] = {}
        self._pipeline_committed: dict[str, int] = {}
        hosts = discover_host_addresses() if host_addresses is None else list(host_addresses)
        self._hosts = hosts
        self._pending_window: float | None = None
        self.windower = Windower(settings.window)
        self.detector = Detector(settings.detect, host_addresses=hosts)
        self.report.window = self.windower.stats
        self.report.detect = self.detector.stats
        self.export_sinks = [spec.name for spec in settings.exports]
        self.host_name = socket.gethostname()
        self.follow_tuning = follow_tuning
        self.on_incidents = on_incidents
        self.intel = intel if intel is not None and intel.active else None
        # Event time as of the last batch, and the wall-clock time it was reached.
        self._event_time: float | None = None
        self._event_wall = 0.0
        self._next_tick = 0.0
        self._next_retention = 0.0
        self._lock = threading.Lock()  # set_threshold may come from another thread
        self.durable = durable
        self._pending = _Pending()
        #: Wall-clock seconds spent processing batches (``step`` times its sources by it).
        self._busy = 0.0
        self._commit_due = 0.0
        self._commit_every = settings.engine.commit_seconds
        #: While the store is unreachable: since when (wall clock) and what it said.
        self.outage: tuple[float, str] | None = None
        #: Set to stop: store retries give up at once. :meth:`run` sets its own; a
        #: caller driving :meth:`step` itself sets it before stopping.
        self.stop_event: threading.Event | None = None
        self.sources = list(sources) if sources is not None else build_sources(settings, clock)
        try:
            for spec, source in self.sources:
                self.report.acquire[spec.name] = source.stats
                state = self._retrying(store.load_checkpoint, spec.name) if resume else None
                if state is not None:
                    source.restore(state)
            if durable:
                self._restore(self._retrying(store.load_checkpoint, STATE_CHECKPOINT))
            if follow_tuning:
                self._apply_tuning()
        except BaseException:
            self.close()
            raise

    # --- run-time tuning --------------------------------------------------------------
    @property
    def threshold(self) -> int:
        """The brute-force threshold the next batch is judged by."""
        return self.detector.next_threshold

    def set_threshold(self, n: int, *, persist: bool = True) -> None:
        """Change the threshold from the next batch on, without a restart.

        With ``persist`` it is also recorded in the store, so that it survives a
        restart and every engine following the store's tuning takes it.
        """
        with self._lock:
            self.detector.set_threshold(n)
        if persist:
            self.store.set_tuning(TUNED_THRESHOLD, n, self.clock.now())

    @property
    def window_seconds(self) -> float:
        """The window length the next batch is judged by (charts' windows and brute-force span)."""
        pending = self._pending_window
        return self.settings.window.seconds if pending is None else pending

    def set_window(self, seconds: float) -> None:
        """A new window length from the next batch on, without a restart.

        At that batch the open windows are stored and the open campaigns closed
        (their incidents stay, closed as ``end_of_input``): windows of two
        lengths cannot be merged, and a campaign's counts depend on its window.
        New windows and campaigns start with the new length; the threshold in
        force is kept.
        """
        # Validated now, in the caller's thread: a bad value is refused here.
        build_dataclass(WindowConfig, asdict(self.settings.window) | {"seconds": seconds}, "window")
        build_dataclass(
            DetectConfig, asdict(self.settings.detect) | {"window_seconds": seconds}, "window"
        )
        self._pending_window = float(seconds)

    def _apply_window(self) -> None:
        seconds, self._pending_window = self._pending_window, None
        if seconds is None or seconds == self.settings.window.seconds:
            return
        self.finish()
        threshold = self.detector.next_threshold
        window = replace(self.settings.window, seconds=seconds)
        detect = replace(self.settings.detect, window_seconds=seconds, threshold=threshold)
        self.settings = replace(self.settings, window=window, detect=detect)
        generation = self.detector.generation
        with self._lock:
            self.windower = Windower(window)
            self.detector = Detector(detect, host_addresses=self._hosts)
            self.detector.generation = generation
        # The pipeline's running counts start again with the new objects.
        self._pipeline_committed = {}
        self.report.window = self.windower.stats
        self.report.detect = self.detector.stats
        _log.info("window length now %s s", seconds)

    def _apply_tuning(self) -> None:
        value = self._retrying(self.store.tuning).get(TUNED_THRESHOLD)
        if value is None or value == self.detector.next_threshold:
            return
        try:
            with self._lock:
                self.detector.set_threshold(value)
        except ConfigError as exc:
            # Written by another program: refuse it loudly, keep the threshold in force.
            _log.error("ignoring the tuned threshold in the store: %s", exc)
        else:
            _log.info("threshold tuned to %s", value)

    # --- the loop ---------------------------------------------------------------
    def step(self) -> int:
        """One turn over every source; returns how many lines were processed."""
        if self._pending_window is not None:
            self._apply_window()
        total = 0
        batch_size = self.settings.engine.batch_lines
        for spec, source in self.sources:
            # The time not spent processing the batches is the source's.
            started, busy = time.perf_counter(), self._busy
            # The source is suspended just after each batch's last line, so its
            # checkpoint is exactly the end of that batch.
            for batch in batches(source, batch_size):
                self._process(spec, source, batch)
                total += len(batch)
            self.report.seconds["acquire"] += time.perf_counter() - started - (self._busy - busy)
        if self._pending and (total == 0 or self.clock.now() >= self._commit_due):
            self._commit_pending()  # a durable engine's batches, together
        return total

    @property
    def exhausted(self) -> bool:
        """True when every source is finished (replay, stdin at end of input)."""
        return all(source.exhausted for _, source in self.sources)

    def run(self, stop: threading.Event | None = None, *, until_exhausted: bool = False) -> None:
        """Loop until ``stop`` is set (or every source is exhausted, if asked).

        Live (not ``until_exhausted``), every ``tick_seconds`` it also moves event
        time on while the sources are quiet (:meth:`tick`).
        """
        stop = stop or threading.Event()
        self.stop_event = stop
        while not stop.is_set():
            processed = self.step()
            if until_exhausted and self.exhausted:
                break
            if not until_exhausted:
                self.tick_if_due()
            if processed == 0:
                stop.wait(self.settings.engine.idle_sleep)

    def tick_if_due(self) -> None:
        """:meth:`tick`, when ``tick_seconds`` have passed since the last one."""
        if self.clock.now() >= self._next_tick:
            self.tick()

    def tick(self) -> None:
        """Live housekeeping: tuning, quiet windows and campaigns, retention.

        Event time moves on with the wall clock from the last event seen: windows
        it closes are stored and campaigns quiet for ``quiet_seconds`` close, even
        when no line arrives. (Event time is never taken from the wall clock
        itself, so logs stamped in another zone or replayed into a followed file
        are judged by their own timestamps.)
        """
        wall = self.clock.now()
        self._next_tick = wall + self.settings.engine.tick_seconds
        if self.follow_tuning:
            self._apply_tuning()
        if self._event_time is not None:
            now = self._event_time + max(0.0, wall - self._event_wall)
            self._stage(*self._close_up_to(now))
        if self._pending and wall >= self._commit_due:
            self._commit_pending()
        if wall >= self._next_retention and self._event_time is not None:
            # Measured in event time: followed logs from long ago keep their charts.
            self._next_retention = wall + RETENTION_EVERY
            days = self.settings.store.aggregates_retention_days
            self._retrying(self.store.apply_retention, self._event_time, days)

    def finish(self) -> None:
        """End of input or shutdown: store every open window and close every incident.

        Campaigns still going are closed as ``end_of_input`` (a later run that
        sees the attacker again opens a new incident).
        """
        self._stage(*self._close_up_to(None))
        self._commit_pending(always=True)

    def _close_up_to(self, now: float | None) -> tuple[list[WindowStats], list[Incident]]:
        """The windows and incidents event time ``now`` closes (None: every open one)."""
        seconds = self.report.seconds
        started = time.perf_counter()
        windows = self.windower.flush() if now is None else self.windower.advance(now)
        windowed = time.perf_counter()
        incidents = self.detector.flush() if now is None else self.detector.close_quiet(now)
        seconds["window"] += windowed - started
        seconds["detect"] += time.perf_counter() - windowed
        return windows, incidents

    def persist(self) -> None:
        """Shutdown of a durable engine: commit what is pending, with the engine's state.

        Open windows and campaigns stay open: the next start continues them (a
        campaign still going then stays one incident; one that went quiet
        meanwhile is closed by that start's first tick).
        """
        if not self.durable:
            raise ValueError("only a durable engine keeps its state: call finish()")
        self._commit_pending(always=True)

    def close(self) -> None:
        """Close every source (the store belongs to the caller).

        What the sources counted as they closed (datagrams still queued, drops
        the kernel reported last) is then added to the store's counters.
        """
        for _, source in self.sources:
            source.close()
        last = {spec.name: self._acquire_deltas(spec.name, source) for spec, source in self.sources}
        last = {name: values for name, values in last.items() if values}
        if not last:
            return
        try:
            with self.store.transaction(now=self.clock.now()) as tx:
                for name, values in last.items():
                    tx.add_counters(name, values)
        except StoreError as exc:
            _log.warning("the sources' counts at close were not stored: %s", exc.message)

    # --- one batch --------------------------------------------------------------
    def _process(self, spec: SourceSpec, source: Source, batch: list[Line]) -> None:
        seconds = self.report.seconds
        entered = time.perf_counter()
        stats = ParseStats()
        # Events per stream, in order: each file of a replay keeps its own event time.
        segments: list[tuple[str, list[Event]]] = []
        index = 0
        for stream, same in groupby(batch, _STREAM):
            run = list(same)
            parser = self._parser_for(spec, (spec.name, stream), batch, index)
            index += len(run)
            found = parse_lines(parser.parse, run, stats)
            if not found:
                continue
            if segments and segments[-1][0] == stream:
                segments[-1][1].extend(found)  # a run without events came in between
            else:
                segments.append((stream, found))
        self.report.parse.merge(stats)
        self.report.batches += 1
        parsed = time.perf_counter()
        seconds["parse"] += parsed - entered
        windows: list[WindowStats] = []
        incidents: dict[str, Incident] = {}
        # Each segment's columns are made once, for the findings, windows and detector.
        columns = [(stream, EventColumns(events)) for stream, events in segments]
        for _, events in columns:
            self.report.findings.add(events)
        mark = time.perf_counter()
        seconds["findings"] += mark - parsed
        with self._lock:
            for stream, events in columns:
                name = f"{spec.name}:{stream}"
                windows.extend(self.windower.add(events, name))
                windowed = time.perf_counter()
                for incident in self.detector.process(events, name):
                    incidents[incident.detector_key] = incident  # its latest state
                seconds["window"] += windowed - mark
                mark = time.perf_counter()
                seconds["detect"] += mark - windowed
        watermark = self.detector.watermark
        if watermark is not None and watermark != self._event_time:
            self._event_time, self._event_wall = watermark, self.clock.now()
        self._stage(
            windows,
            list(incidents.values()),
            counters={spec.name: self._counter_deltas(spec.name, source, stats)},
            checkpoint=(spec.name, source.checkpoint()),
        )
        if not self.durable or self.clock.now() >= self._commit_due:
            self._commit_pending()
        self._busy += time.perf_counter() - entered

    def _stage(
        self,
        windows: Sequence[WindowStats],
        incidents: Sequence[Incident],
        *,
        counters: Mapping[str, Mapping[str, int]] | None = None,
        checkpoint: tuple[str, Any] | None = None,
    ) -> None:
        """Add what a batch (or a tick) derived to what the next commit writes."""
        pending = self._pending
        pending.windows.extend(windows)
        for incident in incidents:
            pending.incidents[incident.detector_key] = incident  # its latest state
        for name, values in (counters or {}).items():
            pending.counters.setdefault(name, Counter()).update(values)
        if checkpoint is not None:
            pending.checkpoints[checkpoint[0]] = checkpoint[1]

    def _commit_pending(self, *, always: bool = False) -> None:
        """One transaction: counters, windows, incidents and their alerts, the checkpoints.

        A durable engine's state goes in the same transaction. ``always``: commit
        even when no batch is pending (the state, the pipeline's counts). While the
        database is unreachable the transaction is retried (:meth:`_retrying`): the
        pipeline's state already includes the batches, so they must not be lost.
        """
        pending = self._pending
        if not pending and not always:
            return
        started = time.perf_counter()
        incidents = list(pending.incidents.values())
        if self.intel is not None and incidents:
            # Every path (a batch, a tick, the end of input) stores incidents here:
            # intel facts and the raised severity are stored with them.
            self.intel.enrich(incidents, self.clock.now())
        pipeline, counted = self._pipeline_deltas()
        state = self._state() if self.durable else None
        ids = self._retrying(self._write, pending, incidents, pipeline, state)
        self._pending = _Pending()
        self._pipeline_committed = counted
        report = self.report
        report.windows_stored += len(pending.windows)
        report.incident_ids.update(dict.fromkeys(ids))
        if ids and self.on_incidents is not None:
            self.on_incidents(ids)
        if self.export_sinks:
            report.alerts_queued += len(self.export_sinks) * len(incidents)
        report.seconds["commit"] += time.perf_counter() - started

    def _retrying(self, call: Callable[..., _T], *args: Any) -> _T:
        """``call(*args)`` (a store access) through an outage: :func:`retry_store`.

        While it retries, :attr:`outage` says since when and why; it gives up at
        once when :attr:`stop_event` is set.
        """

        def note(exc: StoreError) -> None:
            if self.outage is None:
                self.outage = (self.clock.now(), exc.message)
            self.report.store_retries += 1

        result = retry_store(
            call,
            *args,
            seconds=self.settings.engine.store_retry_seconds,
            stop=self.stop_event,
            on_retry=note,
        )
        if self.outage is not None:
            _log.warning("store reachable again")
            self.outage = None
        return result

    def _write(
        self,
        pending: _Pending,
        incidents: Sequence[Incident],
        pipeline: Mapping[str, int],
        state: Mapping[str, Any] | None,
    ) -> list[int]:
        evidence_limit = self.settings.detect.evidence_lines
        with self.store.transaction(now=self.clock.now()) as tx:
            for name, values in pending.counters.items():
                tx.add_counters(name, values)
            tx.add_counters(PIPELINE_COUNTERS, pipeline)
            started = time.perf_counter()
            tx.save_windows(pending.windows)
            stored = time.perf_counter()
            ids: list[int] = tx.upsert_incidents(
                [(i, i.detector_key) for i in incidents], evidence_limit
            )
            seconds = self.report.seconds
            seconds["commit_windows"] += stored - started
            seconds["commit_incidents"] += time.perf_counter() - stored
            if self.export_sinks:
                for incident in incidents:
                    enqueue_alert(tx, self.export_sinks, incident, host_name=self.host_name)
            for name, checkpoint in pending.checkpoints.items():
                tx.save_checkpoint(name, checkpoint)
            if state is not None:
                tx.save_checkpoint(STATE_CHECKPOINT, state)
        return ids

    # --- durable state ------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        """The state to commit (:mod:`soc.engine_state`), its encoding timed.

        The next commit is due no sooner than it takes the state's share
        (:data:`STATE_SHARE`) of the time to encode it.
        """
        started = time.perf_counter()
        state = engine_state.encode(
            self.settings,
            self.windower,
            self.detector,
            event_time=self._event_time,
            event_wall=self._event_wall,
            parsers=self._parsers,
        )
        spent = time.perf_counter() - started
        self._commit_due = self.clock.now() + max(self._commit_every, spent / STATE_SHARE)
        self.report.state_bytes = len(state["data"])
        return state

    def _restore(self, envelope: Mapping[str, Any] | None) -> None:
        """Continue the state a durable engine saved, or say why not and start afresh.

        State of another version, or damaged, is never a crash: it is discarded
        with a logged reason, and the detector takes the next *generation* so that
        its incidents cannot take the names of those its lost state had open. (A
        saved window length other than the configured one is continued, then
        changed like :meth:`set_window`.)
        """
        if envelope is None:
            # No state yet: a store with incidents holds an earlier engine's.
            had = self._retrying(self.store.latest_incident_seen) is not None
            self.detector.generation = 1 if had else 0
            self.report.state = "none saved"
            return
        try:
            restored = engine_state.decode(envelope, self.settings, self._hosts)
        except ValueError as exc:
            generation = engine_state.generation_of(envelope) + 1
            self.detector.generation = generation
            self.report.state = f"discarded ({exc}); incidents are named @{generation} on"
            _log.warning("the saved engine state cannot be continued: %s", self.report.state)
            return
        if restored.settings.window.seconds != self.settings.window.seconds:
            self._pending_window = self.settings.window.seconds  # at the next batch
        self.settings = restored.settings
        self.windower, self.detector = restored.windower, restored.detector
        self.report.window, self.report.detect = self.windower.stats, self.detector.stats
        self._event_time, self._event_wall = restored.event_time, restored.event_wall
        self._restore_parsers(restored.parsers)
        self._pipeline_committed = self._pipeline_deltas()[1]  # committed before the restart
        opened, windows = self.detector.stats.open_incidents, self.windower.stats.open_windows
        self.report.state = f"continued ({opened} open incidents, {windows} windows)"
        _log.info("engine state %s", self.report.state)

    def _restore_parsers(self, saved: Sequence[engine_state.SavedParser]) -> None:
        """Continue each stream's parser (a line's reading may depend on earlier lines).

        A parser whose source is gone, or now names another format, starts afresh
        (logged); so does one whose state its format cannot read.
        """
        specs = {spec.name: spec for spec, _ in self.sources}
        for parser in saved:
            spec = specs.get(parser.source)
            if spec is None or spec.parse.format not in ("auto", parser.format):
                _log.info("not continuing the %s parser of %s", parser.format, parser.source)
                continue
            try:
                made = parser_class(parser.format)(spec.parse, parser.reference_time)
                made.restore(parser.state)
            except (KeyError, TypeError, ValueError, ParseError) as exc:
                _log.warning(
                    "the saved %s parser state cannot be continued: %r", parser.format, exc
                )
                continue
            self._parsers[(parser.source, parser.stream)] = made

    def _pipeline_deltas(self) -> tuple[dict[str, int], dict[str, int]]:
        """The pipeline's counts since the last commit, and the counts now.

        Monotonic counts only (not gauges such as open windows): they add up in the store.
        """
        current: dict[str, int] = {}
        for prefix, stats in (("window", self.windower.stats), ("detect", self.detector.stats)):
            for name, value in stats.as_dict().items():
                if isinstance(value, int) and name not in _GAUGES:
                    current[f"{prefix}.{name}"] = value
        deltas = {
            name: value - self._pipeline_committed.get(name, 0)
            for name, value in current.items()
            if value != self._pipeline_committed.get(name, 0)
        }
        return deltas, current

    def _parser_for(
        self, spec: SourceSpec, key: tuple[str, str], batch: list[Line], index: int
    ) -> FormatParser:
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
        deltas.update(self._acquire_deltas(name, source))
        return dict(deltas)

    def _acquire_deltas(self, name: str, source: Source) -> dict[str, int]:
        """What ``source`` counted (anomalies by reason) since it was last handed over."""
        deltas: dict[str, int] = {}
        committed = self._acquire_committed.setdefault(name, Counter())
        for reason, n in source.stats.anomalies.items():
            if n != committed[reason]:
                deltas[f"acquire.{reason}"] = n - committed[reason]
                committed[reason] = n
        return deltas


def retry_store(
    call: Callable[..., _T],
    *args: Any,
    seconds: float,
    stop: threading.Event | None = None,
    on_retry: Callable[[StoreError], None] | None = None,
) -> _T:
    """``call(*args)``, retried with backoff while the store is unreachable.

    A :class:`StoreError` that is ``transient`` (the database down or restarting,
    the connection cut) is retried, 0.1 s then doubling up to 5 s, for up to
    ``seconds`` (``[engine] store_retry_seconds``) or until ``stop`` is set; then
    it is raised. Nothing is lost meanwhile: what the engine did not commit is
    read again from the sources' checkpoints at the next start.
    """
    delay = 0.1
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call(*args)
        except StoreError as exc:
            stopping = stop is not None and stop.is_set()
            if not exc.transient or stopping or time.monotonic() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
            _log.warning("store unavailable, retrying in %.1fs: %s", delay, exc.message)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            delay = min(delay * 2, 5.0)


#: Stats fields that are levels, not running counts.
_GAUGES: Final = frozenset({"open_windows", "open_keys", "keys", "users", "open_incidents"})


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


def build_intel(settings: Settings, clock: Clock) -> Enricher | None:
    """The threat-intel enricher for the configured ``[[intel]]`` feeds (None: no feed on).

    Its feeds are not read yet: call ``refresh_now`` (and, live, start an
    ``IntelRefresher``).
    """
    if not any(spec.enabled for spec in settings.intel):
        return None
    return Enricher(settings.intel, secrets=settings.secrets, clock=clock)


def build_memory(settings: Settings, store: Any, clock: Clock, store_url: str) -> Any | None:
    """The incident memory (:class:`soc.similar.IncidentMemory`) over ``store``, or None.

    Its index lives where :func:`soc.similar.index_path_for` puts it for
    ``store_url``. Hand its ``notify`` to the engine beside the analyst's, and
    the memory to the analysis worker as its ``precedents`` when reuse is on.
    """
    config = settings.similar
    if not config.enabled:
        return None
    from soc.similar import IncidentMemory, index_path_for  # loads FAISS

    path = index_path_for(store_url, config)
    return IncidentMemory(store, config, index_path=path, clock=clock)


def build_responder(
    settings: Settings, store: Any, clock: Clock, *, host_addresses: Iterable[str] | None = None
) -> Responder:
    """The responder over ``store``: playbooks, the protected set, exports to queue alerts for.

    Protected from blocks: ``[respond] allow_list``, ``[detect] allow_list``,
    loopback and this machine's addresses (discovered unless given). Start its
    expiry worker (``start``) in the process that runs the engine.
    """
    from soc.store.response import ResponseLog

    hosts = discover_host_addresses() if host_addresses is None else list(host_addresses)
    try:
        protected = Protected.of([*settings.respond.allow_list, *settings.detect.allow_list], hosts)
    except ValueError as exc:
        raise ConfigError(str(exc), where="[respond] allow_list") from None
    elastic = [spec.name for spec in settings.exports if spec.type == "elasticsearch"]
    host_name = socket.gethostname()

    def export_alert(incident_id: int, sinks: list[str]) -> str:
        incident = store.get_incident(incident_id)
        if incident is None:
            raise LookupError(f"incident {incident_id} is gone")
        with store.transaction(now=clock.now()) as tx:
            enqueue_alert(tx, sinks, incident, host_name=host_name)
        return f"alert queued for {', '.join(sinks)}"

    return Responder(
        settings.respond,
        ResponseLog(store),
        store,
        clock,
        protected=protected,
        recommended=playbooks_by_kind(),
        exports=elastic,
        export_alert=export_alert,
    )


def notify_all(*hooks: Callable[[list[int]], None] | None) -> Callable[[list[int]], None]:
    """One ``on_incidents`` hook telling each of ``hooks`` (None ones skipped)."""
    live = [hook for hook in hooks if hook is not None]

    def notify(ids: list[int]) -> None:
        for hook in live:
            hook(ids)

    return notify


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
    "PIPELINE_COUNTERS",
    "TUNED_THRESHOLD",
    "Engine",
    "IngestReport",
    "SourceError",
    "build_intel",
    "build_memory",
    "build_responder",
    "build_sources",
    "notify_all",
    "retry_store",
    "timestamp_extractor",
]
