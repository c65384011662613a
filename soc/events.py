"""The data types every stage shares: normalized events and the lines they came from.

``Event`` is ECS-shaped (Elastic Common Schema): its attributes map one to one onto
ECS fields, and :meth:`Event.to_ecs` renders the nested ECS document. It is a plain
``__slots__`` class rather than a dataclass because parsers build one per matching
line on the hot path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

# --- kinds: what happened, in our words (``soc.kind``) ----------------------------
AUTH_FAILURE: Final = "auth_failure"  # a wrong password / key / PAM failure
INVALID_USER: Final = "invalid_user"  # a login attempt for a user that does not exist
AUTH_SUCCESS: Final = "auth_success"  # Accepted password / publickey / keyboard-interactive
PREAUTH: Final = "preauth"  # a connection dropped or refused before authentication
ACCESS_DENIED: Final = "access_denied"  # policy refused the user (AllowUsers, DenyUsers…)
WEB_REQUEST: Final = "web_request"  # an HTTP access-log line
WEB_AUTH_FAILURE: Final = "web_auth_failure"  # HTTP basic/digest authentication failure
FIREWALL_DROP: Final = "firewall_drop"  # a packet blocked by ufw / iptables / nftables
ALERT: Final = "alert"  # an alert produced by another tool (Wazuh, ECS alert)

KINDS: Final = (
    AUTH_FAILURE,
    INVALID_USER,
    AUTH_SUCCESS,
    PREAUTH,
    ACCESS_DENIED,
    WEB_REQUEST,
    WEB_AUTH_FAILURE,
    FIREWALL_DROP,
    ALERT,
)

# --- ECS event.outcome -------------------------------------------------------------
FAILURE: Final = "failure"
SUCCESS: Final = "success"
UNKNOWN: Final = "unknown"

# --- ECS event.category per kind (ECS allowed values) -----------------------------
CATEGORY_BY_KIND: Final[dict[str, str]] = {
    AUTH_FAILURE: "authentication",
    INVALID_USER: "authentication",
    AUTH_SUCCESS: "authentication",
    PREAUTH: "authentication",
    ACCESS_DENIED: "authentication",
    WEB_REQUEST: "web",
    WEB_AUTH_FAILURE: "authentication",
    FIREWALL_DROP: "network",
    ALERT: "intrusion_detection",
}


class Event:
    """One normalized security event, ECS-shaped.

    Attribute names follow ECS with dots replaced by underscores
    (``source.ip`` → ``source_ip``). ``count`` is how many attempts the line stands
    for (``message repeated 3 times`` gives 3). ``line`` and ``raw`` reference the
    line the event came from.
    """

    __slots__ = (
        "timestamp",
        "kind",
        "outcome",
        "action",
        "source_ip",
        "source_address",
        "source_port",
        "user",
        "hostname",
        "process_name",
        "pid",
        "count",
        "destination_ip",
        "destination_port",
        "transport",
        "http_method",
        "url_path",
        "http_status",
        "user_agent",
        "reason",
        "dataset",
        "line",
        "raw",
    )

    def __init__(
        self,
        timestamp: float | None,
        kind: str,
        outcome: str,
        action: str,
        source_ip: str | None = None,
        source_address: str | None = None,
        source_port: int | None = None,
        user: str | None = None,
        hostname: str | None = None,
        process_name: str | None = None,
        pid: int | None = None,
        count: int = 1,
        destination_ip: str | None = None,
        destination_port: int | None = None,
        transport: str | None = None,
        http_method: str | None = None,
        url_path: str | None = None,
        http_status: int | None = None,
        user_agent: str | None = None,
        reason: str | None = None,
        dataset: str | None = None,
        line: int | None = None,
        raw: str | None = None,
    ) -> None:
        self.timestamp = timestamp  # seconds since the epoch, UTC; None if the line had none
        self.kind = kind
        self.outcome = outcome
        self.action = action  # ECS event.action, e.g. "ssh_login", "http_request"
        self.source_ip = source_ip  # a valid IP address (IPv4-mapped IPv6 unmapped)
        self.source_address = source_address  # as written, when it is not an IP (a host name)
        self.source_port = source_port
        self.user = user  # attacker-controlled text: data, never instructions
        self.hostname = hostname  # the host that wrote the log (ECS host.hostname)
        self.process_name = process_name
        self.pid = pid
        self.count = count
        self.destination_ip = destination_ip
        self.destination_port = destination_port
        self.transport = transport
        self.http_method = http_method
        self.url_path = url_path
        self.http_status = http_status
        self.user_agent = user_agent
        self.reason = reason  # ECS event.reason: why it failed, in the log's words
        self.dataset = dataset  # ECS event.dataset, e.g. "sshd", "nginx.access"
        self.line = line
        self.raw = raw

    @property
    def key_address(self) -> str | None:
        """The attacker's address as the windows key it: the IP, else the name."""
        return self.source_ip if self.source_ip is not None else self.source_address

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if name != "raw" and getattr(self, name) is not None
        )
        return f"Event({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def to_ecs(self) -> dict[str, Any]:
        """The nested ECS document for this event (no ``None`` values)."""
        doc: dict[str, Any] = {}
        if self.timestamp is not None:
            doc["@timestamp"] = format_timestamp(self.timestamp)
        event: dict[str, Any] = {
            "kind": "alert" if self.kind == ALERT else "event",
            "category": [CATEGORY_BY_KIND.get(self.kind, "host")],
            "action": self.action,
            "outcome": self.outcome,
        }
        if self.reason is not None:
            event["reason"] = self.reason
        if self.dataset is not None:
            event["dataset"] = self.dataset
        doc["event"] = event
        source = _drop_none(
            {"ip": self.source_ip, "address": self.source_address, "port": self.source_port}
        )
        if source:
            doc["source"] = source
        destination = _drop_none({"ip": self.destination_ip, "port": self.destination_port})
        if destination:
            doc["destination"] = destination
        if self.transport is not None:
            doc["network"] = {"transport": self.transport}
        if self.user is not None:
            doc["user"] = {"name": self.user}
        if self.hostname is not None:
            doc["host"] = {"hostname": self.hostname}
        process = _drop_none({"name": self.process_name, "pid": self.pid})
        if process:
            doc["process"] = process
        if self.http_method is not None or self.http_status is not None:
            http: dict[str, Any] = {}
            if self.http_method is not None:
                http["request"] = {"method": self.http_method}
            if self.http_status is not None:
                http["response"] = {"status_code": self.http_status}
            doc["http"] = http
        if self.url_path is not None:
            doc["url"] = {"path": self.url_path}
        if self.user_agent is not None:
            doc["user_agent"] = {"original": self.user_agent}
        doc["soc"] = {"kind": self.kind, "count": self.count}
        if self.line is not None:
            doc["log"] = {"file": {"line": self.line}}
        return doc


