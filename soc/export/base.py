"""What an export sink is, and the ECS alert document every sink sends.

An incident leaves the product as one ECS alert (``event.kind: alert``): the shape
Elastic Security's prebuilt "External Alerts" rule turns into a detection alert,
and plain JSON any webhook receiver can read. :func:`to_ecs_alert` builds it; a
:class:`Sink` delivers a batch of such documents and says, per document, whether
it got there. Undelivered documents wait in the store's outbox and are retried
with exponential backoff (see :mod:`soc.export.outbox`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from soc.errors import ConfigError
from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
    Incident,
    format_timestamp,
    is_ip_address,
)

#: ECS version the alert documents follow.
ECS_VERSION: Final = "8.11.0"

#: ``event.severity`` per severity label: the values the External Alerts rule's
#: severity mapping turns back into low / medium / high / critical.
SEVERITY_SCORES: Final[dict[str, int]] = {"low": 21, "medium": 47, "high": 73, "critical": 99}

#: ``related.ip`` / ``related.user`` / ``soc.evidence`` keep at most this many values,
#: so that a distributed campaign with thousands of addresses stays one sane document.
MAX_RELATED: Final = 1000

#: ``_id`` prefix: one document per incident, ``soc-<incident id>``.
ALERT_ID_PREFIX: Final = "soc-"

# Per incident kind: a readable rule name, a one-sentence description, ECS
# event.category and event.type. Categories are ECS allowed values.
_RULES: Final[dict[str, tuple[str, str, list[str], list[str]]]] = {
    BRUTE_FORCE: (
        "Brute force",
        "Many failed logins from one source within a short span.",
        ["authentication"],
        ["info"],
    ),
    PASSWORD_SPRAY: (
        "Password spraying",
        "Failed logins for many distinct usernames from one source.",
        ["authentication"],
        ["info"],
    ),
    SLOW_BRUTE_FORCE: (
        "Slow brute force",
        "Failed logins from one source, each window below the threshold, sustained "
        "over a long horizon.",
        ["authentication"],
        ["info"],
    ),
    DISTRIBUTED_BRUTE_FORCE: (
        "Distributed brute force",
        "Many source addresses failing logins against the same users, each below the threshold.",
        ["authentication"],
        ["info"],
    ),
    CREDENTIAL_COMPROMISE: (
        "Credential compromise",
        "A successful login from a source that failed repeatedly just before.",
        ["authentication"],
        ["start"],
    ),
    WEB_SCAN: (
        "Web content scan",
        "Requests for many distinct missing or sensitive paths from one source.",
        ["web", "intrusion_detection"],
        ["info"],
    ),
    WEB_AUTH_BRUTE_FORCE: (
        "Web authentication brute force",
        "Many HTTP authentication failures from one source.",
        ["authentication", "web"],
        ["info"],
    ),
    PORT_SCAN: (
        "Port scan",
        "Connections to many distinct ports blocked by the firewall from one source.",
        ["network", "intrusion_detection"],
        ["denied"],
    ),
}

#: MITRE ATT&CK parent technique names (the sub-technique name comes from the incident).
_TECHNIQUE_NAMES: Final[dict[str, str]] = {
    "T1110": "Brute Force",
    "T1078": "Valid Accounts",
    "T1595": "Active Scanning",
    "T1046": "Network Service Discovery",
    "T1190": "Exploit Public-Facing Application",
    "T1021": "Remote Services",
}

#: Tactics per parent technique. T1078 belongs to four tactics in ATT&CK; a login
#: from outside with a guessed password is Initial Access and Persistence, not
#: Defense Evasion or Privilege Escalation, so only those two are claimed.
_TACTICS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "T1110": (("TA0006", "Credential Access"),),
    "T1078": (("TA0001", "Initial Access"), ("TA0003", "Persistence")),
    "T1595": (("TA0043", "Reconnaissance"),),
    "T1046": (("TA0007", "Discovery"),),
    "T1190": (("TA0001", "Initial Access"),),
    "T1021": (("TA0008", "Lateral Movement"),),
}

_ATTACK_URL: Final = "https://attack.mitre.org"

# A DNS host name: letters, digits, dots and dashes (keys such as "user:root" or a
# "/64" prefix are not one).
_HOST_NAME: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """What happened to one document: delivered or not, and why not.

    ``status`` is the HTTP status for this document (``None`` when no response came
    back at all). ``retryable`` is False for failures that will not heal by waiting
    (a rejected mapping, bad credentials): those are still kept in the outbox but
    retried only at the longest backoff.
    """

    ok: bool
    status: int | None = None
    error: str | None = None
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One result per document handed to :meth:`Sink.deliver`, in the same order."""

    results: tuple[DocumentResult, ...]

    @property
    def delivered(self) -> int:
        return sum(1 for r in self.results if r.ok)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """A sink's health: reachable and accepting (``ok``), with a human-readable detail."""

    ok: bool
    detail: str


