"""Web authentication brute force: HTTP credentials refused to one source, again and again.

A 401 without a user name is the server's challenge, not a failure (the parser
says so); a user's wrong password followed by their login is a typo, forgiven.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from soc.detect.rules.base import WEB, Params, Rule, Settings, param
from soc.errors import ConfigError
from soc.events import WEB_AUTH_BRUTE_FORCE

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView


@dataclass(frozen=True, slots=True)
class WebAuthParams(Params):
    """``[detect]`` keys of the web authentication brute-force rule."""

    horizon_fields = ("web_auth_horizon_seconds",)
    count_fields = ("web_auth_failures",)

    web_auth_failures: int = param(
        10,
        "HTTP authentication failures from one key within the horizon (or `threshold` "
        "within `window_seconds`)",
    )
    web_auth_horizon_seconds: float = param(600.0, "the span web_auth_failures is counted over")

    def check(self, settings: Settings) -> None:
        if self.web_auth_failures > settings.max_threshold:
            raise ConfigError("must be at most max_threshold", where="web_auth_failures")


def hits(view: BatchView, params: WebAuthParams) -> np.ndarray:
    """At the refused request that brings the key to either count."""
    return (
        view.web
        & (view.weight > 0)
        & (
            (view.within(view.window_seconds) >= view.threshold)
            | (view.within(params.web_auth_horizon_seconds) >= params.web_auth_failures)
        )
    )


RULE: Final = Rule(
    name=WEB_AUTH_BRUTE_FORCE,
    family=WEB,
    summary="HTTP authentication failures from one key: at least `threshold` within "
    "`window_seconds`, or `web_auth_failures` within `web_auth_horizon_seconds`",
    technique=("T1110.001", "Brute Force: Password Guessing"),
    severity="medium",
    actions=(
        "{block}",
        "Rate-limit the protected location (nginx limit_req) and check its accounts "
        "for weak passwords.",
    ),
    params=WebAuthParams,
    hits=hits,
    precedence=10,
)
