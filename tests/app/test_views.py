"""The command center's queries, KPIs, figures and text hygiene, against a real replay."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.app import views
from soc.app.runtime import Runtime
from soc.app.theme import SEVERITY_COLORS
from soc.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The bundled samples replayed into a fresh SQLite store, every report written."""
    tmp = tmp_path_factory.mktemp("views")
    config = tmp / "soc.toml"
    config.write_text("", encoding="utf-8")
    settings = load_settings(
        config,
        environ={
            "SOC_STORE__URL": f"sqlite:///{tmp}/soc.db",
            "SOC_ANALYZE__CHAIN": '["offline"]',
            "GEMINI_API_KEY": "AIza-views-secret",
        },
        secrets_path=tmp / "secrets.toml",
    )
    runtime = Runtime(settings)
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        runtime.replay_samples(speed=0)
        deadline = time.monotonic() + 20
        while not (
            runtime.status().finished
            and views.analysis_totals(runtime.store).incidents_analysed
            >= runtime.store.count_incidents()
            > 0
        ):
            assert runtime.status().error is None, runtime.status().error
            assert time.monotonic() < deadline, "the replay did not finish"
            time.sleep(0.05)
        yield runtime
    finally:
        os.chdir(cwd)
        runtime.close()


def test_chart_labels_are_escaped_short_and_distinct() -> None:
    long = "administrator.backup.service.account@evil.example"
    (tag,) = views.legend_labels(['<b onmouseover="x">root</b>'], 48)
    assert tag == "&lt;b onmouseover=&quot;x&quot;&gt;root&lt;/b&gt;"
    labels = views.legend_labels(['<b onmouseover="x">root</b>', long, long + "2", "u\u202ex"])
    assert labels[0] == "&lt;b onmouseover=&quot;x&quot;&gt;root…"  # cut before escaping
    assert labels[1] == long[: views.LEGEND_CHARS - 1] + "…"
    assert labels[2] != labels[1] and labels[2].endswith(" #2")  # a pie would merge them
    assert len(labels[2]) == views.LEGEND_CHARS
    assert labels[3] == "u⟨U+202E⟩x"


def test_chart_range_ends_at_the_newest_window(runtime: Runtime) -> None:
    latest = views.latest_activity(runtime.store)
    assert latest is not None
    rng = views.chart_range(latest, 21_600.0, 15.0)
    assert rng.until == latest + 15.0
    assert rng.until - rng.since == 21_600.0
    assert rng.bucket_seconds == 180.0  # 6 h in 120 buckets, whole windows
    assert views.chart_range(None, 900.0, 15.0).bucket_seconds == 15.0


def test_kpis_match_the_store(runtime: Runtime) -> None:
    latest = views.latest_activity(runtime.store)
    assert latest is not None
    kpis = views.compute_kpis(runtime, 0.0)
    counters = runtime.store.counters()
    assert (kpis.lines, kpis.events) == (counters["lines"], counters["events"])
    assert kpis.incidents == runtime.store.count_incidents() == kpis.open_incidents
    assert kpis.model_calls == 0
    assert kpis.calls_avoided == runtime.status().events
    assert kpis.reports == kpis.incidents
    top = runtime.store.top_attackers(0.0, 1000, key_types=["ip"])
    assert kpis.active_attackers >= len([a for a in top if a.failures > 0])
    assert views.active_attackers(runtime.store, latest + 1) == 0


def test_timeline_sums_the_aggregates(runtime: Runtime) -> None:
    latest = views.latest_activity(runtime.store)
    rng = views.chart_range(latest, 86_400.0, 15.0)
    frame = views.timeline_frame(runtime.store, rng)
    buckets = runtime.store.aggregates(
        rng.since, rng.until, rng.bucket_seconds, key_types=["ip", "host"]
    )
    failed = frame[frame["kind"] == "failed attempts"]["count"].sum()
    assert failed == sum(b.failures for b in buckets) > 0
    assert "auth_success" not in set(frame["kind"])
    assert "auth_failure" in set(frame["kind"])
    fig = views.timeline_figure(frame, rng.bucket_seconds)
    assert fig.layout.title.text == "Hostile events per 12 min by kind"
    assert fig.layout.template.layout.paper_bgcolor == "#0b0f14"


def test_attackers_are_coloured_by_their_incidents_severity(runtime: Runtime) -> None:
    frame = views.attackers_frame(runtime.store, 0.0)
    assert list(frame["failures"]) == sorted(frame["failures"], reverse=True)
    severity = dict(zip(frame["address"], frame["severity"], strict=True))
    (brute,) = runtime.store.list_incidents(kind="brute_force")
    assert severity[brute.key] == brute.severity
    fig = views.attackers_figure(frame)
    colours = {trace.name: trace.marker.color for trace in fig.data}
    assert colours[brute.severity] == SEVERITY_COLORS[brute.severity]


