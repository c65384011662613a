"""What ``soc eval`` prints: the tables as text, and the whole result as plain data.

Precision and recall per incident kind, legitimate addresses flagged, and what
the incidents cost: per million lines, and lines per model call.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from soc.evaluate.harness import EvalResult, ScenarioResult
from soc.evaluate.scenarios import BACKGROUND
from soc.evaluate.score import CORRECT

#: Incidents that are not correct shown per scenario under the tables.
PROBLEMS_SHOWN: Final = 5

RECALL_RULE: Final = "a campaign is caught when an incident of its kind names one of its addresses"
PRECISION_RULE: Final = (
    "an incident is correct when none of its addresses is legitimate and most of them "
    "belong to attacks its kind describes"
)


def per_million(count: int, lines: int) -> float | None:
    """``count`` per million ``lines``."""
    return round(count * 1_000_000 / lines, 1) if lines else None


def lines_per_call(lines: int, calls: int) -> float | None:
    """Lines for each model call (None when there was no call)."""
    return round(lines / calls, 1) if calls else None


def render(result: EvalResult) -> str:
    """The tables ``soc eval`` prints."""
    out: list[str] = [
        f"soc eval: size {result.size}, seed {result.seed}: {len(result.scenarios)} scenarios, "
        f"{result.lines:,} lines in {result.seconds:.0f} s",
        "",
        f"{'scenario':<30}{'group':<12}{'lines':>11}{'incidents':>11}"
        f"{'legitimate flagged':>20}{'attacks caught':>16}{'model calls':>13}",
    ]
    for r in result.scenarios:
        caught = f"{r.score.caught} of {r.score.campaigns}" if r.score.campaigns else "-"
        users = f"{len(r.score.legitimate_flagged)} of {r.score.legitimate_addresses:,}"
        out.append(
            f"{r.name:<30}{r.group:<12}{r.lines:>11,}{r.incidents:>11,}{users:>20}"
            f"{caught:>16}{r.calls.model_calls:>13,}"
        )
    out += [
        "",
        f"{'kind':<26}{'incidents':>10}{'correct':>9}{'precision':>11}"
        f"{'campaigns':>11}{'caught':>8}{'recall':>8}",
    ]
    for kind, tally in result.kinds.items():
        out.append(
            f"{kind:<26}{tally.incidents:>10,}{tally.correct:>9,}{_percent(tally.precision):>11}"
            f"{tally.campaigns:>11,}{tally.caught:>8,}{_percent(tally.recall):>8}"
        )
    calls = result.calls.model_calls
    replayed = result.replay_calls.model_calls
    flagged, total = result.legitimate_flagged, result.legitimate_addresses
    share = _percent(flagged / total if total else None, digits=2)
    out += [
        "",
        f"legitimate addresses flagged   {flagged:,} of {total:,} ({share})",
        f"lines                          {result.lines:,}",
        f"incidents per million lines    {_number(per_million(result.incidents, result.lines))}",
        f"model calls per million lines  {_number(per_million(calls, result.lines))} live, "
        f"{_number(per_million(replayed, result.lines))} in a replay",
        f"lines per model call           {_number(lines_per_call(result.lines, calls))} live, "
        f"{_number(lines_per_call(result.lines, replayed))} in a replay",
    ]
    for r in result.scenarios:
        if r.group == BACKGROUND:
            live, replay = r.calls.model_calls, r.replay_calls.model_calls
            out.append(
                f"{r.name} alone: {r.lines:,} lines, {r.incidents:,} incidents "
                f"({_number(per_million(r.incidents, r.lines))} per million lines); model calls "
                f"{live:,} live ({_number(lines_per_call(r.lines, live))} lines each), "
                f"{replay:,} in a replay ({_number(lines_per_call(r.lines, replay))} lines each)"
            )
    out += ["", f"recall: {RECALL_RULE}.", f"precision: {PRECISION_RULE}."]
    problems = [line for r in result.scenarios for line in _problems(r)]
    if problems:
        out += ["", "not correct or missed:", *problems]
    return "\n".join(out) + "\n"


def _problems(r: ScenarioResult) -> list[str]:
    lines: list[str] = []
    wrong = [v for v in r.score.verdicts if v.verdict != CORRECT]
    for v in wrong[:PROBLEMS_SHOWN]:
        who = ", ".join(v.addresses[:3]) + (
            f" (+{len(v.addresses) - 3})" if len(v.addresses) > 3 else ""
        )
        lines.append(f"  {r.name}: {v.verdict} {v.kind} #{v.id} key {v.key!r} from {who}")
        lines.extend(f"      {_printable(e)}" for e in v.evidence[:2])
    if len(wrong) > PROBLEMS_SHOWN:
        lines.append(f"  {r.name}: … and {len(wrong) - PROBLEMS_SHOWN} more not correct")
    missed = Counter(c.kind for c in r.score.missed)
    for kind, n in sorted(missed.items(), key=lambda kv: str(kv[0])):
        names = [c.name for c in r.score.missed if c.kind == kind][:3]
        lines.append(f"  {r.name}: missed {n} {kind} ({', '.join(names)}{', …' if n > 3 else ''})")
    return lines


def as_dict(result: EvalResult) -> dict[str, Any]:
    """The whole result as plain data (``soc eval --json``)."""
    calls = result.calls
    return {
        "size": result.size,
        "seed": result.seed,
        "seconds": round(result.seconds, 1),
        "lines": result.lines,
        "incidents": result.incidents,
        "model_calls": calls.model_calls,
        "incidents_per_million_lines": per_million(result.incidents, result.lines),
        "model_calls_per_million_lines": per_million(calls.model_calls, result.lines),
        "lines_per_model_call": lines_per_call(result.lines, calls.model_calls),
        "analysis": calls.as_dict(),
        "replay_model_calls": result.replay_calls.model_calls,
        "replay_lines_per_model_call": lines_per_call(
            result.lines, result.replay_calls.model_calls
        ),
        "replay_analysis": result.replay_calls.as_dict(),
        "legitimate": {
            "addresses": result.legitimate_addresses,
            "flagged": result.legitimate_flagged,
        },
        "kinds": {kind: tally.as_dict() for kind, tally in result.kinds.items()},
        "rules": {"recall": RECALL_RULE, "precision": PRECISION_RULE},
        "scenarios": [_scenario_dict(r) for r in result.scenarios],
    }


def _scenario_dict(r: ScenarioResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "group": r.group,
        "description": r.description,
        "files": r.labels.lines,
        "lines": r.lines,
        "unparsed": r.unparsed,
        "incidents": r.incidents,
        "incidents_per_million_lines": per_million(r.incidents, r.lines),
        "model_calls_per_million_lines": per_million(r.calls.model_calls, r.lines),
        "lines_per_model_call": lines_per_call(r.lines, r.calls.model_calls),
        "analysis": r.calls.as_dict(),
        "replay_lines_per_model_call": lines_per_call(r.lines, r.replay_calls.model_calls),
        "replay_analysis": r.replay_calls.as_dict(),
        "legitimate_addresses": r.score.legitimate_addresses,
        "legitimate_flagged": r.score.legitimate_flagged,
        "campaigns": r.score.campaigns,
        "caught": r.score.caught,
        "kinds": {k: t.as_dict() for k, t in r.score.kinds.items() if t.incidents or t.campaigns},
        "not_correct": [v.as_dict() for v in r.score.verdicts if v.verdict != CORRECT],
        "missed": [c.as_dict() for c in r.score.missed],
        "seconds": {
            "generate": round(r.seconds_generate, 2),
            "pipeline": round(r.seconds_pipeline, 2),
        },
    }


def _percent(value: float | None, *, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _printable(text: str) -> str:
    # Evidence is attacker-written: keep control characters and escapes inert.
    return text if text.isprintable() else repr(text)


__all__ = ["as_dict", "lines_per_call", "per_million", "render"]
