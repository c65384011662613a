"""Slow brute force: failed logins from one source that never burst, counted over an hour.

Compare CrowdSec's ssh-slow-bf and fail2ban's recidive. The failures of the key's
earlier campaigns within the horizon count too, so an attacker back after a quiet gap
opens a slow brute force with only its latest failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from soc.detect.rules.base import AUTH, Params, Rule, Settings, param
from soc.errors import ConfigError
from soc.events import SLOW_BRUTE_FORCE

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView


@dataclass(frozen=True, slots=True)
class SlowParams(Params):
    """``[detect]`` keys of the slow brute-force rule."""

    horizon_fields = ("slow_horizon_seconds",)
    count_fields = ("slow_failures",)

    slow_failures: int = param(10, "failures from one key within the horizon, whatever the rate")
    slow_horizon_seconds: float = param(3600.0, "the span the slow rule counts over")

    def check(self, settings: Settings) -> None:
        if self.slow_failures > settings.max_threshold:
            raise ConfigError("must be at most max_threshold", where="slow_failures")


def hits(view: BatchView, params: SlowParams) -> np.ndarray:
    """At the failure that brings the key to ``slow_failures`` within the horizon."""
    return (
        view.auth
        & (view.weight > 0)
        & (view.within(params.slow_horizon_seconds) >= params.slow_failures)
    )


RULE: Final = Rule(
    name=SLOW_BRUTE_FORCE,
    family=AUTH,
    summary="at least `slow_failures` failures from one key within `slow_horizon_seconds`, "
    "whatever the rate (the key never has to reach `threshold` in a window)",
    technique=("T1110.001", "Brute Force: Password Guessing"),
    severity="low",
    actions=(
        "{block}",
        "Confirm that no login from these addresses succeeded (the incident would be a "
        "compromise).",
        "Disable SSH password authentication (PasswordAuthentication no) or add MFA.",
    ),
    params=SlowParams,
    hits=hits,
    precedence=40,
)
