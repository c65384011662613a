"""``set_status``: move the incident to ``triaged``, ``resolved`` or ``false_positive``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.events import STATUSES
from soc.respond.actions.base import Context
from soc.respond.base import Step


class SetStatus:
    name = "set_status"
    params: Mapping[str, type | tuple[type, ...]] = {"status": str}

    def check(self, params: Mapping[str, Any]) -> None:
        if params.get("status") not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        status = str(params["status"])
        incident_id, store = ctx.incident.id, ctx.store
        step = Step(
            0,
            self.name,
            target=f"incident {incident_id}",
            backend="store",
            mode=ctx.mode(self.name),
        )
        step.describe = f"set the status to {status}"
        if ctx.incident.status == status:
            step.unchanged = f"already {status}"
            return [step]

        def apply() -> str:
            store.set_status(incident_id, status)
            return f"status {status}"

        step.local = apply
        return [step]


ACTION = SetStatus()

__all__ = ["ACTION", "SetStatus"]
