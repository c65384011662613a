"""The whole guardrail end to end: lines → windows → incidents → store → export, and the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from soc.cli import main
from soc.clock import SystemClock
from soc.config import load_settings
from soc.engine import PIPELINE_COUNTERS, Engine
from soc.store import open_store
from tests.export.fake_es import FakeElasticsearch

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
#: What both a replay and a live run are compared on (ids and detector keys differ).
COMPARED = (
    "kind",
    "source_ips",
    "users",
    "distinct_users",
    "failures",
    "successes",
    "first_seen",
    "last_seen",
    "severity",
    "technique",
)


def _failed(second: int, address: str, user: str = "root", minute: int = 0) -> str:
    return (
        f"Nov 21 10:{minute:02d}:{second:02d} web01 sshd[{100 + second}]: Failed password for "
        f"{user} from {address} port {40000 + second} ssh2"
    )


def _accepted(second: int, address: str, user: str, minute: int = 0) -> str:
    return (
        f"Nov 21 10:{minute:02d}:{second:02d} web01 sshd[{200 + second}]: Accepted password for "
        f"{user} from {address} port {50000 + second} ssh2"
    )


def _config(tmp_path: Path, body: str = "", *, batch_lines: int = 1000) -> Path:
    path = tmp_path / "soc.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path}/soc.db"

[engine]
batch_lines = {batch_lines}
idle_sleep = 0.02
tick_seconds = 0.05
export_interval = 0.1
export_drain_seconds = 10.0

[parse]
timezone = "UTC"
year = 2025

[analyze]
chain = ["offline"]
{body}
""",
        encoding="utf-8",
    )
    return path


def _followed_config(directory: Path, log: Path, *, batch_lines: int) -> Path:
    """A configuration following ``log`` from its beginning, this machine's addresses ignored."""
    return _config(
        directory,
        f"""
[detect]
include_host_addresses = false

[[sources]]
name = "auth"
type = "file"
paths = ["{log}"]
start_at = "beginning"
poll_interval = 0.02
""",
        batch_lines=batch_lines,
    )


