"""The command center's pages, run by Streamlit's AppTest against a real replay in SQLite.

Each test gets its own store in ``tmp_path``, the offline analyst only (no model
runs), and a fresh process runtime: ``st.cache_resource`` is cleared (which
closes the runtime) before and after.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from soc.app.runtime import Runtime
from soc.app.views import RUNTIME_KEY, analysis_totals
from soc.store import open_store
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "console.py"  # the pages script app.py serves
THRESHOLD_LABEL = "Threshold (failures per window)"
XSS_USER = "<script>alert(1)</script>"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def runtime_of(at: AppTest) -> Runtime:
    runtime = at.session_state[RUNTIME_KEY]
    assert isinstance(runtime, Runtime)
    return runtime


def replayed(runtime: Runtime) -> None:
    """Wait until the replay has ended and every incident has its report."""

    def done() -> bool:
        status = runtime.status()
        if status.error:
            pytest.fail(f"the engine stopped: {status.error}")
        if not status.finished:
            return False
        incidents = runtime.store.count_incidents()
        return incidents > 0 and analysis_totals(runtime.store).incidents_analysed >= incidents

    wait_for(done, "the sample replay and its reports")


def start_app(*, wait: bool = True) -> AppTest:
    """Run the app once (starting the runtime), wait for the replay, run it again."""
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, at.exception
    if wait:
        replayed(runtime_of(at))
        at.run()
        assert not at.exception, at.exception
    return at


def selected_incident(at: AppTest) -> int:
    value = at.selectbox(key="inc_selected").value
    assert isinstance(value, int)
    return value


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return str(values[0])


def texts(at: AppTest) -> list[str]:
    """Every Markdown-rendered text: markdown, captions, alerts, expander labels."""
    found = [str(m.value) for m in at.markdown]
    found += [str(c.value) for c in at.caption]
    found += [str(e.value) for e in [*at.error, *at.info, *at.warning, *at.success]]
    found += [str(e.label) for e in at.expander]
    found += [str(h.value) for h in [*at.title, *at.subheader]]
    return found


# --- every page -------------------------------------------------------------------------
def test_command_center_shows_the_replayed_samples(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    counters = runtime.store.counters()
    assert metric(at, "Lines ingested") == f"{counters['lines']:,}"
    assert counters["lines"] > 0
    assert metric(at, "Events") == f"{counters['events']:,}"
    assert int(metric(at, "Active attackers").replace(",", "")) > 0
    assert metric(at, "Open incidents") == str(runtime.store.count_incidents(status=["new"]))
    assert metric(at, "Model calls made") == "0"  # the offline analyst makes none
    assert metric(at, "Model calls avoided") == f"{runtime.status().events:,}"
    assert metric(at, "Cost so far") == "$0.0000"
    assert len(at.get("plotly_chart")) == 3  # timeline, targeted users, attacking addresses

    incidents = runtime.store.list_incidents(limit=15, order="last_seen desc")
    labels = [e.label for e in at.expander]
    assert len(labels) == len(incidents)
    for label, incident in zip(labels, incidents, strict=True):
        assert label.startswith(f"{incident.severity.upper()} · {incident.kind} · ")
    reports = [m.value for m in at.markdown if str(m.value).startswith("## Summary")]
    assert len(reports) == len(incidents)
    assert any("Failed password" in str(c.value) for c in at.code)  # evidence lines
    assert len(at.dataframe) == len(incidents)  # one facts table per accordion


def test_other_pages_render(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "AIza-test-secret-never-shown"  # noqa: S105 (a test value)
    monkeypatch.setenv("GEMINI_API_KEY", secret)
    at = start_app()
    at.switch_page("pages/incidents.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Incidents"
    assert len(at.dataframe) >= 2  # the list and the facts of the selected incident
    at.switch_page("pages/replay_tuning.py").run()
    assert not at.exception, at.exception
    assert [s.label for s in at.slider] == [THRESHOLD_LABEL]
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    keys = next(d.value for d in at.dataframe if "secret" in d.value.columns)
    assert dict(zip(keys["secret"], keys["state"], strict=True))["gemini_api_key"] == "present"
    shown = " ".join(texts(at)) + " ".join(d.value.to_csv() for d in at.dataframe)
    assert secret not in shown


# --- tuning -------------------------------------------------------------------------
def test_window_size_applies_to_the_running_engine(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    at.switch_page("pages/replay_tuning.py").run()
    window = at.select_slider(key="rp_window")
    assert window.value == 15
    window.set_value(60).run()
    assert not at.exception, at.exception
    assert runtime.window_seconds() == 60.0
    assert any("60 s windows" in str(c.value) for c in at.caption)


def test_threshold_slider_drives_the_engine(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    assert runtime.threshold() == 5
    at.switch_page("pages/replay_tuning.py").run()
    slider = at.slider(key="rp_threshold")
    assert slider.label == THRESHOLD_LABEL
    assert slider.value == 5
    slider.set_value(12).run()
    assert not at.exception, at.exception
    assert runtime.threshold() == 12
    assert runtime.store.tuning()["threshold"] == 12
    assert metric(at, "The engine now uses") == "12 failures"
    assert at.slider(key="rp_threshold").value == 12
    at.switch_page("pages/command_center.py").run()
    assert any("threshold 12 failures" in str(c.value) for c in at.caption)


def test_what_if_reports_a_missed_labelled_incident(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    (brute,) = runtime.store.list_incidents(kind="brute_force")
    runtime.store.set_status(int(brute.id or 0), "resolved")
    peak = int(brute.facts["peak_failures_in_window"])
    at.switch_page("pages/replay_tuning.py").run()
    assert metric(at, "Incidents") == f"{runtime.store.count_incidents():,}"
    at.number_input(key="rp_candidate").set_value(peak + 1).run()
    assert not at.exception, at.exception
    assert metric(at, "Incidents") == f"{runtime.store.count_incidents() - 1:,}"
    missed = next(d.value for d in at.dataframe if "peak" in d.value.columns and "id" in d.value)
    assert list(missed["id"]) == [brute.id]
    assert any("1 confirmed" in str(m.value) for m in at.markdown)


# --- incidents workflow ----------------------------------------------------------------
def test_status_change_persists(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    at.switch_page("pages/incidents.py").run()
    incident_id = selected_incident(at)
    (new_status,) = [s for s in at.selectbox if s.label == "New status"]
    new_status.set_value("triaged")
    (notes,) = [t for t in at.text_area if t.label == "Analyst notes"]
    notes.set_value("blocked at the edge; ticket SOC-42")
    (save,) = [b for b in at.button if b.label == "Save status"]
    save.click().run()
    assert not at.exception, at.exception
    stored = runtime.store.get_incident(incident_id)
    assert stored is not None
    assert (stored.status, stored.notes) == ("triaged", "blocked at the edge; ticket SOC-42")
    assert any(f"#{incident_id} is now triaged" in str(s.value) for s in at.success)
    # A status filter that excludes it hides it.
    at.multiselect(key="inc_status").set_value(["resolved"]).run()
    assert runtime.store.count_incidents(status="resolved") == 0
    assert any("No incident matches" in str(i.value) for i in at.info)
    at.multiselect(key="inc_status").set_value(["triaged"]).run()
    assert list(at.dataframe[0].value["id"]) == [incident_id]


def test_reanalyse_stores_a_new_report(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    at.switch_page("pages/incidents.py").run()
    incident_id = selected_incident(at)
    before = runtime.store.analyses(incident_id)
    assert at.selectbox(key=f"inc_provider_{incident_id}").options == ["offline"]
    at.button(key=f"inc_reanalyse_{incident_id}").click().run()
    assert not at.exception, at.exception
    after = runtime.store.analyses(incident_id)
    assert len(after) == len(before) + 1
    assert (after[-1].provider, after[-1].reused) == ("offline", False)


# --- empty and broken ----------------------------------------------------------------
def test_empty_store_renders_sensibly(app_env: Path) -> None:
    empty = app_env / "empty.log"
    empty.write_text("", encoding="utf-8")
    (app_env / "soc.toml").write_text(
        f'[[sources]]\nname = "auth"\ntype = "file"\npaths = ["{empty}"]\n', encoding="utf-8"
    )
    at = start_app(wait=False)
    runtime = runtime_of(at)
    assert runtime.status().mode == "live"
    assert not at.exception, at.exception
    assert metric(at, "Lines ingested") == "0"
    assert metric(at, "Open incidents") == "0"
    info = [str(i.value) for i in at.info]
    assert any(text.startswith("No activity stored yet") for text in info)
    assert "No incidents yet." in info
    assert not at.get("plotly_chart")
    for page in ("pages/incidents.py", "pages/replay_tuning.py", "pages/settings.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    at.switch_page("pages/replay_tuning.py").run()
    assert metric(at, "Incidents") == "0"


def test_engine_error_is_shown(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that refuses the engine's writes stops the engine; the pages say so and stay up."""
    monkeypatch.setenv("SOC_ENGINE__STORE_RETRY_SECONDS", "0")
    open_store(f"sqlite:///{app_env}/soc.db").close()
    with sqlite3.connect(app_env / "soc.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON window_aggregates "
            "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END"
        )
    at = start_app(wait=False)
    runtime = runtime_of(at)
    wait_for(lambda: runtime.status().error is not None, "the engine to fail")
    at.run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert any(e.startswith("The engine stopped:") and "disk says no" in e for e in errors)
    at.switch_page("pages/replay_tuning.py").run()
    assert not at.exception, at.exception
    assert any(str(e.value).startswith("The engine stopped:") for e in at.error)


