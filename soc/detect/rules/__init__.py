"""Detection rules, one module each, registered by the incident kind they raise.

Adding a rule: write its module (a :class:`~soc.detect.rules.base.Rule` named
``RULE``: name, family, technique, base severity, parameters, recommended actions
and its test over a batch) and add one line to :data:`RULE_MODULES`.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, Final

from soc.detect.rules.base import AUTH, NET, USERS, WEB, Rule
from soc.registry import resolve

#: Incident kind → ``module:RULE``, in the order rules are evaluated.
RULE_MODULES: Final[dict[str, str]] = {
    "brute_force": "soc.detect.rules.brute_force:RULE",
    "slow_brute_force": "soc.detect.rules.slow_brute_force:RULE",
    "password_spray": "soc.detect.rules.password_spray:RULE",
    "credential_compromise": "soc.detect.rules.credential_compromise:RULE",
    "web_auth_brute_force": "soc.detect.rules.web_auth_brute_force:RULE",
    "web_scan": "soc.detect.rules.web_scan:RULE",
    "port_scan": "soc.detect.rules.port_scan:RULE",
    "distributed_brute_force": "soc.detect.rules.distributed_brute_force:RULE",
}


@cache
def rules() -> tuple[Rule, ...]:
    """Every registered rule, in evaluation order."""
    out = []
    for name in RULE_MODULES:
        (rule,) = resolve(RULE_MODULES, name, "detection rule")
        if rule.name != name:
            raise ValueError(f"rule module for {name!r} defines {rule.name!r}")
        out.append(rule)
    return tuple(out)


def rule(name: str) -> Rule:
    """The rule raising incidents of kind ``name``."""
    for r in rules():
        if r.name == name:
            return r
    known = ", ".join(RULE_MODULES)
    raise KeyError(f"unknown detection rule {name!r} (known: {known})")


def param_fields() -> list[tuple[str, Any, dataclasses.Field[Any]]]:
    """Every rule's ``[detect]`` keys: (rule name, type, field), in rule order."""
    out: list[tuple[str, Any, dataclasses.Field[Any]]] = []
    for r in rules():
        hints = {f.name: f.type for f in dataclasses.fields(r.params)}  # type: ignore[arg-type]
        out.extend((r.name, hints[f.name], f) for f in dataclasses.fields(r.params))  # type: ignore[arg-type]
    return out


def actions_by_kind() -> dict[str, tuple[str, ...]]:
    """Each incident kind's recommended actions (``{block}``: the addresses to block)."""
    return {r.name: r.actions for r in rules()}


def playbooks_by_kind() -> dict[str, str]:
    """Each incident kind's recommended response playbook (a name in ``playbooks/``)."""
    return {r.name: r.playbook for r in rules()}


def techniques() -> dict[str, tuple[str, str]]:
    """Each incident kind's MITRE ATT&CK technique (id, name)."""
    return {r.name: r.technique for r in rules()}


__all__ = [
    "AUTH",
    "NET",
    "RULE_MODULES",
    "USERS",
    "WEB",
    "actions_by_kind",
    "param_fields",
    "playbooks_by_kind",
    "rule",
    "rules",
    "techniques",
]
