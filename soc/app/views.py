"""What the command center's pages show, computed where it can be tested without a browser.

Every reader here has the database aggregate (``GROUP BY``, ``COUNT``, ``SUM``:
the queries are :mod:`soc.store.dashboard`'s and :class:`~soc.store.SqlStore`'s,
none is written here) and returns at most a page of rows, so a page renders in
the same time with ten incidents or ten thousand. The pages stay thin: they lay
these out.

(Why past 600 lines: every page's data, charts and tables are here so that each
can be tested without a browser; the split, when it grows, is one module per
page: command center, incidents, replay and tuning, settings.)

Attacker-written text (user names, paths, keys, log lines) and model-written text
(reports, provider errors) are data. They reach the screen only through
:mod:`soc.text`: ``literal_markdown`` in Markdown (labels, headings, captions,
messages), ``plot_label`` in Plotly, ``plain`` in tables and selectboxes,
``visible`` in ``st.code``, ``report_markdown`` for a stored report. Never as HTML,
never with a bidi control or a zero-width character left unmarked.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import plotly.express as px  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]
import sqlalchemy as sa  # URLs only: the queries are soc.store.dashboard's

from soc.analyze.local import LocalProvider
from soc.analyze.worker import store_report
from soc.app.theme import (
    CATEGORY_COLORS,
    SEVERITY_COLORS,
    TEMPLATE_NAME,
    plotly_template,
)
from soc.events import (
    AUTH_SUCCESS,
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    FALSE_POSITIVE,
    NEW,
    PASSWORD_SPRAY,
    RESOLVED,
    SLOW_BRUTE_FORCE,
    TRIAGED,
    WEB_REQUEST,
    Incident,
)
from soc.store import dashboard
from soc.store.dashboard import AnalysisTotals, analysis_totals
from soc.store.sql import AnalysisRecord
from soc.text import literal_markdown, plain, plot_label

if TYPE_CHECKING:
    from soc.analyze.analyst import Report
    from soc.app.runtime import Runtime
    from soc.config import Settings
    from soc.store import SqlStore

#: Where app.py leaves the process's runtime for the pages (``st.session_state``).
RUNTIME_KEY: Final = "soc_runtime"
_log = logging.getLogger(__name__)
#: Incidents the analyst still has to look at.
OPEN_STATUSES: Final = (NEW, TRIAGED)
#: Analyst verdicts the what-if panel reports on.
LABELLED_STATUSES: Final = (TRIAGED, RESOLVED, FALSE_POSITIVE)
#: Window key types summed by the charts: per address (and named hosts), never also
#: per IPv6 /64 or per user, which would count the same events twice.
ADDRESS_KEYS: Final = ("ip", "host")
#: Event kinds left out of the hostile-activity timeline (benign by themselves).
BENIGN_KINDS: Final = frozenset({AUTH_SUCCESS, WEB_REQUEST})
#: The failure kinds the brute-force rule counts by default (``[detect] failure_kinds``).
DEFAULT_FAILURE_KINDS: Final = ("auth_failure", "invalid_user", "access_denied")
#: Chart time ranges offered, label → seconds.
SPANS: Final[dict[str, float]] = {
    "15 minutes": 900.0,
    "1 hour": 3600.0,
    "6 hours": 21_600.0,
    "24 hours": 86_400.0,
    "7 days": 604_800.0,
}
TIMELINE_BUCKETS: Final = 120

#: Longest account name in the donut's legend: longer names would squeeze the donut.
LEGEND_CHARS: Final = 24
#: Longest text in a chart's hover label.
HOVER_CHARS: Final = 200


def batch_note(record: AnalysisRecord) -> str:
    """`` · batch of N incidents`` for a report shared by a batch (else empty)."""
    batch = (record.structured or {}).get("batch") if isinstance(record.structured, dict) else None
    if not isinstance(batch, dict) or not isinstance(batch.get("incidents"), int):
        return ""
    return f" · one report for a batch of {batch['incidents']:,} incidents"


#: How often the chart feed recomputes a time range's chart data (seconds); window
#: aggregates only change when a window closes.
CHART_REFRESH_SECONDS: Final = 10.0
#: A time range nobody has looked at for this long is no longer recomputed.
CHART_IDLE_SECONDS: Final = 120.0


@dataclass(slots=True)
class ChartData:
    """One time range's chart data, as of ``computed_at`` (wall clock)."""

    rng: ChartRange
    timeline: pd.DataFrame
    users: pd.DataFrame
    attackers: pd.DataFrame
    computed_at: float
    seconds: float  # how long computing it took