# --- attacker text ---------------------------------------------------------------------
def _xss_log() -> bytes:
    """Twelve addresses each failing three times against one hostile user name."""
    lines = []
    for n in range(12):
        for k in range(3):
            second = n * 3 + k
            lines.append(
                f"Nov 22 10:00:{second:02d} web01 sshd[{4000 + second}]: Failed password for "
                f"invalid user {XSS_USER} from 198.18.0.{n + 1} port {40000 + second} ssh2"
            )
    return ("\n".join(lines) + "\n").encode()


def _outside_code(text: str) -> str:
    """``text`` without its code blocks and code spans (shown literally by Markdown)."""
    text = re.sub(r"(`{3,})[^\n]*\n.*?\n\1", "", text, flags=re.DOTALL)
    return re.sub(r"(`+).+?\1", "", text, flags=re.DOTALL)


def test_attacker_text_is_never_html(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    at.switch_page("pages/replay_tuning.py").run()
    at.radio(key="rp_source").set_value("Upload a log file").run()
    at.file_uploader(key="rp_upload").upload("../../x.sh", _xss_log(), "text/plain").run()
    at.button(key="rp_go").click().run()
    assert not at.exception, at.exception
    wait_for(
        lambda: bool(runtime.status().finished and runtime.store.list_incidents(search=XSS_USER)),
        "an incident about the hostile user name",
    )
    hostile = runtime.store.list_incidents(search=XSS_USER)
    wait_for(lambda: all(runtime.store.analyses(int(i.id or 0)) for i in hostile), "their reports")
    at.switch_page("pages/command_center.py").run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert any(f"`{XSS_USER}`" in text for text in shown)  # it is there, as literal text
    for text in shown:
        assert "<script" not in _outside_code(text).replace("\\<script", ""), text
    charts = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "&lt;script&gt;" in charts
    assert "<script>" not in charts
    at.switch_page("pages/incidents.py").run()
    at.text_input(key="inc_search").set_value("script").run()
    assert not at.exception, at.exception
    for text in texts(at):
        assert "<script" not in _outside_code(text).replace("\\<script", ""), text


def test_no_unsafe_html_anywhere() -> None:
    sources = [APP, *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "soc").rglob("*.py"))]
    assert len(sources) > 10
    offenders: list[Any] = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        if "unsafe_allow_html" in text or re.search(r"\bst\.html\(", text):
            offenders.append(path.relative_to(ROOT))
    assert offenders == []


