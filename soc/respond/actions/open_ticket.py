"""``open_ticket``: POST the incident as JSON to a ticketing webhook (``[respond] ticket_url``).

The body (``event: soc.ticket``) carries a title, the severity, a description and
the incident's validated facts; most ticketing systems accept such a body
through their generic inbound webhook or an automation rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.respond.actions import webhook
from soc.respond.actions.base import Context
from soc.respond.base import Request, Step


class OpenTicket:
    name = "open_ticket"
    params: Mapping[str, type | tuple[type, ...]] = {"priority": str}

    def check(self, params: Mapping[str, Any]) -> None:
        if params.get("priority", "normal") not in ("low", "normal", "high", "urgent"):
            raise ValueError("priority must be low, normal, high or urgent")

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        step = Step(0, self.name, target="ticket", backend="webhook", mode=ctx.mode(self.name))
        url = ctx.config.ticket_url
        if not url:
            step.refused = "no ticket webhook configured ([respond] ticket_url)"
            return [step]
        incident = ctx.incident
        body = {
            "event": "soc.ticket",
            "title": f"SOC incident #{incident.id}: {incident.kind} ({incident.severity})",
            "priority": str(
                params.get(
                    "priority", "high" if incident.severity in ("high", "critical") else "normal"
                )
            ),
            "description": webhook.message(incident, ctx.playbook, ctx.config.console_url),
            "incident": webhook.summary(incident, ctx.playbook, ctx.config.console_url),
        }
        step.request = Request(
            url=url,
            shown_url=webhook.shown_url(url),
            body=body,
            headers=(("Content-Type", "application/json"),),
        )
        step.describe = f"open a ticket at {step.request.shown_url}"
        return [step]


ACTION = OpenTicket()

__all__ = ["ACTION", "OpenTicket"]
