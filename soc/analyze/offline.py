"""The offline analyst: a report written in code from the fact sheet alone.

Always available, free, deterministic, and the last link of every chain: an
incident is never left without a report. Its text states only facts from the
sheet, so it passes the same grounding check a model's reply must pass (a test
keeps it so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from soc.analyze.report import MAX_FIELD_CHARS
from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
)

#: What each kind is, in a phrase.
_WHAT: dict[str, str] = {
    BRUTE_FORCE: "a brute-force attack: rapid password guessing",
    SLOW_BRUTE_FORCE: "a slow brute-force attack: password guessing spread out to stay "
    "under per-window limits",
    PASSWORD_SPRAY: "a password spray: a few tries each against many user names",
    DISTRIBUTED_BRUTE_FORCE: "a distributed brute-force attack: many addresses, each "
    "below the threshold, guessing the same account(s)",
    CREDENTIAL_COMPROMISE: "a likely credential compromise: a successful login right "
    "after repeated failures from the same source",
    WEB_SCAN: "a web vulnerability scan: requests for many paths that do not exist",
    WEB_AUTH_BRUTE_FORCE: "a brute-force attack on HTTP authentication",
    PORT_SCAN: "a port scan: probes of many ports, dropped by the firewall",
}


def offline_reply(sheet: Mapping[str, Any]) -> str:
    """The offline analyst's reply, in the same JSON form a model must return."""
    incident = sheet.get("incident", {})
    counts = sheet.get("counts", {})
    detection = sheet.get("detection", {})
    kind = str(incident.get("kind", ""))
    sources = list(sheet.get("source_addresses", []))
    n_sources = int(counts.get("source_addresses", len(sources)))
    origin = (
        f"from {sources[0]}"
        if n_sources == 1 and sources
        else f"from {n_sources} source addresses"
        if n_sources
        else "from an unnamed source"
    )
    failures = int(counts.get("failed_attempts", 0))
    successes = int(counts.get("successful_logins", 0))
    users = int(counts.get("distinct_users_targeted", 0))
    summary = (
        f"{_WHAT.get(kind, kind).capitalize()} {origin}: {failures} failed attempts"
        + (f" against {users} user names" if users else "")
        + f" between {incident.get('first_seen')} and {incident.get('last_seen')}."
    )
    steps = [
        f"The first event was at {incident.get('first_seen')} and the latest at "
        f"{incident.get('last_seen')} ({incident.get('duration_seconds')} seconds).",
    ]
    peak = detection.get("peak_failures_in_window")
    if isinstance(peak, int) and peak:
        steps.append(
            f"At its peak it made {peak} failed attempts within "
            f"{detection.get('window_seconds')} seconds."
        )
    horizon = detection.get("peak_failures_in_horizon")
    if kind == SLOW_BRUTE_FORCE and isinstance(horizon, int) and horizon:
        steps.append(
            f"Counting its earlier attempts, it reached {horizon} failures within "
            f"{detection.get('horizon_seconds')} seconds."
        )
    for name, label in (
        ("distinct_paths", "distinct paths were probed"),
        ("distinct_ports", "distinct ports were probed"),
    ):
        value = detection.get(name)
        if isinstance(value, int) and value:
            steps.append(f"{value} {label}.")
    for entry in sheet.get("timeline", []):
        steps.append(f"The {entry.get('rule')} rule fired at {entry.get('at')}.")
    if successes:
        steps.append(f"{successes} logins from the attacking source succeeded.")
    severity = str(incident.get("severity", "medium"))
    assessment = (
        f"Severity {severity}, from the rules: the kind of attack, its volume and breadth"
        + (", and a successful login" if successes else "")
        + ". This report was written from the detector's facts alone, without a model."
    )
    if incident.get("still_active"):
        assessment += " The campaign was still active."
    confidence = (
        "high" if kind in (CREDENTIAL_COMPROMISE, BRUTE_FORCE) or failures >= 100 else "medium"
    )
    reply = {
        "summary": summary,
        "what_happened": " ".join(steps),
        "assessment": assessment,
        "severity": severity,
        "confidence": confidence,
    }
    return json.dumps(reply, ensure_ascii=False)


def offline_batch_reply(sheet: Mapping[str, Any]) -> str:
    """The offline analyst's reply for a batch of incidents (see ``build_batch_sheet``)."""
    batch = sheet.get("batch", {})
    counts = sheet.get("counts", {})
    kinds: Mapping[str, Mapping[str, Any]] = sheet.get("by_kind", {})
    n = int(batch.get("incidents", 0))
    summary = (
        f"{n} incidents below {batch.get('below_severity')} severity between "
        f"{batch.get('first_seen')} and {batch.get('last_seen')}: "
        f"{counts.get('source_addresses', 0)} source addresses made "
        f"{counts.get('failed_attempts', 0)} failed attempts."
    )
    steps = [
        f"{entry.get('incidents')} {'was' if entry.get('incidents') == 1 else 'were'} "
        f"{_WHAT.get(kind, kind)}, with {entry.get('failed_attempts')} failed attempts."
        for kind, entry in kinds.items()
    ]
    top = sheet.get("most_active_sources", [])
    if top:
        steps.append(
            f"The most active source was {top[0].get('address')}, with "
            f"{top[0].get('failed_attempts')} failed attempts in {top[0].get('incidents')} "
            f"incident(s)."
        )
    networks = sheet.get("busiest_networks", [])
    if networks:
        steps.append(
            f"The busiest network, {networks[0].get('network')}, held "
            f"{networks[0].get('source_addresses')} of the source addresses."
        )
    severity = str(batch.get("severity", "low"))
    successes = int(counts.get("successful_logins", 0))
    assessment = (
        f"Severity {severity}, the highest the rules gave any incident of the batch. "
        + (
            f"{successes} logins from these sources succeeded; check them. "
            if successes
            else "No login from these sources succeeded. "
        )
        + "This is background attack traffic: each source stayed small. "
        "This report was written from the detector's facts alone, without a model."
    )
    reply = {
        "summary": summary,
        "what_happened": _within(steps, MAX_FIELD_CHARS["what_happened"]),
        "assessment": assessment,
        "severity": severity,
        "confidence": "medium",
    }
    return json.dumps(reply, ensure_ascii=False)


def _within(sentences: list[str], limit: int) -> str:
    """The sentences that fit in ``limit`` characters, in order."""
    text = ""
    for sentence in sentences:
        joined = f"{text} {sentence}" if text else sentence
        if len(joined) > limit:
            break
        text = joined
    return text


__all__ = ["offline_batch_reply", "offline_reply"]
