"""Parse benchmark: our sshd/syslog parser against fail2ban-regex, in the same run.

Generates (or reuses, cached under ``.bench/``) a 1,000,000-line traditional-syslog
sshd auth.log from ``soc.samples``, then times on one CPU core:

- ``soc.parse.parse_file_stats`` in-process;
- the CLI, ``soc parse FILE --stats --json``, as a subprocess;
- ``fail2ban-regex FILE sshd`` as a subprocess (wall time; on a prefix of the file,
  scaled, if the whole file would take too long).

Prints lines/s for each, the ratio, failure lines found by each, and events/s by
kind. Exits non-zero only on errors; a missed target is printed, not fatal.

Run: ``python bench/bench_parse.py`` (``make bench``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import add_sample_arguments, sample_file  # noqa: E402
from soc.events import Event  # noqa: E402
from soc.parse import iter_parse_file, parse_file_stats  # noqa: E402
from soc.parse.base import ParseConfig  # noqa: E402

TARGET_RATIO = 10.0
FAILURE_KINDS = ("auth_failure", "invalid_user", "access_denied")
_F2B_LINES = re.compile(
    r"^Lines: (?P<lines>\d+) lines, (?P<ignored>\d+) ignored, (?P<matched>\d+) matched, "
    r"(?P<missed>\d+) missed",
    re.MULTILINE,
)
_F2B_TIME = re.compile(r"\[processed in (?P<sec>[\d.]+) sec\]")


class BenchError(Exception):
    """Something the benchmark could not do (not a missed target)."""


@dataclass
class Result:
    """One tool's run over (part of) the file."""

    tool: str
    lines: int
    seconds: float
    failure_lines: int | None
    note: str = ""
    scaled_from: int | None = None  # lines actually run when the time was scaled
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _arguments(argv)
    try:
        return _run(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    add_sample_arguments(p)
    p.add_argument("--cpu", type=int, default=0, help="the core to pin to (-1: do not pin)")
    p.add_argument("--no-cli", action="store_true", help="skip the `soc parse` subprocess")
    p.add_argument("--no-fail2ban", action="store_true", help="skip fail2ban-regex")
    p.add_argument(
        "--fail2ban-timeout",
        type=float,
        default=300.0,
        help="seconds before fail2ban-regex on the whole file is stopped and rerun on a prefix",
    )
    p.add_argument(
        "--fail2ban-prefix",
        type=int,
        default=200_000,
        help="lines of the prefix fail2ban-regex runs on when the whole file is too slow",
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    return p.parse_args(argv)


def _run(args: argparse.Namespace) -> int:
    pinned = _pin(args.cpu)
    path, generated = sample_file(args.cache, args.lines, args.seed)
    size_mb = path.stat().st_size / 1e6
    config = ParseConfig(format="syslog", timezone="UTC", year=2025, keep_raw=False)

    print(f"Parse benchmark: {args.lines:,}-line sshd auth.log (traditional syslog)")
    how = f"generated in {generated:.1f} s" if generated is not None else "cached"
    print(f"file: {_rel(path)} ({size_mb:.1f} MB, {how})")
    print(f"cpu:  {pinned}")
    print()

    results = [_ours(path, config)]
    kinds = _kinds(path, config)
    if not args.no_cli:
        cli = _cli(path)
        if cli is not None:
            results.append(cli)
    f2b: Result | None = None
    if not args.no_fail2ban:
        f2b = _fail2ban(path, args.lines, args.fail2ban_timeout, args.fail2ban_prefix)
        results.append(f2b)

    _print_table(results)
    ours = results[0]
    status_line = _verdict(ours, results, f2b, kinds)
    _print_kinds(ours, kinds)
    if args.json is not None:
        payload = {
            "lines": args.lines,
            "file": str(path),
            "cpu": pinned,
            "results": [r.__dict__ | {"rate": r.rate} for r in results],
            "verdict": status_line,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def _pin(cpu: int) -> str:
    # Children inherit the affinity, so the subprocesses run on the same core.
    if cpu < 0:
        return "not pinned"
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return f"not pinned ({exc})"
    return f"pinned to core {cpu} (this process and its children), {os.cpu_count()} cores"


def _ours(path: Path, config: ParseConfig) -> Result:
    started = time.perf_counter()
    stats = parse_file_stats(path, config)
    seconds = time.perf_counter() - started
    if stats.unparsed_total:
        print(
            f"note: our parser left {stats.unparsed_total} lines unparsed: {dict(stats.unparsed)}"
        )
    by_kind = dict(stats.by_kind)
    return Result(
        "soc (in-process)",
        stats.lines,
        seconds,
        sum(by_kind.get(k, 0) for k in FAILURE_KINDS),
        by_kind=by_kind,
    )


def _kinds(path: Path, config: ParseConfig) -> dict[str, Counter[str]]:
    """A second, untimed pass: failure lines by event action, failure attempts."""
    per: dict[str, Counter[str]] = {"failure_lines_by_action": Counter(), "attempts": Counter()}
    for _line_no, result in iter_parse_file(path, config):
        if isinstance(result, Event) and result.kind in FAILURE_KINDS:
            per["failure_lines_by_action"][result.action] += 1
            per["attempts"][result.kind] += result.count
    return per


def _cli(path: Path) -> Result | None:
    exe = shutil.which("soc")
    if exe is not None:
        command = [exe]
        name = "soc parse --stats (CLI)"
    else:
        command = [sys.executable, "-m", "soc"]
        name = "python -m soc parse --stats"
    command += [
        "parse",
        str(path),
        "--format",
        "syslog",
        "--timezone",
        "UTC",
        "--year",
        "2025",
        "--stats",
        "--json",
    ]
    env = os.environ | {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(command[:3])} failed ({done.returncode}): {done.stderr[-500:]}"
        )
    stats = json.loads(done.stdout)
    by_kind = stats.get("by_kind", {})
    return Result(
        name,
        int(stats["lines"]),
        seconds,
        sum(int(by_kind.get(k, 0)) for k in FAILURE_KINDS),
        note="wall time incl. interpreter start",
        by_kind=by_kind,
    )


def _fail2ban(path: Path, lines: int, timeout: float, prefix: int) -> Result:
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        raise BenchError("fail2ban-regex not found: run `bash bench/setup.sh` (or --no-fail2ban)")
    result = _run_fail2ban(exe, path, timeout)
    if result is not None:
        return result
    print(f"note: fail2ban-regex took over {timeout:.0f} s; timing its first {prefix:,} lines")
    with (
        tempfile.NamedTemporaryFile("w", suffix=".log", delete=False, encoding="utf-8") as tmp,
        path.open(encoding="utf-8") as src,
    ):
        for i, line in enumerate(src):
            if i >= prefix:
                break
            tmp.write(line)
    part = Path(tmp.name)
    try:
        partial = _run_fail2ban(exe, part, None)
    finally:
        part.unlink()
    if partial is None:  # pragma: no cover - no timeout was set
        raise BenchError("fail2ban-regex did not finish")
    factor = lines / partial.lines
    return Result(
        partial.tool,
        lines,
        partial.seconds * factor,
        round((partial.failure_lines or 0) * factor),
        note=f"scaled from its first {partial.lines:,} lines",
        scaled_from=partial.lines,
    )


def _run_fail2ban(exe: str, path: Path, timeout: float | None) -> Result | None:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [exe, str(path), "sshd"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    seconds = time.perf_counter() - started
    found = _F2B_LINES.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise BenchError(f"fail2ban-regex failed ({done.returncode}): {done.stderr[-500:]}")
    own = _F2B_TIME.search(done.stdout)
    note = f"its own count: {float(own['sec']):.1f} s processing" if own else ""
    return Result(
        "fail2ban-regex sshd",
        int(found["lines"]),
        seconds,
        int(found["matched"]),
        note=note,
    )


def _print_table(results: list[Result]) -> None:
    print(f"{'tool':<30}{'lines':>12}{'seconds':>10}{'lines/s':>12}{'failure lines':>15}  note")
    print("-" * 100)
    for r in results:
        failures = f"{r.failure_lines:,}" if r.failure_lines is not None else "-"
        print(
            f"{r.tool:<30}{r.lines:>12,}{r.seconds:>10.2f}{r.rate:>12,.0f}{failures:>15}  {r.note}"
        )
    print()


def _verdict(
    ours: Result, results: list[Result], f2b: Result | None, kinds: dict[str, Counter[str]]
) -> str:
    if f2b is None:
        print("fail2ban-regex not run: no ratio")
        return "no fail2ban"
    for r in results:
        if r is f2b:
            continue
        print(f"speed-up of {r.tool} over fail2ban-regex: {r.rate / f2b.rate:.2f}x")
    ratio = ours.rate / f2b.rate
    if f2b.failure_lines:
        diff = (ours.failure_lines or 0) - f2b.failure_lines
        print(
            f"failure lines: soc {ours.failure_lines:,} vs fail2ban-regex {f2b.failure_lines:,} "
            f"({diff:+,}, {100 * diff / f2b.failure_lines:+.1f}%)"
        )
    pam = kinds["failure_lines_by_action"].get("pam_auth", 0)
    if f2b.failure_lines and pam:
        # fail2ban's sshd filter reads pam_unix failure lines as <F-NOFAIL>: compare without
        mine = (ours.failure_lines or 0) - pam
        diff = mine - f2b.failure_lines
        print(
            f"  without pam_unix lines (fail2ban marks them NOFAIL): soc {mine:,} "
            f"({diff:+,}, {100 * diff / f2b.failure_lines:+.2f}%)"
        )
    if ratio >= TARGET_RATIO:
        line = f"TARGET MET: {ratio:.2f}x >= {TARGET_RATIO:.0f}x fail2ban-regex"
    else:
        line = f"MISSED TARGET: {ratio:.2f}x < {TARGET_RATIO:.0f}x fail2ban-regex"
    print(line)
    print()
    return line


def _print_kinds(ours: Result, kinds: dict[str, Counter[str]]) -> None:
    print(f"events by kind (soc in-process, {ours.seconds:.2f} s)")
    print(f"{'kind':<22}{'events':>12}{'events/s':>14}")
    total = 0
    for kind, n in sorted(ours.by_kind.items(), key=lambda kv: (-kv[1], kv[0])):
        total += n
        print(f"{kind:<22}{n:>12,}{n / ours.seconds:>14,.0f}")
    print(f"{'all events':<22}{total:>12,}{total / ours.seconds:>14,.0f}")
    print()
    attempts = sum(kinds["attempts"].values())
    print(f"failure attempts (counting `message repeated N times` as N): {attempts:,}")
    print("failure lines by action:")
    for action, n in kinds["failure_lines_by_action"].most_common():
        print(f"  {action:<40}{n:>12,}")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