def test_targeted_users_donut(runtime: Runtime) -> None:
    frame = views.targeted_users_frame(runtime.store, 0.0)
    assert frame["user"].iloc[0] == "root"
    fig = views.donut_figure(frame)
    assert list(fig.data[0].labels) == views.legend_labels(list(frame["user"]))
    # The samples' botnet names are among the most targeted: short, marked, in full on hover.
    assert "user\u202etxt.exe" in set(frame["user"])
    assert max(len(label) for label in fig.data[0].labels) <= views.LEGEND_CHARS
    assert "user⟨U+202E⟩txt.exe" in fig.data[0].labels
    assert "administrator.backup.service.account@evil.example" in fig.data[0].customdata
    assert not any("\u202e" in str(label) for label in fig.data[0].labels)


def test_incident_views(runtime: Runtime) -> None:
    (brute,) = runtime.store.list_incidents(kind="brute_force")
    assert views.expander_label(brute) == (
        f"{brute.severity.upper()} · brute_force · `{brute.key}`"  # a code span: literal text
    )
    (hostile,) = [
        i for i in runtime.store.list_incidents(kind="distributed_brute_force") if i.key != "root"
    ]
    assert hostile.key == "https://evil.example/x"
    assert views.expander_label(hostile).endswith(" · `https://evil.example/x`")
    option = views.incident_option(hostile)
    assert option == f"#{hostile.id} · MEDIUM · distributed_brute_force · https://evil.example/x"
    users = dict(views.facts_frame(hostile).itertuples(index=False))["users"]
    assert "user⟨U+202E⟩txt.exe" in users and "ad⟨U+200B⟩min" in users
    assert "\u202e" not in users and "\u200b" not in users
    facts = dict(views.facts_frame(brute).itertuples(index=False))
    assert facts["peak_failures_in_window"] == str(brute.facts["peak_failures_in_window"])
    assert facts["failed attempts"] == str(brute.failures)
    table = views.incidents_frame(runtime.store.list_incidents())
    assert len(table) == runtime.store.count_incidents()


def test_what_if(runtime: Runtime) -> None:
    store = runtime.store
    (brute,) = store.list_incidents(kind="brute_force")
    peak = int(brute.facts["peak_failures_in_window"])
    total = store.count_incidents()
    now = views.what_if(store, runtime.threshold())
    assert (now.incidents, now.brute_force_kept, now.brute_force_added) == (total, 1, 0)
    assert (now.model_calls, now.dollars) == (0.0, 0.0)  # offline reports only
    higher = views.what_if(store, peak + 1)
    assert (higher.incidents, higher.brute_force_kept) == (total - 1, 0)
    assert higher.missed_labelled.empty  # nothing labelled yet
    lower = views.what_if(store, 2)
    assert lower.brute_force_added > 0
    assert lower.incidents == total + lower.brute_force_added
    assert brute.key not in set(lower.added_keys["address"])
    store.set_status(int(brute.id or 0), "false_positive")
    try:
        labelled = views.what_if(store, peak + 1)
        assert list(labelled.missed_labelled["id"]) == [brute.id]
        assert (labelled.missed_true_positives, labelled.avoided_false_positives) == (0, 1)
    finally:
        store.set_status(int(brute.id or 0), "new")


def test_reanalyse_bypasses_the_report_cache(runtime: Runtime) -> None:
    (brute,) = runtime.store.list_incidents(kind="brute_force")
    incident_id = int(brute.id or 0)
    before = runtime.store.analyses(incident_id)
    report = views.reanalyse(runtime, incident_id, "offline")
    after = runtime.store.analyses(incident_id)
    assert len(after) == len(before) + 1
    assert (report.provider, report.reused, after[-1].reused) == ("offline", False, False)
    assert after[-1].structured["incident"]["kind"] == "brute_force"
    with pytest.raises(LookupError):
        views.reanalyse(runtime, 10_000_000, "offline")


def test_save_upload_ignores_the_uploaded_name(tmp_path: Path) -> None:
    path = views.save_upload(b"line one\n", base_dir=tmp_path)
    assert path.name == "upload.log"
    assert path.parent.parent == tmp_path
    assert path.read_bytes() == b"line one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert views.save_upload(b"other", base_dir=tmp_path) != path


def test_settings_overview_shows_keys_only_as_present(runtime: Runtime) -> None:
    overview = views.settings_overview(runtime.settings)
    assert overview["secrets"]["gemini_api_key"] == "present"
    assert overview["secrets"]["webhook_token"] == "absent"  # noqa: S105
    assert overview["chain"] == ["offline"]
    assert overview["batches"].startswith("below critical severity: one report per batch of up to")
    assert "AIza-views-secret" not in json.dumps(overview, default=str)


def test_a_report_shared_by_a_batch_says_so() -> None:
    from soc.store.sql import AnalysisRecord

    def record(structured: object) -> AnalysisRecord:
        return AnalysisRecord(
            1,
            1,
            "local",
            "gemma",
            0.0,
            "## Summary",
            structured,
            0,
            0,
            0.0,
            0.0,
            True,
            [],
            None,
            False,
        )

    assert views.batch_note(record({"batch": {"incidents": 1234}})) == (
        " · one report for a batch of 1,234 incidents"
    )
    assert views.batch_note(record({"summary": "own report"})) == ""
    assert views.batch_note(record(None)) == ""
    assert views.batch_note(record({"batch": {"incidents": "<b>9</b>"}})) == ""
