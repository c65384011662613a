"""``annotate``: append a note to the incident (who, when, which playbook), kept with it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from soc.respond.actions.base import Context
from soc.respond.base import Step, format_duration


class Annotate:
    name = "annotate"
    params: Mapping[str, type | tuple[type, ...]] = {"note": str}

    def check(self, params: Mapping[str, Any]) -> None:
        if not str(params.get("note", "")).strip():
            raise ValueError("note must not be empty")
        _fill(str(params["note"]), playbook="p", ttl="1h", actor="a")  # placeholders must be known

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ctx.now))
        text = _fill(
            str(params["note"]),
            playbook=ctx.playbook,
            ttl=format_duration(ctx.ttl),
            actor=ctx.actor,
        )
        note = f"[{stamp}] {ctx.actor}: {text}"
        incident_id, store = ctx.incident.id, ctx.store
        step = Step(
            0,
            self.name,
            target=f"incident {incident_id}",
            backend="store",
            mode=ctx.mode(self.name),
        )
        step.describe = f"add the note {note!r}"

        def apply() -> str:
            current = store.get_incident(incident_id)
            notes = (current.notes + "\n" if current is not None and current.notes else "") + note
            store.set_status(incident_id, current.status if current is not None else "new", notes)
            return "note added"

        step.local = apply
        return [step]


def _fill(template: str, **values: str) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"note: unknown placeholder {exc} (known: playbook, ttl, actor)") from None


ACTION = Annotate()

__all__ = ["ACTION", "Annotate"]
