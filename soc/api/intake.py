"""Intake: alerts posted to the API become ECS lines in a spool file the engine follows.

Two bodies are understood. ``ecs``: a JSON array of ECS documents, one object, or
NDJSON (one document a line). ``elastic``: what an Elastic Security rule's
webhook connector sends with the body ``{"rule": {"name": "{{context.rule.name}}"},
"alerts": {{{context.alerts}}}}`` (a bare array of alerts works too). Each alert
needs an id (``event.id`` or ``_id`` for ECS; ``kibana.alert.uuid`` else ``_id`` for
Elastic), which makes a repeat a no-op. What is written keeps only the fields the
``ecs_json`` parser reads into auth, web and firewall events; Elastic's own alert
fields (``event.kind: signal``, ``kibana.*``) are left out, so the line is the
event the rule matched, not a second alert about it.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from soc.parse.jsonl import field as ecs_field

ECS: Final = "ecs"
ELASTIC: Final = "elastic"
INTAKES: Final = (ECS, ELASTIC)

#: The ECS fields a spooled line keeps (dotted paths), as ``EcsJsonParser`` reads them.
KEPT_FIELDS: Final = (
    "message",
    "event.category",
    "event.type",
    "event.action",
    "event.outcome",
    "event.dataset",
    "event.reason",
    "source.ip",
    "source.port",
    "source.address",
    "destination.ip",
    "destination.port",
    "network.transport",
    "user.name",
    "url.path",
    "url.original",
    "http.request.method",
    "http.response.status_code",
    "user_agent.original",
    "host.name",
    "host.hostname",
    "process.name",
    "process.pid",
)
#: Longest alert id accepted (the store keeps it).
MAX_ID_CHARS: Final = 512


class BodyError(ValueError):
    """A request body that is not what the intake reads (malformed JSON, wrong shape)."""


@dataclass(slots=True)
class Intake:
    """What one request brought: lines to write (by alert id), and what was refused and why."""

    lines: dict[str, str] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    repeated: int = 0  # ids given twice in the same request


def documents(body: bytes, intake: str) -> list[Any]:
    """The alerts a body carries (not validated one by one); raises BodyError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("the body is not UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if intake != ECS:
            raise BodyError(f"malformed JSON: line {exc.lineno} column {exc.colno}") from None
        data = _ndjson(text)
    if intake == ELASTIC and isinstance(data, dict):
        alerts = data.get("alerts")
        if isinstance(alerts, str):  # {{context.alerts}} in double braces: JSON in a string
            try:
                alerts = json.loads(alerts)
            except json.JSONDecodeError:
                raise BodyError('"alerts" is a string that is not JSON') from None
        if not isinstance(alerts, list):
            raise BodyError('the body needs "alerts": an array ({{{context.alerts}}})')
        return alerts
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and intake == ECS:
        return [data]
    raise BodyError("the body must be an array of alerts")


def _ndjson(text: str) -> list[Any]:
    docs: list[Any] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BodyError(f"malformed JSON: line {n} column {exc.colno}") from None
    if not docs:
        raise BodyError("the body is empty")
    return docs


def alert_id(doc: dict[str, Any], intake: str) -> str | None:
    """The alert's id: ``kibana.alert.uuid`` (Elastic), ``event.id``, else ``_id``."""
    paths = ("kibana.alert.uuid", "_id") if intake == ELASTIC else ("event.id", "_id")
    for path in paths:
        value = ecs_field(doc, path)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None


def ecs_line(doc: dict[str, Any], intake: str, ident: str) -> str | None:
    """The spool line for one alert, or None when it has no timestamp."""
    stamp = ecs_field(doc, "kibana.alert.original_time") if intake == ELASTIC else None
    stamp = stamp or ecs_field(doc, "@timestamp")
    if not isinstance(stamp, str) or not stamp.strip():
        return None
    out: dict[str, Any] = {"@timestamp": stamp}
    for path in KEPT_FIELDS:
        value = ecs_field(doc, path)
        if value is not None and not isinstance(value, dict):
            _put(out, path, value)
    _put(out, "event.id", ident)
    _put(out, "labels.soc_intake", intake)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[last] = value


def read_alerts(docs: Iterable[Any], intake: str) -> Intake:
    """Validate alerts into spool lines by id; refused ones are counted by reason."""
    taken = Intake()
    for doc in docs:
        if not isinstance(doc, dict):
            taken.rejected["not_an_object"] += 1
            continue
        ident = alert_id(doc, intake)
        if ident is None:
            taken.rejected["no_id"] += 1
            continue
        if len(ident) > MAX_ID_CHARS or not ident.isprintable():
            taken.rejected["bad_id"] += 1
            continue
        line = ecs_line(doc, intake, ident)
        if line is None:
            taken.rejected["no_timestamp"] += 1
            continue
        if ident in taken.lines:
            taken.repeated += 1
            continue
        taken.lines[ident] = line
    return taken


class Spool:
    """The file intake appends to: one write, flush and fsync per request, under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def append(self, lines: Iterable[str]) -> None:
        """Append ``lines`` (callers hold :attr:`lock` across check, write and record)."""
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "ECS",
    "ELASTIC",
    "INTAKES",
    "KEPT_FIELDS",
    "BodyError",
    "Intake",
    "Spool",
    "alert_id",
    "documents",
    "ecs_line",
    "read_alerts",
]
