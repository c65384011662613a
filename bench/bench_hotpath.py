"""Hot-path benchmark: the whole guardrail against fail2ban-regex, per store, per size.

In one run, every command a subprocess pinned to the same core, on generated sshd
auth.logs (cached under ``.bench/``, shared with ``bench_parse.py``) of each
``--sizes`` (default 100,000 and 1,000,000 lines; add 10,000,000 to see the
trend, printed across sizes at the end):

- ``fail2ban-regex FILE sshd``: the reference (at most ``--fail2ban-max`` lines,
  1,000,000 by default: it takes minutes past that);
- ``soc parse FILE --stats``: parsing alone;
- ``soc replay FILE --analyst none``: the whole guardrail into the in-memory
  store, a SQLite file, and PostgreSQL (a database of its own on ``--postgres``,
  dropped afterwards; ``--postgres ''`` skips it), and into a SQLite file with
  incident memory on, as a file store replays by default (up to ``--memory-max``
  lines, 1,000,000 by default: it embeds every incident).

Prints lines/s, peak RSS (each child's own, from ``wait4``) and the ratio to
fail2ban-regex at the same size, and checks the columnar hot path's goals (the
whole replay into SQLite at least 10x fail2ban-regex's lines/s, parsing at least
50x, peak RSS below fail2ban-regex's, PostgreSQL within 2x of SQLite's time).
Then one more replay into SQLite (``--profile`` lines, 1,000,000 by default) shows
where its time goes, stage by stage, as the engine times them, against the
per-line budget the replay goal leaves. Exit status is non-zero only on errors,
never on a missed goal.

Run: ``python bench/bench_hotpath.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import CACHE  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
GOALS = {"replay_sqlite": 10.0, "parse": 50.0}


@dataclass(slots=True)
class Measured:
    """One command on one file: wall time and the child's peak RSS."""

    name: str
    lines: int
    seconds: float
    peak_mib: float

    @property
    def rate(self) -> float:
        return self.lines / self.seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--sizes", default="100000,1000000", help="comma-separated line counts")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--cpu", type=int, default=0, help="the core to pin to (-1: do not pin)")
    p.add_argument("--postgres", default=os.environ.get("SOC_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    p.add_argument("--fail2ban-max", type=int, default=1_000_000)
    p.add_argument(
        "--profile",
        type=int,
        default=1_000_000,
        help="lines of the replay into SQLite timed by stage (0: none)",
    )
    p.add_argument(
        "--memory-max",
        type=int,
        default=1_000_000,
        help="largest size replayed with incident memory on (it embeds every incident)",
    )
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    pinned = "not pinned"
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})  # children inherit it
        pinned = f"each pinned to core {args.cpu}"
    fail2ban = shutil.which("fail2ban-regex")
    if fail2ban is None:
        print("fail2ban-regex not found (bash bench/setup.sh installs it): no ratios")
    print(f"Hot-path benchmark: generated sshd auth.logs, {pinned}")
    every: dict[int, list[Measured]] = {}
    for size in sizes:
        path = _sample(args.cache, size, args.seed)
        runs = _measure(
            path,
            size,
            args.postgres,
            fail2ban if size <= args.fail2ban_max else None,
            memory=size <= args.memory_max,
        )
        _print(size, path, runs)
        every[size] = runs
    if len(every) > 1:
        _print_trend(every)
    if args.profile:
        path = _sample(args.cache, args.profile, args.seed)
        reference = next(
            (r for r in every.get(args.profile, []) if r.name.startswith("fail2ban")), None
        )
        _print_profile(path, args.profile, reference)
    return 0


