"""The shipped policy: better than random by far, at least as good as the rules; recommend()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    INCIDENT_KINDS,
    PASSWORD_SPRAY,
    Incident,
)
from soc.respond.playbooks import load_playbooks
from soc.respond.policy.env import ACTIONS, EnvConfig
from soc.respond.policy.recommend import PolicyError, Recommender
from soc.respond.policy.train import (
    HELD_OUT_SEED,
    TrainConfig,
    compare,
    evaluate,
    model_policy,
    random_policy,
    rule_policy,
    save,
    train,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "policy"


@pytest.fixture(scope="module")
def shipped() -> Recommender:
    return Recommender.load(SHIPPED)


def test_the_shipped_policy_is_small_and_documented() -> None:
    assert (SHIPPED / "policy.zip").stat().st_size < 400_000
    card = json.loads((SHIPPED / "policy.json").read_text(encoding="utf-8"))
    assert {"seed", "timesteps", "config", "versions", "evaluation"} <= set(card)
    assert {"stable_baselines3", "torch"} <= set(card["versions"])
    assert list(card["actions"]) == list(ACTIONS)


def test_the_shipped_policy_beats_random_and_the_rules(shipped: Recommender) -> None:
    episodes, seed = 100, HELD_OUT_SEED + 5_000  # not the seeds the card quotes either
    policy, _ = evaluate(model_policy(shipped.model), episodes, seed)
    rule, _ = evaluate(rule_policy(), episodes, seed)
    chance, chance_std = evaluate(random_policy(1), episodes, seed)
    assert policy > chance + chance_std  # a clear margin: more than random's own spread
    assert policy >= rule


def _incident(kind: str, **fields: object) -> Incident:
    values: dict[str, object] = {
        "key": "203.0.113.9",
        "kind": kind,
        "first_seen": 0.0,
        "last_seen": 60.0,
        "source_ips": ["203.0.113.9"],
        "users": ["root"],
        "distinct_users": 1,
        "failures": 400,
        "severity": "medium",
    }
    values.update(fields)
    return Incident(**values)  # type: ignore[arg-type]


def test_recommend_on_real_incidents(shipped: Recommender) -> None:
    playbooks = set(load_playbooks(REPO / "playbooks"))
    incidents = [
        _incident(BRUTE_FORCE, facts={"intel": [{"indicator": "listed"}]}, severity="high"),
        _incident(
            CREDENTIAL_COMPROMISE, successes=1, failures=300, severity="critical",
            facts={"intel": [{"indicator": "listed"}]},
        ),
        _incident(PASSWORD_SPRAY, distinct_users=120, failures=500),
        _incident(DISTRIBUTED_BRUTE_FORCE, source_ips=[f"198.51.100.{i}" for i in range(90)]),
        *(_incident(kind) for kind in INCIDENT_KINDS),
    ]  # fmt: skip
    for incident in incidents:
        playbook, action, probability = shipped.recommend(incident)
        assert action in ACTIONS
        assert playbook is None or playbook in playbooks
        assert 0.0 < probability <= 1.0
        probabilities = shipped.probabilities(incident)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert probability == max(probabilities.values()) == probabilities[action]
    # A listed attacker who got in: the account is contained; so is the sample's
    # unlisted one (13 failures, then a login): a lockout costs less than an intruder.
    assert shipped.recommend(incidents[1]).playbook == "contain-account"
    quiet = _incident(CREDENTIAL_COMPROMISE, successes=1, failures=13, severity="critical")
    assert shipped.recommend(quiet).playbook == "contain-account"


def test_loading_is_lazy_and_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    recommender = Recommender.load(SHIPPED)
    assert recommender._model is None  # nothing loaded until the first recommendation
    assert recommender.card["timesteps"] > 0
    with pytest.raises(PolicyError, match=r"no trained policy here .*soc policy train"):
        Recommender.load(tmp_path)


def test_a_short_training_run_end_to_end(tmp_path: Path) -> None:
    config = TrainConfig(env=EnvConfig(episode_length=10), n_steps=256, batch_size=64, n_epochs=2)
    model = train(seed=1, timesteps=512, config=config)
    figures = compare(model, episodes=5, config=config.env)
    assert set(figures) == {"policy", "rule", "random"}
    card = save(model, tmp_path, seed=1, timesteps=512, config=config, evaluation=figures)
    recommender = Recommender.load(card.parent)
    assert recommender.card["config"]["env"]["episode_length"] == 10
    _, action, probability = recommender.recommend(_incident(BRUTE_FORCE))
    assert action in ACTIONS and 0.0 < probability <= 1.0
