"""What windowing is configured with, and what it counted."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from soc.errors import ConfigError

#: Key types of window rows.
KEY_IP = "ip"  # one IP address
KEY_HOST = "host"  # a source the log names by host name, not by address
KEY_IPV6_NET = "ipv6_64"  # the IPv6 network of ``ipv6_prefix`` bits an address belongs to
KEY_USER = "user"  # a targeted user name (attacker-controlled text)
#: In the order rows are handed over within a window (alphabetical, so sortable by name).
KEY_TYPES = (KEY_HOST, KEY_IP, KEY_IPV6_NET, KEY_USER)


@dataclass(slots=True)
class WindowConfig:
    """How events are grouped into per-key windows.

    ``seconds``: window length; windows are aligned on multiples of it since the
    epoch (UTC), so every key's windows share boundaries. ``ipv6_prefix``: IPv6
    addresses are also keyed by their network of this many bits (64: the /64 a
    single host or customer usually gets; 0 disables network keys). ``user_keys``:
    also key by targeted user name (for distributed attacks).

    ``late_seconds``: how long a window stays open after its end (in event time)
    for lines that arrive out of order. A later line is *late*: it is counted in
    ``WindowerStats.late`` and accounted in the oldest window still open for its
    key (its row's ``late`` says how many), never dropped.

    ``max_keys``: keys with open windows tracked at once; past it the least
    recently seen key's windows are handed over early (``partial``) and counted
    in ``evicted_keys``. ``max_distinct``: distinct values (users, ports, paths,
    sources) tracked per window; more are counted in ``distinct_overflow``.
    ``sample_*``: how many of those each row carries. ``max_value_length``:
    longer user names and paths are cut (attacker-controlled text).
    """

    seconds: float = 15.0
    ipv6_prefix: int = 64
    user_keys: bool = True
    late_seconds: float = 30.0
    max_keys: int = 100_000
    max_distinct: int = 1_000
    sample_users: int = 10
    sample_ports: int = 20
    sample_paths: int = 10
    sample_sources: int = 10
    max_value_length: int = 256

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ConfigError("must be more than 0", where="seconds")
        if not 0 <= self.ipv6_prefix <= 128:
            raise ConfigError("must be between 0 (off) and 128", where="ipv6_prefix")
        if not self.late_seconds >= 0:
            raise ConfigError("must not be negative", where="late_seconds")
        for name in ("max_keys", "max_distinct", "max_value_length"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", where=name)
        for name in ("sample_users", "sample_ports", "sample_paths", "sample_sources"):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError("must not be negative", where=name)
            if value > self.max_distinct:
                raise ConfigError("must not exceed max_distinct", where=name)


@dataclass(slots=True)
class WindowerStats:
    """What the windower did with every event it was given; nothing is dropped silently.

    ``unkeyed``: events with no source address (local PAM, cron): not windowed.
    ``untimed``: events without a timestamp, windowed at the current event time;
    ``no_time``: such events before any event time was known: not windowed.
    ``late``: events whose window had closed, accounted in a later window.
    ``evicted_keys`` / ``partial_windows``: keys evicted at ``max_keys`` and the
    windows handed over early because of it. ``distinct_overflow``: distinct
    values not tracked past ``max_distinct``. ``values_cut``: user names and paths
    cut to ``max_value_length``.
    """

    events: int = 0
    windowed: int = 0
    unkeyed: int = 0
    untimed: int = 0
    no_time: int = 0
    late: int = 0
    windows_emitted: int = 0
    partial_windows: int = 0
    evicted_keys: int = 0
    distinct_overflow: int = 0
    values_cut: int = 0
    open_windows: int = 0
    open_keys: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as plain data."""
        return asdict(self)
