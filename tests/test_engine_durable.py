"""A durable engine (``soc run``, the command center live) continues after a crash or a
restart exactly as if it had never stopped: counters, incidents and windows."""

from __future__ import annotations

import base64
import json
import random
import time
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from soc.clock import ManualClock, SystemClock
from soc.config import Settings, load_settings
from soc.engine import Engine
from soc.engine_state import STATE_CHECKPOINT
from soc.store import SqlStore, open_store
from soc.store.sql import window_aggregates

T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC
USERS = ["root", "admin", "oracle", "test", "ubuntu", "git", "postgres", "pi"]
#: Counters that are levels, not running counts (they need not add up).
GAUGES = ("open_windows", "open_keys", "keys", "users", "open_incidents")


def _line(t: float, pid: int, message: str) -> str:
    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(t)).replace(" 0", "  ", 1)
    return f"{stamp} web01 sshd[{pid}]: {message}"


def realistic_log(seed: int) -> list[str]:
    """An hour of sshd: brute force with quiet gaps, a spray, a botnet on one user, an
    office where people mistype and get in, and noise; in time order."""
    rng = random.Random(seed)
    timed: list[tuple[float, str]] = []
    for k in range(5):  # brute force, some of it in two bursts
        ip, t = f"203.0.113.{k + 10}", T0 + rng.uniform(0, 600)
        for burst in range(1 + k % 2):
            t += burst * 1500
            for _ in range(rng.randint(20, 120)):
                t += rng.expovariate(1 / 2.0)
                user = rng.choice(USERS)
                timed.append((t, f"Failed password for {user} from {ip} port 4{k}000 ssh2"))
    t = T0 + 900
    for i in range(40):  # a spray of invalid names
        t += rng.uniform(3, 20)
        timed.append(
            (t, f"Failed password for invalid user u{i} from 198.51.100.23 port 5000 ssh2")
        )
    for i in range(25):  # a botnet, each address quiet, all on admin
        at = T0 + 1800 + rng.uniform(0, 600)
        timed.append((at, f"Failed password for admin from 100.64.7.{i} port 6000 ssh2"))
    for person in ("alice", "bob", "carol"):  # the office
        at = T0 + rng.uniform(0, 3000)
        timed.append((at, f"Failed password for {person} from 192.0.2.80 port 7000 ssh2"))
        timed.append((at + 4, f"Accepted password for {person} from 192.0.2.80 port 7001 ssh2"))
    for _ in range(300):
        at = T0 + rng.uniform(0, 3600)
        timed.append((at, "Connection closed by 198.18.0.9 port 22 [preauth]"))
    timed.sort(key=lambda item: item[0])
    return [_line(t, 1000 + i % 50, message) for i, (t, message) in enumerate(timed)]


def connections_log(seed: int) -> list[str]:
    """Interleaved sshd connections whose meaning spans lines: agents offering only keys
    (one failed attempt where the connection ends), and failures logged without an
    address ("Disconnecting: Too many authentication failures") that take their
    connection's; in time order."""
    rng = random.Random(seed)
    timed: list[tuple[float, int, str]] = []
    for c in range(60):
        ip, pid, port = f"203.0.113.{60 + c % 6}", 20_000 + c, 50_000 + c
        t = T0 + rng.uniform(0, 900)
        timed.append((t, pid, f'Connection from {ip} port {port} on 10.0.0.1 port 22 rdomain ""'))
        for _ in range(rng.randint(1, 4)):
            t += rng.uniform(0.1, 3)
            key = rng.choice(["RSA SHA256:aa", "ED25519 SHA256:bb", "ECDSA SHA256:cc"])
            timed.append((t, pid, f"Failed publickey for deploy from {ip} port {port} ssh2: {key}"))
        t += rng.uniform(0.1, 3)
        if c % 3:
            timed.append(
                (
                    t,
                    pid,
                    f"Connection closed by authenticating user deploy {ip} port {port} [preauth]",
                )
            )
        else:
            timed.append((t, pid, "Disconnecting: Too many authentication failures [preauth]"))
            timed.append((t + 0.2, pid, f"Connection closed by {ip} port {port} [preauth]"))
    timed.sort(key=lambda item: item[0])
    return [_line(t, pid, message) for t, pid, message in timed]


def _one_attacker(n: int) -> list[str]:
    """``n`` failed passwords from 203.0.113.5, one a second from ``T0``."""
    return [
        _line(T0 + i, 100, f"Failed password for root from 203.0.113.5 port {4000 + i} ssh2")
        for i in range(n)
    ]


