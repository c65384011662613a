"""The gates, on the small size: legitimate traffic raises nothing, every attack is caught.

The legitimate-only scenarios must raise no incident at all; every attack
campaign of the attack scenarios must be caught by an incident of its own kind
(full recall); no legitimate address next to an attack may be flagged. A failure
names the incidents responsible, with their first evidence lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from soc.cli import main
from soc.evaluate import SCENARIOS, SIZES, EvalResult, ScenarioResult, run_evaluation
from soc.evaluate.scenarios import ATTACK, BACKGROUND, LEGITIMATE, scenario
from soc.evaluate.score import Verdict

LEGITIMATE_SCENARIOS = [s.name for s in SCENARIOS if s.group == LEGITIMATE]
ATTACK_SCENARIOS = [s.name for s in SCENARIOS if s.group == ATTACK]


def _result(result: EvalResult, name: str) -> ScenarioResult:
    (found,) = [r for r in result.scenarios if r.name == name]
    return found


def _describe(verdicts: list[Verdict]) -> str:
    return "\n".join(
        f"{v.kind} key={v.key!r} ({v.verdict}, {v.failures} failures) from "
        f"{', '.join(v.addresses[:5])}\n    " + "\n    ".join(v.evidence[:3])
        for v in verdicts
    )


def test_every_scenario_ran_and_every_line_was_parsed(small_eval: EvalResult) -> None:
    assert [r.name for r in small_eval.scenarios] == [s.name for s in SCENARIOS]
    for r in small_eval.scenarios:
        assert r.lines == sum(r.labels.lines.values()) > 0, r.name
        assert r.unparsed == 0, r.name
    assert _result(small_eval, BACKGROUND).lines == SIZES["small"].background_lines


@pytest.mark.parametrize("name", LEGITIMATE_SCENARIOS)
def test_legitimate_traffic_raises_no_incident(small_eval: EvalResult, name: str) -> None:
    result = _result(small_eval, name)
    assert result.score.legitimate_addresses > 0
    assert result.score.verdicts == [], (
        f"{name}: {result.incidents} incidents on legitimate traffic:\n"
        + _describe(result.score.verdicts)
    )


@pytest.mark.parametrize("name", ATTACK_SCENARIOS)
def test_every_attack_is_caught_with_its_kind(small_eval: EvalResult, name: str) -> None:
    result = _result(small_eval, name)
    assert result.score.campaigns >= 1
    missed = [f"{c.name} ({c.kind}) from {', '.join(c.addresses[:5])}" for c in result.score.missed]
    found = [f"{v.kind} {v.key!r}" for v in result.score.verdicts]
    assert missed == [], f"{name}: missed {missed}; incidents raised: {found}"
    assert result.score.caught == result.score.campaigns


@pytest.mark.parametrize("name", [*ATTACK_SCENARIOS, BACKGROUND])
def test_legitimate_users_next_to_attacks_are_not_flagged(
    small_eval: EvalResult, name: str
) -> None:
    result = _result(small_eval, name)
    flagged = [v for v in result.score.verdicts if v.legitimate]
    assert result.score.legitimate_flagged == [], (
        f"{name}: legitimate addresses in incidents:\n" + _describe(flagged)
    )


def test_the_analyst_reports_every_incident(small_eval: EvalResult) -> None:
    for r in small_eval.scenarios:
        # every incident gets a report: one of its own or its batch's
        assert r.calls.reports >= (1 if r.incidents else 0), r.name
        assert r.calls.model_calls == r.calls.reports, r.name  # one call a report
        assert r.calls.over_budget == 0, r.name
        assert r.calls.batched_incidents <= r.incidents, r.name
    # the attacks are reported: a model call each at least for the critical ones
    assert _result(small_eval, "attack_mix").calls.model_calls >= 3


def test_the_model_call_guardrail_holds_on_the_background(small_eval: EvalResult) -> None:
    """A public server's log: at least 10,000 lines per model call, every incident reported.

    As ``soc replay`` reports (every incident at the end, on its final state). Live,
    in event time, the same incidents come hours apart and batch less: the
    evaluation prints both.
    """
    r = _result(small_eval, BACKGROUND)
    replay = r.replay_calls
    assert r.incidents > 0 and replay.over_budget == 0
    own_reports = replay.reports - replay.batch_calls
    assert replay.batched_incidents + own_reports >= r.incidents  # none left unreported
    assert r.lines / replay.model_calls >= 10_000, replay.as_dict()
    live = r.calls
    assert live.over_budget == 0 and live.model_calls >= replay.model_calls


def test_cli_prints_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = [scenario("forgotten_password"), scenario("brute_force"), scenario("port_scan")]

    def three(
        size: str, seed: int, *, on_result: Callable[[ScenarioResult], None] | None = None
    ) -> EvalResult:
        assert (size, seed) == ("small", 11)
        return run_evaluation(size, seed, scenarios=chosen, on_result=on_result)

    monkeypatch.setattr("soc.evaluate.run_evaluation", three)
    assert main(["eval", "--size", "small", "--seed", "11"]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].startswith("soc eval: size small, seed 11: 3 scenarios, ")
    assert out[2] == (
        "scenario                      group             lines  incidents  legitimate flagged"
        "  attacks caught  model calls"
    )
    assert [line.split()[:2] for line in out[3:6]] == [
        ["forgotten_password", "legitimate"],
        ["brute_force", "attack"],
        ["port_scan", "attack"],
    ]
    kinds = out.index(
        "kind                       incidents  correct  precision  campaigns  caught  recall"
    )
    assert [line.split()[0] for line in out[kinds + 1 : kinds + 9]] == [
        "brute_force",
        "password_spray",
        "slow_brute_force",
        "distributed_brute_force",
        "credential_compromise",
        "web_scan",
        "web_auth_brute_force",
        "port_scan",
    ]
    assert any(line.startswith("legitimate addresses flagged   ") for line in out)
    assert any(line.startswith("model calls per million lines  ") for line in out)
    assert any(line.startswith("lines per model call           ") for line in out)
    assert "recall: a campaign is caught when an incident of its kind names one of its" in (
        captured.out
    )
    # progress goes to stderr, one line a scenario
    assert len(captured.err.splitlines()) == 3
    assert captured.err.splitlines()[1].startswith("  brute_force: ")

    assert main(["eval", "--seed", "11", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in data["scenarios"]] == [s.name for s in chosen]
    assert data["lines"] == sum(s["lines"] for s in data["scenarios"])
    assert set(data["kinds"]["brute_force"]) == {
        "incidents", "correct", "precision", "campaigns", "caught", "recall",
    }  # fmt: skip
    assert data["scenarios"][1]["campaigns"] == 1
