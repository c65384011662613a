"""What the pages show of the incident memory (soc.similar) and threat intel (soc.enrich).

Plain functions over the runtime: the similar incidents of one incident, a
free-text search, and the labels the pages print for them and for intel hits.
Every label is Markdown with each value a literal code span or plain text (a
verdict or an indicator name is written by a model or a feed, not by us).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from soc.app.views import when
from soc.text import literal_markdown, plain

_log = logging.getLogger(__name__)

#: Similar incidents listed per incident.
SIMILAR_SHOWN = 5


def similar_to(
    runtime: Any, incident_id: int, k: int = SIMILAR_SHOWN, *, wait: bool = True
) -> list[Any]:
    """The incident's most similar past incidents (none while the memory is off or failing).

    ``wait=False`` (the live feed, refreshed every few seconds): none until the
    memory holds the incident, rather than wait for the model or embed on the fly.
    """
    memory = getattr(runtime, "memory", None)
    if memory is None:
        return []
    try:
        if not wait:
            return list(memory.similar_if_ready(incident_id, k) or [])
        return list(memory.similar(incident_id, k))
    except Exception:  # an aid, not the page: say it in the log, show the rest
        _log.exception("similar incidents of #%s", incident_id)
        return []


def search(runtime: Any, query: str, k: int = 20) -> list[Any]:
    """Incidents whose description is nearest to ``query`` (free text)."""
    memory = getattr(runtime, "memory", None)
    if memory is None or not query.strip():
        return []
    return list(memory.search(query, k))


def match_label(match: Any) -> str:
    """``#12 · 0.97 · password_spray · resolved · verdict`` as Markdown for a page link."""
    verdict = getattr(match, "verdict", None)
    parts = [
        f"#{int(match.incident_id)}",
        f"{float(match.score):.2f}",
        plain(str(match.kind), 40),
        plain(str(match.status), 20),
    ]
    label = " · ".join(parts)
    if verdict:
        label += f" · {literal_markdown(str(verdict), 120)}"
    return label


def intel_lines(facts: Mapping[str, Any]) -> list[str]:
    """One Markdown line per threat-intel hit stored with an incident."""
    hits = facts.get("intel")
    if not isinstance(hits, Sequence) or isinstance(hits, str):
        return []
    lines = []
    for hit in hits:
        if not isinstance(hit, Mapping):
            continue
        labels = hit.get("labels") or []
        shown_labels = ", ".join(plain(str(label), 40) for label in list(labels)[:5])
        lines.append(
            f"{literal_markdown(str(hit.get('address', '?')), 64)} "
            f"(in {literal_markdown(str(hit.get('network', '?')), 64)}) "
            f"matches {literal_markdown(str(hit.get('indicator', '?')), 120)} "
            f"from {literal_markdown(str(hit.get('source', '?')), 80)}"
            f" · confidence {int(hit.get('confidence', 0) or 0)}"
            + (f" · {shown_labels}" if shown_labels else "")
        )
    raised = facts.get("intel_severity")
    if isinstance(raised, Mapping) and raised.get("before") != raised.get("after"):
        lines.append(
            f"severity raised from {plain(str(raised.get('before')), 10)} to "
            f"{plain(str(raised.get('after')), 10)} by threat intel"
        )
    return lines


def memory_rows(incident_memory: Any) -> list[dict[str, str]]:
    """The incident memory's state as rows of text (what it holds, where, errors)."""
    stats = incident_memory.stats()
    rows = [
        ("incidents indexed", f"{stats['incidents']:,}"),
        ("search", str(stats["mode"])),
        ("waiting to be embedded", f"{stats['pending']:,}"),
        ("model", plain(str(stats["model"]), 120)),
        ("index file", plain(str(stats["index_path"] or "in memory"), 200)),
    ]
    if stats.get("load_error"):
        rows.append(("index file refused", plain(str(stats["load_error"]), 300)))
    return [{"": name, "value": value} for name, value in rows]


def feed_rows(enricher: Any) -> list[dict[str, str]]:
    """One row of text per threat-intel feed: indicators, last read, last error."""
    return [
        {
            "feed": plain(status.name, 60),
            "type": status.type,
            "networks": f"{status.networks:,}",
            "expired": f"{status.expired:,}",
            "last read": when(status.last_refresh),
            "error": plain(status.last_error or "", 300),
        }
        for status in enricher.status()
    ]


def reused_from(structured: Any) -> int | None:
    """The incident a reused report was written for, if the report is a reuse."""
    origin = structured.get("reused_from") if isinstance(structured, Mapping) else None
    if isinstance(origin, Mapping) and isinstance(origin.get("incident_id"), int):
        return int(origin["incident_id"])
    return None


__all__ = [
    "SIMILAR_SHOWN",
    "feed_rows",
    "intel_lines",
    "match_label",
    "memory_rows",
    "reused_from",
    "search",
    "similar_to",
]