def _settings(tmp_path: Path, log: Path, db: str) -> Settings:
    config = tmp_path / f"{db}.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path}/{db}.db"

[engine]
batch_lines = 37
commit_seconds = 0.0

[parse]
timezone = "UTC"
year = 2025

[detect]
include_host_addresses = false
quiet_seconds = 300

[[sources]]
name = "auth"
type = "file"
paths = ["{log}"]
start_at = "beginning"
poll_interval = 0.01
""",
        encoding="utf-8",
    )
    return load_settings(config, environ={})


def _read_all(engine: Engine, lines: int) -> None:
    deadline = time.monotonic() + 30
    while engine.report.parse.lines < lines:
        assert time.monotonic() < deadline, f"read {engine.report.parse.lines} of {lines} lines"
        engine.step()


def _what_was_stored(store: SqlStore) -> dict[str, Any]:
    pipeline = {
        name: value
        for name, value in store.counters("(pipeline)").items()
        if name.rpartition(".")[2] not in GAUGES
    }
    incidents = sorted(
        json.dumps((i.kind, i.source_ips, i.users, i.failures, i.successes))
        + json.dumps((i.first_seen, i.last_seen, i.closed))
        for i in store.list_incidents(limit=10_000)
    )
    w = window_aggregates
    with store.engine.connect() as conn:  # read-only: every stored window, as it is
        windows = sorted(
            tuple(row)
            for row in conn.execute(
                sa.select(w.c.key_type, w.c.key, w.c.window_start, w.c.events, w.c.failures)
            )
        )
    return {
        "lines": store.counters("auth"),
        "pipeline": pipeline,
        "incidents": incidents,
        "windows": windows,
    }


def _reference(tmp_path: Path, log: Path, lines: list[str]) -> dict[str, Any]:
    """The same lines read by one engine that never stopped, then flushed."""
    log.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    settings = _settings(tmp_path, log, "reference")
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock(), host_addresses=(), durable=True)
    try:
        _read_all(engine, len(lines))
        engine.finish()
    finally:
        engine.close()
    stored = _what_was_stored(store)
    store.close()
    log.unlink()
    return stored


def _killed_and_restarted(tmp_path: Path, log: Path, lines: list[str], seed: int) -> SqlStore:
    """The lines appended in random chunks, read by engines killed or stopped at random."""
    rng = random.Random(seed)
    settings = _settings(tmp_path, log, "live")
    store = open_store(settings.store.url)
    log.write_text("", encoding="utf-8")
    written = restarts = 0
    engine = Engine(settings, store, SystemClock(), host_addresses=(), durable=True)
    assert engine.report.state == "none saved"
    while written < len(lines):
        chunk = rng.randint(1, 40)
        with log.open("a", encoding="utf-8") as f:
            f.writelines(f"{line}\n" for line in lines[written : written + chunk])
        written = min(len(lines), written + chunk)
        for _ in range(rng.randint(1, 3)):
            engine.step()
        if rng.random() < 0.3:
            # A crash after any commit (what is staged is lost: the sources read it
            # again) or a clean restart; either way the next engine continues.
            if rng.random() < 0.5:
                engine.persist()
            engine.close()
            restarts += 1
            engine = Engine(settings, store, SystemClock(), host_addresses=(), durable=True)
            assert engine.report.state.startswith("continued"), engine.report.state
    deadline = time.monotonic() + 30
    while store.counters("auth").get("lines", 0) < len(lines):
        assert time.monotonic() < deadline, "the last engine did not read every line"
        engine.step()
    engine.finish()
    engine.close()
    assert restarts >= 5
    return store


def test_kills_and_restarts_lose_and_double_nothing(tmp_path: Path) -> None:
    lines = realistic_log(1)
    log = tmp_path / "auth.log"
    expected = _reference(tmp_path, log, lines)
    assert len(expected["incidents"]) >= 7, expected["incidents"]
    assert sum(row[4] for row in expected["windows"] if row[0] == "ip") >= 300
    store = _killed_and_restarted(tmp_path, log, lines, seed=2)
    assert _what_was_stored(store) == expected
    store.close()


def test_connections_spanning_a_restart_are_read_as_if_it_never_happened(
    tmp_path: Path,
) -> None:
    # The parser's memory of each connection (keys offered, its address) is saved
    # with the engine's state: a connection cut by a restart still counts once.
    lines = connections_log(3)
    log = tmp_path / "auth.log"
    expected = _reference(tmp_path, log, lines)
    # one failed attempt per connection: 40 keys rejected, 20 too-many-failures lines
    assert sum(row[4] for row in expected["windows"] if row[0] == "ip") == 60
    store = _killed_and_restarted(tmp_path, log, lines, seed=4)
    assert _what_was_stored(store) == expected
    store.close()


def test_a_restart_after_a_long_stop_closes_what_went_quiet(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    lines = _one_attacker(30)
    log.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    settings = _settings(tmp_path, log, "live")
    store = open_store(settings.store.url)
    clock = ManualClock(T0 + 100)
    engine = Engine(settings, store, clock, host_addresses=(), durable=True)
    _read_all(engine, len(lines))
    engine.persist()
    engine.close()
    [incident] = store.list_incidents()
    assert (incident.failures, incident.closed) == (30, False)

    clock.advance(3600)  # an hour later, nothing more was written
    engine = Engine(settings, store, clock, host_addresses=(), durable=True)
    assert engine.step() == 0
    engine.tick()
    [incident] = store.list_incidents()
    assert (incident.failures, incident.closed) == (30, True)
    # and its windows, open at the stop, were stored once the late lines' wait passed
    buckets = store.aggregates(T0 - 60, T0 + 60, 3600, key_types=["ip"])
    assert sum(b.failures for b in buckets) == 30
    engine.close()
    store.close()


def _half_read_and_saved(
    tmp_path: Path,
) -> tuple[Settings, SqlStore, Path, list[str], dict[str, Any]]:
    """15 of one attacker's 30 lines read by an engine that saved its state and stopped."""
    log = tmp_path / "auth.log"
    lines = _one_attacker(30)
    log.write_text("".join(f"{line}\n" for line in lines[:15]), encoding="utf-8")
    settings = _settings(tmp_path, log, "live")
    store = open_store(settings.store.url)
    engine = Engine(settings, store, SystemClock(), host_addresses=(), durable=True)
    _read_all(engine, 15)
    engine.persist()
    engine.close()
    saved = store.load_checkpoint(STATE_CHECKPOINT)
    assert saved is not None
    return settings, store, log, lines, saved


