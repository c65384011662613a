"""End-to-end benchmark: the whole guardrail (``soc replay``) against parsing alone.

Runs, in the same process tree pinned to one core, on the generated
1,000,000-line sshd auth.log (cached under ``.bench/``, shared with
``bench_parse.py``):

- ``soc parse FILE --stats``: parsing alone, the floor;
- ``soc replay FILE --db URL --summary-json …``: parse, window, detect, store
  the windows and incidents (SQLite file by default, ``--db`` for PostgreSQL).

Prints lines/s of each, what the pipeline costs on top of parsing, and the
guardrail's reduction: lines and events per incident (one model call per
incident instead of one per line).

Run: ``python bench/bench_pipeline.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import add_sample_arguments, sample_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    add_sample_arguments(p)
    p.add_argument("--cpu", type=int, default=0, help="the core to pin to (-1: do not pin)")
    p.add_argument("--db", help="store URL (default: a fresh SQLite file)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)

    pinned = "not pinned"
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})  # children inherit it
        pinned = f"pinned to core {args.cpu}"
    path, _ = sample_file(args.cache, args.lines, args.seed)
    soc = [sys.executable, "-m", "soc"]
    common = ["--timezone", "UTC", "--year", "2025"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    print(f"Pipeline benchmark: {args.lines:,}-line sshd auth.log, {pinned}")
    parse_s = _timed([*soc, "parse", str(path), "--stats", "--format", "syslog", *common], env)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/bench.db"
        summary_path = Path(tmp) / "summary.json"
        replay_s = _timed(
            [*soc, "replay", str(path), "--db", db, "--summary-json", str(summary_path), *common],
            env,
        )
        summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))

    lines, events = summary["lines"], summary["events"]
    incidents = summary["incidents"]
    kinds = Counter(i["kind"] for i in incidents)
    results = {
        "lines": lines,
        "events": events,
        "parse_seconds": round(parse_s, 2),
        "replay_seconds": round(replay_s, 2),
        "parse_lines_per_s": round(lines / parse_s),
        "replay_lines_per_s": round(lines / replay_s),
        "pipeline_over_parse": round(replay_s / parse_s, 2),
        "incidents": len(incidents),
        "incidents_by_kind": dict(kinds.most_common()),
        "windows": summary["windows"],
        "lines_per_incident": round(lines / max(1, len(incidents))),
        "events_per_incident": round(events / max(1, len(incidents))),
        "store": "PostgreSQL" if args.db and args.db.startswith("postgresql") else "SQLite",
    }
    print(
        f"  soc parse --stats      {results['parse_lines_per_s']:>10,} lines/s  ({parse_s:.1f} s)"
    )
    print(
        f"  soc replay (pipeline)  {results['replay_lines_per_s']:>10,} lines/s  ({replay_s:.1f} s,"
        f" {results['pipeline_over_parse']}x the time of parsing alone, store {results['store']})"
    )
    print(f"  window rows stored     {results['windows']:>10,}")
    print(f"  incidents              {len(incidents):>10,}  {dict(kinds.most_common())}")
    print(
        f"  guardrail              {results['lines_per_incident']:>10,} lines and "
        f"{results['events_per_incident']:,} events per incident (one model call each)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