def is_retryable_status(status: int | None) -> bool:
    """Whether waiting may fix a failure with this HTTP status (None: no response)."""
    return status is None or status in (408, 425, 429) or status >= 500


# --- retry policy ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff for outbox retries: ``base * 2**attempts``, capped at ``max``.

    A failure that is not retryable waits ``max`` straight away.
    """

    backoff_base: float = 1.0
    backoff_max: float = 300.0

    def delay(self, attempts: int, *, retryable: bool = True) -> float:
        """Seconds to wait after a failure, ``attempts`` being the failures before it."""
        if not retryable:
            return self.backoff_max
        # min() before the power would overflow after ~1000 attempts.
        exponent = min(max(attempts, 0), 64)
        return min(self.backoff_max, self.backoff_base * 2.0**exponent)


def check_retry_settings(backoff_base: float, backoff_max: float, batch_size: int) -> None:
    """Validate the retry/batch settings every sink config shares."""
    if not backoff_base > 0 or not math.isfinite(backoff_base):
        raise ConfigError("must be a positive number of seconds", where="backoff_base")
    if not backoff_max >= backoff_base or not math.isfinite(backoff_max):
        raise ConfigError("must be at least backoff_base", where="backoff_max")
    if batch_size < 1 or batch_size > 10_000:
        raise ConfigError("must be between 1 and 10000", where="batch_size")


# --- the sink protocol -----------------------------------------------------------------


class Sink(Protocol):
    """Where alerts go: Elasticsearch, a webhook.

    ``deliver`` never raises for a delivery problem (network down, server error,
    rejected document): it reports it per document. ``latest_only`` says a newer
    document for an incident makes older undelivered ones pointless (the sink
    overwrites by ``_id``), so the outbox sends only the newest. ``retry`` and
    ``batch_size`` drive the outbox's backoff and batching.
    """

    name: str
    latest_only: bool
    retry: RetryPolicy
    batch_size: int

    def deliver(self, documents: Sequence[Mapping[str, Any]]) -> DeliveryResult:
        """Send ``documents`` (from :func:`to_ecs_alert`); one result per document."""
        ...

    def health(self) -> HealthStatus:
        """Probe the destination now (a short request), without raising."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# --- the ECS alert document ------------------------------------------------------------


def alert_id(incident_id: int) -> str:
    """The ``_id`` of an incident's alert document: one per incident, updates overwrite it."""
    return f"{ALERT_ID_PREFIX}{incident_id}"


def content_digest(document: Mapping[str, Any]) -> str:
    """A short hash of a document's content (``_id`` and ``event.ingested`` left out).

    The same alert retried gives the same digest: sinks use it for append-only
    ``_id`` values and idempotency keys.
    """
    body = {k: v for k, v in document.items() if k != "_id"}
    event = body.get("event")
    if isinstance(event, Mapping) and "ingested" in event:
        body["event"] = {k: v for k, v in event.items() if k != "ingested"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:20]


