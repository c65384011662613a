"""Command center benchmark: page renders and the live refresh against a full store.

Issue 5's speed target: with 1,000,000 events ingested and 10,000 incidents
stored, each page renders in at most 2 s and a live refresh takes at most 0.5 s.

1. The store (SQLite, cached under ``.bench/``, keyed like the log file by a hash
   of the sample generator and by the store's schema version): ``soc replay`` of
   the generated 1,000,000-line sshd auth.log with the offline analyst (about
   845,000 events and 6,700 incidents, each with its report), topped up to
   ``--incidents`` with incidents cloned from the replayed ones onto addresses the
   log never uses, written through the store API, each with an offline report and
   a share of them labelled by "an analyst" (triaged, resolved, false positive).
2. The real pages (``console.py``, as ``app.py`` serves them) in Streamlit's
   ``AppTest``, no browser, against a copy of that store (the cache is never
   written to), the offline analyst, and one quiet live source (an empty file
   followed from its end), so the runtime adds nothing while it is timed. Per
   page: the first full script run after the runtime exists, then the median of
   ``--runs`` runs.
3. The live refresh: what the Command Center's ``@st.fragment(run_every=2)``
   computes (the store queries, the frames, the Plotly figures and their JSON),
   called directly with the page's default arguments, median of ``--refreshes``.

Also printed: the median time of each store query and view function the pages
call, slowest first, to show where the time goes. A missed target is reported,
not an error: the exit status is non-zero only when the app or a build step fails.

Run: ``python bench/bench_app.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import plotly.io as pio  # type: ignore[import-untyped]  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit import config as st_config  # noqa: E402
from streamlit import logger as st_logger  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from bench.common import add_sample_arguments, generator_hash, sample_file  # noqa: E402
from soc.analyze import AnalyzeConfig  # noqa: E402
from soc.analyze.analyst import Analyst  # noqa: E402
from soc.analyze.worker import store_report  # noqa: E402
from soc.app import views  # noqa: E402
from soc.app.runtime import Runtime  # noqa: E402
from soc.clock import SystemClock  # noqa: E402
from soc.events import FALSE_POSITIVE, NEW, RESOLVED, TRIAGED, Incident  # noqa: E402
from soc.store import SqlStore, open_store  # noqa: E402
from soc.store.sql import SCHEMA_VERSION, window_aggregates  # noqa: E402
from soc.store.sql import incidents as incidents_table  # noqa: E402

APP = REPO / "console.py"
PAGE_TARGET_S = 2.0
REFRESH_TARGET_S = 0.5
#: (url path, title, page script): the app's pages, as ``st.navigation`` lists them.
PAGES = (
    ("", "Command Center", "pages/command_center.py"),
    ("incidents", "Incidents", "pages/incidents.py"),
    ("replay", "Replay & tuning", "pages/replay_tuning.py"),
    ("settings", "Settings", "pages/settings.py"),
)
#: The Command Center's defaults: time range "6 hours" (index 2), 15 incidents in the feed.
CC_SPAN_LABEL = list(views.SPANS)[2]
CC_SPAN = views.SPANS[CC_SPAN_LABEL]
CC_FEED_SIZE = 15
#: The Incidents page's defaults: the open statuses, 25 rows.
INC_ROWS = 25
#: Extra incidents' addresses: 100.64.0.0/10, minus every address the log uses.
EXTRA_NETWORK = ipaddress.IPv4Network("100.64.0.0/10")

T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    add_sample_arguments(p)
    p.add_argument("--incidents", type=int, default=10_000, help="incidents in the store")
    p.add_argument("--runs", type=int, default=5, help="script runs per page after the first")
    p.add_argument("--refreshes", type=int, default=20, help="live refreshes timed")
    p.add_argument(
        "--span-refreshes", type=int, default=5, help="live refreshes per other time range"
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)

    path, _ = sample_file(args.cache, args.lines, args.seed)
    db, build = app_store(args.cache, path, args, rebuild=args.rebuild)
    print(
        f"App benchmark: {args.lines:,}-line sshd auth.log replayed into SQLite, "
        f"topped up to {args.incidents:,} incidents"
    )
    if build is not None:
        print(
            f"  store built in {build.replay_s + build.top_up_s:.0f} s (replay "
            f"{build.replay_s:.0f} s, {build.added:,} incidents added in {build.top_up_s:.0f} s)"
        )
    with tempfile.TemporaryDirectory(prefix="soc-app-bench-") as tmp:
        copy = Path(tmp) / "app.db"
        shutil.copyfile(db, copy)  # the app writes (checkpoints, tuning): never to the cache
        facts = store_facts(copy)
        print(
            f"  store: {facts['events']:,} events, {facts['incidents']:,} incidents, "
            f"{facts['analyses']:,} analyses, {facts['windows']:,} window rows, "
            f"{facts['megabytes']:,.0f} MB ({_shown(db)})"
        )
        if facts["incidents"] < args.incidents:
            print(f"error: only {facts['incidents']:,} incidents stored", file=sys.stderr)
            return 1
        try:
            timings = time_app(
                copy,
                Path(tmp),
                runs=args.runs,
                refreshes=args.refreshes,
                span_refreshes=args.span_refreshes,
            )
        except AppFailed as exc:
            print(f"error: the app failed: {exc}", file=sys.stderr)
            return 1

    results = {"store": facts, **timings.as_dict()}
    report(timings)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


# --- the store ----------------------------------------------------------------------------
@dataclass(slots=True)
class Build:
    """How the cached store was made (when this run made it)."""

    replay_s: float
    top_up_s: float
    added: int


def app_store(
    cache: Path, log: Path, args: argparse.Namespace, *, rebuild: bool
) -> tuple[Path, Build | None]:
    """The cached benchmark store (made on first use) and how it was made (``None``: cached).

    Keyed by the log's size and seed, the sample generator's hash, the store's
    schema version and the incident count: any of them changing makes a new one.
    """
    stem = f"app-bench-{args.lines}-seed{args.seed}"
    path = cache / f"{stem}-{generator_hash()}-v{SCHEMA_VERSION}-{args.incidents}.db"
    if path.exists() and not rebuild:
        return path, None
    for old in cache.glob(f"{stem}-*.db*"):
        old.unlink()  # another generator, schema or size
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp) / "app.db"
        url = f"sqlite:///{work}"
        config = Path(tmp) / "soc.toml"
        config.write_text("", encoding="utf-8")  # the defaults, whatever ./soc.toml says
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
        env.update(PYTHONPATH=str(REPO), SOC_CONFIG=str(config))
        print(f"Building the benchmark store (once): soc replay {_shown(log)} …", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable, "-m", "soc", "replay", str(log),
                "--timezone", "UTC", "--year", "2025", "--analyst", "offline", "--db", url,
            ],
            env=env,
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        replay_s = time.perf_counter() - started
        started = time.perf_counter()
        added = top_up(url, args.incidents, args.seed)
        top_up_s = time.perf_counter() - started
        # One self-contained file: no write-ahead log beside it.
        with sqlite3.connect(work) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
        work.replace(path)
    return path, Build(replay_s=replay_s, top_up_s=top_up_s, added=added)


def top_up(url: str, target: int, seed: int) -> int:
    """Add incidents until the store holds ``target``; returns how many were added.

    Each is a replayed incident keyed by an address (brute force, slow brute
    force, spray, compromise: the mix the replay produced) moved onto a fresh
    address of 100.64.0.0/10 the log never uses, in its key, source addresses,
    facts, evidence lines and detector key; one in five is labelled by an analyst.
    Each gets an offline report, stored as the app's analyst worker stores one.
    """
    store = open_store(url)
    try:
        need = target - store.count_incidents()
        if need <= 0:
            return 0
        templates = _templates(store)
        if not templates:
            raise SystemExit("the replay stored no incident keyed by an address")
        fresh = _fresh_addresses(store, seed)
        clock = SystemClock()
        analyst = Analyst(AnalyzeConfig(chain=["offline"]), {}, clock)
        made: list[tuple[Incident, str]] = []
        for n in range(need):
            template, detector_key = templates[n % len(templates)]
            made.append(_clone(template, detector_key, next(fresh), n))
        for start in range(0, len(made), 500):
            with store.transaction(now=clock.now()) as tx:
                tx.upsert_incidents(made[start : start + 500], evidence_limit=20)
        for incident, _ in made:
            report = analyst.analyze(incident, incident.evidence)
            store_report(store, incident, report, clock.now())
        return len(made)
    finally:
        store.close()


def _templates(store: SqlStore) -> list[tuple[Incident, str]]:
    """The replayed incidents keyed by one address, with their evidence and detector key."""
    i = incidents_table
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(i.c.id, i.c.detector_key)).all()
    detector_keys = {int(row[0]): str(row[1]) for row in rows}
    found: list[tuple[Incident, str]] = []
    for incident in store.list_incidents(limit=len(detector_keys), order="id asc"):
        try:
            ipaddress.ip_address(incident.key)
        except ValueError:
            continue  # keyed by a user name (distributed brute force)
        incident_id = int(incident.id or 0)
        incident.evidence = store.evidence(incident_id)
        found.append((incident, detector_keys[incident_id]))
    return found


def _fresh_addresses(store: SqlStore, seed: int) -> Iterator[str]:
    """Addresses of ``EXTRA_NETWORK`` that no stored window or incident mentions, at random."""
    w = window_aggregates
    with store.engine.connect() as conn:
        taken = set(conn.execute(sa.select(w.c.key).distinct()).scalars())
        for ips in conn.execute(sa.select(incidents_table.c.source_ips)).scalars():
            taken.update(ips)
    rng = random.Random(seed)
    base = int(EXTRA_NETWORK.network_address)
    while True:
        address = str(ipaddress.IPv4Address(base + rng.randrange(1, EXTRA_NETWORK.num_addresses)))
        if address not in taken:
            taken.add(address)
            yield address


def _clone(template: Incident, detector_key: str, address: str, n: int) -> tuple[Incident, str]:
    """``template`` moved onto ``address``, with an analyst's status for some."""
    old = re.compile(rf"(?<![\d.]){re.escape(template.key)}(?!\.?\d)")

    def moved(text: str) -> str:
        return old.sub(address, text)

    status, notes = NEW, ""
    if n % 20 in (0, 1):
        status, notes = RESOLVED, "Blocked at the edge firewall; no successful login."
    elif n % 20 == 2:
        status, notes = FALSE_POSITIVE, "Our own vulnerability scanner."
    elif n % 20 == 3:
        status = TRIAGED
    incident = Incident(
        key=address,
        kind=template.kind,
        first_seen=template.first_seen,
        last_seen=template.last_seen,
        source_ips=[moved(ip) for ip in template.source_ips],
        users=list(template.users),
        distinct_users=template.distinct_users,
        failures=template.failures,
        successes=template.successes,
        events=template.events,
        severity=template.severity,
        technique=template.technique,
        technique_name=template.technique_name,
        status=status,
        notes=notes,
        evidence=[moved(line) for line in template.evidence],
        facts=json.loads(moved(json.dumps(template.facts))),
        opened_at=template.opened_at,
        updated_at=template.updated_at,
        closed=template.closed,
    )
    key = moved(detector_key)
    return incident, key if key != detector_key else f"{detector_key}|{address}"


