"""Playbook-recommender benchmark: ``soc policy train`` as shipped, timed, and what it learns.

Runs ``soc policy train`` with the shipped policy's seed and timesteps (read
from ``models/policy/policy.json``) into a temporary folder, in a subprocess,
and reports its wall time, simulator steps per second and peak RSS, then the
evaluation figures it printed beside the shipped card's (the same seed on the
same library versions gives the same figures). The issue's goal: training in
minutes on 2 CPU cores. There is no reference tool to compare with: the
baselines are the rules' recommendations and random choice, scored on the same
held-out episodes.

Exit status is non-zero only on errors, never on a missed goal.

Run: ``python bench/bench_policy.py`` (``--timesteps N`` for a shorter run).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models" / "policy" / "policy.json"
GOAL_SECONDS = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, help="default: the shipped policy's")
    args = parser.parse_args(argv)
    card = json.loads(SHIPPED.read_text(encoding="utf-8"))
    timesteps = args.timesteps or int(card["timesteps"])
    seed = int(card["seed"])
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            "-m",
            "soc",
            "policy",
            "train",
            "--seed",
            str(seed),
            "--timesteps",
            str(timesteps),
            "--out",
            out,
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        trained = json.loads((Path(out) / "policy.json").read_text(encoding="utf-8"))
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"soc policy train --seed {seed} --timesteps {timesteps} (CPU, subprocess)")
    print(f"  wall time      {seconds:8.1f} s   (goal: under {GOAL_SECONDS:.0f} s on 2 cores)")
    print(f"  steps/s        {timesteps / seconds:8.0f}")
    print(f"  peak RSS       {peak_mib:8.0f} MiB")
    print("mean reward per shift on 200 held-out episodes: this run | shipped card")
    for name in ("policy", "rule", "random"):
        now, then = trained["evaluation"][name], card["evaluation"][name]
        print(
            f"  {name:7s} {now['mean']:8.2f} ± {now['std']:6.2f} | "
            f"{then['mean']:8.2f} ± {then['std']:6.2f}"
        )
    policy, rule = trained["evaluation"]["policy"]["mean"], trained["evaluation"]["rule"]["mean"]
    print(f"  policy - rule  {policy - rule:+8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
