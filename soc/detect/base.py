"""What detection is configured with, how severity is decided, and what it counted.

:class:`DetectConfig` holds the detector-wide settings and, as fields of the same
``[detect]`` table, every rule's parameters (each declared in its rule's module).
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, asdict, dataclass, field
from typing import Any

from soc.detect.allow import parse_networks
from soc.detect.rules import param_fields, rule, rules
from soc.errors import ConfigError
from soc.events import ACCESS_DENIED, AUTH_FAILURE, INVALID_USER, KINDS, SEVERITIES


def _with_rule_params(cls: type[Any]) -> type[Any]:
    """Add every registered rule's parameters to ``cls`` as ``[detect]`` keys (fields)."""
    annotations = dict(inspect.get_annotations(cls))
    for _rule, hint, f in param_fields():
        if f.name in annotations:
            raise TypeError(f"[detect] key {f.name!r} is defined twice")
        annotations[f.name] = hint
        if f.default_factory is not MISSING:
            setattr(cls, f.name, field(default_factory=f.default_factory, metadata=f.metadata))
        else:
            setattr(cls, f.name, field(default=f.default, metadata=f.metadata))
    cls.__annotations__ = annotations
    return cls


@dataclass(slots=True)
@_with_rule_params
class DetectConfig:
    """Every detection setting (the ``[detect]`` table), event time throughout.

    The rules' own parameters are fields too, added from each rule's module
    (:mod:`soc.detect.rules`; each field's ``metadata["doc"]`` says what it does).
    What is set here is shared by every rule.

    A *campaign* is one key's activity (a source address, an IPv6 /64, or for
    distributed attacks a targeted user) with no gap longer than
    ``quiet_seconds``; an incident is a campaign that crossed a rule, and it is
    updated while the campaign goes on.

    Failures are the failed login attempts the logs record, each once: kinds in
    ``failure_kinds`` with outcome ``failure``, weighted by ``Event.count``, not
    counting lines that repeat an attempt another line records
    (:func:`soc.events.is_echo`) or keys an ssh-agent offered
    (:func:`soc.events.is_key_offer`). ``threshold`` failures within
    ``window_seconds`` (sliding) are a brute force; both are tuned at run time.

    Legitimate users are told apart by their logins: once user U logged in from a
    key, U's failures from it no longer count for any rule for
    ``known_login_seconds``, and U's failures from it in the ``forgive_seconds``
    before the login stop counting from then on (typos, not guesses). The same
    holds for HTTP authentication (a request with the user name answered 2xx/3xx).

    ``allow_list``: addresses and CIDR networks that never raise anything (their
    events are still counted in the windows); ``include_host_addresses`` adds the
    machine's own addresses (handed to the detector; see
    :func:`soc.detect.allow.discover_host_addresses`). ``ipv6_prefix``: IPv6
    sources are keyed by their network of this many bits (0: by address).

    Bounds: ``max_keys`` source keys, logins remembered and ``max_users`` targeted
    user names are tracked (least recently seen evicted, counted);
    ``max_distinct`` distinct values (users, paths, ports, sources) per campaign;
    ``max_value_length`` characters of a user name or path; ``evidence_lines`` raw
    lines per incident (the first half and the latest half); ``sample_size`` users /
    addresses / paths / ports listed on an incident.

    Severity (:func:`severity`): see there.
    """

    threshold: int = 5
    window_seconds: float = 15.0
    failure_kinds: list[str] = field(
        default_factory=lambda: [AUTH_FAILURE, INVALID_USER, ACCESS_DENIED]
    )
    forgive_seconds: float = 3600.0
    known_login_seconds: float = 30 * 86400.0
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
        for name in ("window_seconds", "quiet_seconds", "known_login_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError("must be more than 0", where=name)
        if self.forgive_seconds < 0:
            raise ConfigError("must not be negative (0: never forgive)", where="forgive_seconds")
        if self.evidence_lines < 0:
            raise ConfigError("must not be negative", where="evidence_lines")
        if not 0 <= self.ipv6_prefix <= 128:
            raise ConfigError("must be between 0 (off) and 128", where="ipv6_prefix")
        if self.threshold > self.max_threshold:
            raise ConfigError(f"must be at most max_threshold ({self.max_threshold})", "threshold")
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
        for r in rules():
            r.params_from(self)

    def params(self, kind: str) -> Any:
        """The parameters of the rule raising ``kind``, as that rule's typed dataclass."""
        return rule(kind).params_from(self)


def severity(
    kind: str,
    *,
    failures: int,
    breadth: int,
    successes: int,
    config: DetectConfig,
) -> str:
    """An incident's severity from its facts.

    The kind's rule gives the base (``critical`` for a credential compromise:
    nothing raises or lowers it; ``low`` for slow brute force, web and port scans;
    ``medium`` for the rest), raised to ``medium``/``high`` by volume
    (``failures`` reaching ``severity_medium_failures``/``severity_high_failures``)
    and by breadth (distinct users tried, or distinct sources of a distributed
    attack, reaching ``severity_medium_breadth``/``severity_high_breadth``), and to
    ``high`` when a login from the attacking key succeeded during the campaign.
    """
    base = SEVERITIES.index(rule(kind).severity)
    if base == len(SEVERITIES) - 1:
        return SEVERITIES[base]
    level = base
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


__all__ = ["DetectConfig", "DetectorStats", "severity"]
