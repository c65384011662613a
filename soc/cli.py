"""The ``soc`` command: a thin layer over the library.

Every subcommand parses its arguments, calls one library function and prints the
result; errors the product raises on purpose (``SocError``) become one line on
stderr and exit status 2. Nothing it prints or logs shows a secret: the
configuration's secrets and URL passwords are registered with :mod:`soc.redact`,
log records are redacted while a command runs, and so is an unexpected traceback.

Why one file past 600 lines: the pipeline's commands (replay, run and their
workers' set-up) share their helpers and read best together; a replay's summary
lives in :mod:`soc.cli_summary`, the incident memory and threat-intel commands in
:mod:`soc.cli_memory`, the response playbooks' in :mod:`soc.cli_respond`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO

from soc import __version__, cli_summary, redact
from soc.acquire.base import AcquireStats
from soc.analyze.base import PROVIDER_TYPES, AnalyzeConfig
from soc.cli_api import add_commands as add_api_commands
from soc.cli_memory import add_commands as add_memory_commands
from soc.cli_policy import add_commands as add_policy_commands
from soc.cli_respond import add_commands as add_respond_commands
from soc.cli_respond import responding
from soc.clock import SystemClock
from soc.config import Settings, SourceSpec, build_dataclass, live_sources, load_settings
from soc.errors import SocError, StoreError
from soc.events import Event
from soc.parse.base import ParseConfig, ParseStats

#: Report writers ``soc replay --analyst`` accepts (none: detection only).
ANALYSTS = ("none", "offline", *PROVIDER_TYPES)


#: Commands that run the pipeline over many lines (see :func:`collecting_less_often`).
PIPELINE_COMMANDS: Final = frozenset({"parse", "replay", "run"})
#: The cyclic garbage collector's youngest-generation threshold while they run
#: (Python's default: 700 allocations).
GC_THRESHOLD: Final = 100_000


@contextlib.contextmanager
def collecting_less_often() -> Iterator[None]:
    """Look for reference cycles every :data:`GC_THRESHOLD` allocations, not every 700.

    A batch makes tens of thousands of objects (lines, events, columns, window
    rows) that die with it. Every 700 allocations the collector walked them, and
    every ten and hundred such walks the older generations with the long-lived
    state too: about a fifth of a 1,000,000-line replay's time, for no garbage
    found. Objects without cycles are still freed the moment they are dropped;
    cycles wait longer (peak RSS measured unchanged). Restored on return, for
    callers that run a command in their own process (tests).
    """
    old = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``soc`` command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    # Every log record redacted, whichever library writes it; restored on return for
    # callers that run the command in their own process (tests).
    pipeline = args.command in PIPELINE_COMMANDS
    with redact.installed(), collecting_less_often() if pipeline else contextlib.nullcontext():
        try:
            status: int = args.handler(args)
        except SocError as exc:
            print(f"soc: error: {redact.redact(str(exc))}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            # `soc parse … | head` closed our stdout: not an error of ours.
            sys.stderr.close()
            return 0
        except KeyboardInterrupt:
            return 130
        except Exception:
            # A bug or a library's own error: the traceback, with any credential in
            # it (a driver's message, a URL) masked, and the status Python gives.
            print(redact.redact(traceback.format_exc()), end="", file=sys.stderr)
            return 1
    return status


def _load_settings(args: argparse.Namespace) -> Settings:
    """The configuration, its secrets registered for redaction (soc.redact)."""
    settings = load_settings(args.config)
    redact.process_secrets().add_settings(settings)
    return settings


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soc", description="SOC Command Center: log floods in, a handful of incidents out."
    )
    parser.add_argument("--version", action="version", version=f"soc {__version__}")
    parser.add_argument(
        "--config", type=Path, help="configuration file (default: $SOC_CONFIG or ./soc.toml)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("parse", help="parse a log file into ECS events")
    p.add_argument("file", type=Path)
    p.add_argument("--format", default="auto", help="format name (default: auto-detect)")
    p.add_argument("--timezone", help="zone of timestamps that carry none (default: local)")
    p.add_argument("--year", type=int, help="year of year-less syslog timestamps")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--jsonl", action="store_true", help="one JSON object per input line")
    out.add_argument("--stats", action="store_true", help="counts by kind and unparsed")
    p.add_argument("--json", action="store_true", help="with --stats: print JSON")
    p.set_defaults(handler=_cmd_parse)

    p = commands.add_parser("samples", help="write deterministic sample logs")
    p.add_argument("--out", type=Path, default=Path("data/samples"))
    p.add_argument("--lines", type=int, help="lines per file (default: the small set)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--formats", nargs="+", help="only these sample files")
    p.set_defaults(handler=_cmd_samples)

    p = commands.add_parser("replay", help="run the pipeline over log files at full speed")
    p.add_argument("paths", nargs="+", help="files, directories or globs (plain or .gz)")
    p.add_argument("--format", default="auto", help="format of every file (default: auto)")
    p.add_argument("--speed", type=float, default=0.0, help="event-time speed factor (0 = max)")
    p.add_argument("--db", default="sqlite://", help="store URL (default: in memory)")
    p.add_argument("--timezone", help="zone of timestamps that carry none")
    p.add_argument("--year", type=int, help="year of year-less syslog timestamps")
    p.add_argument("--top", type=int, default=10, help="attacking addresses to list")
    p.add_argument(
        "--threshold", type=int, help="brute-force threshold: failures per window from one key"
    )
    p.add_argument("--window", type=float, metavar="SECONDS", help="window length (default 15)")
    p.add_argument(
        "--analyst",
        choices=ANALYSTS,
        help="who writes incident reports, before the offline analyst "
        "(default: [analyze] chain; none: detection only)",
    )
    p.add_argument("--summary-json", metavar="PATH|-", help="write the summary as JSON")
    p.set_defaults(handler=_cmd_replay)

    p = commands.add_parser(
        "eval", help="precision and recall on generated, labelled traffic (legitimate and attacks)"
    )
    p.add_argument("--size", choices=("small", "full"), default="small", help="default: small")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_cmd_eval)

    add_memory_commands(commands, _load_settings)
    add_respond_commands(commands, _load_settings)
    add_policy_commands(commands, _load_settings)
    add_api_commands(commands, _load_settings)

    p = commands.add_parser("run", help="follow the configured sources until SIGINT/SIGTERM")
    p.add_argument("--once", action="store_true", help="one pass over the sources, then exit")
    p.set_defaults(handler=_cmd_run)

    p = commands.add_parser("incidents", help="list the stored incidents")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.add_argument("--status", action="append", help="only this status (repeatable)")
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--search", help="an address, user or key contains this")
    p.add_argument("--limit", type=int, default=100, help="at most this many (newest first)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_incidents)

    p = commands.add_parser(
        "threshold", help="show or tune the running engine's brute-force threshold"
    )
    p.add_argument("value", nargs="?", type=int, help="the new threshold")
    p.add_argument("--reset", action="store_true", help="go back to the configured threshold")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=_cmd_threshold)

    p = commands.add_parser("config", help="validate the configuration and print it")
    p.set_defaults(handler=_cmd_config)

    p = commands.add_parser("model", help="the local model")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser(
        "check", help="prove llama.cpp runs here: one token with the local model (in a child)"
    )
    q.add_argument(
        "--model",
        type=Path,
        help="a GGUF file (default: [analyze] local_model_path, else the bundled model)",
    )
    q.set_defaults(handler=_cmd_model_check)
    return parser


# --- parse ---------------------------------------------------------------------
def _parse_config(args: argparse.Namespace, settings: Settings | None = None) -> ParseConfig:
    base = settings.parse if settings is not None else ParseConfig()
    values: dict[str, Any] = {"format": args.format}
    if getattr(args, "timezone", None):
        values["timezone"] = args.timezone
    if getattr(args, "year", None) is not None:
        values["year"] = args.year
    merged = {
        "format": base.format,
        "timezone": base.timezone,
        "year": base.year,
        "keep_raw": base.keep_raw,
        **values,
    }
    config: ParseConfig = build_dataclass(ParseConfig, merged, "command line")
    return config


def _cmd_parse(args: argparse.Namespace) -> int:
    from soc.parse import iter_parse_file, parse_file_stats

    settings = _load_settings(args)
    config = _parse_config(args, settings)
    config.keep_raw = False
    if args.stats:
        decoding = AcquireStats()
        stats = parse_file_stats(args.file, config, decoding)
        anomalies = cli_summary.anomalies([decoding])
        if args.json:
            print(json.dumps(stats.as_dict() | {"anomalies": anomalies}, indent=2))
        else:
            _print_stats(stats, sys.stdout)
            cli_summary.print_anomalies(anomalies, sys.stdout)
        return 0
    out = sys.stdout
    dumps = json.dumps
    for line_no, result in iter_parse_file(args.file, config):
        event = result.to_ecs() if isinstance(result, Event) else None
        out.write(dumps({"line": line_no, "event": event}, ensure_ascii=False))
        out.write("\n")
    out.flush()
    return 0


def _print_stats(stats: ParseStats, out: TextIO) -> None:
    out.write(f"lines     {stats.lines}\n")
    out.write(f"events    {stats.events}\n")
    for kind, n in sorted(stats.by_kind.items(), key=lambda kv: (-kv[1], kv[0])):
        out.write(f"  {kind:<18}{n}\n")
    out.write(f"ignored   {sum(stats.ignored.values())}\n")
    out.write(f"unparsed  {stats.unparsed_total}\n")
    for reason, n in sorted(stats.unparsed.items(), key=lambda kv: (-kv[1], kv[0])):
        out.write(f"  {reason:<18}{n}\n")


# --- samples -------------------------------------------------------------------
def _cmd_samples(args: argparse.Namespace) -> int:
    from soc.samples import write_samples

    paths = write_samples(args.out, lines=args.lines, seed=args.seed, formats=args.formats)
    for path in paths:
        print(path)
    return 0


# --- replay --------------------------------------------------------------------
def _cmd_replay(args: argparse.Namespace) -> int:
    from soc.acquire.replay import ReplaySourceConfig
    from soc.engine import Engine, build_sources, notify_all
    from soc.store import open_store

    settings = _load_settings(args)
    _apply_detection_flags(settings, args)
    clock = SystemClock()
    paths = _expand_paths(args.paths)
    options = build_dataclass(
        ReplaySourceConfig, {"paths": paths, "speed": args.speed}, "command line"
    )
    settings.sources = [
        SourceSpec(
            name="replay", type="replay", parse=_parse_config(args, settings), options=options
        )
    ]
    if args.analyst is not None and args.analyst != "none":
        settings.analyze = build_dataclass(
            AnalyzeConfig,
            dataclasses.asdict(settings.analyze) | {"chain": [args.analyst]},
            "command line",
        )
    store = open_store(args.db)
    analysing = args.analyst != "none"
    try:
        with (
            _remembering(
                settings, store, clock, args.db, replay=True, analysing=analysing
            ) as memory,
            _exporting(settings, store) as worker,
            _analysing(settings, store, clock, enabled=analysing, memory=memory) as analysis,
        ):
            # Another machine's logs, most likely: this machine's addresses mean nothing
            # there. A replay starts over: its detector remembers no earlier run.
            engine = Engine(
                settings,
                store,
                clock,
                sources=build_sources(settings, clock),
                host_addresses=(),
                resume=False,
                on_incidents=notify_all(
                    analysis.notify if analysis is not None else None,
                    memory.notify if memory is not None else None,
                ),
                intel=_intel(settings, clock),
            )
            stop = _stop_on_signals()
            try:
                engine.run(stop, until_exhausted=True)
                engine.finish()
            finally:
                engine.close()
            if memory is not None:
                memory.drain()  # every incident in the index before reports may reuse
            if analysis is not None:
                # One report per incident, on its final state: a replay has no reader
                # waiting for early reports.
                analysis.drain()
            exports = _finish_exports(worker, settings)
            summary = cli_summary.summary(engine, store, top=args.top, analysis=analysis)
        summary["exports"] = exports
        # Written while the store is open: the incidents are read from it a page at a time.
        if args.summary_json == "-":
            cli_summary.write_summary_json(summary, sys.stdout)
            return 0
        if args.summary_json:
            with Path(args.summary_json).open("w", encoding="utf-8") as out:
                cli_summary.write_summary_json(summary, out)
        cli_summary.print_summary(summary, sys.stdout)
    finally:
        store.close()
    return 0


def _apply_detection_flags(settings: Settings, args: argparse.Namespace) -> None:
    """``--threshold`` and ``--window`` override the configuration, validated like it."""
    from soc.detect import DetectConfig
    from soc.window import WindowConfig

    detect = dataclasses.asdict(settings.detect)
    window = dataclasses.asdict(settings.window)
    if args.threshold is not None:
        detect["threshold"] = args.threshold
    if args.window is not None:
        # One window length for the charts' windows and the brute-force span.
        detect["window_seconds"] = window["seconds"] = args.window
    settings.detect = build_dataclass(DetectConfig, detect, "command line")
    settings.window = build_dataclass(WindowConfig, window, "command line")


@contextlib.contextmanager
def _remembering(
    settings: Settings,
    store: Any,
    clock: Any,
    store_url: str,
    *,
    replay: bool = False,
    analysing: bool = True,
) -> Iterator[Any]:
    """The incident memory, embedding on its thread while the block runs (None when off).

    A replay into an in-memory store keeps a memory only for reuse (when reports
    are written): nothing of it would outlive the command.
    """
    from soc.engine import build_memory
    from soc.similar import index_path_for

    config = settings.similar
    if replay and index_path_for(store_url, config) is None:
        wanted = analysing and config.reuse and any(n != "offline" for n in settings.analyze.chain)
        if not wanted:
            yield None
            return
    memory = build_memory(settings, store, clock, store_url)
    if memory is None:
        yield None
        return
    memory.start()
    try:
        yield memory
    finally:
        memory.stop()


def _intel(settings: Settings, clock: Any) -> Any:
    """The threat-intel enricher with its feeds read now (None without feeds)."""
    from soc.engine import build_intel

    enricher = build_intel(settings, clock)
    if enricher is not None:
        for status in enricher.refresh_now():
            if status.last_error:
                print(f"soc: intel feed {status.name}: {status.last_error}", file=sys.stderr)
    return enricher


@contextlib.contextmanager
def _analysing(
    settings: Settings,
    store: Any,
    clock: Any,
    *,
    enabled: bool,
    background: bool = False,
    memory: Any = None,
) -> Iterator[Any]:
    """The analyst's dispatch worker (None when disabled); on a thread if ``background``."""
    if not enabled:
        yield None
        return
    from soc.analyze.analyst import Analyst, build_providers
    from soc.analyze.worker import AnalysisWorker
    from soc.detect.rules import actions_by_kind

    providers = build_providers(settings.analyze, settings.secrets)
    analyst = Analyst(settings.analyze, providers, clock, actions=actions_by_kind())
    analyst.start()  # a local model server loads while the logs are read
    # Live (background), a new incident gets its offline report at once, as in the app.
    precedents = memory if memory is not None and settings.similar.reuse else None
    worker = AnalysisWorker(store, analyst, clock, offline_first=background, precedents=precedents)
    if background:
        worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        analyst.close()


