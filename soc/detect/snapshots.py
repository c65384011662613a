"""Incidents as they stand: a campaign's (or a distributed attack's) state, as an ``Incident``.

The detector hands over a snapshot every time a campaign that raised an incident
changes, and the last one when it closes; the store upserts on ``detector_key``.
"""

from __future__ import annotations

import math
from typing import Any

from soc.detect.base import DetectConfig, severity
from soc.detect.campaign import (
    AUTH,
    FAMILIES,
    KEY_HOST,
    KEY_IP,
    KEY_IPV6_NET,
    KEY_USER,
    NET,
    USERS_FAMILY,
    WEB,
    CampaignState,
    Distributed,
    Times,
    Tracker,
)
from soc.events import CREDENTIAL_COMPROMISE, DISTRIBUTED_BRUTE_FORCE, Incident


def snapshot(
    tracker: Tracker,
    campaign: CampaignState,
    *,
    kind: str,
    config: DetectConfig,
    technique: tuple[str, str],
    slow_horizon: float | None,
) -> Incident:
    """A source key's campaign as an incident of ``kind``.

    ``slow_horizon``: the slow rule's horizon, when that rule is registered (its
    peak count is a fact of every login campaign).
    """
    n = config.sample_size
    if tracker.key_type == KEY_IP:
        source_ips = [tracker.key]
    elif tracker.key_type == KEY_IPV6_NET:
        source_ips = campaign.sources.first(n)
    else:
        source_ips = []
    facts: dict[str, Any] = {
        "family": FAMILIES[tracker.family],
        "key_type": tracker.key_type,
        # In time order, as if the events had come one by one.
        "rules": dict(sorted(campaign.fired.items(), key=lambda kv: (kv[1], kv[0]))),
        # Exact up to max_threshold (the most a tracker keeps per window).
        "peak_failures_in_window": campaign.peak,
        "window_seconds": config.window_seconds,
    }
    if tracker.key_type == KEY_IPV6_NET:
        facts["distinct_sources"] = len(campaign.sources.values)
    if tracker.key_type == KEY_HOST:
        facts["source_address"] = tracker.key
    if tracker.family == AUTH:
        facts["distinct_failed_users"] = len(campaign.values.values)
        if slow_horizon is not None:
            # What the slow rule counts: this key's failures within the horizon,
            # those of its earlier (closed) campaigns included, up to slow_failures.
            facts["peak_failures_in_horizon"] = campaign.horizon_peak
            facts["horizon_seconds"] = slow_horizon
        if campaign.forgiven:
            # Names that failed and then logged in from the key: typos, not guesses.
            facts["users_logged_in_after_failing"] = len(campaign.forgiven)
        if CREDENTIAL_COMPROMISE in campaign.fired:
            facts["compromise_evidence"] = compromise_evidence(campaign)
    elif tracker.family == WEB:
        facts["distinct_paths"] = len(campaign.values.values)
        facts["paths"] = campaign.values.first(n)
    else:
        facts["distinct_ports"] = len(campaign.values.values)
        facts["ports"] = [int(p) for p in campaign.values.first(n)]
    overflow = campaign.values.overflow + campaign.users.overflow + campaign.sources.overflow
    if overflow:
        facts["distinct_overflow"] = overflow
    distinct_users = len(campaign.users.values)
    return _incident(
        Times(
            campaign.start,
            campaign.first,
            campaign.last,
            campaign.opened_at,
            campaign.closed_reason,
            campaign.closed_at,
        ),
        config=config,
        technique=technique,
        detector_key=campaign.detector_key,
        key=tracker.key,
        kind=kind,
        source_ips=source_ips,
        users=campaign.users.first(n),
        distinct_users=distinct_users,
        failures=campaign.failures,
        successes=campaign.successes,
        events=campaign.events,
        breadth=distinct_users if tracker.family != NET else 0,
        evidence=campaign.evidence.lines(),
        facts=facts,
    )


def compromise_evidence(campaign: CampaignState) -> list[str]:
    """What made the campaign's login a compromise: the rules it raised before it."""
    at = campaign.fired[CREDENTIAL_COMPROMISE]
    evidence = [
        name
        for name, when in campaign.fired.items()
        if name != CREDENTIAL_COMPROMISE and when <= at
    ]
    if campaign.botnet:
        evidence.append(f"{DISTRIBUTED_BRUTE_FORCE} {campaign.botnet}")
    return evidence or ["failures for other user names"]


def snapshot_distributed(
    incident: Distributed, *, config: DetectConfig, technique: tuple[str, str]
) -> Incident:
    """A distributed attack (its targeted users' campaigns) as one incident."""
    n = config.sample_size
    users: dict[str, None] = {}
    sources: dict[Any, None] = {}
    addresses: dict[str, None] = {}
    failures = 0
    first, last = math.inf, -math.inf
    lines: list[str] = []
    overflow = 0
    for member in incident.members:
        users.update(dict.fromkeys(member.users.values))
        sources.update(dict.fromkeys(member.values.values))
        addresses.update(dict.fromkeys(member.sources.values))
        failures += member.failures
        first = min(first, member.first)
        last = max(last, member.last)
        lines.extend(member.evidence.lines())
        overflow += member.values.overflow + member.sources.overflow
    size = config.evidence_lines
    if len(lines) > size:
        lines = lines[: size // 2] + lines[len(lines) - (size - size // 2) :] if size else []
    lead = incident.members[0]
    facts: dict[str, Any] = {
        "family": USERS_FAMILY,
        "key_type": KEY_USER,
        "rules": {DISTRIBUTED_BRUTE_FORCE: incident.opened_at},
        "distinct_sources": len(sources),
        "sources": sorted(map(str, sources))[:n],
    }
    if overflow:
        facts["distinct_overflow"] = overflow
    if incident.members_overflow:
        facts["users_overflow"] = incident.members_overflow
    return _incident(
        Times(
            lead.start,
            first,
            last,
            incident.opened_at,
            incident.closed_reason,
            incident.closed_at,
        ),
        config=config,
        technique=technique,
        detector_key=incident.detector_key,
        key=next(iter(lead.users.values)),
        kind=DISTRIBUTED_BRUTE_FORCE,
        source_ips=sorted(addresses)[:n],
        users=list(users)[:n],
        distinct_users=len(users),
        failures=failures,
        successes=0,
        events=failures,
        breadth=len(sources),
        evidence=lines,
        facts=facts,
    )


def _incident(
    times: Times,
    *,
    config: DetectConfig,
    technique: tuple[str, str],
    detector_key: str,
    key: str,
    kind: str,
    source_ips: list[str],
    users: list[str],
    distinct_users: int,
    failures: int,
    successes: int,
    events: int,
    breadth: int,
    evidence: list[str],
    facts: dict[str, Any],
) -> Incident:
    facts["campaign_start"] = times.start
    if times.closed_reason is not None:
        facts["closed_reason"] = times.closed_reason
        facts["closed_at"] = times.closed_at
    return Incident(
        key=key,
        kind=kind,
        first_seen=times.first,
        last_seen=times.last,
        source_ips=source_ips,
        users=users,
        distinct_users=distinct_users,
        failures=failures,
        successes=successes,
        events=events,
        severity=severity(
            kind, failures=failures, breadth=breadth, successes=successes, config=config
        ),
        technique=technique[0],
        technique_name=technique[1],
        evidence=evidence,
        facts=facts,
        opened_at=times.opened_at,
        updated_at=times.last,
        closed=times.closed_reason is not None,
        detector_key=detector_key,
    )


__all__ = ["compromise_evidence", "snapshot", "snapshot_distributed"]