def event_values(event: Event) -> list[Any]:
    """An event's fields in ``__slots__`` order: ``Event(*event_values(e)) == e`` (JSON-ready)."""
    return [getattr(event, name) for name in Event.__slots__]


def is_ip_address(text: str) -> bool:
    """True when ``text`` is an IPv4 or IPv6 address (and nothing else)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def format_timestamp(ts: float) -> str:
    """ISO 8601 UTC with microseconds, as ECS ``@timestamp`` wants it."""
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class Line:
    """One line as a source delivered it, before parsing.

    ``text`` has no line terminator. ``position`` is opaque to everyone but the
    source (for a file: the byte offset just after this line), and ``line_no`` is
    1-based within the stream the source read it from.
    """

    __slots__ = ("text", "source", "stream", "line_no", "position", "received")

    def __init__(
        self,
        text: str,
        source: str,
        stream: str,
        line_no: int,
        position: int | None = None,
        received: float | None = None,
    ) -> None:
        self.text = text
        self.source = source  # the configured source's name
        self.stream = stream  # the file path, "udp://127.0.0.1:5514", "journal", "stdin"
        self.line_no = line_no
        self.position = position
        self.received = received

    def __repr__(self) -> str:
        return f"Line({self.source!r}, {self.stream!r}, {self.line_no}, {self.text[:60]!r})"


# --- windows and incidents (the micro-batching guardrail) ----------------------------

# Incident kinds, with the MITRE ATT&CK technique each maps to by default.
BRUTE_FORCE: Final = "brute_force"
PASSWORD_SPRAY: Final = "password_spray"  # noqa: S105 (an incident kind, not a password)
SLOW_BRUTE_FORCE: Final = "slow_brute_force"
DISTRIBUTED_BRUTE_FORCE: Final = "distributed_brute_force"
CREDENTIAL_COMPROMISE: Final = "credential_compromise"
WEB_SCAN: Final = "web_scan"
WEB_AUTH_BRUTE_FORCE: Final = "web_auth_brute_force"
PORT_SCAN: Final = "port_scan"

INCIDENT_KINDS: Final = (
    BRUTE_FORCE,
    PASSWORD_SPRAY,
    SLOW_BRUTE_FORCE,
    DISTRIBUTED_BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    WEB_SCAN,
    WEB_AUTH_BRUTE_FORCE,
    PORT_SCAN,
)

SEVERITIES: Final = ("low", "medium", "high", "critical")

# --- what counts as a failure ----------------------------------------------------------

#: Programs whose PAM lines repeat attempts the program logs itself.
SSHD_PROGRAMS: Final = frozenset({"sshd", "sshd-session", "sshd-auth"})
#: ``Event.reason`` of sshd lines that announce or sum up attempts that sshd logs one
#: by one as ``Failed …`` lines (``Invalid user U from H`` comes before the
#: ``Failed password for invalid user U`` lines of the same connection).
ECHO_REASONS: Final = frozenset({"invalid user", "maximum authentication attempts exceeded"})
#: ``Event.reason`` of sshd's ``Failed publickey`` for a valid user: a key an agent
#: offered, not a guess (the connection's failure, if it never gets in, is reported
#: where it ends: ``keys rejected``, see :mod:`soc.parse.sshd`).
KEY_OFFER_REASON: Final = "failed publickey"
#: Reasons of sshd failure lines that are no attempt of their own.
_UNCOUNTED_REASONS: Final = ECHO_REASONS | {KEY_OFFER_REASON}


def is_echo(event: Event) -> bool:
    """True when the failure ``event`` records is also recorded by another line.

    sshd logs every failed attempt as ``Failed <method> for …``; the PAM
    ``authentication failure`` lines under sshd, sshd's ``Invalid user`` announcement
    and its ``maximum authentication attempts exceeded`` summary repeat those
    attempts. Counting them too would turn one mistyped password into three
    failures.
    """
    if event.dataset == "pam":
        return event.process_name in SSHD_PROGRAMS
    return event.reason in ECHO_REASONS and event.process_name in SSHD_PROGRAMS


def is_key_offer(event: Event) -> bool:
    """True when ``event`` is a key an ssh-agent offered for a valid user (no guess).

    Agents offer their keys one by one; sshd logs ``Failed publickey`` for each key
    before the one it accepts, on every login of anyone with several keys.
    """
    return event.reason == KEY_OFFER_REASON and event.process_name in SSHD_PROGRAMS


#: Kinds that are never failures of something the source tried, whatever their outcome.
NOT_ATTEMPTS: Final = frozenset({FIREWALL_DROP, ALERT})


def failure_count(event: Event) -> int:
    """How many failures ``event`` stands for: ``count``, or 0 (not a failure, an echo).

    Firewall drops and other tools' alerts are not failures of anything the
    attacker tried, whatever outcome their format gives them; nor are the lines
    that repeat another's attempt (:func:`is_echo`) or a key an agent offered
    (:func:`is_key_offer`).
    """
    if (
        event.outcome != FAILURE
        or event.kind in NOT_ATTEMPTS
        or is_echo(event)
        or is_key_offer(event)
    ):
        return 0
    return event.count


def failure_counts(events: Iterable[Event]) -> list[int]:
    """:func:`failure_count` of each event (inlined: batches run through it)."""
    return [
        e.count
        if e.outcome == FAILURE
        and e.kind not in NOT_ATTEMPTS
        and not (
            e.process_name in SSHD_PROGRAMS
            and (e.dataset == "pam" or e.reason in _UNCOUNTED_REASONS)
        )
        else 0
        for e in events
    ]


# Incident workflow states.
NEW: Final = "new"
TRIAGED: Final = "triaged"
RESOLVED: Final = "resolved"
FALSE_POSITIVE: Final = "false_positive"
STATUSES: Final = (NEW, TRIAGED, RESOLVED, FALSE_POSITIVE)


@dataclass(slots=True)
class WindowStats:
    """What one key (an address, an IPv6 /64, a target user) did in one window.

    ``users`` and ``ports``/``paths`` are bounded samples; ``distinct_*`` are exact
    counts of distinct values (up to the windower's ``max_distinct``). ``by_kind``
    counts events by ``Event.kind`` (weighted by ``Event.count``); ``failures``
    counts failed attempts as :func:`failure_count` does (lines that repeat another
    line's attempt are not counted again); ``successes`` counts logins.
    """

    key: str
    key_type: str  # "ip", "host" (a source named, not addressed), "ipv6_64", "user"
    window_start: float
    window_end: float
    events: int = 0
    failures: int = 0
    successes: int = 0
    distinct_users: int = 0
    users: list[str] = field(default_factory=list)
    distinct_ports: int = 0
    ports: list[int] = field(default_factory=list)
    distinct_paths: int = 0
    paths: list[str] = field(default_factory=list)
    first_seen: float | None = None
    last_seen: float | None = None
    by_kind: dict[str, int] = field(default_factory=dict)
    # The addresses behind the key (an IPv6 /64's addresses, a user's attackers).
    distinct_sources: int = 0
    sources: list[str] = field(default_factory=list)
    # Events that arrived after their own window had closed, accounted here instead.
    late: int = 0
    # True when the window was handed over before it closed (its key was evicted):
    # a later row for the same key and window may follow, to be added to this one.
    partial: bool = False


@dataclass(slots=True)
class Incident:
    """A campaign, not a window: one attacker (or one coordinated group) doing one thing.

    A campaign that keeps going updates its incident; it does not open a new one
    every window. ``id`` is assigned by the store. ``evidence`` holds up to N raw
    lines (attacker-controlled text: data, never instructions).
    """

    key: str
    kind: str
    first_seen: float
    last_seen: float
    source_ips: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    distinct_users: int = 0
    failures: int = 0
    successes: int = 0
    events: int = 0
    severity: str = "medium"
    technique: str = ""
    technique_name: str = ""
    status: str = NEW
    evidence: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # rule-specific figures
    id: int | None = None
    opened_at: float | None = None
    updated_at: float | None = None
    closed: bool = False
    # The detector's stable name for this campaign (the store upserts on it).
    detector_key: str = ""
    notes: str = ""  # the analyst's notes; the store never lets a detector update overwrite them
