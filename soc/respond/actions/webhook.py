"""Webhook bodies for ``notify`` and ``open_ticket``: Slack, Discord and generic JSON.

Attacker-written text (user names) reaches a chat only as inert text: invisible
characters shown as ``⟨U+hex⟩``, cut, backticks removed and wrapped in a code
span; Slack's ``&``, ``<`` and ``>`` escaped (so ``<!channel>`` is text, not a
mention); Discord told to parse no mentions at all. Source addresses are sent
only after they parsed as addresses. A webhook URL is a secret in itself (Slack
and Discord put the token in the path): only its scheme and host are shown.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from soc.events import Incident
from soc.respond.base import Request
from soc.text import plain


def shown_url(url: str) -> str:
    """``https://hooks.slack.com/…``: scheme and host only (the path may hold the token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}/…"


def _addresses(incident: Incident, limit: int = 10) -> list[str]:
    out = []
    for value in incident.source_ips:
        try:
            out.append(str(ipaddress.ip_address(value)))
        except ValueError:
            continue
        if len(out) >= limit:
            break
    return out


def _inert(text: str, limit: int = 64) -> str:
    return "`" + plain(text, limit).replace("`", "'") + "`"


def summary(incident: Incident, playbook: str, console_url: str = "") -> dict[str, Any]:
    """The incident's facts a webhook carries (addresses validated, names as data)."""
    link = f"{console_url.rstrip('/')}/incidents?incident={incident.id}" if console_url else ""
    return {
        "incident_id": incident.id,
        "kind": incident.kind,
        "severity": incident.severity,
        "technique": incident.technique,
        "first_seen": incident.first_seen,
        "last_seen": incident.last_seen,
        "failures": incident.failures,
        "successes": incident.successes,
        "source_ips": _addresses(incident, 50),
        "source_count": len(incident.source_ips),
        "users": [plain(u, 64) for u in incident.users[:10]],
        "distinct_users": incident.distinct_users,
        "playbook": playbook,
        "link": link,
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(incident: Incident, playbook: str, console_url: str = "") -> str:
    """One short message: kind, severity, addresses, a few user names (inert), the playbook."""
    addresses = _addresses(incident)
    more = len(incident.source_ips) - len(addresses)
    users = ", ".join(_inert(u) for u in incident.users[:5]) or "none"
    text = (
        f"SOC incident #{incident.id}: {incident.kind} ({incident.severity}), "
        f"{incident.failures} failures from {', '.join(addresses) or 'no address'}"
        f"{f' and {more} more' if more > 0 else ''}; users {users}. Playbook: {playbook}."
    )
    if console_url:
        text += f" {console_url.rstrip('/')}/incidents?incident={incident.id}"
    return text


def request(
    url: str, fmt: str, incident: Incident, playbook: str, console_url: str = ""
) -> Request:
    """The POST for ``fmt`` (``slack``, ``discord``, ``json``)."""
    text = message(incident, playbook, console_url)
    body: dict[str, Any]
    if fmt == "slack":
        body = {"text": _slack_escape(text)}
    elif fmt == "discord":
        body = {"content": text[:2000], "allowed_mentions": {"parse": []}}
    else:
        body = {
            "event": "soc.response",
            "text": text,
            "incident": summary(incident, playbook, console_url),
        }
    return Request(
        url=url,
        shown_url=shown_url(url),
        body=body,
        headers=(("Content-Type", "application/json"),),
    )


__all__ = ["message", "request", "shown_url", "summary"]