def store_facts(db: Path) -> dict[str, Any]:
    """Events, incidents, analyses and window rows in the store, and its size."""
    store = open_store(f"sqlite:///{db}")
    try:
        with store.engine.connect() as conn:
            analyses = conn.execute(sa.text("SELECT count(*) FROM analyses")).scalar_one()
            windows = conn.execute(sa.text("SELECT count(*) FROM window_aggregates")).scalar_one()
        return {
            "events": int(store.counters().get("events", 0)),
            "incidents": store.count_incidents(),
            "analyses": int(analyses),
            "windows": int(windows),
            "megabytes": round(db.stat().st_size / 1e6, 1),
        }
    finally:
        store.close()


# --- timing the app ------------------------------------------------------------------------
class AppFailed(Exception):
    """The app raised while a page ran: its timing would mean nothing."""


@dataclass(slots=True)
class PageTiming:
    """Full script runs of one page (the Command Center also per time range)."""

    url_path: str
    title: str
    span: str  # the Command Center's time range; "" for the other pages
    first_s: float
    runs_s: list[float]

    @property
    def name(self) -> str:
        if self.span and self.span != CC_SPAN_LABEL:
            return f"{self.title}, {self.span}"
        return f'{self.title} ("{self.url_path}")'

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)

    @property
    def ok(self) -> bool:
        return self.first_s <= PAGE_TARGET_S and self.median_s <= PAGE_TARGET_S