def to_ecs_alert(
    incident: Incident, *, host_name: str | None = None, max_evidence: int = 10
) -> dict[str, Any]:
    """The ECS alert document for an incident, with its stable ``_id``.

    ``_id`` is ``soc-<incident id>``: every update of a campaign targets the same
    document, so a campaign is one document however often it is updated. The key
    ``_id`` is metadata, not content: sinks take it out before sending. Usernames
    and evidence lines are attacker-controlled text and stay plain JSON strings.
    """
    if incident.id is None:
        raise ValueError("an incident must be stored (have an id) before it is exported")
    rule_name, description, categories, types = _RULES.get(
        incident.kind,
        (incident.kind.replace("_", " ").capitalize(), "", ["intrusion_detection"], ["info"]),
    )
    # The detector's rule names the technique (soc.detect.rules); an incident without
    # one (another tool's) has none.
    technique_id = incident.technique
    technique_name = incident.technique_name if technique_id else ""
    threat = _threat(technique_id, technique_name)
    ips = _valid_ips(incident.source_ips)
    ip_count = _count_valid_ips(incident.source_ips)
    users = _unique(incident.users)[:MAX_RELATED]
    severity = incident.severity if incident.severity in SEVERITY_SCORES else "medium"
    score = SEVERITY_SCORES[severity]
    doc_id = alert_id(incident.id)

    event: dict[str, Any] = {
        "kind": "alert",
        "category": list(categories),
        "type": list(types),
        "action": incident.kind,
        "module": "soc",
        "dataset": "soc.alerts",
        "provider": "soc-command-center",
        "id": doc_id,
        "severity": score,
        "risk_score": float(score),
        "start": format_timestamp(incident.first_seen),
        "end": format_timestamp(incident.last_seen),
        "duration": max(0, round((incident.last_seen - incident.first_seen) * 1e9)),
    }
    if incident.opened_at is not None:
        event["created"] = format_timestamp(incident.opened_at)
    if technique_id:
        event["reference"] = _technique_url(technique_id)

    rule: dict[str, Any] = {
        "id": f"soc.{incident.kind}",
        "name": rule_name,
        "ruleset": "soc-command-center",
        "author": ["SOC Command Center"],
    }
    if description:
        rule["description"] = description
    if "tactic" in threat:
        rule["category"] = threat["tactic"]["name"][0]
    if technique_id:
        rule["reference"] = _technique_url(technique_id)

    doc: dict[str, Any] = {
        "_id": doc_id,
        "@timestamp": format_timestamp(incident.last_seen),
        "ecs": {"version": ECS_VERSION},
        "message": alert_message(incident, rule_name, technique_id, ips, users, ip_count),
        "event": event,
        "rule": rule,
    }
    if threat:
        doc["threat"] = threat
    if ips:
        doc["source"] = {"ip": ips[0]}
    elif (
        incident.kind != DISTRIBUTED_BRUTE_FORCE  # keyed by the target, not the source
        and "." in incident.key
        and _HOST_NAME.match(incident.key)
        and not is_ip_address(incident.key)
    ):
        # The attacker is known by a host name only (a log that resolved it).
        doc["source"] = {"address": incident.key, "domain": incident.key}
    related: dict[str, Any] = {}
    if ips:
        related["ip"] = ips
    if users:
        related["user"] = users
    if related:
        doc["related"] = related
    if len(users) == 1:
        doc["user"] = {"name": users[0]}
    if host_name:
        doc["host"] = {"name": host_name, "hostname": host_name}
    doc["tags"] = ["soc-command-center", incident.kind]
    doc["soc"] = _soc_fields(incident, severity, ip_count, max_evidence)
    return doc


def _soc_fields(
    incident: Incident, severity: str, source_count: int, max_evidence: int
) -> dict[str, Any]:
    soc: dict[str, Any] = {
        "incident": {"id": incident.id, "key": incident.key, "status": incident.status},
        "kind": incident.kind,
        "severity": severity,
        "status": incident.status,
        "failures": incident.failures,
        "successes": incident.successes,
        "events": incident.events,
        "distinct_users": max(incident.distinct_users, len(_unique(incident.users))),
        "source_ip_count": source_count,
        "closed": incident.closed,
    }
    if incident.updated_at is not None:
        soc["updated_at"] = format_timestamp(incident.updated_at)
    facts = _scalar_facts(incident.facts)
    if facts:
        soc["facts"] = facts
    evidence = [line for line in incident.evidence if isinstance(line, str)]
    if evidence and max_evidence > 0:
        soc["evidence"] = evidence[: min(max_evidence, MAX_RELATED)]
    return soc


