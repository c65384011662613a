"""The engine end to end: sources → parsers → store, with exact restart semantics."""

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
from soc.engine import COMMIT_PARTS, STAGES, Engine
from soc.events import Line
from soc.samples import write_samples
from soc.store import open_store

SSHD_LINES = [
    "Nov 21 10:00:01 web01 sshd[100]: Failed password for root from 203.0.113.9 port 40000 ssh2",
    "Nov 21 10:00:02 web01 sshd[100]: Failed password for invalid user admin from 203.0.113.9 "
    "port 40001 ssh2",
    "Nov 21 10:00:03 web01 sshd[101]: Accepted publickey for deploy from 198.51.100.7 port 5000 "
    "ssh2: ED25519 SHA256:abc",
    "Nov 21 10:00:04 web01 sshd[102]: Server listening on 0.0.0.0 port 22.",
    "this line is not a log line at all",
]
ACCESS_LINES = [
    '192.0.2.44 - - [21/Nov/2025:10:00:05 +0000] "GET /wp-login.php HTTP/1.1" 404 153 "-" '
    '"Mozilla/5.0"',
    '192.0.2.44 - - [21/Nov/2025:10:00:06 +0000] "GET /.env HTTP/1.1" 404 153 "-" "curl/8.0"',
]


def _config(tmp_path: Path, log: Path, *, start_at: str = "beginning") -> Path:
    config = tmp_path / "soc.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path}/soc.db"

[engine]
batch_lines = 2
idle_sleep = 0.05

[parse]
timezone = "UTC"
year = 2025

