"""``notify``: tell the team in Slack, Discord or any JSON webhook (``[respond] notify_url``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.respond.actions import webhook
from soc.respond.actions.base import Context
from soc.respond.base import Step


class Notify:
    name = "notify"
    params: Mapping[str, type | tuple[type, ...]] = {"format": str}

    def check(self, params: Mapping[str, Any]) -> None:
        if params.get("format", "slack") not in ("slack", "discord", "json"):
            raise ValueError("format must be slack, discord or json")

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        step = Step(0, self.name, target="team", backend="webhook", mode=ctx.mode(self.name))
        url = ctx.config.notify_url
        if not url:
            step.refused = "no webhook configured ([respond] notify_url)"
            return [step]
        fmt = str(params.get("format", ctx.config.notify_format))
        step.request = webhook.request(url, fmt, ctx.incident, ctx.playbook, ctx.config.console_url)
        step.describe = f"post a {fmt} message to {step.request.shown_url}"
        return [step]


ACTION = Notify()

__all__ = ["ACTION", "Notify"]
