"""A replay's summary: what ``soc replay`` prints, or writes with ``--summary-json``.

A long replay has tens of thousands of incidents: they are read from the store a page
at a time (:meth:`SqlStore.iter_incidents`) while the summary is printed or written,
never held all at once, so the replay's peak memory does not grow with its length.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from soc.acquire.base import AcquireStats
from soc.events import SEVERITIES, Incident, format_timestamp
from soc.parse.base import ParseStats

#: Incidents a replay's printed summary lists (the most severe, then the largest).
INCIDENTS_SHOWN = 20


class ReplayIncidents:
    """The incidents a replay stored, read from the store when asked, in pages."""

    def __init__(self, store: Any, ids: Iterable[int], analysis: Any = None) -> None:
        self.store = store
        self.ids = ids
        self.analysis = analysis

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every incident as the summary's JSON has it, first seen first."""
        reports = self.analysis.reports if self.analysis is not None else None
        for incident in self.store.iter_incidents(self.ids):
            row = incident_json(incident)
            if reports is not None:
                done = reports.get(row["id"])
                row["analysis"] = (
                    None
                    if done is None
                    else {
                        "provider": done.provider,
                        "grounded": done.grounded,
                        "reused": done.reused,
                        "batch": done.batch_incidents or None,
                    }
                )
            yield row

    def ranked(self, n: int) -> tuple[int, list[dict[str, Any]]]:
        """How many there are, and the ``n`` most severe (then largest, then oldest id)."""
        count = 0

        def counted() -> Iterator[dict[str, Any]]:
            nonlocal count
            for row in self.rows():
                count += 1
                yield row

        top = heapq.nsmallest(
            n,
            counted(),
            key=lambda i: (-SEVERITIES.index(i["severity"]), -i["failures"], i["id"]),
        )
        return count, top


def write_summary_json(summary: Mapping[str, Any], out: TextIO) -> None:
    """``json.dump(summary, out, indent=2, ensure_ascii=False)`` with the incidents
    streamed, one at a time."""
    out.write("{")
    for index, (key, value) in enumerate(summary.items()):
        out.write(("," if index else "") + "\n  " + json.dumps(key, ensure_ascii=False) + ": ")
        if isinstance(value, ReplayIncidents):
            first = True
            for row in value.rows():
                out.write(("[" if first else ",") + "\n    " + _indented(row, 4))
                first = False
            out.write("[]" if first else "\n  ]")
        else:
            out.write(_indented(value, 2))
    out.write("\n}\n" if summary else "}\n")


def _indented(value: Any, by: int) -> str:
    # JSON text holds no raw newline inside a string: each newline starts a line.
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + " " * by)


def summary(engine: Any, store: Any, *, top: int, analysis: Any = None) -> dict[str, Any]:
    """A replay's summary; its ``incidents`` are a :class:`ReplayIncidents`, read from
    the store while the summary is printed or written (the store must be open)."""
    report = engine.report
    findings = report.findings
    stats: ParseStats = report.parse
    if analysis is not None:
        usage = analysis.analyst.usage.as_dict()
    else:
        from soc.analyze.analyst import Usage

        usage = Usage().as_dict()  # detection only: nothing analysed
    calls = usage["calls"]
    usage["lines_per_call"] = round(stats.lines / calls, 1) if calls else None
    usage["events_per_call"] = round(stats.events / calls, 1) if calls else None
    return {
        "lines": stats.lines,
        "events": stats.events,
        "unparsed": stats.unparsed_total,
        "incidents": ReplayIncidents(store, report.incident_ids, analysis),
        "llm": usage,
        "threshold": engine.threshold,
        "window_seconds": engine.settings.window.seconds,
        "windows": report.windows_stored,
        "window_stats": report.window.as_dict(),
        "detector_stats": report.detect.as_dict(),
        "ignored": sum(stats.ignored.values()),
        "by_kind": dict(sorted(stats.by_kind.items())),
        "unparsed_by_reason": dict(sorted(stats.unparsed.items())),
        "acquire": {name: s.as_dict() for name, s in report.acquire.items()},
        "anomalies": anomalies(report.acquire.values()),
        "first_seen": format_timestamp(findings.first_seen) if findings.first_seen else None,
        "last_seen": format_timestamp(findings.last_seen) if findings.last_seen else None,
        "top_failing_addresses": [
            {
                "address": address,
                "failures": n,
                "successes": findings.successes_by_address.get(address),
            }
            for address, n in findings.failures_by_address.most_common(top)
        ],
        "top_targeted_users": [
            {"user": user, "failures": n} for user, n in findings.targeted_users.most_common(top)
        ],
        # 0: the top lists' counts are exact; else each may be low by at most this.
        "top_undercount": findings.undercount,
        # Wall-clock seconds by pipeline stage (soc.engine.STAGES; commit_* are parts
        # of commit): where the replay's time went, start-up and this summary aside.
        "stage_seconds": {name: round(spent, 6) for name, spent in report.seconds.items()},
    }


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    out.write(
        f"{summary['lines']} lines, {summary['events']} events, "
        f"{summary['unparsed']} unparsed, {summary['ignored']} ignored\n"
    )
    if summary["first_seen"]:
        out.write(f"from {summary['first_seen']} to {summary['last_seen']}\n")
    if summary["anomalies"]:
        print_anomalies(summary["anomalies"], out)
    out.write("\nevents by kind\n")
    for kind, n in sorted(summary["by_kind"].items(), key=lambda kv: (-kv[1], kv[0])):
        out.write(f"  {kind:<18}{n:>10}\n")
    count, ranked = summary["incidents"].ranked(INCIDENTS_SHOWN)
    out.write(
        f"\n{plural(count, 'incident')} (threshold {summary['threshold']} failures "
        f"in {summary['window_seconds']:g} s)\n"
    )
    print_incidents(ranked, out)
    if count > len(ranked):
        out.write(
            f"  … and {count - len(ranked)} more, less severe or smaller"
            " (all of them: --summary-json, or --db URL and soc incidents)\n"
        )
    llm = summary["llm"]
    if llm["calls"]:
        by = ", ".join(f"{name} {n}" for name, n in llm["by_provider"].items())
        out.write(
            f"\n{plural(llm['calls'], 'report')} for {plural(count, 'incident')} "
            f"({by}; {llm['batches']} for batches of {llm['batched_incidents']} incidents): "
            f"{llm['model_calls']} model calls, {llm['lines_per_call']:,.0f} lines per report, "
            f"${llm['cost_usd']:.4f}\n"
        )
    if summary["top_failing_addresses"]:
        out.write("\naddresses with the most failed attempts\n")
        for row in summary["top_failing_addresses"]:
            flag = "  (also logged in)" if row["successes"] else ""
            out.write(f"  {printable(row['address']):<40}{row['failures']:>8}{flag}\n")
    if summary["top_targeted_users"]:
        out.write("\nmost targeted user names\n")
        for row in summary["top_targeted_users"]:
            out.write(f"  {printable(row['user']):<40}{row['failures']:>8}\n")
    if summary["top_undercount"]:
        out.write(
            f"  (too many distinct addresses and names to count each: the counts above"
            f" may be low by up to {summary['top_undercount']:,})\n"
        )
    print_stage_seconds(summary["stage_seconds"], out)


