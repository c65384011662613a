"""Credential compromise: a successful login from a source after evidence of attack from it.

Typos followed by a login are not evidence, whatever their number below the other
rules: a compromise needs the source's campaign to have been an attack before the
login (a brute force, spray or slow brute force it raised, a distributed brute force
it is one of the sources of, or failures for several other user names). Its severity
follows from that evidence: ``critical``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from soc.detect.rules.base import AUTH, Params, Rule, param
from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    SLOW_BRUTE_FORCE,
)

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView

#: Rules whose incident from the same source, before a login, make it a compromise.
EVIDENCE: Final = (BRUTE_FORCE, PASSWORD_SPRAY, SLOW_BRUTE_FORCE)
#: A distributed brute force the source is one of the sources of is evidence too
#: (the detector checks it: it tracks targeted users, not sources).
EVIDENCE_DISTRIBUTED: Final = DISTRIBUTED_BRUTE_FORCE


@dataclass(frozen=True, slots=True)
class CompromiseParams(Params):
    """``[detect]`` keys of the credential-compromise rule."""

    horizon_fields = ("compromise_lookback_seconds",)

    compromise_users: int = param(
        3,
        "a login is a compromise when the key failed for at least this many other user "
        "names (not shown legitimate by a login) within the lookback",
    )
    compromise_lookback_seconds: float = param(
        3600.0, "how far back those other user names' failures are looked for"
    )


def hits(view: BatchView, params: CompromiseParams) -> np.ndarray:
    """At a login from a key whose campaign was an attack before it."""
    names = view.other_names(params.compromise_lookback_seconds)
    return (
        view.auth
        & (view.logins > 0)
        & (view.attack_before(EVIDENCE) | (names >= params.compromise_users))
    )


RULE: Final = Rule(
    name=CREDENTIAL_COMPROMISE,
    family=AUTH,
    summary="a successful login from a key after evidence of attack from it: a brute "
    "force, spray or slow brute force it raised, a distributed brute force it is a "
    "source of, or failures for `compromise_users` other user names within "
    "`compromise_lookback_seconds` from an address no other user logged in from; typos "
    "before a login are no evidence",
    technique=("T1078", "Valid Accounts"),
    severity="critical",
    playbook="contain-account",
    actions=(
        "Treat the account that logged in as compromised: disable it or reset its "
        "credentials now, and end its sessions.",
        "{block}",
        "Review what the account did after the login (shell history, sudo, new keys "
        "in authorized_keys, cron jobs, new users) and look for persistence.",
        "Require key-based SSH authentication or MFA for this account.",
    ),
    params=CompromiseParams,
    hits=hits,
    precedence=10,
)
