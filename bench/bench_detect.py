"""Windowing and detection benchmark: events/s through Windower + Detector.

Parses (once, not timed with the rest) the 1,000,000-line traditional-syslog
auth.log that ``bench_parse.py`` uses (generated from ``soc.samples`` and cached
under ``.bench/`` when missing), then feeds the events in engine-sized batches:

- ``Windower.add`` per batch, ``flush`` at the end;
- ``Detector.process`` and ``close_quiet(watermark)`` per batch, ``flush`` at the end.

Prints events/s for each and for both, window rows, incidents by kind, and the
model-call reduction the guardrail buys: log lines per incident (one model call
per incident instead of one per line, or per window row). Also prints the same
reduction over the committed ``data/samples`` set, and the speed on a flood (the
same number of failures from 50 addresses, built in memory): the bot traffic of
the log is the hard case, four lines per window row; a flood collapses far more.

Run: ``python bench/bench_detect.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import add_sample_arguments, sample_file  # noqa: E402
from soc.detect import DetectConfig, Detector  # noqa: E402
from soc.events import AUTH_FAILURE, FAILURE, Event, Incident  # noqa: E402
from soc.parse import iter_parse_file  # noqa: E402
from soc.parse.base import ParseConfig  # noqa: E402
from soc.samples import SAMPLE_FILES  # noqa: E402
from soc.window import Windower  # noqa: E402

PARSE = {"timezone": "UTC", "year": 2025}


def main(argv: list[str] | None = None) -> int:
    """Time windowing and detection over the benchmark log and print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_sample_arguments(p)
    p.add_argument("--batch", type=int, default=20_000, help="events per batch (engine size)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    path, _ = sample_file(args.cache, args.lines, args.seed)
    started = time.perf_counter()
    events = _events(path, "syslog")
    parse_seconds = time.perf_counter() - started
    # The engine holds one batch at a time; holding every event here would make
    # the garbage collector rescan them all on each collection and time that.
    gc.collect()
    gc.freeze()

    windower = Windower()
    detector = Detector(DetectConfig())
    window_seconds = detect_seconds = 0.0
    rows = 0
    seen: list[Incident] = []
    for i in range(0, len(events), args.batch):
        batch = events[i : i + args.batch]
        t0 = time.perf_counter()
        rows += len(windower.add(batch))
        t1 = time.perf_counter()
        seen.extend(detector.process(batch))
        if detector.watermark is not None:
            seen.extend(detector.close_quiet(detector.watermark))
        t2 = time.perf_counter()
        window_seconds += t1 - t0
        detect_seconds += t2 - t1
    t0 = time.perf_counter()
    rows += len(windower.flush())
    t1 = time.perf_counter()
    seen.extend(detector.flush())
    t2 = time.perf_counter()
    window_seconds += t1 - t0
    detect_seconds += t2 - t1
    incidents = {i.detector_key: i for i in seen}
    n = len(events)
    both = window_seconds + detect_seconds
    figures: dict[str, Any] = {
        "lines": args.lines,
        "events": n,
        "batch": args.batch,
        "parse_seconds": round(parse_seconds, 2),
        "windower_seconds": round(window_seconds, 2),
        "detector_seconds": round(detect_seconds, 2),
        "windower_events_per_s": round(n / window_seconds),
        "detector_events_per_s": round(n / detect_seconds),
        "both_events_per_s": round(n / both),
        "both_lines_per_s": round(args.lines / both),
        "window_rows": rows,
        "incidents": len(incidents),
        "incidents_by_kind": dict(Counter(i.kind for i in incidents.values()).most_common()),
        "lines_per_incident": round(args.lines / max(len(incidents), 1), 1),
        "lines_per_window_row": round(args.lines / max(rows, 1), 2),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "windower_stats": windower.stats.as_dict(),
        "detector_stats": detector.stats.as_dict(),
        "samples": _samples_reduction(),
    }
    figures["flood"] = _flood(n, args.batch)
    _print(figures, path)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def _flood(n: int, batch: int) -> dict[str, Any]:
    """Windower + Detector over ``n`` failures from 50 addresses, 200 a second."""
    rng = random.Random(7)
    start = 1_763_719_200.0
    ips = [f"203.0.113.{i}" for i in range(50)]
    users = ("root", "admin", "test", "oracle")
    events = [
        Event(
            start + i * 0.005,
            AUTH_FAILURE,
            FAILURE,
            "ssh_login",
            source_ip=rng.choice(ips),
            user=rng.choice(users),
            process_name="sshd",
            dataset="sshd",
            raw="Failed password",
        )
        for i in range(n)
    ]
    windower, detector = Windower(), Detector()
    rows = 0
    incidents: set[str] = set()
    started = time.perf_counter()
    for i in range(0, n, batch):
        rows += len(windower.add(events[i : i + batch]))
        incidents.update(x.detector_key for x in detector.process(events[i : i + batch]))
    rows += len(windower.flush())
    incidents.update(x.detector_key for x in detector.flush())
    seconds = time.perf_counter() - started
    return {
        "events": n,
        "seconds": round(seconds, 2),
        "events_per_s": round(n / seconds),
        "window_rows": rows,
        "incidents": len(incidents),
    }


def _events(path: Path, fmt: str) -> list[Event]:
    config = ParseConfig(format=fmt, **PARSE)  # type: ignore[arg-type]
    return [r for _, r in iter_parse_file(path, config) if isinstance(r, Event)]


def _samples_reduction() -> dict[str, Any]:
    """Lines and incidents over the committed sample set, file by file."""
    lines = incidents = 0
    for sample in SAMPLE_FILES:
        path = REPO / "data" / "samples" / sample.name
        lines += path.read_text(encoding="utf-8").count("\n")
        detector = Detector(DetectConfig(allow_list=["198.51.100.7"]))
        found = {i.detector_key for i in detector.process(_events(path, sample.format))}
        found |= {i.detector_key for i in detector.flush()}
        incidents += len(found)
    return {
        "lines": lines,
        "incidents": incidents,
        "lines_per_incident": round(lines / max(incidents, 1), 1),
    }


def _print(f: dict[str, Any], path: Path) -> None:
    print(f"windowing + detection, {f['lines']:,} lines = {f['events']:,} events ({path.name})")
    print(f"  batches of {f['batch']:,} events; parsing (not timed below): {f['parse_seconds']} s")
    print(f"  windower: {f['windower_seconds']:6.2f} s = {f['windower_events_per_s']:>9,} events/s")
    print(f"  detector: {f['detector_seconds']:6.2f} s = {f['detector_events_per_s']:>9,} events/s")
    print(
        f"  both:     {f['windower_seconds'] + f['detector_seconds']:6.2f} s = "
        f"{f['both_events_per_s']:>9,} events/s ({f['both_lines_per_s']:,} log lines/s)"
    )
    print(
        f"  {f['window_rows']:,} window rows ({f['lines_per_window_row']} lines each), "
        f"{f['incidents']:,} incidents: {f['incidents_by_kind']}"
    )
    print(
        f"  model calls: one per incident instead of one per line: "
        f"{f['lines_per_incident']:,} lines per incident"
    )
    s = f["samples"]
    print(
        f"  data/samples: {s['lines']:,} lines, {s['incidents']} incidents "
        f"({s['lines_per_incident']} lines per incident)"
    )
    fl = f["flood"]
    print(
        f"  flood ({fl['events']:,} failures from 50 addresses): {fl['seconds']} s = "
        f"{fl['events_per_s']:,} events/s, {fl['window_rows']:,} window rows, "
        f"{fl['incidents']} incidents"
    )
    print(f"  max RSS {f['max_rss_mib']} MiB")


if __name__ == "__main__":
    raise SystemExit(main())
