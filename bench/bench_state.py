"""Durable-state benchmark: how big a live engine's saved state is, and what it costs.

For 1, 1,000, 10,000 and 100,000 attacking addresses tracked at once (each failing
three times within 10 s; the single one 300 times, one busy campaign), builds the
windower's and detector's state as a live engine has it, then times
:func:`soc.engine_state.encode` (what every commit of a live engine does) and
:func:`soc.engine_state.decode` (what a start does) and prints the compressed
size. There is no reference tool: the figure that matters is the encode time,
which sets how often a live engine commits (at most a tenth of its time).

Run: ``python bench/bench_state.py`` (``--sizes 1,1000`` for fewer).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from soc import engine_state  # noqa: E402
from soc.config import Settings  # noqa: E402
from soc.detect import Detector  # noqa: E402
from soc.events import AUTH_FAILURE, FAILURE, Event  # noqa: E402
from soc.window import Windower  # noqa: E402

T0 = 1_764_000_000.0
USERS = ("root", "admin", "test", "oracle")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--sizes", default="1,1000,10000,100000", help="addresses, comma-separated")
    args = p.parse_args(argv)
    print("| addresses tracked | state (compressed) | encode | decode (at start) |")
    print("| --- | --- | --- | --- |")
    for n in (int(s) for s in args.sizes.split(",") if s):
        settings = Settings()
        windower, detector = Windower(settings.window), Detector(settings.detect)
        events = _events(n)
        for start in range(0, len(events), 20_000):
            batch = events[start : start + 20_000]
            detector.process(batch)
            windower.add(batch)
        started = time.perf_counter()
        state = engine_state.encode(
            settings, windower, detector, event_time=T0 + 10, event_wall=T0 + 10
        )
        encoded = time.perf_counter() - started
        started = time.perf_counter()
        engine_state.decode(state, settings, ())
        decoded = time.perf_counter() - started
        size = len(state["data"]) / 1024
        print(f"| {n:,} | {size:,.0f} KiB | {_ms(encoded)} | {_ms(decoded)} |")
    return 0


def _events(n: int) -> list[Event]:
    rng = random.Random(1)
    each = 300 if n == 1 else 3
    events = [
        Event(
            T0 + rng.uniform(0, 10),
            AUTH_FAILURE,
            FAILURE,
            "ssh_login",
            source_ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
            user=rng.choice(USERS),
            process_name="sshd",
            reason="failed password",
            dataset="sshd",
            raw=f"sshd[1]: Failed password from 10.0.0.{i % 256} port 4000 ssh2",
        )
        for i in range(n)
        for _ in range(each)
    ]
    events.sort(key=lambda e: e.timestamp or 0.0)
    return events


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.1f} s"


if __name__ == "__main__":
    raise SystemExit(main())