# --- incident memory ---------------------------------------------------------------------
def _page_links(at: AppTest) -> list[str]:
    return [str(link.proto.label) for link in at.get("page_link")]


def test_similar_incidents_and_the_description_search(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    memory = runtime.memory
    assert memory is not None
    wait_for(
        lambda: len(memory) == runtime.store.count_incidents(),
        f"every incident embedded ({memory.stats()}, {runtime.store.count_incidents()})",
        timeout=60,
    )
    at.switch_page("pages/incidents.py").run()
    spray = next(i for i in runtime.store.list_incidents() if i.kind == "password_spray")
    at.selectbox(key="inc_selected").set_value(spray.id).run()
    assert not at.exception, at.exception
    links = _page_links(at)
    shown = [m.incident_id for m in memory.similar(int(spray.id or 0), 5)]
    assert len(shown) == 5 and all(any(f"#{i} · " in link for link in links) for i in shown)
    at.text_input(key="inc_semantic").set_value("port scan dropped by the firewall").run()
    assert not at.exception, at.exception
    assert "port_scan" in _page_links(at)[0]
    # a link (?incident=N) opens that incident whatever the filters show
    at.query_params["incident"] = str(shown[0])
    at.run()
    assert selected_incident(at) == shown[0]


# --- response playbooks --------------------------------------------------------------------
def _brute_force(runtime: Runtime) -> tuple[int, str]:
    """The samples' brute-force incident and its one source address."""
    (brute,) = runtime.store.list_incidents(kind="brute_force")
    (address,) = brute.source_ips
    return int(brute.id or 0), address


def _nft_block_argv(runtime: Runtime, address: str, ttl: int) -> str:
    """The exact nft command that blocks ``address`` for ``ttl`` seconds, as shown."""
    (command,) = runtime.responder.firewall("nftables").block(ip_network(address), ttl)
    return shlex.join(command.argv)


def test_incident_plan_confirm_and_run_in_dry_run(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    incident_id, address = _brute_force(runtime)
    at.switch_page("pages/incidents.py").run()
    at.selectbox(key="inc_selected").set_value(incident_id).run()
    assert not at.exception, at.exception
    book = at.selectbox(key=f"inc_resp_book_{incident_id}")
    assert book.value == "block-source"  # the brute-force rule's recommendation, first
    assert set(book.options) >= {"block-source (recommended)", "notify-team"}
    assert any("Recommended: `block-source`" in str(c.value) for c in at.caption)
    plan_button = at.button(key=f"inc_resp_plan_{incident_id}")
    assert plan_button.label == "Plan block-source…"
    plan_button.click().run()
    assert not at.exception, at.exception

    # The confirmation: the exact argv, the TTL, and that it is a dry run.
    codes = [str(c.value) for c in at.code]
    assert _nft_block_argv(runtime, address, 86400) in codes
    shown = texts(at)
    assert any(t.startswith("Dry run: block-source would run") for t in shown), shown
    assert any("**dry run** · TTL 1d" in t for t in shown), shown
    assert not any("ENFORCE" in str(w.value) for w in at.warning)
    assert runtime.responder.log.audit_log(incident_id=incident_id) == []  # nothing yet

    at.button(key=f"inc_resp_confirm_{incident_id}").click().run()
    assert not at.exception, at.exception
    assert any("block-source: dry_run (dry run, audited)" in str(s.value) for s in at.success)
    results = [str(c.value) for c in at.caption if "result **" in str(c.value)]
    assert len(results) == 3 and all("result **dry_run**" in r for r in results), results
    assert _nft_block_argv(runtime, address, 86400) not in [str(c.value) for c in at.code]
    audit = runtime.responder.log.audit_log(incident_id=incident_id)
    assert [(a.step, a.action, a.result, a.actor) for a in reversed(audit)] == [
        (1, "block_ip", "dry_run", "analyst"),
        (2, "annotate", "dry_run", "analyst"),
        (3, "set_status", "dry_run", "analyst"),
    ]
    assert runtime.responder.blocks() == []  # a dry run blocks nothing
    stored = runtime.store.get_incident(incident_id)
    assert stored is not None and stored.status == "new"  # nor changes the incident


def test_command_center_plan_can_be_cancelled(app_env: Path) -> None:
    at = start_app()
    runtime = runtime_of(at)
    incident_id, address = _brute_force(runtime)
    at.selectbox(key=f"cc_resp_book_{incident_id}").set_value("block-and-notify").run()
    at.button(key=f"cc_resp_plan_{incident_id}").click().run()
    assert not at.exception, at.exception
    assert at.button(key=f"cc_resp_plan_{incident_id}").label == "Plan block-and-notify…"
    assert _nft_block_argv(runtime, address, 86400) in [str(c.value) for c in at.code]
    assert any(str(t).startswith("Dry run: block-and-notify") for t in texts(at))
    at.button(key=f"cc_resp_cancel_{incident_id}").click().run()
    assert not at.exception, at.exception
    assert _nft_block_argv(runtime, address, 86400) not in [str(c.value) for c in at.code]
    assert not [b for b in at.button if b.key == f"cc_resp_confirm_{incident_id}"]
    assert runtime.responder.log.audit_log() == []


def test_response_page_blocks_audit_and_filters(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = start_app()
    runtime = runtime_of(at)
    responder = runtime.responder
    incident_id, address = _brute_force(runtime)
    responder.run(incident_id, "block-source", actor="analyst", enforce=True)  # a dry run
    # Attacker-reachable text in the log (a hostile actor name and target).
    responder.log.audit(
        at=runtime.clock.now(),
        actor=XSS_USER,
        client="198.18.0.1",
        playbook="notify-team",
        step=1,
        action="notify",
        backend="webhook",
        target="https://evil.example/x",
        argv=[],
        mode="dry_run",
        result="refused",
        exit_status=None,
        output="[click](https://evil.example) :smile:",
        incident_id=incident_id,
    )
    at.switch_page("pages/response.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Response"
    assert any(str(c.value).startswith("Mode: dry run") for c in at.caption)
    assert any(str(i.value).startswith("No block in force") for i in at.info)

    def audit_frame() -> Any:
        frames = [d.value for d in at.dataframe if "result" in d.value.columns]
        return frames[0] if frames else None

    frame = audit_frame()
    assert len(frame) == 4
    assert set(frame["actor"]) == {"analyst", XSS_USER}  # as plain text in the table
    assert f"#{incident_id}" in set(frame["incident"])
    assert _nft_block_argv(runtime, address, 86400) in " ".join(frame["argv"])
    for shown in texts(at):
        assert "<script" not in _outside_code(shown), shown
    playbooks = next(d.value for d in at.dataframe if "description" in d.value.columns)
    assert "block-source" in set(playbooks["playbook"])

    at.selectbox(key="resp_f_actor").set_value(XSS_USER).run()
    assert list(audit_frame()["action"]) == ["notify"]
    at.selectbox(key="resp_f_actor").set_value(None)
    at.selectbox(key="resp_f_result").set_value("dry_run").run()
    assert list(audit_frame()["action"]) == ["set_status", "annotate", "block_ip"]
    at.selectbox(key="resp_f_mode").set_value("enforce").run()
    assert audit_frame() is None
    assert any("No audited step matches" in str(i.value) for i in at.info)
    at.selectbox(key="resp_f_mode").set_value(None)
    at.selectbox(key="resp_f_result").set_value(None)
    at.selectbox(key="resp_f_playbook").set_value("notify-team").run()
    assert len(audit_frame()) == 1
    at.selectbox(key="resp_f_playbook").set_value(None)
    at.number_input(key="resp_f_incident").set_value(incident_id + 1000).run()
    assert audit_frame() is None
    at.number_input(key="resp_f_incident").set_value(incident_id).run()
    assert len(audit_frame()) == 4

    # A block in force (as an enforced run records it), lifted with Unblock. The
    # firewall command really runs, behind a prefix that records its argv instead
    # of touching this machine's firewall.
    record = tmp_path / "argv.log"
    prefix = tmp_path / "record-argv"
    prefix.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {record}\n', encoding="utf-8")
    prefix.chmod(0o755)
    monkeypatch.setattr(responder.config, "command_prefix", [str(prefix)])
    now = runtime.clock.now()
    block = responder.log.record_block(
        f"{address}/32",
        "nftables",
        expires_at=now + 5400,
        now=now,
        incident_id=incident_id,
        playbook="block-source",
        actor="analyst",
    )
    at.run()
    assert not at.exception, at.exception
    blocks = next(d.value for d in at.dataframe if "time left" in d.value.columns)
    assert list(blocks["network"]) == [f"{address}/32"]
    assert list(blocks["time left"]) in (["1h 30m"], ["1h 29m"])
    at.button(key=f"resp_unblock_{block.id}").click().run()
    assert not at.exception, at.exception
    assert responder.blocks() == []
    ran = record.read_text(encoding="utf-8").splitlines()
    assert (
        ran and ran[0].startswith("nft add element inet soc_response block4") and address in ran[0]
    )
    assert any("is no longer blocked" in str(s.value) for s in at.success)
    assert any(str(i.value).startswith("No block in force") for i in at.info)
    (lifted,) = responder.log.audit_log(playbook="(unblocked)")
    assert (lifted.action, lifted.result, lifted.target) == ("unblock_ip", "ok", f"{address}/32")


@pytest.fixture
def lab_netns() -> Iterator[str]:
    """A network namespace of this test's own, where enforced firewall commands run."""
    require(os.geteuid() == 0, "root is needed to create a network namespace")
    require(shutil.which("nft") is not None, "nft (Debian package nftables) is not installed")
    name = f"soc-ui-{secrets.token_hex(4)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    require(made.returncode == 0, f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def _kernel_block4(ns: str) -> list[str]:
    """The addresses in the namespace's ``inet soc_response block4`` set (none: no table)."""
    listed = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", "soc_response", "block4"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        return []
    sets = [item["set"] for item in json.loads(listed.stdout)["nftables"] if "set" in item]
    elements = sets[0].get("elem", []) if sets else []
    return [e["elem"]["val"] if isinstance(e, dict) else e for e in elements]


def test_an_enforced_block_from_the_incident_view_lands_in_nftables_and_is_lifted(
    app_env: Path, lab_netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One click and a confirmation block for real (in a namespace); Unblock lifts it."""
    monkeypatch.setenv("SOC_RESPOND__MODE", "enforce")
    monkeypatch.setenv("SOC_RESPOND__COMMAND_PREFIX", f'["ip", "netns", "exec", "{lab_netns}"]')
    at = start_app()
    runtime = runtime_of(at)
    incident_id, address = _brute_force(runtime)
    at.switch_page("pages/incidents.py").run()
    at.selectbox(key="inc_selected").set_value(incident_id).run()
    at.button(key=f"inc_resp_plan_{incident_id}").click().run()
    assert not at.exception, at.exception
    assert any(str(w.value).startswith("ENFORCE: confirming runs") for w in at.warning)
    assert any("**ENFORCE** · TTL 1d" in t for t in texts(at))
    assert _kernel_block4(lab_netns) == []  # planning ran nothing

    at.button(key=f"inc_resp_confirm_{incident_id}").click().run()
    assert not at.exception, at.exception
    assert any("block-source: ok" in str(s.value) for s in at.success), at.success
    assert _kernel_block4(lab_netns) == [address]
    (block,) = runtime.responder.blocks()
    assert block.network == f"{address}/32" and block.actor == "analyst"
    assert 86400 - 120 < block.expires_at - time.time() <= 86400
    stored = runtime.store.get_incident(incident_id)
    assert stored is not None and stored.status == "triaged"
    assert "blocked the source addresses for 1d (block-source)" in stored.notes

    at.switch_page("pages/response.py").run()
    assert not at.exception, at.exception
    at.button(key=f"resp_unblock_{block.id}").click().run()
    assert not at.exception, at.exception
    assert _kernel_block4(lab_netns) == []
    assert runtime.responder.blocks() == []
    assert [a.result for a in runtime.responder.log.audit_log(playbook="(unblocked)")] == ["ok"]


# --- the playbook recommender (soc.respond.policy) ----------------------------------------
POLICY_CAPTION = re.compile(r"^Policy recommends: `([^`]+)` \((.+), p=(\d\.\d\d)\)$")


def _policy_captions(at: AppTest) -> list[re.Match[str]]:
    return [m for c in at.caption if (m := POLICY_CAPTION.match(str(c.value)))]


def test_policy_recommendation_accept_and_reject(app_env: Path) -> None:
    from soc.app.response import policy_advice
    from soc.store.policy import PolicyFeedback

    at = start_app()
    runtime = runtime_of(at)
    incident_id, _ = _brute_force(runtime)
    incident = runtime.store.get_incident(incident_id)
    assert incident is not None
    advice = policy_advice(runtime, incident)
    assert advice is not None, "the shipped policy (models/policy) did not load"
    playbook, action, probability = advice

    at.switch_page("pages/incidents.py").run()
    at.selectbox(key="inc_selected").set_value(incident_id).run()
    assert not at.exception, at.exception
    (shown,) = _policy_captions(at)
    assert shown[1] == (playbook or "no action")
    assert shown[2].replace("\\", "") == action
    assert 0.0 < float(shown[3]) <= 1.0 and float(shown[3]) == round(probability, 2)
    feedback = PolicyFeedback(runtime.store)
    assert feedback.list() == []  # showing records nothing
    book = at.selectbox(key=f"inc_resp_book_{incident_id}")
    elsewhere = next(name for name in book.options if not name.startswith(playbook or "-"))
    book.set_value(elsewhere.removesuffix(" (recommended)")).run()  # Accept selects it back

    at.button(key=f"inc_resp_policy_accept_{incident_id}").click().run()
    assert not at.exception, at.exception
    (row,) = feedback.list()
    assert (row.incident_id, row.accepted, row.actor) == (incident_id, True, "analyst")
    assert row.recommended == action and row.chosen == action and row.kind == "brute_force"
    assert row.probability == pytest.approx(probability) and row.features
    assert "Answer recorded" in [str(c.value) for c in at.caption]
    assert not [b for b in at.button if b.key == f"inc_resp_policy_accept_{incident_id}"]
    if playbook is not None:  # the shipped playbooks include every action's
        assert at.selectbox(key=f"inc_resp_book_{incident_id}").value == playbook
    assert runtime.responder.log.audit_log() == []  # the policy only recommends

    other = next(i for i in runtime.store.list_incidents() if i.id != incident_id)
    other_id = int(other.id or 0)
    at.selectbox(key="inc_selected").set_value(other_id).run()
    assert not at.exception, at.exception
    assert len(_policy_captions(at)) == 1
    at.button(key=f"inc_resp_policy_reject_{other_id}").click().run()
    assert not at.exception, at.exception
    (rejected,) = feedback.list(incident_id=other_id)
    assert (rejected.accepted, rejected.chosen) == (False, None)
    assert len(feedback.list()) == 2
    assert runtime.responder.log.audit_log() == []
