"""What the detector remembers: trackers, campaigns, distributed incidents.

Each source key has one :class:`Tracker` per family of activity; its
:class:`CampaignState` is its activity with no gap longer than ``quiet_seconds``. A
targeted user name has a :class:`UserTracker`, whose campaigns join a
:class:`Distributed` incident. Pure state: the detector updates it.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from soc.detect.sums import Tail
from soc.events import (
    ACCESS_DENIED,
    AUTH_FAILURE,
    AUTH_SUCCESS,
    FIREWALL_DROP,
    INVALID_USER,
    PREAUTH,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
)

#: Families of activity a source key is tracked for, each with its own campaigns.
AUTH, WEB, NET = 0, 1, 2
FAMILIES: Final = ("auth", "web", "net")
USERS_FAMILY: Final = "users"  # distributed attacks, tracked per targeted user
FAMILY_OF_KIND: Final[dict[str, int]] = {
    AUTH_FAILURE: AUTH,
    INVALID_USER: AUTH,
    ACCESS_DENIED: AUTH,
    PREAUTH: AUTH,
    AUTH_SUCCESS: AUTH,
    WEB_REQUEST: WEB,
    WEB_AUTH_FAILURE: WEB,
    FIREWALL_DROP: NET,
}
KEY_IP, KEY_IPV6_NET, KEY_HOST, KEY_USER = "ip", "ipv6_64", "host", "user"
_KEY_TYPES = (KEY_IP, KEY_IPV6_NET, KEY_HOST)


# --- campaign state ------------------------------------------------------------------------
class Distinct:
    """Distinct values in first-seen order, tracked up to a cap; the rest counted."""

    __slots__ = ("overflow", "values")

    def __init__(self) -> None:
        self.values: dict[Any, int | None] = {}
        self.overflow = 0

    def add(self, value: Any, cap: int, at: int | None = None) -> bool:
        """Track ``value`` (first seen at global position ``at``); True when new and tracked."""
        values = self.values
        if value in values:
            return False
        if len(values) >= cap:
            self.overflow += 1
            return False
        values[value] = at
        return True

    def first(self, n: int) -> list[Any]:
        return list(itertools.islice(self.values, n))


class Evidence:
    """Raw lines of a campaign: the first ``half`` and the latest ``size - half``."""

    __slots__ = ("head", "half", "tail")

    def __init__(self, size: int) -> None:
        self.half = size // 2
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=size - self.half)

    def extend(self, lines: Sequence[str]) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head.extend(lines[:room])
            lines = lines[room:]
        if lines and self.tail.maxlen:
            self.tail.extend(lines)

    def lines(self) -> list[str]:
        return [*self.head, *self.tail]


class CampaignState:
    """One key's (or one targeted user's) activity with no gap longer than quiet_seconds."""

    __slots__ = (
        "closed_at",
        "closed_reason",
        "detector_key",
        "events",
        "evidence",
        "failures",
        "fired",
        "first",
        "forgiven",
        "last",
        "last_t",
        "linked",
        "botnet",
        "opened_at",
        "peak",
        "horizon_peak",
        "sources",
        "start",
        "successes",
        "users",
        "values",
    )

    def __init__(self, start: float, evidence_lines: int) -> None:
        self.start = start  # the tracker's clock at the first event: fixed, names the campaign
        self.last_t = start
        self.detector_key = ""
        self.events = 0
        self.failures = 0
        self.successes = 0
        self.first = math.inf
        self.last = -math.inf
        self.peak = 0  # most failures within window_seconds
        self.horizon_peak = 0  # most failures within slow_horizon_seconds, earlier ones included
        self.users = Distinct()  # user names seen in the campaign
        self.values = Distinct()  # what the family's distinct rule counts
        self.sources = Distinct()  # source addresses (IPv6 networks, distributed attacks)
        self.evidence = Evidence(evidence_lines)
        self.fired: dict[str, float] = {}  # rule → clock time it first fired
        self.opened_at: float | None = None
        self.linked: Distributed | None = None
        self.forgiven: set[str] = set()  # names failed in it that then logged in from the key
        self.botnet = ""  # the distributed incident whose source logged in (a compromise)
        self.closed_reason: str | None = None
        self.closed_at: float | None = None


class Tracker:
    """One source key's state in one family: its clock, failure tail and campaign."""

    __slots__ = (
        "campaign",
        "clock",
        "due",
        "family",
        "key",
        "key_type",
        "logged_in",
        "names",
        "stream",
        "tail",
    )

    def __init__(self, family: int, key: str, key_type: str) -> None:
        self.family = family
        self.key = key
        self.key_type = key_type
        self.clock = math.nan
        self.stream = ""  # the stream whose event time it goes quiet in (its latest)
        self.due: int | None = None  # its entry in the detector's schedule, if any
        # The latest failures' clock times, weights and user names (what sliding counts
        # look back on), and the names it failed for lately (soc.detect.logins).
        self.tail: Tail | None = None
        self.names: OrderedDict[str, float] | None = None
        self.logged_in: OrderedDict[str, float] | None = None  # user → its latest login
        self.campaign: CampaignState | None = None


class UserTracker:
    """One targeted user name's state for distributed detection."""

    __slots__ = ("campaign", "clock", "due", "stream", "user")

    def __init__(self, user: str) -> None:
        self.user = user
        self.clock = math.nan
        self.stream = ""
        self.due: int | None = None  # its entry in the detector's schedule, if any
        self.campaign: CampaignState | None = None


class Distributed:
    """A distributed incident: the campaigns of the users the same sources attack."""

    __slots__ = (
        "closed_at",
        "closed_reason",
        "detector_key",
        "members",
        "members_overflow",
        "opened_at",
        "opened_position",
    )

    def __init__(self, detector_key: str, opened_at: float, opened_position: int) -> None:
        self.detector_key = detector_key
        self.opened_at = opened_at
        self.opened_position = opened_position  # global arrival position it opened at
        self.members: list[CampaignState] = []  # up to sample_size targeted users' campaigns
        self.members_overflow = 0  # campaigns that joined past that (not in the facts)
        self.closed_reason: str | None = None
        self.closed_at: float | None = None

    @property
    def last_t(self) -> float:
        return max(m.last_t for m in self.members)


class Times(NamedTuple):
    """When an incident's campaign started, was seen, opened and closed."""

    start: float
    first: float
    last: float
    opened_at: float | None
    closed_reason: str | None
    closed_at: float | None


__all__ = [
    "AUTH",
    "FAMILIES",
    "FAMILY_OF_KIND",
    "KEY_HOST",
    "KEY_IP",
    "KEY_IPV6_NET",
    "KEY_USER",
    "NET",
    "USERS_FAMILY",
    "WEB",
    "CampaignState",
    "Distinct",
    "Distributed",
    "Evidence",
    "Times",
    "Tracker",
    "UserTracker",
]
