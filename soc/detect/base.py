"""What detection is configured with, how severity is decided, and what it counted.

Every rule's parameters live in :class:`DetectConfig` with documented defaults;
the README's detection table is written from these docstrings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Final

from soc.detect.allow import parse_networks
from soc.errors import ConfigError
from soc.events import (
    ACCESS_DENIED,
    AUTH_FAILURE,
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    INVALID_USER,
    KINDS,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SEVERITIES,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
)

#: Incident kinds whose base severity is ``low`` (reconnaissance, slow guessing).
LOW_KINDS: Final = frozenset({SLOW_BRUTE_FORCE, WEB_SCAN, PORT_SCAN})
#: Incident kinds whose base severity is ``medium``.
MEDIUM_KINDS: Final = frozenset(
    {BRUTE_FORCE, PASSWORD_SPRAY, DISTRIBUTED_BRUTE_FORCE, WEB_AUTH_BRUTE_FORCE}
)


@dataclass(slots=True)
class DetectConfig:
    """Every detection rule's parameters (event time throughout).

    A *campaign* is one key's activity (a source address, an IPv6 /64, or for
    distributed attacks a targeted user) with no gap longer than
    ``quiet_seconds``; an incident is a campaign that crossed a rule, and it is
    updated while the campaign goes on.

    Failures are the failed login attempts the logs record, each once: kinds in
    ``failure_kinds`` with outcome ``failure``, weighted by ``Event.count``, not
    counting lines that repeat an attempt another line records
    (:func:`soc.events.is_echo`).

    - ``brute_force``: at least ``threshold`` failures from one key within any
      ``window_seconds`` span (sliding), raised at the failure that crosses it.
    - ``password_spray``: at least ``spray_users`` distinct user names failed from
      one key within a campaign, with at most ``spray_tries_per_user`` failures
      per user on average (more tries per user is a brute force of several
      accounts).
    - ``slow_brute_force``: at least ``slow_failures`` failures from one key within
      ``slow_horizon_seconds``, whatever the rate (the key never has to reach
      ``threshold`` in a window; compare CrowdSec's ssh-slow-bf, fail2ban's recidive).
      The failures of the key's earlier campaigns within the horizon count too, so
      an attacker back after a quiet gap opens a slow brute force with only its
      latest failures; its ``peak_failures_in_horizon`` fact says how many were
      counted (up to ``slow_failures``).
    - ``distributed_brute_force``: at least ``distributed_sources`` distinct
      source keys failing against the same user within that user's campaign
      (its failures with no gap longer than ``quiet_seconds``), counting only
      sources that have not raised an incident of their own at that point (their
      later failures are theirs alone). Users attacked by mostly the same
      sources (``distributed_overlap`` of the new user's sources already in an
      open incident) join that incident.
    - ``credential_compromise``: a successful login from a key with at least
      ``compromise_failures`` failures within the ``compromise_lookback_seconds``
      before it.
    - ``web_scan``: at least ``web_scan_paths`` distinct URL paths answered with an
      error (4xx/5xx) to one key within a campaign.
    - ``web_auth_brute_force``: HTTP authentication failures from one key: at
      least ``threshold`` within ``window_seconds``, or ``web_auth_failures``
      within ``web_auth_horizon_seconds``.
    - ``port_scan``: at least ``port_scan_ports`` distinct destination ports in
      firewall drops from one key within a campaign.

    ``allow_list``: addresses and CIDR networks that never raise anything (their
    events are still counted in the windows); ``include_host_addresses`` adds the
    machine's own addresses (handed to the detector; see
    :func:`soc.detect.allow.discover_host_addresses`). ``ipv6_prefix``: IPv6
    sources are keyed by their network of this many bits (0: by address).

    Bounds: ``max_keys`` source keys and ``max_users`` targeted user names are
    tracked (least recently seen evicted, counted); ``max_distinct`` distinct
    values (users, paths, ports, sources) per campaign; ``max_value_length``
    characters of a user name or path; ``evidence_lines`` raw lines per incident
    (the first half and the latest half); ``sample_size`` users / addresses /
    paths / ports listed on an incident.

    Severity (:func:`severity`): see there.
    """

    threshold: int = 5
    window_seconds: float = 15.0
    failure_kinds: list[str] = field(
        default_factory=lambda: [AUTH_FAILURE, INVALID_USER, ACCESS_DENIED]
    )
    spray_users: int = 10
    spray_tries_per_user: float = 3.0
    slow_failures: int = 10
    slow_horizon_seconds: float = 3600.0
    distributed_sources: int = 10
    distributed_overlap: float = 0.5
    compromise_failures: int = 3
    compromise_lookback_seconds: float = 3600.0
    web_scan_paths: int = 10
    web_auth_failures: int = 10
    web_auth_horizon_seconds: float = 600.0
    port_scan_ports: int = 15
    allow_list: list[str] = field(default_factory=list)
    include_host_addresses: bool = True
    ipv6_prefix: int = 64
    quiet_seconds: float = 900.0
    evidence_lines: int = 20
    sample_size: int = 50
    max_keys: int = 100_000
    max_users: int = 10_000
    max_distinct: int = 1_000
    max_value_length: int = 256
    max_threshold: int = 1_000
    severity_medium_failures: int = 100
    severity_high_failures: int = 1_000
    severity_medium_breadth: int = 10
    severity_high_breadth: int = 50

    def __post_init__(self) -> None:
        positive_ints = (
            "threshold",
            "spray_users",
            "slow_failures",
            "distributed_sources",
            "compromise_failures",
            "web_scan_paths",
            "web_auth_failures",
            "port_scan_ports",
            "sample_size",
            "max_keys",
            "max_users",
            "max_distinct",
            "max_value_length",
            "max_threshold",
            "severity_medium_failures",
            "severity_high_failures",
            "severity_medium_breadth",
            "severity_high_breadth",
        )
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", where=name)
        positive_floats = (
            "window_seconds",
            "slow_horizon_seconds",
            "compromise_lookback_seconds",
            "web_auth_horizon_seconds",
            "quiet_seconds",
            "spray_tries_per_user",
        )
        for name in positive_floats:
            if not getattr(self, name) > 0:
                raise ConfigError("must be more than 0", where=name)
        if self.evidence_lines < 0:
            raise ConfigError("must not be negative", where="evidence_lines")
        if not 0 < self.distributed_overlap <= 1:
            raise ConfigError("must be more than 0 and at most 1", where="distributed_overlap")
        if not 0 <= self.ipv6_prefix <= 128:
            raise ConfigError("must be between 0 (off) and 128", where="ipv6_prefix")
        if self.threshold > self.max_threshold:
            raise ConfigError(f"must be at most max_threshold ({self.max_threshold})", "threshold")
        for name in ("spray_users", "web_scan_paths", "port_scan_ports", "distributed_sources"):
            if getattr(self, name) > self.max_distinct:
                raise ConfigError("must be at most max_distinct", where=name)
        for name in ("slow_failures", "compromise_failures", "web_auth_failures"):
            if getattr(self, name) > self.max_threshold:
                raise ConfigError("must be at most max_threshold", where=name)
        for i, kind in enumerate(self.failure_kinds):
            if kind not in KINDS:
                known = ", ".join(KINDS)
                raise ConfigError(
                    f"unknown event kind {kind!r} (known: {known})", f"failure_kinds[{i}]"
                )
        if self.severity_high_failures < self.severity_medium_failures:
            raise ConfigError(
                "must not be below severity_medium_failures", "severity_high_failures"
            )
        if self.severity_high_breadth < self.severity_medium_breadth:
            raise ConfigError("must not be below severity_medium_breadth", "severity_high_breadth")
        parse_networks(self.allow_list)


def severity(
    kind: str,
    *,
    failures: int,
    breadth: int,
    successes: int,
    config: DetectConfig,
) -> str:
    """An incident's severity from its facts.

    ``credential_compromise`` is ``critical``. Otherwise the kind's base
    (``low`` for slow brute force, web and port scans; ``medium`` for the rest)
    is raised to ``medium``/``high`` by volume (``failures`` reaching
    ``severity_medium_failures``/``severity_high_failures``) and by breadth
    (distinct users tried, or distinct sources of a distributed attack, reaching
    ``severity_medium_breadth``/``severity_high_breadth``), and to ``high`` when a
    login from the attacking key succeeded during the campaign.
    """
    if kind == CREDENTIAL_COMPROMISE:
        return "critical"
    level = 1 if kind in MEDIUM_KINDS else 0
    if failures >= config.severity_high_failures or breadth >= config.severity_high_breadth:
        level = max(level, 2)
    elif failures >= config.severity_medium_failures or breadth >= config.severity_medium_breadth:
        level = max(level, 1)
    if successes > 0:
        level = max(level, 2)
    return SEVERITIES[level]


@dataclass(slots=True)
class DetectorStats:
    """What the detector did with every event, and how full its bounded state is.

    ``ignored``: events of kinds no rule looks at (other tools' alerts).
    ``unkeyed``: no source address. ``allow_listed``: from an allow-listed source
    (never raise anything). ``no_time``: no timestamp and no event time known yet.
    ``reordered``: events older than their key's latest, taken at the key's
    latest time. ``evicted_keys`` / ``evicted_users``: trackers dropped at
    ``max_keys`` / ``max_users`` (an open incident of an evicted key is closed:
    ``incidents_evicted``). ``distinct_overflow``: distinct values not tracked
    past ``max_distinct``. ``values_cut``: user names and paths cut to
    ``max_value_length``.
    """

    events: int = 0
    detected_on: int = 0
    ignored: int = 0
    unkeyed: int = 0
    allow_listed: int = 0
    no_time: int = 0
    reordered: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    incidents_evicted: int = 0
    evicted_keys: int = 0
    evicted_users: int = 0
    distinct_overflow: int = 0
    values_cut: int = 0
    keys: int = 0
    users: int = 0
    open_incidents: int = 0
    opened_by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The counters as plain data."""
        return asdict(self)


__all__ = ["LOW_KINDS", "MEDIUM_KINDS", "DetectConfig", "DetectorStats", "severity"]
