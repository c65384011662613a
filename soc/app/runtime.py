"""The command center's engine room: one background pipeline per server process.

The server process holds one :class:`Runtime` (:func:`process_runtime`, started
with the server, before and whether or not anyone signs in), never one per browser
tab, and it keeps running when no tab is open. It owns the store,
the engine thread (replaying logs or following the configured sources), the
analyst's worker, the export worker and the responder (playbooks and its block
expiry worker); pages read the store and call the few controls here (threshold,
replay, pause). Every control is safe to call from any thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soc.acquire.replay import ReplaySourceConfig
from soc.analyze.analyst import Analyst, build_providers
from soc.analyze.worker import AnalysisWorker
from soc.clock import Clock, SystemClock
from soc.config import Settings, SourceSpec, build_dataclass, live_sources, load_settings
from soc.detect.rules import actions_by_kind
from soc.engine import (
    Engine,
    build_intel,
    build_memory,
    build_responder,
    build_sources,
    notify_all,
)
from soc.enrich import IntelRefresher
from soc.errors import StoreError
from soc.export.worker import ExportWorker, build_sinks
from soc.redact import redact
from soc.store import SqlStore, open_store

if TYPE_CHECKING:
    from soc.respond.policy.recommend import Recommender

_log = logging.getLogger(__name__)

#: The bundled samples a new user sees: one server's sshd, nginx and ufw logs.
SAMPLE_FILES = ("auth.log", "nginx-access.log", "ufw.log")
SAMPLES_DIR = Path("data/samples")
#: The shipped playbook recommender (soc.respond.policy): ``models/policy`` beside ``soc``.
POLICY_DIR = Path(__file__).resolve().parents[2] / "models" / "policy"


@dataclass(slots=True)
class Status:
    """What the engine is doing, for the KPI tiles and the sidebar."""

    mode: str  # "replay", "live" or "stopped"
    running: bool
    paused: bool
    finished: bool  # a replay reached the end of its files
    sources: list[str]
    lines: int
    events: int
    lines_per_second: float
    threshold: int
    window_seconds: float
    error: str | None
    analysis_pending: int
    started_at: float
    #: While the store is unreachable: since when (wall clock) and what it said; the
    #: engine keeps what it read and retries (nothing is lost).
    outage: tuple[float, str] | None = None
    #: ``acquire``: per source, lines, bytes and anomalies by reason (read errors,
    #: invalid UTF-8, rotations…); ``unparsed``: lines no parser understood.
    details: dict[str, Any] = field(default_factory=dict)

    def outage_text(self) -> str | None:
        """The outage as one sentence for the pages (None while the store answers)."""
        if self.outage is None:
            return None
        since = time.strftime("%H:%M:%S", time.localtime(self.outage[0]))
        return (
            f"The store is unreachable since {since} ({self.outage[1]}): the engine keeps "
            "what it read and retries; nothing is lost."
        )


class Runtime:
    """The pipeline running in the background, with the controls the UI needs."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        store: SqlStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = store or open_store(settings.store.url)
        self._owns_store = store is None
        self._lock = threading.RLock()
        #: Similar past incidents (soc.similar), embedded on their own thread; None when off.
        self.memory = build_memory(settings, self.store, self.clock, settings.store.url)
        #: Threat intel (soc.enrich): its feeds are read on the refresher's thread.
        self.intel = build_intel(settings, self.clock)
        self._refresher = IntelRefresher(self.intel) if self.intel is not None else None
        #: Response playbooks (soc.respond): plans, confirmed runs, blocks and their expiry.
        self.responder = build_responder(settings, self.store, self.clock)
        self.analysis = AnalysisWorker(
            self.store,
            Analyst(
                settings.analyze,
                build_providers(settings.analyze, settings.secrets),
                self.clock,
                actions=actions_by_kind(),
            ),
            self.clock,
            offline_first=True,  # reports within seconds; a model's replace them as they come
            precedents=self.memory if settings.similar.reuse else None,
        )
        self.exports = ExportWorker(
            self.store,
            build_sinks(settings.exports, settings.secrets),
            interval=settings.engine.export_interval,
        )
        self.analysis.analyst.start()  # the local model server loads in the background
        self.analysis.start()
        self.exports.start()
        if self.memory is not None:
            self.memory.start()  # catches up with the store first, on its thread
        if self._refresher is not None:
            self._refresher.start()
        self.responder.start()  # puts back blocks still in force, then lifts expired ones
        self.engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._mode = "stopped"
        self._sources: list[str] = []
        self._finished = False
        self._error: str | None = None
        self._started_at = 0.0
        self._rate: deque[tuple[float, int]] = deque(maxlen=120)
        #: Helpers the UI attaches (the chart feed): each is invalidated when what
        #: runs changes, and closed with the runtime.
        self.extras: dict[str, Any] = {}
        self._owned: set[Path] = set()  # upload directories to delete once unread
        self._policy: Recommender | None = None
        self._policy_ready = threading.Event()
        self._policy_thread: threading.Thread | None = None
        self._policy_lock = threading.Lock()

    def recommender(self, *, wait: bool = True) -> Recommender | None:
        """The playbook recommender; None when it is missing or unloadable (logged once).

        Loaded on first use, on its own thread (the model and torch take seconds), so
        the runtime starts without it. ``wait=False``: start loading if need be and
        answer None until it is loaded, so a page is never held up by it.
        """
        with self._policy_lock:
            if self._policy_thread is None:
                self._policy_thread = threading.Thread(
                    target=self._load_policy, name="soc-policy", daemon=True
                )
                self._policy_thread.start()
        if wait:
            self._policy_ready.wait()
        return self._policy if self._policy_ready.is_set() else None

    def _load_policy(self) -> None:
        try:
            from soc.respond.policy.recommend import Recommender

            loaded = Recommender.load(POLICY_DIR)
            loaded.model  # noqa: B018 - load it now: a broken zip fails here, once
            self._policy = loaded
        except Exception as exc:  # missing, corrupt, no torch: the UI goes without
            _log.warning("no playbook recommender: %s", redact(str(exc)))
        finally:
            self._policy_ready.set()

    # --- what runs ---------------------------------------------------------------------
    def replay(
        self,
        paths: Sequence[str | Path],
        *,
        speed: float = 0.0,
        name: str = "replay",
        resume: bool = False,
        owned: bool = False,
    ) -> None:
        """Replace what runs by a replay of ``paths`` at ``speed`` (0: as fast as possible).

        ``resume``: continue from the stored checkpoint of the source ``name`` (a
        file set replayed before is not counted twice); otherwise start over.
        ``owned``: the files are private copies (uploads, each alone in its own
        directory) that the runtime deletes, directory and all, once no run reads
        them any more (the next replay, or :meth:`close`).
        """
        if owned:
            self._owned.update(Path(p).parent for p in paths)
        options = build_dataclass(
            ReplaySourceConfig,
            {"paths": [str(p) for p in paths], "speed": float(speed)},
            "replay",
        )
        spec = SourceSpec(name=name, type="replay", parse=self.settings.parse, options=options)
        settings = replace(self.settings, sources=[spec])
        self._start(settings, mode="replay", resume=resume, hosts=())

    def replay_samples(self, *, speed: float = 0.0, again: bool = False) -> None:
        """Replay the bundled sample logs (generated for 2025, in UTC).

        They are replayed once per store: a restart of the app resumes where the
        last replay stopped (at the end, once finished) instead of counting the
        same lines twice; ``again`` starts over (incidents are updated, not
        duplicated, but the charts' counts add up).
        """
        parse = build_dataclass(
            type(self.settings.parse),
            {"format": "auto", "timezone": "UTC", "year": 2025, "keep_raw": True},
            "samples",
        )
        self.settings = replace(self.settings, parse=parse)
        paths = [SAMPLES_DIR / name for name in SAMPLE_FILES]
        self.replay(paths, speed=speed, name="samples", resume=not again)

    def follow(self) -> None:
        """Replace what runs by the configured live sources."""
        if not self.settings.sources:
            raise ValueError("no sources configured: add a [[sources]] table to soc.toml")
        live = replace(self.settings, sources=live_sources(self.settings))
        self._start(live, mode="live", resume=True, hosts=None)

    def _start(
        self, settings: Settings, *, mode: str, resume: bool, hosts: Sequence[str] | None
    ) -> None:
        with self._lock:
            self.stop_engine()
            self._delete_owned(keep=settings)
            engine = Engine(
                settings,
                self.store,
                self.clock,
                sources=build_sources(settings, self.clock),
                host_addresses=hosts,
                follow_tuning=True,
                resume=resume,
                durable=mode == "live",
                on_incidents=notify_all(
                    self.analysis.notify,
                    self.memory.notify if self.memory is not None else None,
                    self.responder.notify,
                ),
                intel=self.intel,
            )
            self.engine = engine
            self._mode = mode
            self._sources = [s.name for s in settings.sources]
            self._finished = False
            self._error = None
            self._started_at = self.clock.now()
            self._rate.clear()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._loop, args=(engine, self._stop), name="soc-engine", daemon=True
            )
            self._thread.start()
        for extra in self.extras.values():
            invalidate = getattr(extra, "invalidate", None)
            if invalidate is not None:
                invalidate()  # what runs changed: derived views start again

    def _delete_owned(self, keep: Settings | None = None) -> None:
        """Delete the owned upload directories that ``keep``'s sources do not read."""
        reading: set[Path] = set()
        for spec in keep.sources if keep is not None else ():
            reading.update(Path(p).parent for p in getattr(spec.options, "paths", ()))
        for directory in sorted(self._owned - reading):
            shutil.rmtree(directory, ignore_errors=True)
            self._owned.discard(directory)

    def _loop(self, engine: Engine, stop: threading.Event) -> None:
        idle = self.settings.engine.idle_sleep
        engine.stop_event = stop  # a store outage's retries end when asked to stop
        try:
            while not stop.is_set():
                if self._paused.is_set():
                    stop.wait(idle)
                    continue
                try:
                    processed = engine.step()
                    self._rate.append((time.monotonic(), engine.report.parse.lines))
                    if engine.exhausted:
                        engine.finish()
                        self._finished = True
                        break
                    engine.tick_if_due()
                except StoreError as exc:
                    if not exc.transient or stop.is_set():
                        raise
                    # Down past store_retry_seconds: the app stays up and shows the
                    # outage (Status.outage); the engine keeps what it read, retries.
                    _log.error("the store is still unreachable: %s", exc.message)
                    stop.wait(max(idle, 1.0))
                    continue
                if processed == 0:
                    stop.wait(idle)
            else:
                # A live engine keeps its open windows and campaigns for the next start.
                if engine.durable:
                    engine.persist()
                else:
                    engine.finish()
        except Exception as exc:  # shown in the UI; the app stays up
            _log.exception("the engine stopped")
            self._error = redact(f"{type(exc).__name__}: {exc}")
        finally:
            engine.close()

    def stop_engine(self) -> None:
        """Stop what runs: a replay's open windows and incidents are stored first, a
        live engine's state is saved (its campaigns continue at the next start)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            if thread is not None:
                thread.join()
            self._mode = "stopped" if self.engine is None else self._mode

    # --- controls ---------------------------------------------------------------------------
    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def set_threshold(self, n: int) -> None:
        """The brute-force threshold from the next batch on (kept in the store)."""
        engine = self.engine
        if engine is not None:
            engine.set_threshold(n)
        else:
            self.store.set_tuning("threshold", n, self.clock.now())

    def set_window(self, seconds: float) -> None:
        """A new window length from the running engine's next batch (see ``Engine.set_window``)."""
        engine = self.engine
        if engine is None:
            raise ValueError("no engine is running")
        engine.set_window(seconds)

    def window_seconds(self) -> float:
        engine = self.engine
        return engine.window_seconds if engine is not None else self.settings.window.seconds

    def threshold(self) -> int:
        engine = self.engine
        if engine is not None:
            return engine.threshold
        tuned = self.store.tuning().get("threshold")
        return int(tuned) if tuned is not None else self.settings.detect.threshold

    def status(self) -> Status:
        engine = self.engine
        lines = engine.report.parse.lines if engine is not None else 0
        events = engine.report.parse.events if engine is not None else 0
        rate = 0.0
        if len(self._rate) >= 2:
            (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
            if t1 > t0:
                rate = (n1 - n0) / (t1 - t0)
        thread = self._thread
        return Status(
            mode=self._mode,
            running=thread is not None and thread.is_alive(),
            paused=self._paused.is_set(),
            finished=self._finished,
            sources=list(self._sources),
            lines=lines,
            events=events,
            lines_per_second=rate,
            threshold=self.threshold(),
            window_seconds=self.window_seconds(),
            error=self._error,
            analysis_pending=self.analysis.pending,
            started_at=self._started_at,
            outage=None if engine is None else engine.outage,
            details={
                "acquire": {}
                if engine is None
                else {name: stats.as_dict() for name, stats in engine.report.acquire.items()},
                "unparsed": 0 if engine is None else engine.report.parse.unparsed_total,
                # A live engine's saved state as last committed (bytes, compressed).
                "state_bytes": 0 if engine is None else engine.report.state_bytes,
            },
        )

    def close(self) -> None:
        """Stop everything; every incident still leaves with a report."""
        for extra in self.extras.values():
            close = getattr(extra, "close", None)
            if close is not None:
                close()
        self.stop_engine()
        self._delete_owned()
        self.analysis.drain(offline_only=True)
        self.analysis.analyst.close()
        self.exports.close()
        if self._refresher is not None:
            self._refresher.stop()
        self.responder.stop()
        if self.memory is not None:
            self.memory.stop()  # saves the index
        if self._owns_store:
            self.store.close()


# --- the server process's one runtime ------------------------------------------------------
_process_lock = threading.Lock()
_process: dict[str, Runtime] = {}  # "runtime" -> the process's runtime


def process_runtime(settings: Settings | None = None) -> Runtime:
    """The server process's one runtime, started on first use.

    The command center's server starts it with the process (before anyone signs
    in); without ``[[sources]]`` it replays the bundled samples
    (``SOC_APP_REPLAY_SPEED``: event seconds per wall second, 0 = as fast as
    possible), else it follows the configured sources.
    """
    with _process_lock:
        if "runtime" not in _process:
            runtime = Runtime(settings or load_settings())
            try:
                if runtime.settings.sources:
                    runtime.follow()
                else:
                    runtime.replay_samples(speed=float(os.environ.get("SOC_APP_REPLAY_SPEED", "0")))
            except BaseException:
                runtime.close()
                raise
            _process["runtime"] = runtime
        return _process["runtime"]


def close_process_runtime() -> None:
    """Stop the process's runtime (server shutdown; tests); the next use starts a new one."""
    with _process_lock:
        runtime = _process.pop("runtime", None)
    if runtime is not None:
        runtime.close()


__all__ = [
    "POLICY_DIR",
    "SAMPLES_DIR",
    "SAMPLE_FILES",
    "Runtime",
    "Status",
    "close_process_runtime",
    "process_runtime",
]