def alert_message(
    incident: Incident,
    rule_name: str,
    technique_id: str,
    ips: Sequence[str],
    users: Sequence[str],
    ip_count: int,
) -> str:
    """One line saying what happened, short enough to be a detection alert's title.

    Elastic's External Alerts rule uses ``message`` as the alert's rule name, so it
    names the kind, the source and the figures that matter.
    """
    if len(ips) == 1:
        source = ips[0]
    elif ips:
        source = f"{ip_count} addresses"
    else:
        source = _one_line(incident.key, 80)
    if len(users) == 1:
        target = f"user {json.dumps(_one_line(users[0], 64), ensure_ascii=False)}"
    else:
        distinct = max(incident.distinct_users, len(users))
        target = f"{distinct} users"
    tech = f" ({technique_id})" if technique_id else ""
    if incident.kind == CREDENTIAL_COMPROMISE:
        text = (
            f"{rule_name}: {source} logged in as {target.removeprefix('user ')} after "
            f"{incident.failures} failed logins{tech}"
        )
    elif incident.kind == WEB_SCAN:
        text = f"{rule_name} from {source}: {incident.events} requests{tech}"
    elif incident.kind == PORT_SCAN:
        text = f"{rule_name} from {source}: {incident.events} blocked connections{tech}"
    else:
        text = (
            f"{rule_name} from {source}: {incident.failures} failed logins against {target}{tech}"
        )
    return _one_line(text, 400)


def _threat(technique_id: str, technique_name: str) -> dict[str, Any]:
    if not technique_id:
        return {}
    parent_id, _, sub = technique_id.partition(".")
    parent_name, _, sub_name = technique_name.partition(": ")
    if not sub:
        # "Valid Accounts" has no "Parent: Sub" form; the whole name is the technique's.
        parent_name = technique_name or _TECHNIQUE_NAMES.get(parent_id, "")
    else:
        parent_name = _TECHNIQUE_NAMES.get(parent_id, parent_name)
    technique: dict[str, Any] = {
        "id": [parent_id],
        "name": [parent_name],
        "reference": [_technique_url(parent_id)],
    }
    if sub:
        technique["subtechnique"] = {
            "id": [technique_id],
            "name": [sub_name or technique_name],
            "reference": [_technique_url(technique_id)],
        }
    threat: dict[str, Any] = {"framework": "MITRE ATT&CK", "technique": technique}
    tactics = _TACTICS.get(parent_id, ())
    if tactics:
        threat["tactic"] = {
            "id": [t for t, _ in tactics],
            "name": [n for _, n in tactics],
            "reference": [f"{_ATTACK_URL}/tactics/{t}/" for t, _ in tactics],
        }
    return threat


def _technique_url(technique_id: str) -> str:
    return f"{_ATTACK_URL}/techniques/{technique_id.replace('.', '/')}/"


def _valid_ips(values: Sequence[str]) -> list[str]:
    ips: list[str] = []
    seen: set[str] = set()
    for value in values:
        try:
            ip = str(ipaddress.ip_address(value))
        except ValueError:
            continue
        if ip not in seen:
            seen.add(ip)
            ips.append(ip)
            if len(ips) >= MAX_RELATED:
                break
    return ips


def _count_valid_ips(values: Sequence[str]) -> int:
    seen: set[str] = set()
    for value in values:
        try:
            seen.add(str(ipaddress.ip_address(value)))
        except ValueError:
            continue
    return len(seen)


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if isinstance(v, str)))


def _one_line(text: str, limit: int) -> str:
    # Control characters (newlines in a crafted username) would break the one-line
    # title; they are shown escaped rather than dropped, so nothing is hidden.
    cleaned = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _scalar_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    # Only finite scalars: nested or odd values would create mapping surprises in
    # Elasticsearch, and NaN is not JSON.
    out: dict[str, Any] = {}
    for key, value in facts.items():
        name = str(key).replace(".", "_")
        if isinstance(value, bool | int | str) or (
            isinstance(value, float) and math.isfinite(value)
        ):
            out[name] = value
    return out