@dataclass(slots=True)
class RefreshTiming:
    """Live refreshes of the Command Center with one time range.

    ``background``: the chart feed's recomputation, which runs on its own thread
    every ``CHART_REFRESH_SECONDS``, off the refresh path (shown, not judged
    against the refresh target).
    """

    span: str
    runs_s: list[float]
    background: bool = False

    @property
    def name(self) -> str:
        if self.background:
            return f"chart feed recompute, {self.span} (background)"
        default = " (default)" if self.span == CC_SPAN_LABEL else ""
        return f"live refresh, {self.span}{default}"

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)

    @property
    def ok(self) -> bool:
        return self.background or self.median_s <= REFRESH_TARGET_S


@dataclass(slots=True)
class Timings:
    startup_s: float
    pages: list[PageTiming]
    refreshes: list[RefreshTiming]
    #: (page, call) → median seconds per call, for "where the time goes".
    calls: dict[tuple[str, str], float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "startup_seconds": round(self.startup_s, 3),
            "page_target_seconds": PAGE_TARGET_S,
            "pages": [
                {
                    "page": p.url_path,
                    "title": p.title,
                    "time_range": p.span or None,
                    "first_run_seconds": round(p.first_s, 3),
                    "median_seconds": round(p.median_s, 3),
                    "runs_seconds": [round(s, 3) for s in p.runs_s],
                    "ok": p.ok,
                }
                for p in self.pages
            ],
            "refresh_target_seconds": REFRESH_TARGET_S,
            "refreshes": [
                {
                    "time_range": r.span,
                    "default": r.span == CC_SPAN_LABEL,
                    "median_seconds": round(r.median_s, 3),
                    "runs_seconds": [round(s, 3) for s in r.runs_s],
                    "ok": r.ok,
                }
                for r in self.refreshes
            ],
            "calls_median_seconds": [
                {"page": page, "call": call, "seconds": round(s, 4)}
                for (page, call), s in sorted(self.calls.items(), key=lambda kv: -kv[1])
            ],
        }