class ChartFeed:
    """Chart data computed off the live refresh: a thread recomputes what was asked for.

    The Command Center's 2-second refresh reads :meth:`get`, which answers from
    the latest computation (at most ``CHART_REFRESH_SECONDS`` old). Only the
    first request for a time range computes in the caller. The thread
    recomputes every range asked for within ``CHART_IDLE_SECONDS``; the queries
    aggregate in the database (up to about a second over days of windows).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._data: dict[float, ChartData] = {}
        self._asked: dict[float, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soc-charts", daemon=True)
        self._thread.start()

    def get(self, span: float) -> ChartData | None:
        """The chart data for the last ``span`` seconds of activity (None: no activity yet)."""
        with self._lock:
            self._asked[span] = time.monotonic()
            data = self._data.get(span)
        return data if data is not None else self._compute(span)

    def _compute(self, span: float) -> ChartData | None:
        started = time.perf_counter()
        store = self.runtime.store
        latest = latest_activity(store)
        if latest is None:
            return None
        rng = chart_range(latest, span, self.runtime.window_seconds())
        data = ChartData(
            rng=rng,
            timeline=timeline_frame(store, rng),
            users=targeted_users_frame(store, rng.since),
            attackers=attackers_frame(store, rng.since),
            computed_at=time.time(),
            seconds=time.perf_counter() - started,
        )
        with self._lock:
            self._data[span] = data
        return data

    def _loop(self) -> None:
        while not self._stop.wait(CHART_REFRESH_SECONDS):
            now = time.monotonic()
            with self._lock:
                spans = [s for s, at in self._asked.items() if now - at < CHART_IDLE_SECONDS]
            for span in spans:
                if self._stop.is_set():
                    return
                try:
                    self._compute(span)
                except Exception:  # a store hiccup: the previous data stands
                    _log.exception("chart data for %s s failed; keeping the previous", span)

    def invalidate(self) -> None:
        """Forget every range's data (what runs changed): the next request computes anew."""
        with self._lock:
            self._data.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def chart_feed(runtime: Runtime) -> ChartFeed:
    """The runtime's one chart feed (started on first use, closed with the runtime)."""
    feed = runtime.extras.get("charts")
    if not isinstance(feed, ChartFeed):
        feed = ChartFeed(runtime)
        runtime.extras["charts"] = feed
    return feed


def runtime_from(state: Any) -> Runtime:
    """The runtime app.py put in the session state (pages are run by app.py only)."""
    runtime = state.get(RUNTIME_KEY) if hasattr(state, "get") else None
    if runtime is None:
        raise RuntimeError("the command center pages run inside app.py: `streamlit run app.py`")
    return runtime  # type: ignore[no-any-return]


# --- time ranges ------------------------------------------------------------------------
def latest_activity(store: SqlStore) -> float | None:
    """The start of the newest stored window (event time), or None for an empty store.

    Charts end there rather than at the wall clock: a replay of last year's logs
    is shown where its events are.
    """
    return dashboard.latest_window_start(store)


@dataclass(slots=True, frozen=True)
class ChartRange:
    """The time range the charts cover and the bucket size of the timeline."""

    since: float
    until: float
    bucket_seconds: float


def chart_range(latest: float | None, span: float, window_seconds: float) -> ChartRange:
    """``span`` seconds up to the newest window, in about ``TIMELINE_BUCKETS`` buckets.

    Buckets are a whole number of windows, so a window never straddles two.
    """
    step = max(window_seconds, 1.0)
    bucket = max(step, math.ceil(span / TIMELINE_BUCKETS / step) * step)
    end = (latest if latest is not None else 0.0) + step
    return ChartRange(since=end - span, until=end, bucket_seconds=bucket)


# --- KPIs ----------------------------------------------------------------------------------
def active_attackers(store: SqlStore, since: float) -> int:
    """Distinct source addresses with at least one failed attempt in windows from ``since``."""
    return dashboard.keys_failing(store, since, ADDRESS_KEYS)


