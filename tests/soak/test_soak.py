"""Soak test of "restart means continue": ``soc run`` killed again and again must lose nothing.

A writer thread appends realistic sshd syslog lines, stamped with the wall clock,
to a log at a steady rate, rotating it by rename and by copytruncate (the
rotation code of ``tests/acquire/tail_harness.py``). It knows the truth: every
line it wrote and, per address, every failed password. A dozen attackers fail
without pause for the whole run, each one campaign; legitimate users log in,
now and then after a typo, among cron, sudo and systemd noise.

``python -m soc run`` follows the log in a subprocess and is killed with SIGKILL
every few seconds (seeded), then started again at once; one of the restarts is
a clean SIGTERM instead. The PostgreSQL variant also stops its own throwaway
server for a while as the writer goes on, kills the engine during that outage
and starts it again: an engine must wait for the database, not exit.

At the end the writer stops, the engine starts one last time, reads everything,
is left idle until its windows have closed, and is stopped with SIGTERM. Then,
exactly: the store counted every line written; every attacker is ONE incident
whose failures are the failures written, still open (a clean stop does not
close a campaign), and nothing else is an incident; the stored windows of every
address hold its failures written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from soc.events import Event, failure_count
from soc.parse import make_parser
from soc.parse.base import ParseConfig
from soc.store import SqlStore, open_store
from tests.soak.conftest import ThrowawayPostgres
from tests.soak.traffic import ATTACKERS, ROTATIONS, SshdTraffic, Truth, WriterThread

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SOURCE = "auth"

#: Lines written per second (both variants).
RATE = 700
#: The engine's settings that the waits below depend on.
WINDOW_SECONDS = 5.0
LATE_SECONDS = 2.0
QUIET_SECONDS = 60.0  # well above any downtime of the engine: campaigns never go quiet
STORE_RETRY_SECONDS = 120.0  # outlives the outage
TICK_SECONDS = 0.5
#: Seconds between restarts (drawn uniformly, seeded), and which restart is a SIGTERM.
RESTART_EVERY = (2.0, 5.5)
CLEAN_RESTART = 5
#: Idle time after the last line is read: the last windows close in event time,
#: which an idle engine moves on with the wall clock, plus a margin.
IDLE_SECONDS = WINDOW_SECONDS + LATE_SECONDS + 4.0
#: How long the last engine may take to read what is left.
CATCH_UP_SECONDS = 90.0


def test_the_traffic_counts_failures_as_the_parser_does() -> None:
    """The writer's truth is the product's: each failed password is one failure, nothing else.

    (A cheap check of the generator itself, so that a soak failure is the engine's.)
    """
    traffic = SshdTraffic(random.Random(5))
    text = b"".join(traffic.take(100, time.time()) for _ in range(60)).decode()
    parser = make_parser(ParseConfig(format="syslog", timezone="UTC"), reference_time=time.time())
    parsed: Counter[str] = Counter()
    unknown: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        result = parser.parse(line, number)
        if isinstance(result, Event):
            if failure_count(result) and result.key_address is not None:
                parsed[result.key_address] += failure_count(result)
        elif not result.recognized:
            unknown.append(line)
    assert traffic.truth.lines == 6000
    assert not unknown, unknown[:5]
    assert parsed == traffic.truth.failures
    assert set(parsed) > set(ATTACKERS)  # every attacker failed, and some users mistyped


# --- the engine processes ------------------------------------------------------------------
@dataclass
class Run:
    """One ``soc run`` process: how it ended, and where its output went."""

    number: int
    proc: subprocess.Popen[bytes]
    stderr: Path
    ended: str = ""
    reported: bool = False  # an exit of its own already recorded as a problem


class Engines:
    """``python -m soc run`` started, killed and started again; every run's stderr kept."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.logs = workdir / "engines"
        self.logs.mkdir()
        self.runs: list[Run] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env

    @property
    def current(self) -> Run:
        return self.runs[-1]

    def start(self) -> Run:
        number = len(self.runs) + 1
        stderr = self.logs / f"engine-{number:02d}.stderr"
        with (
            (self.logs / f"engine-{number:02d}.stdout").open("wb") as out,
            stderr.open("wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-m", "soc", "--config", str(self.config), "run"],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        run = Run(number, proc, stderr)
        self.runs.append(run)
        return run

    def kill9(self) -> None:
        run = self.current
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGKILL)
        code = run.proc.wait()
        run.ended = "SIGKILL" if code == -signal.SIGKILL else f"exited {code} before SIGKILL"

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM the current run; its exit code, or None if it did not exit in time."""
        run = self.current
        run.proc.send_signal(signal.SIGTERM)
        try:
            code = run.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
            run.ended = f"SIGTERM, still running after {timeout:.0f} s: SIGKILL"
            return None
        run.ended = f"SIGTERM, exit {code}"
        return code

    def tails(self, runs: int = 3, lines: int = 12) -> str:
        """The end of the last runs' stderr, for failure messages."""
        parts = []
        for run in self.runs[-runs:]:
            parts.append(f"engine #{run.number} ({run.ended or 'running'}):\n{_said(run, lines)}")
        return "\n".join(parts)

    def close(self) -> None:
        for run in self.runs:
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.proc.wait()


def _said(run: Run, lines: int = 5) -> str:
    """The end of ``run``'s stderr, indented."""
    text = run.stderr.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(f"    {line}" for line in text[-lines:]) or "    (nothing on stderr)"


def _watch(engines: Engines, problems: list[str], phase: str, *, restart: bool = True) -> None:
    """Record an engine that exited on its own (it must not), and start another."""
    run = engines.current
    code = run.proc.poll()
    if code is None:
        return
    if not run.reported:
        run.reported = True
        run.ended = f"exited {code} by itself"
        problems.append(
            f"engine #{run.number} exited by itself with code {code} {phase}:\n{_said(run)}"
        )
    if restart:
        engines.start()


def _config(tmp_path: Path, url: str, log: Path) -> Path:
    config = tmp_path / "soc.toml"
    config.write_text(
        f"""
[store]
url = {json.dumps(url)}

[engine]
idle_sleep = 0.05
tick_seconds = {TICK_SECONDS}
store_retry_seconds = {STORE_RETRY_SECONDS}

[window]
seconds = {WINDOW_SECONDS}
late_seconds = {LATE_SECONDS}

[detect]
quiet_seconds = {QUIET_SECONDS}
include_host_addresses = false

[analyze]
chain = ["offline"]  # no model: the deterministic analyst only

[similar]
enabled = false

[respond]
mode = "dry_run"
playbooks_dir = {json.dumps(str(REPO / "playbooks"))}

[api]
follow_intake = false

[[sources]]
name = "{SOURCE}"
type = "file"
paths = [{json.dumps(str(log))}]
start_at = "beginning"
read_history = true  # killed before its first commit, a start still finds rotated lines
poll_interval = 0.1
format = "syslog"
timezone = "UTC"
""",
        encoding="utf-8",
    )
    return config


# --- the soak ------------------------------------------------------------------------------
@dataclass
class Outage:
    """Stop ``cluster`` ``at`` seconds into the run for ``seconds``; kill the engine meanwhile."""

    cluster: ThrowawayPostgres
    at: float
    seconds: float
    kill_after: float = 6.0
    calm_before: float = 5.0  # no restart this long before it


def _outage(outage: Outage, engines: Engines, problems: list[str]) -> None:
    outage.cluster.stop("fast")
    began = time.monotonic()
    phase = "during the database outage"

    def watch_until(deadline: float) -> None:
        while time.monotonic() < deadline:
            _watch(engines, problems, phase, restart=False)
            time.sleep(0.1)

    watch_until(began + outage.kill_after)
    engines.kill9()  # the engine that went into the outage ...
    engines.start()  # ... and one that starts while the database is down
    watch_until(began + outage.seconds)
    # Idle (the database is down), the engine must still be waiting for it.
    _watch(engines, problems, phase, restart=False)
    if engines.current.proc.poll() is not None:
        problems.append(
            f"no engine alive at the end of the {outage.seconds:.0f} s outage "
            f"(store_retry_seconds = {STORE_RETRY_SECONDS:.0f})"
        )
    outage.cluster.start()


def _lines_read(store: SqlStore) -> int:
    return store.counters(SOURCE).get("lines", 0)


def soak(
    tmp_path: Path, url: str, *, seed: int, seconds: float, outage: Outage | None = None
) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    log = log_dir / "auth.log"
    log.write_bytes(b"")
    engines = Engines(_config(tmp_path, url, log), tmp_path)
    writer = WriterThread(log, seed, RATE)
    schedule = random.Random(seed + 3)
    problems: list[str] = []
    restarts = 0
    began = time.monotonic()
    try:
        engines.start()
        writer.start()
        next_restart = began + schedule.uniform(*RESTART_EVERY)
        pending_outage = outage
        while time.monotonic() - began < seconds:
            now = time.monotonic()
            if pending_outage is not None and now - began >= pending_outage.at:
                _outage(pending_outage, engines, problems)
                pending_outage = None
                next_restart = time.monotonic() + schedule.uniform(*RESTART_EVERY)
            elif now >= next_restart and not (
                # The engine goes into the outage running, past its start.
                pending_outage is not None
                and now - began > pending_outage.at - pending_outage.calm_before
            ):
                restarts += 1
                if restarts == CLEAN_RESTART:
                    code = engines.terminate(60)
                    if code != 0:
                        run = engines.current
                        problems.append(
                            f"engine #{run.number} stopped with SIGTERM: exit {code}\n{_said(run)}"
                        )
                else:
                    engines.kill9()
                engines.start()
                next_restart = now + schedule.uniform(*RESTART_EVERY)
            _watch(engines, problems, "while the writer was writing")
            time.sleep(0.1)
        truth = writer.finish()
        written_for = time.monotonic() - began
        # The last start: read what is left, close the windows, stop cleanly.
        engines.kill9()
        engines.start()
        store = open_store(url)
        try:
            deadline = time.monotonic() + CATCH_UP_SECONDS
            while (read := _lines_read(store)) != truth.lines:
                _watch(engines, problems, "while reading the rest")
                if time.monotonic() > deadline:
                    problems.append(
                        f"the engine read {read} of {truth.lines} lines written "
                        f"{CATCH_UP_SECONDS:.0f} s after the writer stopped"
                    )
                    break
                time.sleep(0.25)
        finally:
            store.close()
        idle_until = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < idle_until:
            _watch(engines, problems, "while idle at the end")
            time.sleep(0.1)
        code = engines.terminate(60)
        if code != 0:
            run = engines.current
            problems.append(f"the last engine #{run.number} stopped with exit {code}\n{_said(run)}")
    finally:
        try:
            writer.stop()
        finally:
            engines.close()  # no engine outlives the test

    kills = sum(run.ended == "SIGKILL" for run in engines.runs)
    summary = (
        f"{truth.lines} lines written in {written_for:.0f} s, {len(writer.rotations)} rotations "
        f"({dict(Counter(writer.rotations))}), {len(engines.runs)} engine runs, {kills} SIGKILLs, "
        f"{sum(truth.failures[a] for a in ATTACKERS)} attacker failures; "
        f"whole soak {time.monotonic() - began:.0f} s"
    )
    print(summary)
    # The harness did what it says, or the verdict below means nothing.
    assert truth.lines >= 0.8 * RATE * seconds, f"the writer fell behind: {summary}"
    assert set(writer.rotations) == set(ROTATIONS), summary
    assert kills >= 8, summary

    problems.extend(_verify(url, truth))
    assert not problems, (
        f"{len(problems)} problems ({summary}):\n"
        + "\n".join(f"- {p}" for p in problems)
        + f"\n{engines.tails()}"
    )


def _verify(url: str, truth: Truth) -> list[str]:
    """Every exact check of the store against the truth; what does not hold, with figures."""
    store = open_store(url)
    try:
        lines = _lines_read(store)
        incidents = store.list_incidents(limit=100_000)
        # Failures per address over every stored window of all time (key_type "ip").
        windows = {a.key: a.failures for a in store.top_attackers(0.0, 100_000, key_types=["ip"])}
    finally:
        store.close()
    problems: list[str] = []
    if lines != truth.lines:
        problems.append(f"store counted {lines} lines of source {SOURCE!r}, {truth.lines} written")
    wrong: list[str] = []
    still_open: list[str] = []
    for addr in ATTACKERS:
        mine = [i for i in incidents if i.key == addr or addr in i.source_ips]
        counts = [i.failures for i in mine]
        if len(mine) != 1 or sum(counts) != truth.failures[addr]:
            wrong.append(
                f"{addr}: {truth.failures[addr]} failures written, {len(mine)} incidents "
                f"with {counts} (sum {sum(counts)})"
            )
        still_open.extend(f"{addr}: #{i.id} closed" for i in mine if i.closed)
    if wrong:
        problems.append(
            f"{len(wrong)} of {len(ATTACKERS)} attackers are not exactly one incident with "
            "every failure written:\n    " + "\n    ".join(wrong)
        )
    if still_open:
        problems.append(
            "incidents of campaigns still going were closed (a clean stop must leave them "
            "open):\n    " + "\n    ".join(still_open)
        )
    others = [i for i in incidents if i.key not in ATTACKERS]
    if others:
        problems.append(
            f"{len(others)} incidents of no attacker: "
            + ", ".join(f"#{i.id} {i.kind} {i.key} ({i.failures} failures)" for i in others[:10])
        )
    # Every address that failed (attackers and users' typos): its windows hold its failures.
    off = [
        f"{addr}: {truth.failures[addr]} failures written, {windows.get(addr, 0)} in windows"
        for addr in sorted(truth.failures)
        if windows.get(addr, 0) != truth.failures[addr]
    ]
    if off:
        problems.append(
            f"{len(off)} of {len(truth.failures)} addresses' window failures differ from "
            "the failures written:\n    " + "\n    ".join(off)
        )
    return problems


def test_soak_sqlite_kill_9_restarts(tmp_path: Path) -> None:
    soak(tmp_path, f"sqlite:///{tmp_path}/soc.db", seed=1, seconds=60.0)


def test_soak_postgresql_kill_9_restarts_and_an_outage(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    outage = Outage(throwaway_postgres, at=20.0, seconds=22.0)
    soak(tmp_path, throwaway_postgres.url, seed=2, seconds=70.0, outage=outage)
    assert throwaway_postgres.stops == 1