@contextlib.contextmanager
def _exporting(settings: Settings, store: Any) -> Iterator[Any]:
    """The delivery worker for the configured sinks, running while the block runs."""
    from soc.export.worker import ExportWorker, build_sinks

    worker = ExportWorker(
        store,
        build_sinks(settings.exports, settings.secrets),
        interval=settings.engine.export_interval,
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.close()


def _finish_exports(worker: Any, settings: Settings) -> dict[str, Any]:
    """Stop the worker and give the sinks ``export_drain_seconds`` to take what is queued."""
    worker.stop()
    if worker.sinks:
        worker.drain(settings.engine.export_drain_seconds)
    return {
        name: {
            "delivered": totals.delivered,
            "failed": totals.failed,
            "pending": worker.store.outbox_depth(name),
            "last_error": totals.last_error,
        }
        for name, totals in worker.totals.items()
    }


def _expand_paths(items: Sequence[str]) -> list[str]:
    paths: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            paths.extend(
                str(p)
                for p in sorted(path.iterdir())
                if p.is_file() and not p.name.startswith(".") and p.suffix != ".md"
            )
        else:
            paths.append(item)
    return paths


# --- eval ----------------------------------------------------------------------
def _cmd_eval(args: argparse.Namespace) -> int:
    from soc.evaluate import as_dict, render, run_evaluation

    def progress(result: Any) -> None:
        print(
            f"  {result.name}: {result.lines:,} lines, "
            f"{cli_summary.plural(result.incidents, 'incident')}"
            f" ({result.seconds_generate + result.seconds_pipeline:.1f} s)",
            file=sys.stderr,
        )

    result = run_evaluation(args.size, args.seed, on_result=progress)
    if args.json:
        print(json.dumps(as_dict(result), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render(result))
    return 0


# --- run -----------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from soc.engine import Engine, notify_all, retry_store
    from soc.enrich import IntelRefresher
    from soc.store import open_store

    # First: a SIGTERM during start-up (a restart while the store opens) is a clean
    # stop too. The engine sees it set and stops at once, its state saved.
    stop = _stop_on_signals()
    settings = _load_settings(args)
    if not settings.sources:
        where = settings.path or "soc.toml"
        raise SocError("no sources configured: add a [[sources]] table", where=str(where))
    settings.sources = live_sources(settings)  # and the API's intake spool
    clock = SystemClock()
    # Started while the database is down (a reboot): wait for it, as for an outage,
    # unless told to stop meanwhile (nothing was read yet: a clean stop).
    try:
        store = retry_store(
            open_store,
            settings.store.url,
            seconds=settings.engine.store_retry_seconds,
            stop=stop,
        )
    except StoreError:
        if not stop.is_set():
            raise
        print("stopped while waiting for the store; nothing was read", file=sys.stderr)
        return 0
    intel = _intel(settings, clock)
    refresher = IntelRefresher(intel) if intel is not None else None
    try:
        with (
            _remembering(settings, store, clock, settings.store.url) as memory,
            _exporting(settings, store) as worker,
            _analysing(
                settings, store, clock, enabled=True, background=True, memory=memory
            ) as analysis,
            responding(settings, store, clock) as responder,  # expiry, [respond] auto
        ):
            engine = Engine(
                settings,
                store,
                clock,
                follow_tuning=True,
                on_incidents=notify_all(
                    analysis.notify,
                    memory.notify if memory is not None else None,
                    responder.notify,
                ),
                intel=intel,
                durable=True,
            )
            print(f"soc: engine state {engine.report.state}", file=sys.stderr)
            if refresher is not None:
                refresher.start()
            engine.stop_event = stop
            try:
                if args.once:
                    engine.step()
                    engine.tick()
                else:
                    engine.run(stop)
                # Open windows and campaigns are kept: the next start continues them.
                engine.persist()
                saved = engine.report.state_bytes / 1024
                print(f"soc: engine state saved ({saved:,.0f} KiB)", file=sys.stderr)
            finally:
                engine.close()
            # Every incident leaves with a report; a shutdown does not wait for a model.
            analysis.drain(offline_only=True)
            _finish_exports(worker, settings)
    finally:
        if refresher is not None:
            refresher.stop()
        store.close()
    stats = engine.report.parse
    print(
        f"{stats.lines} lines, {stats.events} events, {stats.unparsed_total} unparsed, "
        + cli_summary.plural(len(engine.report.incident_ids), "incident")
    )
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
    return stop


# --- incidents and tuning ------------------------------------------------------
def _cmd_incidents(args: argparse.Namespace) -> int:
    from soc.store import open_store

    settings = _load_settings(args)
    store = open_store(args.db or settings.store.url)
    try:
        incidents = store.list_incidents(
            status=args.status, kind=args.kind, search=args.search, limit=args.limit
        )
        total = store.count_incidents(status=args.status, kind=args.kind, search=args.search)
    finally:
        store.close()
    rows = [cli_summary.incident_json(i) for i in incidents]
    if args.json:
        print(json.dumps({"total": total, "incidents": rows}, indent=2, ensure_ascii=False))
        return 0
    print(
        cli_summary.plural(total, "incident")
        + (f" (newest {len(rows)} shown)" if total > len(rows) else "")
    )
    cli_summary.print_incidents(rows, sys.stdout)
    return 0


def _cmd_threshold(args: argparse.Namespace) -> int:
    from soc.engine import TUNED_THRESHOLD
    from soc.store import open_store

    settings = _load_settings(args)
    if args.value is not None:
        if args.reset:
            raise SocError("give a threshold or --reset, not both", where="command line")
        # Validated as the engine will: at least 1, at most max_threshold.
        values = dataclasses.asdict(settings.detect) | {"threshold": args.value}
        build_dataclass(type(settings.detect), values, "command line")
    store = open_store(args.db or settings.store.url)
    try:
        if args.value is not None:
            store.set_tuning(TUNED_THRESHOLD, args.value, time.time())
        elif args.reset:
            store.set_tuning(TUNED_THRESHOLD, None, time.time())
        tuned = store.tuning().get(TUNED_THRESHOLD)
    finally:
        store.close()
    if tuned is None:
        print(f"threshold {settings.detect.threshold} (configured)")
    else:
        print(f"threshold {tuned} (tuned at run time; configured {settings.detect.threshold})")
    return 0


# --- model ---------------------------------------------------------------------
def _cmd_model_check(args: argparse.Namespace) -> int:
    from soc.analyze.local import DEFAULT_MODELS_DIR, bundled_model_path
    from soc.modelserver.check import check_one_token

    settings = _load_settings(args)
    configured = settings.analyze.local_model_path
    path = args.model or (
        Path(configured) if configured else bundled_model_path(DEFAULT_MODELS_DIR)
    )
    if not path.is_file():
        raise SocError(f"no model file at {path}", where="model check")
    print(check_one_token(path).describe())
    return 0


# --- config --------------------------------------------------------------------
def _cmd_config(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    print(json.dumps(settings.describe(), indent=2, default=str))
    return 0