@dataclass(slots=True)
class Kpis:
    """The Command Center's tiles."""

    lines: int
    lines_per_second: float
    events: int
    active_attackers: int
    open_incidents: int
    incidents: int
    model_calls: int  # model calls made by this server process (retries included)
    calls_avoided: int  # events ingested by this process that needed no model call
    reports: int  # reports written by this process (any provider)
    cache_hits: int
    cost_usd: float  # estimated, over every stored analysis
    analysis_pending: int


def compute_kpis(runtime: Runtime, since: float) -> Kpis:
    """The tiles' figures: the running engine's own, and the store's totals."""
    status = runtime.status()
    store = runtime.store
    usage = runtime.analysis.analyst.usage.as_dict()
    counters = store.counters()
    model_calls = int(usage["model_calls"])
    events = max(status.events, 0)
    return Kpis(
        lines=int(counters.get("lines", status.lines)),
        lines_per_second=status.lines_per_second,
        events=int(counters.get("events", events)),
        active_attackers=active_attackers(store, since),
        open_incidents=store.count_incidents(status=list(OPEN_STATUSES)),
        incidents=store.count_incidents(),
        model_calls=model_calls,
        calls_avoided=max(events - model_calls, 0),
        reports=int(usage["calls"]),
        cache_hits=int(usage["cache_hits"]),
        cost_usd=analysis_totals(store).cost_usd,
        analysis_pending=status.analysis_pending,
    )


# --- charts -----------------------------------------------------------------------------
def timeline_frame(store: SqlStore, rng: ChartRange) -> pd.DataFrame:
    """Hostile events per bucket by kind, plus the failed attempts, in long form.

    Columns: ``time`` (UTC datetime), ``kind`` and ``count``; the failed
    attempts are the rows of kind ``failed attempts``.
    """
    rows: list[dict[str, Any]] = []
    for bucket in store.aggregates(
        rng.since, rng.until, rng.bucket_seconds, key_types=list(ADDRESS_KEYS)
    ):
        when = pd.Timestamp(bucket.start, unit="s", tz="UTC")
        for kind, count in sorted(bucket.by_kind.items()):
            if kind not in BENIGN_KINDS and count:
                rows.append({"time": when, "kind": kind, "count": count})
        rows.append({"time": when, "kind": "failed attempts", "count": bucket.failures})
    return pd.DataFrame(rows, columns=["time", "kind", "count"])


def targeted_users_frame(store: SqlStore, since: float, limit: int = 8) -> pd.DataFrame:
    """The user accounts with the most failed attempts against them (window aggregates)."""
    rows = [
        {"user": a.key, "failures": a.failures}
        for a in store.top_attackers(since, limit, key_types=["user"])
        if a.failures > 0
    ]
    return pd.DataFrame(rows, columns=["user", "failures"])


def attackers_frame(store: SqlStore, since: float, limit: int = 10) -> pd.DataFrame:
    """The addresses with the most failed attempts, with their worst incident's severity."""
    top = [a for a in store.top_attackers(since, limit, key_types=["ip"]) if a.failures > 0]
    severity = dashboard.worst_severity_by_key(store, [a.key for a in top])
    rows = [
        {
            "address": a.key,
            "failures": a.failures,
            "events": a.events,
            "severity": severity.get(a.key, "none"),
        }
        for a in top
    ]
    return pd.DataFrame(rows, columns=["address", "failures", "events", "severity"])


def _styled(fig: Any, title: str) -> Any:
    plotly_template()
    fig.update_layout(template=TEMPLATE_NAME, title={"text": title})
    return fig


def timeline_figure(frame: pd.DataFrame, bucket_seconds: float) -> Any:
    """Stacked bars of hostile events by kind per bucket, the failed attempts as a line."""
    kinds = frame[frame["kind"] != "failed attempts"]
    kinds = kinds.assign(kind=[plot_label(k, LEGEND_CHARS) for k in kinds["kind"]])
    failed = frame[frame["kind"] == "failed attempts"]
    fig = px.bar(
        kinds,
        x="time",
        y="count",
        color="kind",
        color_discrete_sequence=CATEGORY_COLORS,
        labels={"time": "", "count": "events", "kind": "kind"},
    )
    fig.add_trace(
        go.Scatter(
            x=failed["time"],
            y=failed["count"],
            name="failed attempts",
            mode="lines",
            line={"color": SEVERITY_COLORS["critical"], "width": 2},
        )
    )
    fig.update_layout(barmode="stack", bargap=0.05, legend={"orientation": "h", "y": -0.15})
    return _styled(fig, f"Hostile events per {_duration(bucket_seconds)} by kind")


