"""Incidents of every kind as the detector hands them over, and a store holding them."""

from __future__ import annotations

from typing import Any

from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_SCAN,
    Incident,
)
from soc.store import SqlStore

T0 = 1_763_719_200.0  # 2025-11-21 10:00:00 UTC
DAY = 86_400.0

TECHNIQUES = {
    BRUTE_FORCE: ("T1110.001", "Brute Force: Password Guessing"),
    SLOW_BRUTE_FORCE: ("T1110.001", "Brute Force: Password Guessing"),
    PASSWORD_SPRAY: ("T1110.003", "Brute Force: Password Spraying"),
    CREDENTIAL_COMPROMISE: ("T1078", "Valid Accounts"),
    WEB_SCAN: ("T1595.003", "Active Scanning: Wordlist Scanning"),
    PORT_SCAN: ("T1046", "Network Service Discovery"),
}


def incident(kind: str, address: str, *, at: float = T0, **fields: Any) -> Incident:
    """An incident of ``kind`` from ``address`` starting at ``at``; fields override."""
    technique, name = TECHNIQUES.get(kind, ("", ""))
    values: dict[str, Any] = {
        "key": address,
        "kind": kind,
        "first_seen": at,
        "last_seen": at + 120,
        "source_ips": [address],
        "failures": 40,
        "events": 40,
        "technique": technique,
        "technique_name": name,
        "updated_at": at + 120,
        "facts": {"key_type": "ip"},
    }
    values.update(fields)
    return Incident(**values)


def spray(address: str, users: list[str], *, at: float = T0, **fields: Any) -> Incident:
    """A password spray: few tries for each of many user names."""
    values: dict[str, Any] = {
        "users": users,
        "distinct_users": len(users),
        "failures": 2 * len(users),
        "events": 2 * len(users),
    }
    values.update(fields)
    return incident(PASSWORD_SPRAY, address, at=at, **values)


def brute_force(address: str, users: list[str], *, at: float = T0, **fields: Any) -> Incident:
    """A fast brute force against a few user names."""
    values: dict[str, Any] = {
        "users": users,
        "distinct_users": len(users),
        "failures": 600,
        "events": 600,
        "last_seen": at + 300,
        "updated_at": at + 300,
    }
    values.update(fields)
    return incident(BRUTE_FORCE, address, at=at, **values)


def web_scan(address: str, paths: list[str], *, at: float = T0, **fields: Any) -> Incident:
    """A web scan probing ``paths``."""
    values: dict[str, Any] = {
        "failures": 0,
        "events": 10 * len(paths),
        "facts": {"key_type": "ip", "paths": paths, "distinct_paths": len(paths)},
    }
    values.update(fields)
    return incident(WEB_SCAN, address, at=at, **values)


def port_scan(address: str, ports: list[int], *, at: float = T0, **fields: Any) -> Incident:
    """A port scan of ``ports`` (firewall drops)."""
    values: dict[str, Any] = {
        "failures": 0,
        "events": len(ports),
        "facts": {"key_type": "ip", "ports": ports, "distinct_ports": len(ports)},
    }
    values.update(fields)
    return incident(PORT_SCAN, address, at=at, **values)


def add(store: SqlStore, *incidents: Incident) -> list[int]:
    """Store ``incidents`` (each its own campaign) and return their ids, in order."""
    with store.transaction(now=T0) as tx:
        return tx.upsert_incidents(
            [(i, f"{i.kind}:{i.key}:{i.first_seen}:{n}") for n, i in enumerate(incidents)]
        )


def zoo(store: SqlStore, *, at: float = T0) -> dict[str, int]:
    """One campaign of three sprays and an incident of every other kind; ids by name."""
    named = {
        "spray_a": spray("198.51.100.7", ["oracle", "postgres", "mysql", "db2inst1"], at=at),
        "spray_b": spray("203.0.113.50", ["postgres", "oracle", "db2inst1", "mysql"], at=at + 60),
        "spray_c": spray("192.0.2.99", ["mysql", "oracle", "postgres", "sybase"], at=at + 90),
        "brute_root": brute_force("198.51.100.20", ["root"], at=at + 120),
        "slow_git": incident(
            SLOW_BRUTE_FORCE,
            "203.0.113.77",
            at=at + 130,
            users=["git", "deploy"],
            distinct_users=2,
            failures=12,
            events=12,
            last_seen=at + 4 * 3600,
            updated_at=at + 4 * 3600,
        ),
        "compromise": incident(
            CREDENTIAL_COMPROMISE,
            "192.0.2.200",
            at=at + 140,
            users=["ubuntu"],
            distinct_users=1,
            failures=90,
            successes=1,
            events=91,
        ),
        "web_wp": web_scan(
            "198.51.100.88",
            ["/wp-login.php", "/wp-admin/", "/xmlrpc.php", "/.env", "/.git/config"],
            at=at + 150,
        ),
        "ports": port_scan("203.0.113.9", [21, 22, 23, 25, 80, 443, 445, 3306, 3389], at=at + 160),
    }
    ids = add(store, *named.values())
    return dict(zip(named, ids, strict=True))
