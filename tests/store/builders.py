"""Incidents and windows as the detection stage hands them to the store."""

from __future__ import annotations

from typing import Any

from soc.events import BRUTE_FORCE, Incident, WindowStats

T0 = 1_763_719_200.0  # 2025-11-21 10:00:00 UTC


def make_incident(key: str = "203.0.113.9", **fields: Any) -> Incident:
    """An incident as the detector would hand it over, with overridable fields."""
    values: dict[str, Any] = {
        "key": key,
        "kind": BRUTE_FORCE,
        "first_seen": T0,
        "last_seen": T0 + 10,
        "source_ips": [key],
        "users": ["root"],
        "distinct_users": 1,
        "failures": 10,
        "events": 10,
        "severity": "medium",
        "technique": "T1110.001",
        "technique_name": "Brute Force: Password Guessing",
    }
    values.update(fields)
    return Incident(**values)


def make_window(key: str, start: float, **fields: Any) -> WindowStats:
    """A 15-second window of ``key`` starting at ``start``."""
    values: dict[str, Any] = {
        "key": key,
        "key_type": "ip",
        "window_start": start,
        "window_end": start + 15,
        "first_seen": start,
        "last_seen": start + 14,
    }
    values.update(fields)
    return WindowStats(**values)