def donut_figure(frame: pd.DataFrame) -> Any:
    """A donut of the targeted accounts' share of failed attempts."""
    fig = go.Figure(
        go.Pie(
            labels=legend_labels(list(frame["user"])),
            customdata=[plot_label(u, HOVER_CHARS) for u in frame["user"]],
            values=list(frame["failures"]),
            hole=0.55,
            sort=False,
            marker={"colors": CATEGORY_COLORS, "line": {"color": "#0b0f14", "width": 2}},
            textinfo="percent",
            textposition="inside",
            insidetextorientation="horizontal",
            hovertemplate="%{customdata}: %{value} failed attempts<extra></extra>",
        )
    )
    return _styled(fig, "Targeted accounts (failed attempts)")


def legend_labels(names: Sequence[object], limit: int = LEGEND_CHARS) -> list[str]:
    """Chart labels for ``names``: escaped, invisible characters marked, at most ``limit``
    characters, and still distinct (two long names cut alike get `` #2``, `` #3``…: a pie
    chart would merge equal labels into one slice)."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        label = plot_label(name, limit)
        n = 1
        while label in seen:
            n += 1
            label = plot_label(name, limit - len(f" #{n}")) + f" #{n}"
        seen.add(label)
        out.append(label)
    return out


def attackers_figure(frame: pd.DataFrame) -> Any:
    """Horizontal bars of the attacking addresses, coloured by severity (red heat scale)."""
    data = frame.assign(address=legend_labels(list(frame["address"]), 48))
    order = ["critical", "high", "medium", "low", "none"]
    fig = px.bar(
        data,
        x="failures",
        y="address",
        orientation="h",
        color="severity",
        color_discrete_map=SEVERITY_COLORS,
        category_orders={"severity": order},
        labels={"failures": "failed attempts", "address": "", "severity": "severity"},
        hover_data={"events": True},
    )
    fig.update_layout(
        yaxis={"type": "category", "categoryorder": "total ascending", "automargin": True},
        bargap=0.25,
    )
    return _styled(fig, "Attacking addresses by failed attempts")


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


# --- incidents -------------------------------------------------------------------------
def expander_label(incident: Incident) -> str:
    """``HIGH · brute_force · `203.0.113.9```: severity, kind, and the key as literal text
    (it is attacker text: a user name can hold a URL, a shortcode or a bidi control)."""
    return f"{incident.severity.upper()} · {incident.kind} · {literal_markdown(incident.key, 80)}"


def incident_option(incident: Incident) -> str:
    """The incident as a selectbox option (plain text): ``#7 · HIGH · brute_force · key``."""
    return plain(
        f"#{incident.id} · {incident.severity.upper()} · {incident.kind} · "
        f"{plain(incident.key, 60)}",
        120,
    )


def severity_icon(severity: str) -> str:
    """A glyph for the severity, so it reads without colour too."""
    return {"critical": "🟥", "high": "🔴", "medium": "🟠", "low": "🟡"}.get(severity, "⚪")