def _replay(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status = main(["--config", str(_config(tmp_path)), "replay", *args, "--summary-json", "-"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary: dict[str, Any] = json.loads(captured.out)
    return summary


def test_a_flood_becomes_one_incident_and_quiet_keys_are_dismissed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [_failed(s % 60, "203.0.113.9", minute=s // 60) for s in range(0, 600)]  # 1 per s
    lines += [_failed(10, "198.51.100.7"), _failed(40, "198.51.100.7")]  # two: under threshold
    log = tmp_path / "auth.log"
    log.write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    summary = _replay(tmp_path, capsys, str(log), "--db", f"sqlite:///{tmp_path}/r.db")
    assert summary["lines"] == 602
    assert summary["events"] == 602
    assert summary["unparsed"] == 0
    assert [(i["kind"], i["source_ips"], i["failures"]) for i in summary["incidents"]] == [
        ("brute_force", ["203.0.113.9"], 600)
    ]
    incident = summary["incidents"][0]
    assert incident["users"] == ["root"]
    assert incident["first_seen"] == "2025-11-21T10:00:00.000000Z"
    assert incident["last_seen"] == "2025-11-21T10:09:59.000000Z"
    assert incident["technique"] == "T1110.001"
    assert incident["severity"] == "medium"  # 600 failures: above 100, below 1,000
    # one report for the whole flood, by the offline analyst (no model configured)
    llm = summary["llm"]
    assert (llm["calls"], llm["model_calls"], llm["by_provider"]) == (1, 0, {"offline": 1})
    assert (llm["tokens_in"], llm["tokens_out"], llm["cost_usd"]) == (0, 0, 0.0)
    assert llm["lines_per_call"] == 602.0
    assert incident["analysis"] == {
        "provider": "offline",
        "grounded": True,
        "reused": False,
        "batch": None,
    }
    # windows of 15 s, stored for the charts: 40 for the flooding address, 2 for the
    # quiet one, and 40 for the targeted user "root" (which both addresses tried)
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    try:
        buckets = store.aggregates(0, 2e9, 15, key_types=["ip"])
        assert sum(b.failures for b in buckets) == 602
        counters = store.counters(PIPELINE_COUNTERS)
        assert counters["detect.incidents_opened"] == 1
        assert counters["window.windows_emitted"] == 82
        stored = store.get_incident(incident["id"])
        assert stored is not None and stored.closed
        # the first lines and the latest: the campaign's start and its end
        assert stored.evidence[0] == sorted(lines)[0]
        assert stored.evidence[-1] == _failed(59, "203.0.113.9", minute=9)
        assert len(stored.evidence) == 20
        (analysis,) = store.analyses(incident["id"])
        assert analysis.grounded and analysis.provider == "offline"
        for section in ("## Summary", "## What happened", "## Evidence", "## MITRE ATT&CK"):
            assert section in analysis.markdown
        assert "203.0.113.9" in analysis.markdown
        assert analysis.structured["recommended_actions"][0].startswith("Block 203.0.113.9")
    finally:
        store.close()


@pytest.mark.parametrize(("threshold", "expected"), [(4, 1), (5, 1), (6, 0)])
def test_threshold_flag_decides_what_becomes_an_incident(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], threshold: int, expected: int
) -> None:
    # five failures within 15 s, then silence
    log = tmp_path / "auth.log"
    log.write_text("\n".join(_failed(s, "203.0.113.9") for s in range(1, 6)) + "\n")
    summary = _replay(tmp_path, capsys, str(log), "--threshold", str(threshold))
    assert len(summary["incidents"]) == expected
    assert summary["threshold"] == threshold


def test_window_flag_sets_the_span_and_the_chart_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # five failures 8 s apart: 32 s from first to last
    log = tmp_path / "auth.log"
    log.write_text("\n".join(_failed(s, "203.0.113.9") for s in range(0, 40, 8)) + "\n")
    assert _replay(tmp_path, capsys, str(log))["incidents"] == []
    wide = _replay(tmp_path, capsys, str(log), "--window", "60")
    assert [i["kind"] for i in wide["incidents"]] == ["brute_force"]
    assert wide["window_seconds"] == 60.0
    assert wide["windows"] == 2  # one row for the address, one for the user, in one window
    status = main(["replay", str(log), "--window", "0"])
    assert status == 2
    assert "seconds" in capsys.readouterr().err


def test_compromise_is_critical_and_replay_lists_incidents_for_a_person(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "<b>x</b>\x1b[2J"
    lines = [_failed(s, "203.0.113.50", user=hostile if s == 1 else "deploy") for s in range(1, 7)]
    lines.append(_accepted(30, "203.0.113.50", "deploy"))
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status = main(["--config", str(_config(tmp_path)), "replay", str(log)])
    out = capsys.readouterr().out
    assert status == 0
    # one campaign, one incident: the brute force became a compromise when the login worked
    assert "1 incident (threshold 5 failures in 15 s)" in out
    critical = [row for row in out.splitlines() if "credential_compromise" in row]
    assert len(critical) == 1
    assert "critical" in critical[0] and "T1078" in critical[0] and "203.0.113.50" in critical[0]
    assert "\x1b" not in out  # attacker text never reaches the terminal raw
    assert repr(hostile) in out
    assert (
        "1 report for 1 incident (offline 1; 0 for batches of 0 incidents): 0 model calls, "
        "7 lines per report, $0.0000" in out
    )


def test_soc_incidents_lists_what_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path}/r.db"
    summary = _replay(tmp_path, capsys, str(SAMPLES / "auth.log"), "--db", db)
    assert len(summary["incidents"]) >= 5
    assert main(["incidents", "--db", db, "--json", "--limit", "1000"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total"] == len(summary["incidents"])
    assert sorted(i["id"] for i in listed["incidents"]) == sorted(
        i["id"] for i in summary["incidents"]
    )
    assert main(["incidents", "--db", db, "--kind", "credential_compromise", "--json"]) == 0
    compromises = json.loads(capsys.readouterr().out)["incidents"]
    assert compromises and all(i["severity"] == "critical" for i in compromises)
    assert main(["incidents", "--db", db, "--limit", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{listed['total']} incidents (newest 2 shown)\n")
    assert len(text.splitlines()) == 3


def test_every_bundled_sample_replays_into_incidents_of_every_family(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    summary = _replay(tmp_path, capsys, str(SAMPLES))
    kinds = {i["kind"] for i in summary["incidents"]}
    assert {
        "brute_force",
        "password_spray",
        "credential_compromise",
        "web_scan",
        "port_scan",
    } <= kinds, kinds
    assert summary["lines"] > 5_000
    # the guardrail: far fewer incidents than events
    assert len(summary["incidents"]) * 50 < summary["events"]
    kinds_seen = [i["kind"] for i in summary["incidents"]]
    assert "distributed_brute_force" in kinds_seen
    assert "slow_brute_force" in kinds_seen
    for incident in summary["incidents"]:
        assert incident["technique"].startswith("T")
        assert incident["first_seen"] <= incident["last_seen"]
    # every incident analysed; below critical severity, many share one report (a batch)
    incidents = summary["incidents"]
    assert all(i["analysis"] and i["analysis"]["grounded"] for i in incidents)
    batched = [i for i in incidents if i["analysis"]["batch"]]
    assert batched and all(i["severity"] in ("low", "medium", "high") for i in batched)
    assert all(i["analysis"]["batch"] is None for i in incidents if i["severity"] == "critical")
    llm = summary["llm"]
    assert llm["batched_incidents"] == len(batched)
    assert llm["calls"] == len(incidents) - len(batched) + llm["batches"] < len(incidents)
    assert sum(not i["analysis"]["reused"] for i in batched) == llm["batches"]


def test_replay_exports_every_incident_to_elasticsearch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeElasticsearch() as es:
        config = _config(
            tmp_path,
            f"""
[[exports]]
name = "elastic"
type = "elasticsearch"
hosts = ["{es.url}"]
""",
        )
        status = main(
            ["--config", str(config), "replay", str(SAMPLES / "auth.log"), "--summary-json", "-"]
        )
        captured = capsys.readouterr()
        assert status == 0, captured.err
        summary = json.loads(captured.out)
        documents = es.documents("logs-soc.alerts")
    assert summary["exports"]["elastic"]["pending"] == 0
    assert summary["exports"]["elastic"]["failed"] == 0
    by_id = {doc["soc"]["incident"]["id"]: doc for doc in documents.values()}
    assert sorted(by_id) == sorted(i["id"] for i in summary["incidents"])
    for incident in summary["incidents"]:
        doc = by_id[incident["id"]]
        assert doc["event"]["kind"] == "alert"
        assert (
            doc["rule"]["name"].startswith(incident["kind"].replace("_", " ")[:5])
            or doc["rule"]["id"]
        )
        assert incident["technique"] in json.dumps(doc["threat"])
        assert doc["soc"]["failures"] == incident["failures"]


def test_threshold_tuned_at_run_time_applies_to_the_next_batch(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    config = _followed_config(tmp_path, log, batch_lines=3)
    settings = load_settings(config, environ={})
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock(), follow_tuning=True)
    try:
        # four failures from each address: under the configured threshold of 5
        with log.open("a") as f:
            f.write("\n".join(_failed(s, "203.0.113.1") for s in range(1, 5)) + "\n")
        _step_until(engine, 4)
        assert engine.report.incident_ids == {}
        # the analyst lowers the threshold (another process: soc threshold 3)
        assert main(["--config", str(config), "threshold", "3"]) == 0
        engine.tick()
        assert engine.threshold == 3
        with log.open("a") as f:
            f.write("\n".join(_failed(s, "203.0.113.2") for s in range(10, 14)) + "\n")
        _step_until(engine, 8)
        opened = [store.get_incident(i) for i in engine.report.incident_ids]
        assert [i.source_ips for i in opened if i is not None] == [["203.0.113.2"]]
        # and back: a reset returns to the configured threshold
        assert main(["--config", str(config), "threshold", "--reset"]) == 0
        assert store.tuning() == {}
        engine.set_threshold(7)
        assert store.tuning() == {"threshold": 7}
        with pytest.raises(Exception, match="at least 1"):
            engine.set_threshold(0)
    finally:
        engine.close()
        store.close()
    assert main(["--config", str(config), "threshold", "0"]) == 2


def _step_until(engine: Engine, lines: int) -> None:
    deadline = time.monotonic() + 20
    while engine.report.parse.lines < lines:
        assert time.monotonic() < deadline, "the file source did not deliver the lines"
        engine.step()
        time.sleep(0.02)


def _incident_facts(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(json.dumps(row[k]) for k in COMPARED) for row in rows)


def test_replay_equals_live(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same lines appended to a file `soc run` follows give the same incidents as a replay."""
    sample = (SAMPLES / "auth.log").read_text(encoding="utf-8").splitlines(keepends=True)
    replayed = _replay(tmp_path, capsys, str(SAMPLES / "auth.log"))["incidents"]
    assert len(replayed) >= 5

    live = tmp_path / "live" / "auth.log"
    live.parent.mkdir()
    live.write_text("")
    # batches split the lines differently from the replay's
    config = _followed_config(tmp_path / "live", live, batch_lines=7)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "soc", "--config", str(config), "run"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = open_store(f"sqlite:///{tmp_path}/live/soc.db")
    try:
        # appended in uneven chunks, as a busy sshd writes them
        position, size = 0, 1
        while position < len(sample):
            with live.open("a", encoding="utf-8") as f:
                f.writelines(sample[position : position + size])
            position += size
            size = size * 3 % 997 + 1
            time.sleep(0.005)
        deadline = time.monotonic() + 60
        while store.counters("auth").get("lines", 0) < len(sample):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "soc run did not ingest the file"
            time.sleep(0.05)
        # live, every incident has a report within seconds (a batch's comes later)
        while not all(store.analyses(int(i.id or 0)) for i in store.list_incidents(limit=1000)):
            assert time.monotonic() < deadline, "soc run left incidents without a report"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()
    assert proc.returncode == 0, err
    assert out.decode().startswith(f"{len(sample)} lines")
    assert main(["--config", str(config), "incidents", "--json", "--limit", "10000"]) == 0
    stored = json.loads(capsys.readouterr().out)["incidents"]
    assert _incident_facts(stored) == _incident_facts(replayed)
    # A SIGTERM keeps the campaigns still going open (the replay closed them at the
    # end of its input): the next start continues them instead of opening new ones.
    still_open = {i["id"] for i in stored if not i["closed"]}
    assert still_open and len(still_open) < len(stored)
    # and every incident left with a report, whatever its batch was doing at SIGTERM
    store = open_store(f"sqlite:///{tmp_path}/live/soc.db")
    try:
        assert all(store.analyses(int(i["id"])) for i in stored)
    finally:
        store.close()
    again = subprocess.run(
        [*cmd, "--once"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert (again.returncode, again.stdout) == (0, "0 lines, 0 events, 0 unparsed, 0 incidents\n")
    assert "engine state continued" in again.stderr, again.stderr
    assert re.search(r"soc: engine state saved \([\d,]+ KiB\)", again.stderr), again.stderr
    assert main(["--config", str(config), "incidents", "--json", "--limit", "10000"]) == 0
    after = json.loads(capsys.readouterr().out)["incidents"]
    assert _incident_facts(after) == _incident_facts(stored)
    assert {i["id"] for i in after if not i["closed"]} == still_open


def test_an_elasticsearch_outage_loses_no_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path}/r.db"
    es = FakeElasticsearch().start()
    url = es.url
    es.stop()  # the port is known and nothing listens on it: the cluster is down

    def config(drain: float) -> Path:
        path = _config(
            tmp_path,
            f"""
[[exports]]
name = "elastic"
type = "elasticsearch"
hosts = ["{url}"]
max_retries = 0
request_timeout = 2.0
backoff_base = 0.1
backoff_max = 0.2
""",
        )
        text = path.read_text().replace(
            "export_drain_seconds = 10.0", f"export_drain_seconds = {drain}"
        )
        path.write_text(text)
        return path

    down = config(0.5)
    args = ["replay", str(SAMPLES / "auth.log"), "--db", db, "--summary-json", "-"]
    assert main(["--config", str(down), *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    incidents = len(summary["incidents"])
    assert incidents >= 5
    assert summary["exports"]["elastic"]["delivered"] == 0
    assert summary["exports"]["elastic"]["pending"] == incidents
    assert summary["exports"]["elastic"]["last_error"]
    # the cluster comes back on the same address; the next run delivers the backlog
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with es:
        up = str(config(10.0))
        assert main(["--config", up, "replay", str(empty), "--db", db, "--summary-json", "-"]) == 0
        later = json.loads(capsys.readouterr().out)
        documents = es.documents("logs-soc.alerts")
    assert later["exports"]["elastic"] == {
        "delivered": incidents,
        "failed": 0,
        "pending": 0,
        "last_error": None,
    }
    assert sorted(d["soc"]["incident"]["id"] for d in documents.values()) == sorted(
        i["id"] for i in summary["incidents"]
    )


def test_a_database_outage_loses_nothing(
    tmp_path: Path, postgres_url: str, postgres_admin_url: str
) -> None:
    """PostgreSQL refuses connections and drops the engine's mid-run; it resumes exactly."""
    import threading

    import sqlalchemy as sa

    lines = [_failed(s % 60, f"203.0.113.{1 + s // 20}", minute=s // 60) for s in range(200)]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines[:100]) + "\n")
    config = _followed_config(tmp_path, log, batch_lines=10)
    settings = load_settings(config, environ={"SOC_STORE__URL": postgres_url})
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock())
    database = sa.make_url(postgres_url).database
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        _step_until(engine, 100)
        with admin.connect() as conn:  # the server "restarts": no connections, old ones cut
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
        with log.open("a") as f:
            f.write("\n".join(lines[100:]) + "\n")
        worker = threading.Thread(target=_step_until, args=(engine, 200))
        worker.start()
        deadline = time.monotonic() + 20
        while engine.report.store_retries < 3:  # the engine keeps trying, holding the batch
            assert time.monotonic() < deadline, "the engine did not retry its commit"
            time.sleep(0.05)
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        worker.join(timeout=60)
        assert not worker.is_alive()
        engine.finish()
        assert store.counters("auth")["lines"] == 200
        assert store.counters("auth")["kind.auth_failure"] == 200
        stored = store.list_incidents(limit=100)
        # ten addresses, twenty failures each within 20 s: ten brute forces, all stored
        assert sorted((i.source_ips[0], i.failures) for i in stored) == [
            (f"203.0.113.{n}", 20) for n in sorted(range(1, 11), key=str)
        ]
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        engine.close()
        store.close()


def test_an_attacker_back_after_a_quiet_gap_is_a_slow_brute_force_that_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 6 failures at 10:00 (a brute force), 3 at 10:20, 1 at 10:40: each burst is its own
    # campaign (gaps over quiet_seconds, 15 min), but 10 failures within the hour
    lines = [_failed(s, "203.0.113.77") for s in range(6)]
    lines += [_failed(s, "203.0.113.77", minute=20) for s in range(3)]
    lines += [_failed(0, "203.0.113.77", minute=40)]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    db = f"sqlite:///{tmp_path}/r.db"
    summary = _replay(tmp_path, capsys, str(log), "--db", db)
    assert [(i["kind"], i["failures"]) for i in summary["incidents"]] == [
        ("brute_force", 6),
        ("slow_brute_force", 1),
    ]
    store = open_store(db)
    try:
        slow = store.get_incident(summary["incidents"][1]["id"])
    finally:
        store.close()
    assert slow is not None
    assert slow.facts["peak_failures_in_horizon"] == 10
    assert slow.facts["horizon_seconds"] == 3600.0


def test_window_length_changes_on_the_running_engine(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    config = _followed_config(tmp_path, log, batch_lines=3)
    settings = load_settings(config, environ={})
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock())
    try:
        # five failures 8 s apart: 32 s from first to last, never 5 within 15 s
        with log.open("a") as f:
            f.write("\n".join(_failed(s, "203.0.113.1") for s in range(0, 40, 8)) + "\n")
        _step_until(engine, 5)
        assert engine.report.incident_ids == {}
        engine.set_window(60)
        assert engine.window_seconds == 60.0
        with pytest.raises(Exception, match="more than 0"):
            engine.set_window(0)
        with log.open("a") as f:
            f.write("\n".join(_failed(s, "203.0.113.2", minute=5) for s in range(0, 40, 8)) + "\n")
        _step_until(engine, 10)
        engine.finish()
        stored = [store.get_incident(i) for i in engine.report.incident_ids]
        assert [(i.source_ips, i.facts["window_seconds"]) for i in stored if i] == [
            (["203.0.113.2"], 60.0)
        ]
        # the charts' windows follow: 15 s windows before the change, 60 s after
        rows = {
            b.key: (b.windows, b.failures)
            for b in store.aggregates(0, 2e9, 3600, key_types=["ip"], by_key=True)
        }
        assert rows == {"203.0.113.1": (3, 5), "203.0.113.2": (1, 5)}
    finally:
        engine.close()
        store.close()