def time_app(copy: Path, tmp: Path, *, runs: int, refreshes: int, span_refreshes: int) -> Timings:
    """Run every page of the real app against ``copy`` (of the store); time runs and refreshes.

    The pages with their default widgets first, then the Command Center with
    each other time range (page runs and live refreshes), last the calls behind
    the pages one by one.
    """
    quiet = tmp / "quiet.log"
    quiet.write_text("", encoding="utf-8")
    config = tmp / "soc.toml"
    config.write_text(
        "[[sources]]\n"
        'name = "quiet"\n'
        'type = "file"\n'
        f"paths = [{json.dumps(str(quiet))}]\n"
        'start_at = "end"\n',
        encoding="utf-8",
    )
    env = {
        "SOC_CONFIG": str(config),
        "SOC_STORE__URL": f"sqlite:///{copy}",
        "SOC_ANALYZE__CHAIN": '["offline"]',
    }
    with _app_environment(env):
        at = AppTest.from_file(str(APP), default_timeout=60)
        startup_s = _timed(lambda: _run(at, PAGES[0][1]))  # the default page
        runtime = at.session_state[views.RUNTIME_KEY]
        if not isinstance(runtime, Runtime):
            raise AppFailed("console.py left no runtime in the session state")
        pages: list[PageTiming] = []
        for url_path, title, script in PAGES:
            at.switch_page(script)
            span = CC_SPAN_LABEL if script == PAGES[0][2] else ""
            pages.append(_page_runs(at, url_path, title, span, runs))
        steps: dict[str, list[float]] = {}
        # The chart feed's recomputation (on its own thread, every CHART_REFRESH_SECONDS) ...
        timed = [RefreshTiming(CC_SPAN_LABEL, [], background=True)]
        for _ in range(refreshes):
            timed[0].runs_s.append(_timed(lambda: live_refresh(runtime, CC_SPAN, steps)))
        # ... and the live refresh, which reads the feed's latest chart data.
        charts: dict[float, tuple[Any, Any, Any]] = {}
        live_refresh(runtime, CC_SPAN, {}, charts)
        between = RefreshTiming(CC_SPAN_LABEL, [])
        between.runs_s.extend(
            _timed(lambda: live_refresh(runtime, CC_SPAN, {}, charts)) for _ in range(refreshes)
        )
        timed.append(between)
        calls = {("Command Center", name): statistics.median(s) for name, s in steps.items()}

        url_path, title, script = PAGES[0]
        at.switch_page(script).run()
        for label, seconds in views.SPANS.items():
            if label == CC_SPAN_LABEL:
                continue
            at.selectbox(key="cc_span").set_value(label)
            pages.append(_page_runs(at, url_path, title, label, runs))
            other = RefreshTiming(label, [], background=True)
            refresh = functools.partial(live_refresh, runtime, seconds, {})
            other.runs_s.extend(_timed(refresh) for _ in range(max(span_refreshes, 1)))
            timed.append(other)
            charts_other: dict[float, tuple[Any, Any, Any]] = {}
            live_refresh(runtime, seconds, {}, charts_other)
            cached_refresh = functools.partial(live_refresh, runtime, seconds, {}, charts_other)
            other_between = RefreshTiming(label, [])
            other_between.runs_s.extend(
                _timed(cached_refresh) for _ in range(max(span_refreshes, 1))
            )
            timed.append(other_between)
        calls.update(other_page_calls(runtime, repeats=max(runs, 1)))
    return Timings(startup_s=startup_s, pages=pages, refreshes=timed, calls=calls)


