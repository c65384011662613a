"""Distributed brute force: many sources, each below every rule, failing against one user.

Tracked per targeted user name rather than per source (the detector's ``users``
trackers): a user's campaign is its failures with no gap longer than
``quiet_seconds``; only sources that have not raised an incident of their own count,
and sources the user logged in from are the user's own, not attackers. Users attacked
by mostly the same sources join one incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from soc.detect.rules.base import USERS, Params, Rule, Settings, param
from soc.errors import ConfigError
from soc.events import DISTRIBUTED_BRUTE_FORCE


@dataclass(frozen=True, slots=True)
class DistributedParams(Params):
    """``[detect]`` keys of the distributed brute-force rule."""

    distributed_sources: int = param(
        10, "distinct source keys failing against the same user within that user's campaign"
    )
    distributed_overlap: float = param(
        0.5,
        "a newly attacked user joins an open distributed incident when this share of its "
        "sources are already in it",
    )

    def check(self, settings: Settings) -> None:
        if self.distributed_sources > settings.max_distinct:
            raise ConfigError("must be at most max_distinct", where="distributed_sources")
        if not 0 < self.distributed_overlap <= 1:
            raise ConfigError("must be more than 0 and at most 1", where="distributed_overlap")


RULE: Final = Rule(
    name=DISTRIBUTED_BRUTE_FORCE,
    family=USERS,
    summary="at least `distributed_sources` distinct source keys failing against the same "
    "user within that user's campaign, counting only sources that have not raised an "
    "incident of their own; users attacked by mostly the same sources "
    "(`distributed_overlap`) join one incident",
    technique=("T1110.001", "Brute Force: Password Guessing"),
    severity="medium",
    playbook="notify-team",
    actions=(
        "Protect the targeted account(s): strong password or key-only login, MFA.",
        "Rate-limit new SSH connections (MaxStartups, PerSourcePenalties, a firewall "
        "rate limit); blocking single addresses will not stop a distributed attack.",
        "{block}",
    ),
    params=DistributedParams,
)
