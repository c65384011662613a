"""Brute force: many failed logins from one source within a short sliding window.

Its two figures are detector-wide because the analyst tunes them at run time and the
charts' windows share them: ``threshold`` failures within ``window_seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from soc.detect.rules.base import AUTH, Rule
from soc.events import BRUTE_FORCE

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView


def hits(view: BatchView, _params: Any) -> np.ndarray:
    """At the failure that brings the key to ``threshold`` within ``window_seconds``."""
    return view.auth & (view.weight > 0) & (view.within(view.window_seconds) >= view.threshold)


RULE: Final = Rule(
    name=BRUTE_FORCE,
    family=AUTH,
    summary="at least `threshold` failures from one key within any `window_seconds` span "
    "(sliding), raised at the failure that crosses it",
    technique=("T1110.001", "Brute Force: Password Guessing"),
    severity="medium",
    actions=(
        "{block}",
        "Confirm that no login from these addresses succeeded (the incident would be a "
        "compromise).",
        "Disable SSH password authentication (PasswordAuthentication no) or add MFA.",
    ),
    hits=hits,
    precedence=30,
)
