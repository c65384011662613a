"""Slow tests of the file follower against a real writer process rotating its log.

A separate process (``tail_harness.py write``) appends numbered lines at a
steady pace and rotates the log as logrotate does, without waiting for the
reader. Every number must be read exactly once, in order within its file, with
the line number it has in that file. The kill -9 test runs the reader as a
process too (``tail_harness.py follow``), committing lines and checkpoint in
one store transaction, and kills it at random moments.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from soc.acquire.file import FileSource, FileSourceConfig
from soc.clock import SystemClock

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).with_name("tail_harness.py")
REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _harness(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HARNESS), *args],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _parse(text: str) -> int:
    """The line's number, or -1 if the line is not exactly what the writer wrote."""
    head, _, pad = text.partition(" ")
    if len(head) != 8 or not head.isdigit() or pad.strip("x"):
        return -1
    return int(head)


def assert_exactly_once(records: list[tuple[int, int]], manifest: dict[str, object]) -> None:
    """Each number once; within a generation (file) in order, at its line number."""
    total = manifest["lines"]
    assert isinstance(total, int)
    generations = manifest["generations"]
    assert isinstance(generations, list)
    numbers = [n for n, _ in records]
    assert -1 not in numbers, "a line that the writer did not write (read mid-line?)"
    counts = Counter(numbers)
    duplicated = sorted(n for n, c in counts.items() if c > 1)
    missing = sorted(set(range(total)) - set(counts))
    assert not duplicated, (
        f"{len(duplicated)} numbers read twice, first {duplicated[:10]}; "
        + _where(duplicated, manifest)
    )
    assert not missing, f"{len(missing)} numbers never read, first {missing[:10]}; " + _where(
        missing, manifest
    )
    assert len(numbers) == total
    starts = [g[0] for g in generations]
    last_seen: dict[int, int] = {}
    for n, line_no in records:
        g = bisect.bisect_right(starts, n) - 1
        assert n > last_seen.get(g, -1), f"{n} read after {last_seen[g]} in generation {g}"
        last_seen[g] = n
        assert line_no == n - starts[g] + 1, f"{n} has line_no {line_no} in generation {g}"


def _where(numbers: list[int], manifest: dict[str, object]) -> str:
    """Which generations ``numbers`` fall in, with the rotations before and after each:
    what a rare failure needs to be diagnosed from the CI log alone."""
    generations = manifest["generations"]
    rotations = manifest.get("rotations") or []
    assert isinstance(generations, list) and isinstance(rotations, list)
    starts = [g[0] for g in generations]
    counts = Counter(bisect.bisect_right(starts, n) - 1 for n in numbers)
    parts = []
    for g, n in sorted(counts.items())[:5]:
        first, end = generations[g]
        before = rotations[g - 1] if 0 < g <= len(rotations) else "start"
        after = rotations[g] if g < len(rotations) else "end"
        parts.append(f"generation {g} [{first}, {end}): {n} of {end - first}, {before} → {after}")
    return "; ".join(parts)


def _run_stress(
    tmp_path: Path, *, lines: int, rotations: int, seconds: float, use_watchdog: bool
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    manifest_path = tmp_path / "manifest.json"
    writer = _harness(
        "write",
        f"--path={log}",
        f"--manifest={manifest_path}",
        f"--lines={lines}",
        f"--rotations={rotations}",
        f"--seconds={seconds}",
        "--kinds=rename,copytruncate,recreate",
        "--cycle",
    )
    config = FileSourceConfig(
        paths=[str(log)],
        start_at="beginning",
        use_watchdog=use_watchdog,
        poll_interval=1.0 if use_watchdog else 0.05,
        rotate_wait=1.0,
    )
    source = FileSource("stress", config, SystemClock())
    records: list[tuple[int, int]] = []
    deadline = time.monotonic() + seconds * 3 + 30
    try:
        while time.monotonic() < deadline:
            got = 0
            for line in source.read():
                records.append((_parse(line.text), line.line_no))
                got += 1
            if writer.poll() is not None and len(records) >= lines:
                break
            if not got:
                time.sleep(0.002)
        # Anything more would be a duplicate: give it the chance to show up.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            records.extend((_parse(x.text), x.line_no) for x in source.read())
            time.sleep(0.01)
        json.dumps(source.checkpoint())
        anomalies = dict(source.stats.anomalies)
    finally:
        source.close()
        writer.kill()
        _, err = writer.communicate()
    assert writer.returncode == 0, err.decode()
    manifest = json.loads(manifest_path.read_text())
    kinds = Counter(manifest["rotations"])
    assert kinds == Counter(
        {k: rotations // 3 + (i < rotations % 3) for i, k in enumerate(manifest["rotations"][:3])}
    )
    assert_exactly_once(records, manifest)
    assert anomalies.get("rotation", 0) + anomalies.get("recreated", 0) >= 1
    assert anomalies.get("truncation", 0) >= 1


def test_stress_200k_lines_50_rotations_with_watchdog(tmp_path: Path) -> None:
    _run_stress(tmp_path, lines=200_000, rotations=50, seconds=18.0, use_watchdog=True)


def test_stress_polling_only(tmp_path: Path) -> None:
    _run_stress(tmp_path, lines=40_000, rotations=15, seconds=5.0, use_watchdog=False)


def test_kill_9_and_resume_reads_every_line_exactly_once(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    db = tmp_path / "tail.db"
    manifest_path = tmp_path / "manifest.json"
    total = 40_000
    writer = _harness(
        "write",
        f"--path={log}",
        f"--manifest={manifest_path}",
        f"--lines={total}",
        "--rotations=14",
        "--seconds=10",
        "--kinds=rename,copytruncate",
        "--keep=100",  # nothing is deleted: a generation missed while down is still there
        "--seed=7",
    )
    follow_args = ("follow", f"--path={log}", f"--db=sqlite:///{db}", "--batch=300")
    rng = random.Random(11)
    follower = _harness(*follow_args)
    kills = 0
    try:
        while writer.poll() is None:
            time.sleep(rng.uniform(0.2, 1.2))
            follower.send_signal(signal.SIGKILL)
            follower.wait()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.6))  # rotations may happen while it is down
            follower = _harness(*follow_args)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _count(db) < total:
            time.sleep(0.2)
        time.sleep(1.5)  # would any line come a second time?
    finally:
        follower.send_signal(signal.SIGKILL)
        follower.wait()
        writer.kill()
        _, err = writer.communicate()
    assert writer.returncode == 0, err.decode()
    assert kills >= 5
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT n, line_no FROM seen ORDER BY id").fetchall()
    manifest = json.loads(manifest_path.read_text())
    assert_exactly_once([(int(n), int(no)) for n, no in rows], manifest)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the table is not created yet
