"""A simulated SOC shift: incidents arrive, the policy picks a response, the world answers.

Each episode is one shift of ``episode_length`` incidents. Behind every incident
is a hidden *case*: either an attacker of one of the detection kinds
(:data:`soc.events.INCIDENT_KINDS`) or legitimate users whose behaviour looks
like one (false alarms). The policy sees only :func:`features` of the incident,
the same numbers it would see on a real :class:`~soc.events.Incident`.

What the simulator models:

- **Attackers persist.** An attacker the response did not stop keeps going: with
  its ``persistence`` chance it comes back one to three incidents later, with
  more failures (and, after two returns, a higher severity), and every incident
  it is left running costs damage.
- **Attackers rotate.** A rotating or distributed attacker moves to other
  addresses when one is blocked: a block stops it far less often, and it comes
  back with more sources. Only a longer block with the team told (who can widen
  it) or an escalation does much against it.
- **Compromised accounts.** After a successful login only locking the account
  stops the attacker; blocks barely help (it already has the password).
- **Legitimate users raise alarms too.** A user mistyping a password before
  logging in, an office of many people behind one address, a CI host retrying
  with a stale credential, an internal vulnerability scanner, a mobile carrier's
  customers after a password change. Blocking them costs in proportion to the
  people behind the address; locking a legitimate account costs most.

Rewards (per incident): ``+value`` (by severity) when the response stops an
attacker, ``-damage`` every time an attacker is left running (and once more per
attacker still running at the end of the shift), ``-cost`` for blocking or
locking out legitimate users, and a small analyst cost for every action but
``ignore``. Everything random comes from the environment's seeded generator:
the same seed and actions give the same episode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    INCIDENT_KINDS,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SEVERITIES,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
    Incident,
)

# --- the response choices and the playbooks they stand for ------------------------------

IGNORE: Final = "ignore"
MONITOR: Final = "monitor"
RATE_LIMIT: Final = "rate_limit"
BLOCK_1H: Final = "block_1h"
BLOCK_24H_NOTIFY: Final = "block_24h_notify"
LOCK_USER_ESCALATE: Final = "lock_user_escalate"

#: The policy's actions, in the order of its action space.
ACTIONS: Final = (IGNORE, MONITOR, RATE_LIMIT, BLOCK_1H, BLOCK_24H_NOTIFY, LOCK_USER_ESCALATE)

#: Action → the playbook (``playbooks/NAME.yaml``) it recommends, None for "run nothing".
#:
#: - ``ignore``: nothing (the incident is left as it is).
#: - ``monitor``: ``notify-team`` (tell the team and the SIEM, block nothing); the
#:   rules recommend it for distributed attacks, where blocking one by one fails.
#: - ``rate_limit``: ``block-15m``, a block of 15 minutes: slows a fast attacker
#:   down, barely hurts a real user.
#: - ``block_1h``: ``block-1h``, a block of an hour.
#: - ``block_24h_notify``: ``block-and-notify`` (24 hours, and the team is told).
#: - ``lock_user_escalate``: ``contain-account`` (lock the account, block the source
#:   for 7 days, notify, open a ticket, export to the SIEM).
#:
#: ``escalate`` and ``release`` are not recommended: escalation is part of
#: ``contain-account``, and a release undoes a response rather than being one.
ACTION_PLAYBOOKS: Final[Mapping[str, str | None]] = {
    IGNORE: None,
    MONITOR: "notify-team",
    RATE_LIMIT: "block-15m",
    BLOCK_1H: "block-1h",
    BLOCK_24H_NOTIFY: "block-and-notify",
    LOCK_USER_ESCALATE: "contain-account",
}

#: The TTL each action's playbook gives its blocks (``tests/policy`` checks the files agree).
ACTION_TTLS: Final[Mapping[str, str | None]] = {
    IGNORE: None,
    MONITOR: None,
    RATE_LIMIT: "15m",
    BLOCK_1H: "1h",
    BLOCK_24H_NOTIFY: "24h",
    LOCK_USER_ESCALATE: "7d",
}

#: A playbook (as the rules recommend it) → the action standing for it: the rule baseline.
PLAYBOOK_ACTIONS: Final[Mapping[str | None, str]] = {
    None: IGNORE,
    "notify-team": MONITOR,
    "escalate": MONITOR,
    "block-15m": RATE_LIMIT,
    "block-1h": BLOCK_1H,
    "block-source": BLOCK_1H,
    "block-and-notify": BLOCK_24H_NOTIFY,
    "contain-account": LOCK_USER_ESCALATE,
}

# --- observations ---------------------------------------------------------------------

#: Names of the observation vector's entries, in order.
FEATURES: Final = (
    *(f"kind={k}" for k in INCIDENT_KINDS),
    "log_failures",
    "any_success",
    "log_successes",
    "log_distinct_users",
    "log_sources",
    "severity",
    "intel_hit",
    "rotating",
    "success_ratio",
)
N_FEATURES: Final = len(FEATURES)


def _log_scaled(value: float, scale: float) -> float:
    return min(2.0, math.log1p(max(0.0, value)) / math.log1p(scale))


def feature_vector(
    kind: str,
    severity: str,
    failures: int,
    successes: int,
    distinct_users: int,
    sources: int,
    intel: bool,
) -> np.ndarray:
    """The observation for an incident described by these figures (float32, ``N_FEATURES``)."""
    out = np.zeros(N_FEATURES, dtype=np.float32)
    if kind in INCIDENT_KINDS:
        out[INCIDENT_KINDS.index(kind)] = 1.0
    k = len(INCIDENT_KINDS)
    out[k] = _log_scaled(failures, 1000)
    out[k + 1] = 1.0 if successes > 0 else 0.0
    out[k + 2] = _log_scaled(successes, 30)
    out[k + 3] = _log_scaled(distinct_users, 100)
    out[k + 4] = _log_scaled(sources, 100)
    out[k + 5] = SEVERITIES.index(severity) / 3 if severity in SEVERITIES else 1 / 3
    out[k + 6] = 1.0 if intel else 0.0
    out[k + 7] = 1.0 if sources > 1 else 0.0
    out[k + 8] = successes / (successes + failures) if successes + failures > 0 else 0.0
    return out


def features(incident: Incident) -> np.ndarray:
    """The policy's observation of a stored or live :class:`~soc.events.Incident`.

    Sources are the incident's addresses (or ``facts["distinct_sources"]`` when the
    detector counted more than it lists); an intel hit is any ``facts["intel"]``.
    """
    sources = len(incident.source_ips)
    counted = incident.facts.get("distinct_sources")
    if isinstance(counted, int) and not isinstance(counted, bool):
        sources = max(sources, counted)
    return feature_vector(
        incident.kind,
        incident.severity,
        incident.failures,
        incident.successes,
        max(incident.distinct_users, len(incident.users)),
        sources,
        bool(incident.facts.get("intel")),
    )


# --- the simulator's world --------------------------------------------------------------

#: What stopping an attacker is worth, by severity index (low … critical).
VALUES: Final = (1.0, 2.0, 3.0, 5.0)

#: Analyst time each action takes (a small cost on every incident).
ANALYST_COSTS: Final[Mapping[str, float]] = {
    IGNORE: 0.0,
    MONITOR: 0.05,
    RATE_LIMIT: 0.05,
    BLOCK_1H: 0.1,
    BLOCK_24H_NOTIFY: 0.2,
    LOCK_USER_ESCALATE: 0.5,
}

#: Cost per person behind the address of blocking legitimate users, by action.
LEGIT_BLOCK_COSTS: Final[Mapping[str, float]] = {
    IGNORE: 0.0,
    MONITOR: 0.0,
    RATE_LIMIT: 0.3,
    BLOCK_1H: 1.0,
    BLOCK_24H_NOTIFY: 2.5,
    LOCK_USER_ESCALATE: 2.5,
}

#: Locking out a legitimate account that logged in.
LOCKOUT_COST: Final = 4.0

#: Share of each kind's incidents that are false alarms (the simulator's prior).
DEFAULT_FALSE_ALARMS: Final[Mapping[str, float]] = {
    BRUTE_FORCE: 0.35,
    SLOW_BRUTE_FORCE: 0.3,
    PASSWORD_SPRAY: 0.3,
    DISTRIBUTED_BRUTE_FORCE: 0.2,
    CREDENTIAL_COMPROMISE: 0.2,
    WEB_SCAN: 0.3,
    WEB_AUTH_BRUTE_FORCE: 0.35,
    PORT_SCAN: 0.4,
}


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """The simulator's settings: shift length, which kinds arrive, how many are false alarms."""

    episode_length: int = 20
    kinds: tuple[str, ...] = INCIDENT_KINDS
    false_alarms: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FALSE_ALARMS))

    def __post_init__(self) -> None:
        if self.episode_length < 1:
            raise ValueError("episode_length must be at least 1")
        unknown = [k for k in (*self.kinds, *self.false_alarms) if k not in INCIDENT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"unknown or no incident kinds: {unknown}")
        if any(not 0.0 <= v <= 1.0 for v in self.false_alarms.values()):
            raise ValueError("false alarm rates must be within [0, 1]")

    def false_alarm(self, kind: str) -> float:
        return float(self.false_alarms.get(kind, DEFAULT_FALSE_ALARMS[kind]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode_length": self.episode_length,
            "kinds": list(self.kinds),
            "false_alarms": {k: round(self.false_alarm(k), 4) for k in INCIDENT_KINDS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        return cls(
            episode_length=int(data.get("episode_length", 20)),
            kinds=tuple(data.get("kinds", INCIDENT_KINDS)),
            false_alarms=dict(data.get("false_alarms", DEFAULT_FALSE_ALARMS)),
        )


@dataclass(frozen=True, slots=True)
class Case:
    """The truth behind one incident: who is there, and what the policy can see of it."""

    kind: str
    attack: bool
    profile: str  # the attacker's or the legitimate users' story ("office", "ci", …)
    severity: int  # index into SEVERITIES
    failures: int
    successes: int
    distinct_users: int
    sources: int
    intel: bool
    rotating: bool = False  # moves to other addresses when one is blocked
    persistence: float = 0.0  # chance an attacker left running comes back
    damage: float = 0.0  # harm per incident it is left running, times its value
    people: int = 0  # legitimate people behind the address
    returns: int = 0  # how many times it came back already

    def observation(self) -> np.ndarray:
        return feature_vector(
            self.kind,
            SEVERITIES[self.severity],
            self.failures,
            self.successes,
            self.distinct_users,
            self.sources,
            self.intel,
        )


def stop_chance(case: Case, action: str) -> float:
    """How likely ``action`` stops the attacker behind ``case`` (0 for legitimate users)."""
    if not case.attack:
        return 0.0
    if case.kind == CREDENTIAL_COMPROMISE:
        return {
            MONITOR: 0.05,
            RATE_LIMIT: 0.05,
            BLOCK_1H: 0.15,
            BLOCK_24H_NOTIFY: 0.35,
            LOCK_USER_ESCALATE: 0.95,
        }.get(action, 0.0)
    if case.kind == DISTRIBUTED_BRUTE_FORCE:
        table = {MONITOR: 0.3, RATE_LIMIT: 0.05, BLOCK_1H: 0.1}
        table |= {BLOCK_24H_NOTIFY: 0.5, LOCK_USER_ESCALATE: 0.55}
    elif case.rotating:
        table = {MONITOR: 0.1, RATE_LIMIT: 0.15, BLOCK_1H: 0.25}
        table |= {BLOCK_24H_NOTIFY: 0.65, LOCK_USER_ESCALATE: 0.6}
    else:
        slow = case.kind == SLOW_BRUTE_FORCE
        table = {MONITOR: 0.1, RATE_LIMIT: 0.3 if slow else 0.5, BLOCK_1H: 0.5 if slow else 0.7}
        table |= {BLOCK_24H_NOTIFY: 0.93, LOCK_USER_ESCALATE: 0.9}
    return table.get(action, 0.0)


def legit_cost(case: Case, action: str) -> float:
    """What ``action`` costs the legitimate users behind ``case`` (0 for an attacker)."""
    if case.attack:
        return 0.0
    cost = LEGIT_BLOCK_COSTS[action] * (1.0 + math.log1p(case.people) / 2.0)
    if action == LOCK_USER_ESCALATE and case.successes > 0:
        cost += LOCKOUT_COST
    return cost


Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Profile:
    """How one kind of actor looks (log-uniform ranges) and behaves.

    ``intel`` is the chance a feed lists its address; ``rotating`` the chance it
    moves to other addresses when blocked (its first incident then shows 2-4
    sources); an intel hit raises an attacker's severity by one, as the
    enricher does.
    """

    profile: str
    severity: int
    failures: Range
    successes: Range = (0, 0)
    users: Range = (1, 1)
    sources: Range = (1, 1)
    intel: float = 0.03  # legitimate addresses: a shared address some feed lists
    rotating: float = 0.0
    persistence: float = 0.0
    damage: float = 0.0
    people: Range = (1, 1)


#: Attackers by incident kind.
ATTACKERS: Final[Mapping[str, Profile]] = {
    BRUTE_FORCE: Profile("guesser", 1, (20, 3000), users=(1, 4), intel=0.45,
                         rotating=0.25, persistence=0.85, damage=0.6),
    SLOW_BRUTE_FORCE: Profile("slow guesser", 0, (10, 80), users=(1, 3), intel=0.45,
                              rotating=0.15, persistence=0.95, damage=0.6),
    PASSWORD_SPRAY: Profile("sprayer", 1, (30, 800), users=(15, 300), intel=0.45,
                            rotating=0.3, persistence=0.8, damage=0.7),
    DISTRIBUTED_BRUTE_FORCE: Profile("botnet", 2, (200, 5000), users=(1, 10),
                                     sources=(20, 400), intel=0.6, rotating=1.0,
                                     persistence=0.9, damage=0.6),
    CREDENTIAL_COMPROMISE: Profile("intruder", 3, (10, 600), successes=(1, 3), users=(1, 6),
                                   sources=(1, 2), intel=0.45, persistence=1.0, damage=2.0),
    WEB_SCAN: Profile("web scanner", 0, (50, 3000), users=(0, 0), intel=0.45, rotating=0.2,
                      persistence=0.6, damage=0.4),
    WEB_AUTH_BRUTE_FORCE: Profile("web guesser", 1, (20, 1500), users=(1, 5), intel=0.45,
                                  rotating=0.25, persistence=0.8, damage=0.6),
    PORT_SCAN: Profile("port scanner", 0, (20, 2000), users=(0, 0), intel=0.45,
                       persistence=0.5, damage=0.3),
}  # fmt: skip

_TYPO = Profile("typo", 1, (5, 25), successes=(1, 3))
_OFFICE = Profile("office", 1, (10, 120), successes=(2, 40), users=(2, 20), people=(10, 300))
_CI = Profile("ci", 1, (30, 1500), successes=(0, 1), people=(3, 30))

#: Legitimate users whose activity raises an incident of each kind (one picked at random).
FALSE_ALARMS: Final[Mapping[str, tuple[Profile, ...]]] = {
    BRUTE_FORCE: (_TYPO, _OFFICE, _CI),
    SLOW_BRUTE_FORCE: (replace(_TYPO, severity=0), replace(_OFFICE, severity=0)),
    PASSWORD_SPRAY: (Profile("office", 1, (15, 150), successes=(3, 60), users=(8, 60),
                             people=(20, 400)),),
    DISTRIBUTED_BRUTE_FORCE: (Profile("carrier", 1, (50, 600), successes=(5, 80),
                                      users=(1, 3), sources=(5, 60), people=(50, 2000)),),
    # The rule needs a brute force (threshold failures) before the login: 10 or more.
    CREDENTIAL_COMPROMISE: (Profile("typo then login", 3, (10, 30), successes=(1, 1),
                                    users=(1, 2)),),
    WEB_SCAN: (Profile("vulnerability scanner", 0, (50, 2000), users=(0, 0),
                       people=(1, 10)),),
    WEB_AUTH_BRUTE_FORCE: (Profile("ci", 1, (20, 800), successes=(0, 1), people=(3, 30)),),
    PORT_SCAN: (Profile("monitoring", 0, (20, 2000), users=(0, 0), people=(1, 10)),),
}  # fmt: skip


def _draw(rng: np.random.Generator, bounds: Range) -> int:
    """An integer within ``bounds``, log-uniform (counts are heavy-tailed)."""
    low, high = bounds
    if high <= low:
        return int(low)
    return round(math.exp(rng.uniform(math.log1p(low), math.log1p(high)))) - 1


def draw_case(kind: str, attack: bool, rng: np.random.Generator) -> Case:
    """A fresh attacker (or legitimate users, ``attack=False``) behind an incident of ``kind``."""
    if attack:
        p = ATTACKERS[kind]
    else:
        options = FALSE_ALARMS[kind]
        p = options[int(rng.integers(len(options)))]
    intel = bool(rng.random() < p.intel)
    rotating = bool(rng.random() < p.rotating)
    sources = _draw(rng, p.sources)
    if rotating and sources == 1:
        sources = _draw(rng, (2, 4))
    return Case(
        kind=kind,
        attack=attack,
        profile=p.profile,
        severity=min(3, p.severity + (1 if intel and attack else 0)),
        failures=_draw(rng, p.failures),
        successes=_draw(rng, p.successes),
        distinct_users=_draw(rng, p.users),
        sources=sources,
        intel=intel,
        rotating=rotating,
        persistence=p.persistence,
        damage=p.damage,
        people=_draw(rng, p.people),
    )


def came_back(case: Case, action: str, rng: np.random.Generator) -> Case:
    """The attacker ``case`` returning after ``action`` failed to stop it."""
    blocked = action in (RATE_LIMIT, BLOCK_1H, BLOCK_24H_NOTIFY, LOCK_USER_ESCALATE)
    sources = case.sources
    if blocked and case.rotating:
        sources += _draw(rng, (1, 4))  # a blocked address is replaced by others
    severity = min(3, case.severity + (1 if case.returns >= 1 else 0))
    return replace(
        case,
        failures=int(case.failures * rng.uniform(1.5, 3.0)),
        sources=sources,
        severity=severity,
        returns=case.returns + 1,
    )


class SocEnv(gym.Env[np.ndarray, np.int64]):
    """One shift of incidents; the action is the response to the incident observed."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's API)

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = config or EnvConfig()
        self.observation_space = spaces.Box(0.0, 2.0, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self._kinds = list(self.config.kinds)
        self._step = 0
        self._case: Case | None = None
        self._returning: list[tuple[int, Case]] = []  # (due step, attacker)

    # --- gymnasium -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._step = 0
        self._returning = []
        self._case = self._next_case()
        return self._case.observation(), self._info()

    def step(
        self, action: int | np.integer[Any]
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._case is None:
            raise RuntimeError("reset() the environment first")
        name = ACTIONS[int(action)]
        case = self._case
        reward, stopped = self.outcome(case, name)
        if case.attack and not stopped and self.np_random.random() < case.persistence:
            due = self._step + 1 + int(self.np_random.integers(0, 3))
            self._returning.append((due, came_back(case, name, self.np_random)))
        self._step += 1
        done = self._step >= self.config.episode_length
        info = {"case": case, "action": name, "stopped": stopped}
        if done:
            # Attackers still running when the shift ends do their damage anyway.
            reward -= sum(VALUES[c.severity] * c.damage for _, c in self._returning)
            return case.observation(), reward, True, False, info
        self._case = self._next_case()
        return self._case.observation(), reward, False, False, info

    # --- the world -------------------------------------------------------------------
    def outcome(self, case: Case, action: str) -> tuple[float, bool]:
        """The reward for ``action`` on ``case``, and whether it stopped the attacker."""
        reward = -ANALYST_COSTS[action]
        if not case.attack:
            return reward - legit_cost(case, action), False
        value = VALUES[case.severity]
        if self.np_random.random() < stop_chance(case, action):
            return reward + value, True
        return reward - value * case.damage, False

    def _next_case(self) -> Case:
        for i, (due, case) in enumerate(self._returning):
            if due <= self._step:
                del self._returning[i]
                return case
        rng = self.np_random
        kind = self._kinds[int(rng.integers(len(self._kinds)))]
        return draw_case(kind, bool(rng.random() >= self.config.false_alarm(kind)), rng)

    def _info(self) -> dict[str, Any]:
        return {"case": self._case}


__all__ = [
    "ACTIONS",
    "ACTION_PLAYBOOKS",
    "ACTION_TTLS",
    "FEATURES",
    "N_FEATURES",
    "PLAYBOOK_ACTIONS",
    "Case",
    "EnvConfig",
    "SocEnv",
    "feature_vector",
    "features",
]
