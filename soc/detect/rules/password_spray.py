"""Password spray: one source failing for many user names, a few tries each.

User names that then log in from the same source are not counted: an office or a
VPN egress puts many people's typos behind one address, and each of them proves
their name legitimate when they get in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from soc.detect.rules.base import AUTH, Campaign, Params, Rule, Settings, param
from soc.errors import ConfigError
from soc.events import PASSWORD_SPRAY

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView


@dataclass(frozen=True, slots=True)
class SprayParams(Params):
    """``[detect]`` keys of the password-spray rule."""

    spray_users: int = param(
        10, "distinct user names failed from one key within a campaign (none of them logged in)"
    )
    spray_tries_per_user: float = param(
        3.0, "at most this many failures per user name on average (more is a brute force)"
    )

    def check(self, settings: Settings) -> None:
        if self.spray_users > settings.max_distinct:
            raise ConfigError("must be at most max_distinct", where="spray_users")


def hits(view: BatchView, params: SprayParams) -> np.ndarray:
    """Where the campaign's distinct failed user names reach ``spray_users``."""
    return view.auth & (view.distinct() >= params.spray_users)


def claims(campaign: Campaign, params: SprayParams) -> bool:
    """A spray, not a brute force of several accounts: few tries per name."""
    return campaign.failures <= params.spray_tries_per_user * campaign.tried


RULE: Final = Rule(
    name=PASSWORD_SPRAY,
    family=AUTH,
    summary="at least `spray_users` distinct user names failed from one key within a "
    "campaign (names that then log in from it do not count), at most "
    "`spray_tries_per_user` failures per name on average",
    technique=("T1110.003", "Brute Force: Password Spraying"),
    severity="medium",
    actions=(
        "{block}",
        "Check that the targeted accounts exist only where needed and have strong, "
        "unique passwords; disable unused ones.",
        "Disable SSH password authentication or require MFA.",
    ),
    params=SprayParams,
    hits=hits,
    claims=claims,
    precedence=20,
)