#: How the printed summary names the engine's stages (``stage_seconds``).
STAGE_LABELS = {
    "acquire": "acquisition",
    "parse": "parsing",
    "findings": "columns and top lists",
    "window": "windowing",
    "detect": "detection",
    "commit": "store commit",
}


def print_stage_seconds(seconds: Mapping[str, float], out: TextIO) -> None:
    """One line: the wall-clock seconds of each stage, the store's commit split."""
    parts = [f"{label} {seconds[name]:.2f}" for name, label in STAGE_LABELS.items()]
    parts[-1] += (
        f" (windows {seconds['commit_windows']:.2f}, incidents {seconds['commit_incidents']:.2f})"
    )
    out.write(f"\nseconds by stage: {', '.join(parts)}\n")


def print_incidents(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        who = ", ".join(printable(a) for a in row["source_ips"][:3]) or printable(row["key"])
        if len(row["source_ips"]) > 3:
            who += f" (+{len(row['source_ips']) - 3})"
        users = ", ".join(printable(u) for u in row["users"][:3])
        if row["distinct_users"] > 3:
            users += f" (+{row['distinct_users'] - 3})"
        out.write(
            f"  #{row['id']:<5} {row['severity']:<8} {row['kind']:<24} {row['technique']:<10}"
            f" {row['failures']:>7} failures  {who}"
            + (f"  users: {users}" if users else "")
            + f"  {row['first_seen'][:19]} → {row['last_seen'][:19]}\n"
        )


def anomalies(stats: Iterable[AcquireStats]) -> dict[str, int]:
    """The acquisition anomalies of sources, by reason, summed (``soc parse`` and ``replay``)."""
    total: Counter[str] = Counter()
    for source in stats:
        total.update(source.anomalies)
    return {reason: n for reason, n in sorted(total.items()) if n}


def print_anomalies(anomalies: Mapping[str, int], out: TextIO) -> None:
    """The lines ``soc parse --stats`` and ``soc replay`` print for ``anomalies``."""
    out.write(f"anomalies {sum(anomalies.values())}\n")
    for reason, n in sorted(anomalies.items(), key=lambda kv: (-kv[1], kv[0])):
        out.write(f"  {reason:<18}{n}\n")


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "kind": incident.kind,
        "key": incident.key,
        "source_ips": incident.source_ips,
        "users": incident.users,
        "distinct_users": incident.distinct_users,
        "failures": incident.failures,
        "successes": incident.successes,
        "events": incident.events,
        "first_seen": format_timestamp(incident.first_seen),
        "last_seen": format_timestamp(incident.last_seen),
        "severity": incident.severity,
        "technique": incident.technique,
        "technique_name": incident.technique_name,
        "status": incident.status,
        "closed": incident.closed,
    }


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def printable(text: str) -> str:
    # Attacker-written names and host names may hold control characters or terminal
    # escape sequences: repr() keeps them on one line and inert.
    return text if text.isprintable() else repr(text)