def _page_runs(at: AppTest, url_path: str, title: str, span: str, runs: int) -> PageTiming:
    """The first run of the page as it stands, then ``runs`` more."""
    run_page = functools.partial(_run, at, title)
    first_s = _timed(run_page)
    runs_s = [_timed(run_page) for _ in range(max(runs, 1))]
    return PageTiming(url_path, title, span, first_s, runs_s)


@contextmanager
def _app_environment(env: dict[str, str]) -> Iterator[None]:
    """The app's environment, a loopback address (no sign-in), and no cached runtime.

    ``st.cache_resource.clear()`` at the end closes the runtime (its engine and
    analyst stop).
    """
    saved = {name: os.environ.get(name) for name in [*env, "GEMINI_API_KEY", "GOOGLE_API_KEY"]}
    address = st_config.get_option("server.address")  # loads Streamlit's config, log level too
    # AppTest outside ``streamlit run`` warns about bare mode; only errors matter here.
    st_logger.set_log_level("error")
    cwd = Path.cwd()
    os.environ.update(env)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        os.environ.pop(name, None)
    st_config.set_option("server.address", "127.0.0.1")
    os.chdir(REPO)
    st.cache_resource.clear()
    try:
        yield
    finally:
        st.cache_resource.clear()
        os.chdir(cwd)
        st_config.set_option("server.address", address)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(at: AppTest, title: str) -> None:
    """One full script run, which must render the page titled ``title`` without an error."""
    at.run()
    if at.exception:
        raise AppFailed(f"{title}: {at.exception[0].message}")
    shown = [str(t.value) for t in at.title]
    if title not in shown:
        raise AppFailed(f"expected the {title} page, got {shown or 'no title'}")


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _step(steps: dict[str, list[float]], name: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    value = fn()
    steps.setdefault(name, []).append(time.perf_counter() - started)
    return value


def live_refresh(
    runtime: Runtime,
    span: float,
    steps: dict[str, list[float]],
    cache: dict[float, tuple[Any, Any, Any]] | None = None,
) -> None:
    """What the Command Center's live fragment computes, for the time range ``span``.

    The same calls in the same order as ``pages/command_center.py``'s
    ``live_view``, figures serialised to JSON as ``st.plotly_chart`` does; only
    Streamlit's own element messages are left out. Each call's time goes to
    ``steps``. ``cache``: stands for the chart feed (``views.ChartFeed``); when
    it holds this range's data the three chart queries are skipped, as on the
    page, where the feed recomputes them on its own thread.
    """
    status = _step(steps, "runtime.status()", runtime.status)
    store = runtime.store
    latest = _step(
        steps, "latest_activity (max window_start)", lambda: views.latest_activity(store)
    )
    rng = views.chart_range(latest, span, status.window_seconds)
    _step(
        steps,
        "compute_kpis (counters, counts, costs)",
        lambda: views.compute_kpis(runtime, rng.since),
    )
    figures: list[Any] = []
    cached = cache.get(span) if cache is not None else None
    if latest is not None and cached is not None:
        timeline, users, attackers = cached
        figures.append(views.timeline_figure(timeline, rng.bucket_seconds))
        if not users.empty:
            figures.append(views.donut_figure(users))
        if not attackers.empty:
            figures.append(views.attackers_figure(attackers))
        _step(
            steps,
            "figures to JSON (as st.plotly_chart)",
            lambda: [pio.to_json(fig, validate=False) for fig in figures],
        )
    elif latest is not None:
        timeline = _step(
            steps, "timeline_frame (aggregates)", lambda: views.timeline_frame(store, rng)
        )
        figures.append(
            _step(
                steps,
                "timeline_figure",
                lambda: views.timeline_figure(timeline, rng.bucket_seconds),
            )
        )
        users = _step(
            steps,
            "targeted_users_frame (top users)",
            lambda: views.targeted_users_frame(store, rng.since),
        )
        if not users.empty:
            figures.append(_step(steps, "donut_figure", lambda: views.donut_figure(users)))
        attackers = _step(
            steps,
            "attackers_frame (top addresses)",
            lambda: views.attackers_frame(store, rng.since),
        )
        if not attackers.empty:
            figures.append(
                _step(steps, "attackers_figure", lambda: views.attackers_figure(attackers))
            )
        _step(
            steps,
            "figures to JSON (as st.plotly_chart)",
            lambda: [pio.to_json(fig, validate=False) for fig in figures],
        )
        if cache is not None:
            cache[span] = (timeline, users, attackers)
    incidents = _step(
        steps,
        f"list_incidents(limit={CC_FEED_SIZE})",
        lambda: store.list_incidents(limit=CC_FEED_SIZE, order="last_seen desc"),
    )

    def feed() -> None:
        for incident in incidents:
            incident_id = int(incident.id or 0)
            store.analyses(incident_id)
            views.facts_frame(incident)
            store.evidence(incident_id)

    _step(steps, f"feed: analyses + facts + evidence x{len(incidents)}", feed)


def other_page_calls(runtime: Runtime, repeats: int) -> dict[tuple[str, str], float]:
    """The median time of each store query and view function the other pages call."""
    store = runtime.store
    settings = runtime.settings
    open_ = list(views.OPEN_STATUSES)
    first = store.list_incidents(status=open_, limit=1, order="last_seen desc")
    last_page = (max(1, -(-store.count_incidents(status=open_) // INC_ROWS)) - 1) * INC_ROWS
    incident_id = int(first[0].id or 0) if first else 0
    calls: dict[tuple[str, str], Callable[[], object]] = {
        ("Incidents", "count_incidents(open)"): lambda: store.count_incidents(status=open_),
        ("Incidents", f"list_incidents(open, limit={INC_ROWS})"): lambda: views.incidents_frame(
            store.list_incidents(status=open_, limit=INC_ROWS, order="last_seen desc")
        ),
        ("Incidents", "list_incidents(open, last page)"): lambda: store.list_incidents(
            status=open_, limit=INC_ROWS, offset=last_page, order="last_seen desc"
        ),
        ("Incidents", "count_incidents(search '100.64')"): lambda: store.count_incidents(
            search="100.64"
        ),
        ("Incidents", "get_incident + analyses"): lambda: (
            store.get_incident(incident_id),
            store.analyses(incident_id),
        ),
        ("Replay & tuning", "what_if(threshold)"): lambda: views.what_if(
            store, runtime.threshold(), settings.detect.failure_kinds
        ),
        ("Replay & tuning", "runtime.status()"): runtime.status,
        ("Settings", "settings_overview"): lambda: views.settings_overview(settings),
    }
    medians: dict[tuple[str, str], float] = {}
    for name, fn in calls.items():
        medians[name] = statistics.median(_timed(fn) for _ in range(repeats))
    return medians


# --- the report ----------------------------------------------------------------------------
def report(t: Timings) -> None:
    """The table, the slowest calls, and which targets were missed."""
    print(f"  runtime start (first script run: engine, analyst, store)  {t.startup_s:.2f} s")
    print()
    runs = len(t.pages[0].runs_s) if t.pages else 0
    print(f"  {'page':<38}{'first run s':>12}{f'median s ({runs})':>15}{'target s':>10}  result")
    for p in t.pages:
        print(
            f"  {p.name:<38}{p.first_s:>12.2f}{p.median_s:>15.2f}{PAGE_TARGET_S:>10.1f}  "
            f"{'OK' if p.ok else 'OVER'}"
        )
    print()
    print(
        f"  {'live refresh (Command Center fragment)':<38}{'':>12}{'median s':>15}{'target s':>10}"
    )
    for r in t.refreshes:
        name = f"{r.name} (x{len(r.runs_s)})"
        target = "-" if r.background else f"{REFRESH_TARGET_S:.1f}"
        verdict = "off the refresh path" if r.background else "OK" if r.ok else "OVER"
        print(f"  {name:<38}{'':>12}{r.median_s:>15.3f}{target:>10}  {verdict}")
    print()
    print(f"  where the time goes (median s per call, slowest first; {CC_SPAN_LABEL} range)")
    for (page, call), seconds in sorted(t.calls.items(), key=lambda kv: -kv[1]):
        print(f"    {seconds:>8.4f}  {page:<16} {call}")
    print()
    missed = [
        f"{p.name}: first run {p.first_s:.2f} s, median {p.median_s:.2f} s"
        for p in t.pages
        if not p.ok
    ]
    missed += [f"{r.name}: median {r.median_s:.3f} s" for r in t.refreshes if not r.ok]
    if missed:
        print(
            f"  TARGETS MISSED ({len(missed)}; page {PAGE_TARGET_S:g} s, "
            f"refresh {REFRESH_TARGET_S:g} s):"
        )
        for line in missed:
            print(f"    - {line}")
    else:
        print(
            f"  ALL TARGETS MET: every page within {PAGE_TARGET_S:g} s, "
            f"every live refresh within {REFRESH_TARGET_S:g} s"
        )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
