"""Playbook actions, one module each, registered by the name a playbook step uses.

An action plans: from the incident and its step's parameters it returns the
steps it would take (:class:`soc.respond.base.Step`, with the exact argv,
request or local change), or refuses them. It never runs anything itself: the
responder executes confirmed plans. Adding one: write its module (an object with
``name``, ``params`` and ``plan``) and add one line to :data:`ACTIONS`.
"""

from __future__ import annotations

from typing import Final

from soc.registry import resolve
from soc.respond.actions.base import Action, Context

#: Action name → ``module:ACTION``.
ACTIONS: Final[dict[str, str]] = {
    "block_ip": "soc.respond.actions.block_ip:BLOCK",
    "unblock_ip": "soc.respond.actions.block_ip:UNBLOCK",
    "notify": "soc.respond.actions.notify:ACTION",
    "disable_user": "soc.respond.actions.disable_user:DISABLE",
    "enable_user": "soc.respond.actions.disable_user:ENABLE",
    "open_ticket": "soc.respond.actions.open_ticket:ACTION",
    "export_to_elastic": "soc.respond.actions.export_to_elastic:ACTION",
    "annotate": "soc.respond.actions.annotate:ACTION",
    "set_status": "soc.respond.actions.set_status:ACTION",
}


def action(name: str) -> Action:
    """The action a playbook step names."""
    (found,) = resolve(ACTIONS, name, "playbook action")
    result: Action = found
    return result


__all__ = ["ACTIONS", "Action", "Context", "action"]
