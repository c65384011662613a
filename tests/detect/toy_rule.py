"""A rule written outside the detector, to show that adding one touches only its module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from soc.detect.rules.base import AUTH, Rule

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView


def hits(view: BatchView, _params: Any) -> np.ndarray:
    """Any login at all (a honeypot's rule: nobody should ever get in)."""
    return view.auth & (view.logins > 0)


RULE: Final = Rule(
    name="honeypot_login",
    family=AUTH,
    summary="any successful login",
    technique=("T1078", "Valid Accounts"),
    severity="high",
    actions=("{block}", "Nobody should log in to a honeypot: find out how they did."),
    hits=hits,
    precedence=5,
)
