"""Same answers: every line's event, every window and every incident equal the reference
recorded before the columnar rewrite (``python -m tests.differential.record``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import require
from tests.differential.outputs import CORPORA, Case, canonical, cases, load_reference, outputs

CASES = list(cases())


def _first_difference(now: list[Any], then: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(now, then, strict=False)):
        if a != b:
            return f"#{index + 1}: now {canonical(a)[:600]}\n  was {canonical(b)[:600]}"
    return f"{len(now)} records now, {len(then)} recorded"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_pipeline_gives_the_recorded_answers(case: Case) -> None:
    if case.name.startswith("fail2ban-"):
        require(CORPORA.is_dir(), f"fail2ban corpora at {CORPORA} (see ../shared/corpora)")
    recorded = load_reference(case)
    now = json.loads(canonical(outputs(case)))
    assert len(recorded["lines"]) > 0
    for part in ("lines", "windows", "incidents"):
        assert now[part] == recorded[part], f"{case.name} {part}: " + _first_difference(
            now[part], recorded[part]
        )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_stages_as_pure_functions_give_the_recorded_answers(case: Case) -> None:
    # (batch, carried state) → (output, state), the state shipped as JSON between
    # batches: what a distributed engine's operators would run, the same answers.
    if case.name.startswith("fail2ban-"):
        require(CORPORA.is_dir(), f"fail2ban corpora at {CORPORA} (see ../shared/corpora)")
    recorded = load_reference(case)
    now = json.loads(canonical(outputs(case, staged=True)))
    for part in ("lines", "windows", "incidents"):
        assert now[part] == recorded[part], f"{case.name} {part}: " + _first_difference(
            now[part], recorded[part]
        )


def test_the_reference_covers_every_kind_of_answer() -> None:
    """The recorded cases are not trivially empty: events, windows and incidents of every
    family, so that a rewrite that changes any of them is caught."""
    kinds: set[str] = set()
    incidents: set[str] = set()
    windows = 0
    for case in CASES:
        if case.digests:
            continue
        recorded = load_reference(case)
        kinds.update(r["kind"] for r in recorded["lines"] if isinstance(r, dict))
        incidents.update(i["kind"] for i in recorded["incidents"])
        windows += len(recorded["windows"])
    assert {"auth_failure", "invalid_user", "auth_success", "web_request", "firewall_drop"} <= kinds
    assert len(incidents) >= 8, incidents
    assert windows > 1000