#: The engine's stages as the replay's summary times them (``stage_seconds``), labelled.
STAGES: tuple[tuple[str, str], ...] = (
    ("acquire", "acquisition (the replay source handing over lines)"),
    ("parse", "parsing"),
    ("findings", "the batch's columns and the summary's top lists"),
    ("window", "windowing"),
    ("detect", "detection"),
    ("commit", "the store's commit"),
    ("commit_windows", "of which: windows"),
    ("commit_incidents", "of which: incidents"),
)
#: The stages that are parts of another: ``soc.engine.COMMIT_PARTS``, spelled out so
#: that this process, whose children's peak RSS it reports, never imports the engine.
PARTS = frozenset({"commit_windows", "commit_incidents"})


def _print_profile(path: Path, lines: int, reference: Measured | None) -> None:
    """Where a replay into a SQLite file spends its time, by stage, in wall-clock seconds.

    The stages are timed by the engine itself (the summary's ``stage_seconds``), in a
    replay run like the others, not under a profiler (which inflates many small
    calls); what the run spent outside them is start-up, the summary and the rest.
    ``reference``: fail2ban-regex at the same size in this run, for the per-line budget
    of the replay goal.
    """
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        command = [
            sys.executable,
            "-m",
            "soc",
            "replay",
            str(path),
            "--analyst",
            "none",
            "--timezone",
            "UTC",
            "--year",
            "2025",
            "--db",
            f"sqlite:///{tmp}/p.db",
            "--summary-json",
            str(summary),
        ]
        run = _run("timed replay", lines, command)
        seconds = json.loads(summary.read_text(encoding="utf-8"))["stage_seconds"]
    total = run.seconds
    print(
        f"\nWhere a {lines:,}-line replay into SQLite spends its time "
        f"({total:.2f} s wall-clock, {run.rate:,.0f} lines/s; stages timed by the engine)"
    )
    print("| stage | seconds | µs per line | share |\n| --- | --- | --- | --- |")

    def row(label: str, spent: float) -> None:
        print(f"| {label} | {spent:.2f} | {1e6 * spent / lines:.2f} | {100 * spent / total:.1f}% |")

    for name, label in STAGES:
        row(label, float(seconds[name]))
    outside = total - sum(float(seconds[name]) for name, _ in STAGES if name not in PARTS)
    row("start-up, the summary and the rest", outside)
    row("the whole replay", total)
    if reference is not None:
        goal = GOALS["replay_sqlite"]
        budget = 1e6 / (goal * reference.rate)
        print(
            f"\n{goal:g}x fail2ban-regex's {reference.rate:,.0f} lines/s leaves "
            f"{budget:.2f} µs per line for the whole replay; it takes "
            f"{1e6 * total / lines:.2f}."
        )


