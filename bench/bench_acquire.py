"""Acquisition benchmark: how fast the file source delivers lines from disk.

Writes (or reuses, under ``.bench/``) a 1,000,000-line auth.log and times
``FileSource.read()`` over it from the beginning, the way the engine reads a log
after a restart with a large backlog. Prints lines/s and MiB/s.

Run: ``python bench/bench_acquire.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from soc.acquire.file import FileSource, FileSourceConfig  # noqa: E402
from soc.clock import SystemClock  # noqa: E402
from soc.samples import write_samples  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Time the file source over a generated log and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args(argv)
    cache = REPO / ".bench" / f"acquire-{args.lines}"
    log = cache / "auth.log"
    if not log.exists():
        write_samples(cache, lines=args.lines, formats=["auth.log"])
    size_mib = log.stat().st_size / 2**20
    best = float("inf")
    for _ in range(args.repeat):
        source = FileSource(
            "bench", FileSourceConfig(paths=[str(log)], start_at="beginning"), SystemClock()
        )
        try:
            started = time.perf_counter()
            count = sum(1 for _ in source.read())
            best = min(best, time.perf_counter() - started)
        finally:
            source.close()
        if count != args.lines:
            print(f"error: read {count} lines, expected {args.lines}", file=sys.stderr)
            return 2
    print(f"file source, {args.lines:,} lines ({size_mib:.0f} MiB) from the beginning")
    print(
        f"  best of {args.repeat}: {best:.2f} s = {args.lines / best:,.0f} lines/s, "
        f"{size_mib / best:.0f} MiB/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
