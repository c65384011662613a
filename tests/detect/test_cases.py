"""Detection cases as data folders: a real log, the incidents it must give, nothing else.

Each folder under ``cases/`` holds ``input.log`` (lines in a format the parsers read;
``format`` in ``expected.json``, default ``syslog``; parsed as year 2025, UTC),
``expected.json`` (``incidents``: every incident the log must give, and no other;
optionally ``windows``: rows the windower must give) and optionally
``config.json`` (``DetectConfig`` overrides, validated like ``soc.toml``).

In ``expected.json`` an incident matches on every field it names: strings and
numbers exactly (times as ISO 8601 UTC), ``source_ips``/``users`` as sets,
``{"min": n, "max": m}`` for a range, ``facts`` as a subset of the incident's facts.
Each case also runs in random small batches and must give exactly the same incidents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from soc.config import build_dataclass
from soc.detect import DetectConfig, Detector
from soc.events import Incident, WindowStats
from soc.window import Windower
from tests.detect.builders import (
    comparable,
    iso_to_epoch,
    parse_events,
    random_batches,
    run_batches,
)

CASES = Path(__file__).parent / "cases"
TIME_FIELDS = ("first_seen", "last_seen", "opened_at", "updated_at", "window_start")
SET_FIELDS = ("source_ips", "users")


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "expected.json").exists())


def load_case(name: str) -> tuple[list[Any], dict[str, Any], DetectConfig]:
    folder = CASES / name
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    overrides: dict[str, Any] = {}
    if (folder / "config.json").exists():
        overrides = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config = build_dataclass(DetectConfig, overrides, f"{folder / 'config.json'}")
    events, unparsed = parse_events(folder / "input.log", expected.get("format", "syslog"))
    assert not unparsed, f"{name}: lines the parser did not understand: {unparsed}"
    assert events, f"{name}: no events"
    return events, expected, config


def matches(actual: Any, wanted: Any, field: str) -> bool:
    if field in TIME_FIELDS and isinstance(wanted, str):
        return actual is not None and abs(actual - iso_to_epoch(wanted)) < 1e-6
    if field in SET_FIELDS:
        return sorted(actual) == sorted(wanted)
    if isinstance(wanted, dict) and field != "facts" and set(wanted) <= {"min", "max"}:
        return bool(wanted.get("min", actual) <= actual <= wanted.get("max", actual))
    if field == "facts":
        return all(k in actual and actual[k] == v for k, v in wanted.items())
    return bool(actual == wanted)


def mismatches(item: Incident | WindowStats, wanted: dict[str, Any]) -> list[str]:
    return [
        f"{field}: got {getattr(item, field)!r}, want {value!r}"
        for field, value in wanted.items()
        if not matches(getattr(item, field), value, field)
    ]


@pytest.mark.parametrize("name", case_names())
def test_case(name: str) -> None:
    events, expected, config = load_case(name)
    got = run_batches(Detector(config), [events])
    wanted: list[dict[str, Any]] = expected["incidents"]
    unmatched = list(got.values())
    problems: list[str] = []
    for spec in wanted:
        candidates = [
            i
            for i in unmatched
            if i.kind == spec["kind"] and ("key" not in spec or i.key == spec["key"])
        ]
        best = min(candidates, key=lambda i: len(mismatches(i, spec)), default=None)
        if best is None:
            problems.append(f"missing {spec['kind']} {spec.get('key')}")
            continue
        wrong = mismatches(best, spec)
        if wrong:
            problems.append(f"{spec['kind']} {best.key}: " + "; ".join(wrong))
        unmatched.remove(best)
    problems.extend(f"unexpected {i.kind} {i.key} ({i.failures} failures)" for i in unmatched)
    assert not problems, f"{name}: " + "\n".join(problems)
    # Every incident is a complete, well-formed campaign.
    for incident in got.values():
        assert incident.detector_key
        assert incident.technique and incident.technique_name
        assert incident.first_seen <= incident.last_seen
        assert len(incident.evidence) <= config.evidence_lines
        assert incident.closed  # flush closed it


@pytest.mark.parametrize("name", case_names())
def test_case_in_random_batches_gives_the_same_incidents(name: str) -> None:
    events, _, config = load_case(name)
    whole = run_batches(Detector(config), [events])
    for seed in range(3):
        split = run_batches(Detector(config), random_batches(events, seed, most=7))
        assert {k: comparable(v) for k, v in split.items()} == {
            k: comparable(v) for k, v in whole.items()
        }, f"{name}: seed {seed}"


@pytest.mark.parametrize(
    "name",
    [n for n in case_names() if "windows" in json.loads((CASES / n / "expected.json").read_text())],
)
def test_case_windows(name: str) -> None:
    events, expected, _ = load_case(name)
    windower = Windower()
    rows = windower.add(events) + windower.flush()
    for spec in expected["windows"]:
        start = iso_to_epoch(spec["window_start"])
        found = [
            r
            for r in rows
            if r.key == spec["key"] and r.key_type == spec["key_type"] and r.window_start == start
        ]
        assert len(found) == 1, f"{name}: no single window {spec}"
        assert not mismatches(found[0], spec), f"{name}: {mismatches(found[0], spec)}"