def _sample(cache: Path, size: int, seed: int) -> Path:
    """The cached log of ``size`` lines, made in a child process when missing.

    A child's peak RSS counts the pages it shares with this process when forked:
    had this process generated a large log itself, every command measured after
    would report its memory.
    """
    code = (
        "import sys; from pathlib import Path; from bench.common import sample_file; "
        f"print(sample_file(Path({str(cache)!r}), {size}, {seed})[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return Path(out.stdout.strip().splitlines()[-1])


def _print_trend(every: dict[int, list[Measured]]) -> None:
    """Lines/s and peak RSS of each command across sizes: cost linear, memory flat?"""
    sizes = sorted(every)
    names = list(dict.fromkeys(r.name for runs in every.values() for r in runs))
    print("\nAcross sizes: lines/s (peak RSS)")
    print("| command | " + " | ".join(f"{n:,} lines" for n in sizes) + " |")
    print("| --- |" + " --- |" * len(sizes))
    for name in names:
        cells = []
        for size in sizes:
            run = next((r for r in every[size] if r.name == name), None)
            cells.append("—" if run is None else f"{run.rate:,.0f} ({run.peak_mib:,.0f} MiB)")
        print(f"| `{name}` | " + " | ".join(cells) + " |")


def _measure(
    path: Path, size: int, postgres: str, fail2ban: str | None, *, memory: bool
) -> list[Measured]:
    soc = [sys.executable, "-m", "soc"]
    common = ["--timezone", "UTC", "--year", "2025"]
    replay = [*soc, "replay", str(path), "--analyst", "none", *common]
    runs: list[Measured] = []
    if fail2ban is not None:
        runs.append(_run("fail2ban-regex LOG sshd", size, [fail2ban, str(path), "sshd"]))
    runs.append(
        _run(
            "soc parse LOG --stats",
            size,
            [*soc, "parse", str(path), "--stats", "--format", "syslog", *common],
        )
    )
    runs.append(_run("soc replay (in-memory store)", size, replay))
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(
            _run("soc replay --db sqlite:///FILE", size, [*replay, "--db", f"sqlite:///{tmp}/b.db"])
        )
    if memory:
        # What a replay into a file does by default: also embed its incidents for
        # the similar-incident search (not the guardrail; shown apart).
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(
                _run(
                    "soc replay --db sqlite:///FILE, incident memory on",
                    size,
                    [*replay, "--db", f"sqlite:///{tmp}/b.db"],
                    memory=True,
                )
            )
    if postgres:
        url = _create_database(postgres)
        try:
            runs.append(_run("soc replay --db postgresql://…", size, [*replay, "--db", url]))
        finally:
            _drop_database(postgres, url)
    return runs


def _run(name: str, lines: int, command: list[str], *, memory: bool = False) -> Measured:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if not memory:
        env["SOC_SIMILAR__ENABLED"] = "false"  # the guardrail alone
    started = time.perf_counter()
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO
    )
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{name} failed ({child.returncode}): {err.decode()[-800:]}")
    return Measured(name, lines, seconds, usage.ru_maxrss / 1024)


def _print(size: int, path: Path, runs: list[Measured]) -> None:
    megabytes = path.stat().st_size / 1e6
    print(f"\n{size:,} lines ({megabytes:.0f} MB; incident memory off except where said)")
    print("| command | lines/s | peak RSS | vs fail2ban-regex |\n| --- | --- | --- | --- |")
    reference = next((r for r in runs if r.name.startswith("fail2ban")), None)
    for r in runs:
        ratio = f"{r.rate / reference.rate:.2f}x" if reference is not None else "n/a"
        print(f"| `{r.name}` | {r.rate:,.0f} | {r.peak_mib:,.0f} MiB | {ratio} |")
    by = {r.name: r for r in runs}
    sqlite = by["soc replay --db sqlite:///FILE"]
    parse = by["soc parse LOG --stats"]
    postgres = by.get("soc replay --db postgresql://…")
    if reference is not None:
        goals: list[tuple[str, Measured, float]] = [
            ("replay into SQLite", sqlite, GOALS["replay_sqlite"]),
            ("parsing alone", parse, GOALS["parse"]),
        ]
        for label, run, goal in goals:
            speedup = run.rate / reference.rate
            verdict = "met" if speedup >= goal else "MISSED"
            print(f"goal {verdict}: {label} {speedup:.1f}x fail2ban-regex (goal {goal:.0f}x)")
        peak = max(r.peak_mib for r in runs if r is not reference and "memory" not in r.name)
        verdict = "met" if peak < reference.peak_mib else "MISSED"
        print(
            f"goal {verdict}: peak RSS {peak:,.0f} MiB (fail2ban-regex {reference.peak_mib:,.0f})"
        )
    if postgres is not None:
        factor = postgres.seconds / sqlite.seconds
        verdict = "met" if factor <= 2 else "MISSED"
        print(f"goal {verdict}: PostgreSQL takes {factor:.2f}x SQLite's time (goal at most 2x)")


def _create_database(admin_url: str) -> str:
    import sqlalchemy as sa

    name = f"soc_bench_{uuid.uuid4().hex[:8]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, url: str) -> None:
    import sqlalchemy as sa

    _admin(admin_url, f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')


def _admin(admin_url: str, statement: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE) on the admin URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