def when(ts: float | None) -> str:
    """An epoch time as ``2025-11-21 09:00:00 UTC``."""
    if ts is None:
        return "—"
    return str(pd.Timestamp(ts, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC"))


def facts_frame(incident: Incident) -> pd.DataFrame:
    """The incident's figures and rule facts as a two-column table of text."""
    rows: list[tuple[str, str]] = [
        ("kind", incident.kind),
        ("severity", incident.severity),
        ("technique", f"{incident.technique} {incident.technique_name}".strip()),
        ("first seen", when(incident.first_seen)),
        ("last seen", when(incident.last_seen)),
        ("failed attempts", str(incident.failures)),
        ("successful logins", str(incident.successes)),
        ("events", str(incident.events)),
        ("distinct users", str(incident.distinct_users)),
        ("source addresses", ", ".join(plain(ip, 64) for ip in incident.source_ips[:20])),
        ("users", ", ".join(plain(u, 64) for u in incident.users[:20])),
    ]
    for name, value in sorted(incident.facts.items()):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append((plain(name, 64), plain(text, 500)))
    return pd.DataFrame(rows, columns=["fact", "value"])


def incidents_frame(items: list[Incident]) -> pd.DataFrame:
    """One row per incident for the Incidents table (a page of them, never all)."""
    rows = [
        {
            "id": i.id,
            "severity": i.severity,
            "kind": i.kind,
            "key": plain(i.key, 200),
            "status": i.status,
            "failures": i.failures,
            "users": i.distinct_users,
            "first seen": when(i.first_seen),
            "last seen": when(i.last_seen),
        }
        for i in items
    ]
    columns = ["id", "severity", "kind", "key", "status", "failures", "users"]
    return pd.DataFrame(rows, columns=[*columns, "first seen", "last seen"])


def reanalyse(runtime: Runtime, incident_id: int, provider: str) -> Report:
    """Ask ``provider`` (then the offline analyst, if it fails) for a new report, and store it.

    The analyst's cache is bypassed: an analyst asking for a second opinion
    wants a new report.
    """
    incident = runtime.store.get_incident(incident_id)
    if incident is None:
        raise LookupError(f"no incident {incident_id}")
    analyst = runtime.analysis.analyst
    evidence = list(incident.evidence)
    report = analyst.analyze(incident, evidence, chain=[provider], use_cache=False)
    store_report(runtime.store, incident, report, runtime.clock.now())
    return report


# --- what-if ------------------------------------------------------------------------------
@dataclass(slots=True)
class WhatIf:
    """What a candidate brute-force threshold would have produced over the stored history."""

    candidate: int
    incidents_now: int
    brute_force_now: int
    brute_force_kept: int
    brute_force_added: int  # addresses whose window peak reaches it but have no incident
    incidents: int
    model_calls: float
    dollars: float
    calls_per_incident: float
    mean_model_cost: float
    missed_labelled: pd.DataFrame  # analyst-labelled incidents it would not raise
    added_keys: pd.DataFrame  # addresses it would raise an incident for

    @property
    def missed_true_positives(self) -> int:
        return int((self.missed_labelled["status"] != FALSE_POSITIVE).sum())

    @property
    def avoided_false_positives(self) -> int:
        return int((self.missed_labelled["status"] == FALSE_POSITIVE).sum())


#: Incident kinds of login campaigns (the brute-force rule's family).
LOGIN_KINDS: Final = (BRUTE_FORCE, SLOW_BRUTE_FORCE, PASSWORD_SPRAY, CREDENTIAL_COMPROMISE)


def what_if(
    store: SqlStore,
    candidate: int,
    failure_kinds: Sequence[str] = DEFAULT_FAILURE_KINDS,
    limit: int = 20,
) -> WhatIf:
    """Estimate incidents, model calls and dollars for ``candidate`` over the stored history.

    Only the brute-force rule uses the threshold; every other incident is counted
    as it is. A stored brute-force incident is kept when its peak failures in one
    window (``facts.peak_failures_in_window``) reach the candidate. New incidents
    are the addresses whose stored window aggregates reach it, counting the
    failures of ``failure_kinds`` (``[detect] failure_kinds``), without a
    brute-force incident: aggregates are aligned windows, the detector slides its
    window, so this is a lower bound. Model calls are incidents times the stored
    model analyses per analysed incident; dollars use the mean stored cost per
    model analysis.
    """
    counts = dashboard.threshold_counts(
        store,
        candidate,
        failure_kinds=failure_kinds,
        login_kinds=LOGIN_KINDS,
        labelled=LABELLED_STATUSES,
        limit=limit,
    )
    totals = analysis_totals(store)
    per_incident = (
        totals.model_analyses / totals.incidents_analysed if totals.incidents_analysed else 0.0
    )
    estimated = counts.incidents - counts.brute_force + counts.brute_force_kept + counts.added
    calls = estimated * per_incident
    return WhatIf(
        candidate=candidate,
        incidents_now=counts.incidents,
        brute_force_now=counts.brute_force,
        brute_force_kept=counts.brute_force_kept,
        brute_force_added=counts.added,
        incidents=estimated,
        model_calls=calls,
        dollars=calls * totals.mean_model_cost,
        calls_per_incident=per_incident,
        mean_model_cost=totals.mean_model_cost,
        missed_labelled=pd.DataFrame(
            [(r[0], plain(r[1], 200), *r[2:]) for r in counts.missed_labelled],
            columns=["id", "key", "status", "severity", "peak"],
        ),
        added_keys=pd.DataFrame(
            [(plain(key, 200), peak) for key, peak in counts.added_keys],
            columns=["address", "peak"],
        ),
    )


# --- replay uploads ---------------------------------------------------------------------
def save_upload(data: bytes, base_dir: Path | None = None) -> Path:
    """Write an uploaded log to a fresh private temp directory under a fixed name.

    The browser's file name is never used (it is the uploader's text); the file is
    only ever read as log lines, never executed.
    """
    directory = Path(tempfile.mkdtemp(prefix="soc-upload-", dir=base_dir))
    path = directory / "upload.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


# --- settings ---------------------------------------------------------------------------
def settings_overview(settings: Settings) -> dict[str, Any]:
    """What the Settings page shows: sources, analyst chain and model, budget, allow-list,
    and each API key as present or absent (never its value)."""
    described = settings.describe()
    analyze = settings.analyze
    return {
        "file": described["file"] or "(none: built-in defaults)",
        "store": settings_store_url(settings),
        "sources": described["sources"],
        "chain": [*[n for n in analyze.chain if n != "offline"], "offline"],
        "local_model_path": analyze.local_model_path or "(the bundled Gemma 3 270M)",
        "openai_compatible": (
            f"{analyze.openai_base_url} ({analyze.openai_model or 'the model it lists'})"
            if analyze.openai_base_url
            else "(not configured)"
        ),
        "gemini_model": analyze.gemini_model,
        "batches": (
            "off: one report per incident"
            if analyze.batch_below_severity == "low"
            else f"below {analyze.batch_below_severity} severity: one report per batch of up "
            f"to {analyze.batch_max_incidents:,} incidents, written after "
            f"{analyze.batch_wait_seconds:g} s"
        ),
        "budget": {
            "max_calls_per_hour": analyze.max_calls_per_hour,
            "max_tokens_per_day": analyze.max_tokens_per_day,
            "max_cost_usd_per_day": analyze.max_cost_usd_per_day,
        },
        "allow_list": list(settings.detect.allow_list),
        "secrets": {
            name: ("present" if present else "absent")
            for name, present in described["secrets"].items()
        },
    }


def model_server_rows(runtime: Runtime) -> list[dict[str, str]] | None:
    """The local model server's state as (setting, value) rows; None without a local model."""
    provider = runtime.analysis.analyst.providers.get("local")
    if not isinstance(provider, LocalProvider):
        return None
    status = provider.status()
    load = status.get("load_seconds")
    rows = {
        "state": str(status.get("state")),
        "model": str(status.get("model")),
        "process": str(status.get("pid") or "-"),
        "endpoint": str(status.get("url") or "-"),
        "processes started": str(status.get("starts", 0)),
        "crashes and kills": str(status.get("deaths", 0)),
        "last failure": str(status.get("last_failure") or "-"),
        "why it is down": str(status.get("reason") or "-"),
        "load time": "-" if load is None else f"{float(load):.1f} s",
    }
    # Failures and reasons are the model server's and its endpoint's text: plain, marked.
    return [{"setting": k, "value": plain(v, 500)} for k, v in rows.items()]


def settings_store_url(settings: Settings) -> str:
    """The store URL with any password hidden."""
    try:
        return str(sa.make_url(settings.store.url).render_as_string(hide_password=True))
    except sa.exc.ArgumentError:
        return "(not a valid URL)"


__all__ = [
    "HOVER_CHARS",
    "LEGEND_CHARS",
    "OPEN_STATUSES",
    "RUNTIME_KEY",
    "SPANS",
    "AnalysisTotals",
    "ChartData",
    "ChartFeed",
    "ChartRange",
    "Kpis",
    "WhatIf",
    "active_attackers",
    "analysis_totals",
    "attackers_figure",
    "attackers_frame",
    "batch_note",
    "chart_feed",
    "chart_range",
    "compute_kpis",
    "donut_figure",
    "expander_label",
    "facts_frame",
    "incident_option",
    "incidents_frame",
    "latest_activity",
    "legend_labels",
    "model_server_rows",
    "reanalyse",
    "runtime_from",
    "save_upload",
    "settings_overview",
    "severity_icon",
    "targeted_users_frame",
    "timeline_figure",
    "timeline_frame",
    "what_if",
    "when",
]