[[sources]]
name = "auth"
type = "file"
paths = ["{log}"]
start_at = "{start_at}"
poll_interval = 0.05
""",
        encoding="utf-8",
    )
    return config


def test_engine_commits_counters_with_checkpoints_and_resumes_exactly(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("\n".join(SSHD_LINES) + "\n", encoding="utf-8")
    settings = load_settings(_config(tmp_path, log), environ={})
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock())
    assert engine.step() == len(SSHD_LINES)
    engine.close()
    assert engine.report.parse.by_kind == {"auth_failure": 1, "invalid_user": 1, "auth_success": 1}
    assert engine.report.parse.unparsed_total == 1
    assert engine.report.batches == 3  # batch_lines = 2: every batch is its own transaction
    assert store.counters("auth") == {
        "lines": 5,
        "events": 3,
        "kind.auth_failure": 1,
        "kind.invalid_user": 1,
        "kind.auth_success": 1,
        "ignored": 1,
        "unparsed.no_match": 1,
    }
    assert store.load_checkpoint("auth") is not None

    # A restarted engine on the same store resumes after the last committed line.
    with log.open("a", encoding="utf-8") as f:
        f.write(SSHD_LINES[0].replace("10:00:01", "10:00:09") + "\n")
    engine = Engine(settings, store, SystemClock())
    assert engine.step() == 1
    engine.close()
    assert store.counters("auth")["lines"] == 6
    assert store.counters("auth")["kind.auth_failure"] == 2
    store.close()


def test_replay_detects_the_format_of_each_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = [
        "Nov 21 10:00:07 web01 kernel: [UFW BLOCK] IN=eth0 OUT= MAC= SRC=203.0.113.9 "
        "DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=1 PROTO=TCP SPT=4000 DPT=23 "
        "WINDOW=1024 RES=0x00 SYN URGP=0",
        "Nov 21 10:00:08 web01 sshd[104]: Failed password for deploy from 198.51.100.7 "
        "port 5001 ssh2",
    ]
    (tmp_path / "auth.log").write_text("\n".join(SSHD_LINES + extra) + "\n", encoding="utf-8")
    (tmp_path / "access.log").write_text("\n".join(ACCESS_LINES) + "\n", encoding="utf-8")
    status = main(
        [
            "--config",
            str(_config(tmp_path, tmp_path / "unused.log")),
            "replay",
            str(tmp_path / "auth.log"),
            str(tmp_path / "access.log"),
            "--summary-json",
            "-",
        ]
    )
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["lines"] == len(SSHD_LINES) + 2 + len(ACCESS_LINES)
    assert summary["events"] == 7
    assert summary["unparsed"] == 1
    assert summary["by_kind"]["web_request"] == 2
    top = {
        row["address"]: (row["failures"], row["successes"])
        for row in summary["top_failing_addresses"]
    }
    # a firewall drop (ECS outcome success: the firewall did its job) is not a login
    assert top == {"203.0.113.9": (2, 0), "192.0.2.44": (2, 0), "198.51.100.7": (1, 1)}
    assert summary["first_seen"] == "2025-11-21T10:00:01.000000Z"
    assert summary["last_seen"] == "2025-11-21T10:00:08.000000Z"


def test_replay_prints_findings_for_a_person(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "<script>alert(1)</script>\x1b[31m"
    lines = [
        f"Nov 21 10:00:01 web01 sshd[100]: Invalid user {hostile} from 203.0.113.9 port 1",
        f"Nov 21 10:00:03 web01 sshd[100]: Failed password for invalid user {hostile} from"
        " 203.0.113.9 port 1 ssh2",
    ]
    (tmp_path / "auth.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["replay", str(tmp_path / "auth.log"), "--timezone", "UTC"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 lines, 2 events, 0 unparsed, 0 ignored\n")
    # One attempt (the announcement and the failure are the same one).
    assert re.search(r"203\.0\.113\.9 +1\n", out), out
    assert "203.0.113.9" in out
    assert "\x1b" not in out  # an attacker's escape sequence never reaches the terminal
    assert repr(hostile) in out


def test_soc_run_stops_cleanly_on_sigterm_and_keeps_its_place(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("\n".join(SSHD_LINES) + "\n", encoding="utf-8")
    config = _config(tmp_path, log)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "soc", "--config", str(config), "run"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = open_store(f"sqlite:///{tmp_path}/soc.db")
    try:
        deadline = time.monotonic() + 30
        while store.counters("auth").get("lines", 0) < len(SSHD_LINES):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "soc run did not ingest the file"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.decode().strip() == "5 lines, 3 events, 1 unparsed, 0 incidents"
    # A second run finds nothing new: the checkpoint was committed.
    second = subprocess.run(
        [*cmd, "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "0 lines, 0 events, 0 unparsed, 0 incidents"
    assert store.counters("auth")["lines"] == len(SSHD_LINES)
    store.close()


def test_soc_run_without_sources_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "no sources configured" in capsys.readouterr().err


def test_a_batch_of_interleaved_streams_keeps_each_streams_events_in_order(
    tmp_path: Path,
) -> None:
    # Two files' lines interleaved in one batch: each stream has its own parser, and
    # its events reach the windows and the detector in order, the lines of one stream
    # between which the other gave no event as one run.
    log = tmp_path / "auth.log"
    log.write_text("", encoding="utf-8")
    settings = load_settings(_config(tmp_path, log), environ={})
    engine = Engine(settings, open_store("sqlite://"), SystemClock())
    spec, source = engine.sources[0]
    a, b = str(tmp_path / "a.log"), str(tmp_path / "b.log")
    texts = [
        (a, SSHD_LINES[0]),
        (b, SSHD_LINES[3]),  # no event
        (a, SSHD_LINES[1]),
        (b, SSHD_LINES[2]),
        (a, SSHD_LINES[0].replace("10:00:01", "10:00:09")),
        (b, SSHD_LINES[4]),  # unparsed
    ]
    batch = [Line(text, "auth", stream, n) for n, (stream, text) in enumerate(texts, 1)]
    seen: list[tuple[str, list[int]]] = []
    add = engine.windower.add

    def spy(events: Any, name: str = "") -> Any:
        seen.append((name, [int(e.line) for e in events]))
        return add(events, name)

    engine.windower.add = spy  # type: ignore[method-assign,assignment]
    engine._process(spec, source, batch)
    assert seen == [(f"auth:{a}", [1, 3]), (f"auth:{b}", [4]), (f"auth:{a}", [5])]
    assert set(engine._parsers) == {("auth", a), ("auth", b)}
    parse = engine.report.parse
    assert (parse.lines, parse.events, parse.unparsed_total) == (6, 4, 1)
    engine.close()


def test_each_stage_is_timed_once(tmp_path: Path) -> None:
    """The engine's stage timings add up to no more than its own time (no stage counted
    twice: the sources' time is what processing the batches left), each stage took
    some, and the commit's parts fit in the commit."""
    (log,) = [
        p for p in write_samples(tmp_path, lines=20_000, formats=["auth.log"]) if p.suffix == ".log"
    ]
    settings = load_settings(_config(tmp_path, log), environ={})
    settings.engine.batch_lines = 4_096
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock())
    started = time.perf_counter()
    while engine.step():
        pass
    engine.finish()
    elapsed = time.perf_counter() - started
    engine.close()
    store.close()
    seconds = engine.report.seconds
    assert engine.report.parse.lines == 20_000
    assert list(seconds) == [*STAGES, *COMMIT_PARTS]
    assert all(spent > 0 for spent in seconds.values()), seconds
    assert sum(seconds[name] for name in STAGES) <= elapsed
    assert seconds["commit"] >= seconds["commit_windows"] + seconds["commit_incidents"]
