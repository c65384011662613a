"""``export_to_elastic``: queue the incident's ECS alert for the configured Elasticsearch exports.

The alert goes through the existing outbox (the engine wires
:func:`soc.export.outbox.enqueue_alert` in as ``Context.export_alert``), so the
export worker delivers it with its retries, exactly as an automatic export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soc.respond.actions.base import Context
from soc.respond.base import Step


class ExportToElastic:
    name = "export_to_elastic"
    params: Mapping[str, type | tuple[type, ...]] = {}

    def check(self, params: Mapping[str, Any]) -> None:
        return None

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        sinks = list(ctx.exports)
        step = Step(
            0, self.name, target=", ".join(sinks), backend="outbox", mode=ctx.mode(self.name)
        )
        if not sinks:
            step.refused = 'no Elasticsearch export configured ([[exports]] type = "elasticsearch")'
            return [step]
        export, incident_id = ctx.export_alert, ctx.incident.id
        if export is None or incident_id is None:
            step.refused = "exporting is not wired in this program"
            return [step]
        step.describe = f"queue the alert for {', '.join(sinks)}"
        step.local = lambda: export(incident_id, sinks)
        return [step]


ACTION = ExportToElastic()

__all__ = ["ACTION", "ExportToElastic"]