def test_state_that_cannot_be_continued_is_discarded_with_its_reason(tmp_path: Path) -> None:
    settings, store, log, lines, saved = _half_read_and_saved(tmp_path)
    assert saved["generation"] == 0
    # Written by a later version (or damaged): never a crash, and a new generation of
    # names, so the lost campaign's incident is not overwritten by a partial one.
    with store.transaction() as tx:
        tx.save_checkpoint(STATE_CHECKPOINT, saved | {"version": 99})
    with log.open("a", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines[15:])
    engine = Engine(settings, store, SystemClock(), host_addresses=(), durable=True)
    assert engine.report.state == (
        "discarded (version 99, not one of 1, 2); incidents are named @1 on"
    )
    _read_all(engine, 15)
    engine.persist()
    engine.close()
    # (both still open: a clean stop keeps campaigns going)
    incidents = {key: i.failures for key, i in store.open_incidents().items()}
    assert incidents == {
        "auth:203.0.113.5:1764000000000": 15,
        "auth:203.0.113.5:1764000015000@1": 15,
    }
    store.close()


def test_state_saved_before_parsers_were_is_continued(tmp_path: Path) -> None:
    # Version 1 state has no parser states: the windows and the detector continue,
    # the parsers start afresh.
    settings, store, log, lines, saved = _half_read_and_saved(tmp_path)
    assert saved["version"] == 2
    body = json.loads(zlib.decompress(base64.b64decode(saved["data"])))
    assert [row[:3] for row in body.pop("parsers")] == [["auth", str(log), "syslog"]]
    old = base64.b64encode(zlib.compress(json.dumps(body).encode())).decode()
    with store.transaction() as tx:
        tx.save_checkpoint(STATE_CHECKPOINT, saved | {"version": 1, "data": old})
    with log.open("a", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines[15:])
    engine = Engine(settings, store, SystemClock(), host_addresses=(), durable=True)
    assert engine.report.state == "continued (1 open incidents, 2 windows)"
    _read_all(engine, 15)
    engine.persist()
    engine.close()
    assert {i.failures for i in store.open_incidents().values()} == {30}
    store.close()
