"""Analyst benchmark: reports (and model calls) against lines and events, and local latency.

On the generated 1,000,000-line sshd auth.log (cached under ``.bench/``, shared
with the other benchmarks):

1. ``soc replay FILE --threshold T --analyst offline`` for several thresholds,
   with batches (the default: incidents below critical severity share one report per
   batch) and once without (``batch_below_severity = "low"``, one report per
   incident): incidents, reports written, batches, lines and events absorbed per
   report, and incidents left without a report (must be 0). The offline analyst
   stands in for the model here: one report is one model call when a model is
   configured, so the counts are the model calls a model would get.
2. The bundled local model (llama.cpp, Gemma 3 270M) writing reports for the most
   severe incidents of the threshold-5 run, and one batch report for its first
   ``batch_max_incidents`` low and medium incidents: latency, tokens, and whether
   the reply passed validation or fell back to the offline report.

Run: ``python bench/bench_analyze.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import add_sample_arguments, sample_file  # noqa: E402
from soc.analyze import AnalyzeConfig  # noqa: E402
from soc.analyze.analyst import Analyst  # noqa: E402
from soc.analyze.local import LocalProvider  # noqa: E402
from soc.clock import SystemClock  # noqa: E402
from soc.events import SEVERITIES  # noqa: E402
from soc.store import open_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    add_sample_arguments(p)
    p.add_argument("--thresholds", type=int, nargs="+", default=[5, 10, 20, 50])
    p.add_argument("--local-reports", type=int, default=3, help="reports by the local model")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)

    path, _ = sample_file(args.cache, args.lines, args.seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results: dict[str, Any] = {"lines": args.lines, "runs": [], "local": {}}
    print(f"Analyst benchmark: {args.lines:,}-line sshd auth.log")
    print(
        "  threshold  batches?  incidents    reports    batches  in batches  lines/report"
        "  events/report  unanalysed   seconds"
    )
    runs = [(args.thresholds[0], False)] + [(t, True) for t in args.thresholds]
    with tempfile.TemporaryDirectory() as tmp:
        batched_db = ""
        for threshold, batches in runs:
            name = f"t{threshold}{'b' if batches else ''}"
            db = f"sqlite:///{tmp}/{name}.db"
            if batches and not batched_db:
                batched_db = db
            config = Path(tmp) / f"{name}.toml"
            config.write_text(
                "[analyze]\n" + ("" if batches else 'batch_below_severity = "low"\n'),
                encoding="utf-8",
            )
            out = Path(tmp) / f"{name}.json"
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable, "-m", "soc", "--config", str(config), "replay", str(path),
                    "--timezone", "UTC", "--year", "2025", "--analyst", "offline",
                    "--threshold", str(threshold), "--db", db, "--summary-json", str(out),
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            summary = json.loads(out.read_text(encoding="utf-8"))
            incidents = summary["incidents"]
            llm = summary["llm"]
            unanalysed = sum(1 for i in incidents if not i.get("analysis"))
            row = {
                "threshold": threshold,
                "batches_on": batches,
                "incidents": len(incidents),
                "reports": llm["calls"],
                "batches": llm["batches"],
                "batched_incidents": llm["batched_incidents"],
                "lines_per_report": llm["lines_per_call"],
                "events_per_report": llm["events_per_call"],
                "unanalysed": unanalysed,
                "seconds": round(seconds, 1),
            }
            results["runs"].append(row)
            print(
                f"  {threshold:>9}  {'yes' if batches else 'no':>8}  {len(incidents):>9,}  "
                f"{row['reports']:>9,}  {row['batches']:>9,}  {row['batched_incidents']:>10,}  "
                f"{row['lines_per_report'] or 0:>12,.0f}  {row['events_per_report'] or 0:>13,.0f}"
                f"  {unanalysed:>10}  {seconds:>8.1f}"
            )
        if args.local_reports:
            results["local"] = _local_latency(batched_db, args.local_reports)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _local_latency(db: str, count: int) -> dict[str, Any]:
    config = AnalyzeConfig(chain=["local"])
    # what the same tokens would cost on the default Gemini model
    price_in, price_out = config.price_of(config.gemini_model)
    store = open_store(db)
    try:
        incidents = store.list_incidents(limit=100_000)
        incidents.sort(key=lambda i: (-SEVERITIES.index(i.severity), -i.failures))
        picked = [(i, store.evidence(int(i.id or 0))) for i in incidents[:count]]
        small = [i for i in incidents if config.batched(i.severity, i.kind)]
        small.sort(key=lambda i: (i.first_seen, i.id or 0))
        batch = small[: config.batch_max_incidents]
    finally:
        store.close()
    provider = LocalProvider(config)
    analyst = Analyst(config, {"local": provider}, SystemClock())
    started = time.perf_counter()
    provider.start()  # the model server: its own process, started and loaded here
    server = provider.server
    why = (
        provider.unavailable()
        if server is None
        else server.wait_ready(config.local_start_timeout_seconds)
    )
    if why is not None:
        raise SystemExit(f"the local model server did not start: {why}")
    load_s = time.perf_counter() - started
    rows: list[dict[str, Any]] = []

    def timed(kind: str, severity: str, write: Any) -> None:
        started = time.perf_counter()
        report = write()
        rows.append(
            {
                "kind": kind,
                "severity": severity,
                "seconds": round(time.perf_counter() - started, 1),
                "provider": report.provider,
                "tokens_in": report.tokens_in,
                "tokens_out": report.tokens_out,
                "calls": report.calls,
                "gemini_usd": (report.tokens_in * price_in + report.tokens_out * price_out) / 1e6,
                "fallback": report.fallback_reason,
            }
        )

    try:
        for incident, evidence in picked:
            timed(
                incident.kind,
                incident.severity,
                lambda i=incident, e=evidence: analyst.analyze(i, e),
            )
        if batch:
            severity = max((i.severity for i in batch), key=SEVERITIES.index)
            timed(f"batch of {len(batch)}", severity, lambda: analyst.analyze_batch(batch))
    finally:
        analyst.close()
    print(
        f"  local model {provider.model}: model server ready in {load_s:.1f} s "
        f"(process start and load; the load alone {provider.load_seconds or 0:.1f} s; 2-core CPU)"
    )
    print(f"    (the same tokens on {config.gemini_model} would cost the $ shown)")
    for row in rows:
        rate = row["tokens_out"] / row["seconds"] if row["seconds"] else 0.0
        print(
            f"    {row['kind']:<24} {row['severity']:<8} {row['seconds']:>6.1f} s  "
            f"{row['calls']} calls  {row['tokens_in']:>5} in {row['tokens_out']:>5} out "
            f"({rate:.1f} out/s)  ${row['gemini_usd']:.4f}  report by {row['provider']}"
            + (f" ({row['fallback']})" if row["fallback"] else "")
        )
    median = statistics.median(float(r["seconds"]) for r in rows) if rows else 0.0
    print(f"    median {median:.1f} s per report")
    return {"model": provider.model, "load_seconds": round(load_s, 1), "reports": rows}


if __name__ == "__main__":
    raise SystemExit(main())
