"""The simulator: seeded, and its rewards say what a SOC would say."""

from __future__ import annotations

import numpy as np
import pytest

from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    INCIDENT_KINDS,
    PASSWORD_SPRAY,
    Incident,
)
from soc.respond.base import parse_duration
from soc.respond.playbooks import load_playbooks
from soc.respond.policy.env import (
    ACTION_PLAYBOOKS,
    ACTION_TTLS,
    ACTIONS,
    N_FEATURES,
    PLAYBOOK_ACTIONS,
    EnvConfig,
    SocEnv,
    features,
)
from soc.respond.policy.train import PolicyFn, evaluate


def _rollout(seed: int, actions: list[int]) -> list[tuple[list[float], float, bool]]:
    env = SocEnv()
    obs, _ = env.reset(seed=seed)
    out = []
    for a in actions:
        obs, reward, done, _, _ = env.step(a)
        out.append((obs.tolist(), reward, done))
        if done:
            break
    return out


def test_the_same_seed_and_actions_give_the_same_episode() -> None:
    actions = [i % len(ACTIONS) for i in range(20)]
    assert _rollout(3, actions) == _rollout(3, actions)
    assert _rollout(3, actions) != _rollout(4, actions)
    assert _rollout(3, actions)[-1][2] is True  # 20 incidents to a shift


def test_observations_fit_the_space() -> None:
    env = SocEnv()
    obs, _ = env.reset(seed=1)
    for i in range(40):
        assert env.observation_space.contains(obs)
        obs, _, done, _, _ = env.step(i % len(ACTIONS))
        if done:
            obs, _ = env.reset(seed=100 + i)


def _always(action: str) -> PolicyFn:
    index = ACTIONS.index(action)
    return lambda _obs: index


def test_blocking_a_legitimate_office_costs() -> None:
    offices = EnvConfig(kinds=(PASSWORD_SPRAY,), false_alarms={PASSWORD_SPRAY: 1.0})
    ignored, _ = evaluate(_always("ignore"), 20, seed=5, config=offices)
    blocked, _ = evaluate(_always("block_1h"), 20, seed=5, config=offices)
    day, _ = evaluate(_always("block_24h_notify"), 20, seed=5, config=offices)
    assert ignored == 0.0
    assert day < blocked < -20.0  # hundreds of people locked out of work, 20 times a shift


def test_ignoring_a_persistent_brute_force_costs() -> None:
    attacks = EnvConfig(kinds=(BRUTE_FORCE,), false_alarms={BRUTE_FORCE: 0.0})
    ignored, _ = evaluate(_always("ignore"), 20, seed=5, config=attacks)
    blocked, _ = evaluate(_always("block_24h_notify"), 20, seed=5, config=attacks)
    assert ignored < -20.0 < 0.0 < blocked


def test_only_locking_the_account_stops_a_compromise() -> None:
    compromises = EnvConfig(
        kinds=(CREDENTIAL_COMPROMISE,), false_alarms={CREDENTIAL_COMPROMISE: 0.0}
    )
    scores = {a: evaluate(_always(a), 20, seed=5, config=compromises)[0] for a in ACTIONS}
    assert max(scores, key=lambda a: scores[a]) == "lock_user_escalate"


def test_every_action_names_a_shipped_playbook_or_none() -> None:
    shipped = load_playbooks("playbooks")
    assert {p for p in ACTION_PLAYBOOKS.values() if p is not None} <= set(shipped)
    assert all(PLAYBOOK_ACTIONS[p] in ACTIONS for p in ACTION_PLAYBOOKS.values())
    # What the simulator charges for an action is what its playbook does: the TTL.
    for act, name in ACTION_PLAYBOOKS.items():
        ttl = ACTION_TTLS[act]
        if name is not None and ttl is not None:
            assert shipped[name].ttl == parse_duration(ttl, act), act
    assert ACTION_PLAYBOOKS[PLAYBOOK_ACTIONS["block-1h"]] == "block-1h"
    assert ACTION_PLAYBOOKS[PLAYBOOK_ACTIONS["block-15m"]] == "block-15m"


def test_features_of_a_real_incident() -> None:
    incident = Incident(
        key="203.0.113.9",
        kind=BRUTE_FORCE,
        first_seen=0.0,
        last_seen=10.0,
        source_ips=["203.0.113.9", "203.0.113.10"],
        users=["root"],
        distinct_users=1,
        failures=1000,
        successes=0,
        severity="high",
        facts={"intel": [{"indicator": "x"}]},
    )
    obs = features(incident)
    assert obs.shape == (N_FEATURES,) and obs.dtype == np.float32
    k = len(INCIDENT_KINDS)
    assert obs[INCIDENT_KINDS.index(BRUTE_FORCE)] == 1.0 and obs[:k].sum() == 1.0
    assert obs[k] == pytest.approx(1.0)  # log failures: 1000 maps to 1
    assert obs[k + 1] == 0.0  # no success
    assert obs[k + 5] == pytest.approx(2 / 3)  # high
    assert obs[k + 6] == 1.0 and obs[k + 7] == 1.0  # intel hit, two addresses
    assert SocEnv().observation_space.contains(obs)
    unknown = features(Incident(key="x", kind="alert", first_seen=0.0, last_seen=0.0))
    assert unknown[:k].sum() == 0.0


def test_config_round_trips_and_refuses_nonsense() -> None:
    config = EnvConfig(episode_length=5, false_alarms={BRUTE_FORCE: 0.5})
    again = EnvConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    with pytest.raises(ValueError, match="unknown"):
        EnvConfig(kinds=("phishing",))
    with pytest.raises(ValueError, match="within"):
        EnvConfig(false_alarms={BRUTE_FORCE: 1.5})
