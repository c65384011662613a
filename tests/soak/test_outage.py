"""An idle `soc run` outlives a PostgreSQL outage; one past `store_retry_seconds` is a
one-line error and exit status 2, never a traceback. (A real cluster, really stopped.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from soc.app.runtime import Runtime
from soc.config import load_settings
from soc.store import open_store
from tests.soak.conftest import ThrowawayPostgres

ROOT = Path(__file__).resolve().parents[2]
LINE = "Dec  6 10:00:{s:02d} web01 sshd[7]: Failed password for root from 203.0.113.9 port 4 ssh2"


def _config(tmp_path: Path, url: str, log: Path, retry: float) -> Path:
    config = tmp_path / "soc.toml"
    config.write_text(
        f"""
[store]
url = "{url}"

[engine]
idle_sleep = 0.05
tick_seconds = 0.2
store_retry_seconds = {retry}

[analyze]
chain = ["offline"]

[similar]
enabled = false

[detect]
include_host_addresses = false

[parse]
timezone = "UTC"
year = 2025

[[sources]]
name = "auth"
type = "file"
paths = ["{log}"]
start_at = "beginning"
poll_interval = 0.05
""",
        encoding="utf-8",
    )
    return config


def _soc_run(config: Path, err: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with err.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "soc", "--config", str(config), "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )


def _wait_for(condition: object, what: str, seconds: float, err: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}; stderr:\n{err.read_text()[-3000:]}"
        time.sleep(0.1)


def test_an_idle_engine_outlives_an_outage_and_loses_nothing(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    pg = throwaway_postgres
    log, err = tmp_path / "auth.log", tmp_path / "err.txt"
    log.write_text("".join(LINE.format(s=s) + "\n" for s in range(10)), encoding="utf-8")
    proc = _soc_run(_config(tmp_path, pg.url, log, retry=120), err)
    store = open_store(pg.url)
    try:
        _wait_for(lambda: store.counters("auth").get("lines") == 10, "first lines", 60, err)
        store.close()
        pg.stop()  # idle now: only its once-a-tick reads touch the store
        with log.open("a", encoding="utf-8") as f:  # and lines arrive during the outage
            f.writelines(LINE.format(s=s) + "\n" for s in range(10, 25))
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert proc.poll() is None, err.read_text()[-3000:]
            time.sleep(0.2)
        pg.start()
        store = open_store(pg.url)
        _wait_for(lambda: store.counters("auth").get("lines") == 25, "lines after", 60, err)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, err.read_text()[-3000:]
        [incident] = store.list_incidents()
        assert incident.failures == 25  # one campaign, nothing lost or counted twice
        assert "store unavailable, retrying" in err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()


def test_an_outage_past_the_retry_time_is_one_line_and_exit_2(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    pg = throwaway_postgres
    log, err = tmp_path / "auth.log", tmp_path / "err.txt"
    log.write_text("", encoding="utf-8")
    proc = _soc_run(_config(tmp_path, pg.url, log, retry=2), err)
    try:
        _wait_for(lambda: "engine state" in err.read_text(), "engine started", 60, err)
        pg.stop()
        assert proc.wait(timeout=60) == 2, err.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.read_text()
    assert "Traceback" not in text, text
    last = text.rstrip("\n").splitlines()[-1]
    assert last.startswith("soc: error: ") and "cannot read the store" in last, text


def test_a_stop_while_waiting_for_the_store_at_start_up_is_clean(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    """Started during an outage, `soc run` waits for the database (store_retry_seconds),
    but a SIGTERM meanwhile (systemd stopping it) ends it at once, status 0."""
    pg = throwaway_postgres
    log, err = tmp_path / "auth.log", tmp_path / "err.txt"
    log.write_text(LINE.format(s=0) + "\n", encoding="utf-8")
    pg.stop()
    proc = _soc_run(_config(tmp_path, pg.url, log, retry=300), err)
    try:
        _wait_for(lambda: "store unavailable, retrying" in err.read_text(), "waiting", 60, err)
        assert proc.poll() is None, err.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, err.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        pg.start()
    text = err.read_text()
    assert "Traceback" not in text, text
    assert text.rstrip("\n").splitlines()[-1] == (
        "stopped while waiting for the store; nothing was read"
    ), text


def test_the_command_center_shows_an_outage_past_the_retry_time_and_carries_on(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    pg = throwaway_postgres
    log = tmp_path / "auth.log"
    log.write_text("".join(LINE.format(s=s) + "\n" for s in range(10)), encoding="utf-8")
    settings = load_settings(_config(tmp_path, pg.url, log, retry=1), environ={})
    runtime = Runtime(settings)
    err = tmp_path / "none.txt"
    err.write_text("")
    try:
        runtime.follow()
        _wait_for(lambda: runtime.status().lines == 10, "first lines", 60, err)
        # a live engine commits its state with the lines (shown with the sources' figures)
        _wait_for(lambda: runtime.status().details["state_bytes"] > 0, "state saved", 30, err)
        pg.stop()
        with log.open("a", encoding="utf-8") as f:
            f.writelines(LINE.format(s=s) + "\n" for s in range(10, 25))
        # Past the one-second retry time: shown, and the engine keeps going.
        _wait_for(lambda: runtime.status().outage is not None, "outage shown", 30, err)
        time.sleep(3)
        status = runtime.status()
        assert (status.running, status.error) == (True, None)
        text = status.outage_text()
        assert text is not None and text.startswith("The store is unreachable since ")
        assert "nothing is lost" in text
        pg.start()
        _wait_for(lambda: runtime.status().outage is None, "outage over", 60, err)
        store = runtime.store
        _wait_for(lambda: store.counters("auth").get("lines") == 25, "lines after", 60, err)
        [incident] = store.list_incidents()
        assert incident.failures == 25
    finally:
        runtime.close()
