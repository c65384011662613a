"""``disable_user`` / ``enable_user``: lock an account on this machine (``usermod``), and undo it.

Locking is ``usermod -L --expiredate 1 -- NAME`` (password locked, and the
account expired, which also stops key-based logins); the undo is ``usermod -U
--expiredate -1 -- NAME``. The accounts are those that logged in in a
``credential_compromise`` incident; for other kinds the step is refused (there
is no account known to be in the attacker's hands). Names must be plain account
names (never a leading ``-``) and not in ``[respond] protected_users``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.respond.actions.base import Context
from soc.respond.base import Command, Step
from soc.respond.targets import TargetError, check_user

COMPROMISE_KINDS = ("credential_compromise",)


class UserAction:
    """Lock or unlock the incident's compromised accounts: ``usermod FLAGS -- NAME`` each."""

    params: Mapping[str, type | tuple[type, ...]] = {}

    def __init__(self, name: str, verb: str, flags: tuple[str, ...]) -> None:
        self.name = name
        self.verb = verb
        self.flags = flags

    def check(self, params: Mapping[str, Any]) -> None:
        return None

    def argv(self, user: str) -> tuple[str, ...]:
        """The exact command for ``user`` (already checked by :func:`check_user`)."""
        return ("usermod", *self.flags, "--", user)

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        mode = ctx.mode(self.name)
        if ctx.incident.kind not in COMPROMISE_KINDS:
            return [
                Step(
                    0,
                    self.name,
                    backend="usermod",
                    mode=mode,
                    refused=f"no account known to be compromised ({ctx.incident.kind})",
                )
            ]
        steps = []
        for name in list(dict.fromkeys(ctx.incident.users))[: ctx.config.max_targets]:
            step = Step(0, self.name, target=name, backend="usermod", mode=mode)
            steps.append(step)
            try:
                user = check_user(name)
            except TargetError as exc:
                step.refused = str(exc)
                continue
            if user in ctx.config.protected_users:
                step.refused = f"{user} is protected ([respond] protected_users)"
                continue
            step.commands = [Command(self.argv(user))]
            step.describe = f"{self.verb} account {user}"
        return steps


DISABLE = UserAction("disable_user", "lock", ("-L", "--expiredate", "1"))
ENABLE = UserAction("enable_user", "unlock", ("-U", "--expiredate", "-1"))

__all__ = ["DISABLE", "ENABLE", "UserAction"]
