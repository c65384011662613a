"""What a response is made of: the ``[respond]`` settings, commands, planned steps, outcomes.

A playbook run is planned first (:class:`Plan`: every step with the exact argv
or request it would send, its mode and TTL, or why it is refused) and only then
executed, so that the analyst confirms exactly what runs. Everything here is
data; :mod:`soc.respond.responder` plans and executes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from soc.errors import ConfigError, SocError
from soc.events import SEVERITIES

Mode = Literal["dry_run", "enforce"]
DRY_RUN: Final = "dry_run"
ENFORCE: Final = "enforce"
MODES: Final = (DRY_RUN, ENFORCE)

#: Step results, as the audit log records them.
DRY_RUN_RESULT: Final = "dry_run"  # planned, shown, nothing run
OK: Final = "ok"
FAILED: Final = "failed"
REFUSED: Final = "refused"  # a check said no (allow-list, validation, rate limit)
UNCHANGED: Final = "unchanged"  # already in force (blocking twice adds nothing)
RESULTS: Final = (DRY_RUN_RESULT, OK, FAILED, REFUSED, UNCHANGED)

FIREWALLS: Final = ("nftables", "iptables", "ufw", "fail2ban")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Names that reach an argv: ``\Z``, since ``$`` would let a trailing newline through.
_NFT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}\Z")
_IPSET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,25}\Z")
_JAIL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+")


def _is_http_url(url: str) -> bool:
    """An http(s) URL with a host, a valid port, and no spaces or control characters.

    Refused when the settings load rather than in the middle of a run: a space
    or control character (``http.client`` raises on it) and a broken host or
    port (``urlsplit`` raises on it).
    """
    if not _HTTP_URL.match(url) or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError when it is not a number or out of range
    except ValueError:
        return False
    return bool(parts.hostname)


class RespondError(SocError):
    """A playbook or a response setting cannot be used (it names which and why)."""


def parse_duration(value: object, where: str = "ttl") -> int:
    """Whole seconds from ``"90s"``, ``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` or a number."""
    if isinstance(value, bool):
        raise ConfigError(f"not a duration: {value!r}", where=where)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ConfigError(f"not a duration (say 90s, 30m, 1h, 7d): {value!r}", where=where)
    if not math.isfinite(seconds) or seconds < 1:
        raise ConfigError(f"must be at least one second: {value!r}", where=where)
    return int(seconds)


def format_duration(seconds: float) -> str:
    """``3600`` → ``1h``; ``5400`` → ``1h 30m``; ``42`` → ``42s``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


@dataclass(slots=True)
class RespondConfig:
    """One-click response: where playbooks live, how they may act, and their limits.

    ``mode``: ``dry_run`` (default: every step shows the argv or request it would
    send and runs nothing) or ``enforce``. ``modes`` overrides it per firewall
    backend or action name (``{ nftables = "enforce", disable_user = "dry_run" }``).
    ``firewall``: the backend ``block_ip`` uses (``nftables``, ``iptables`` for
    ipset + iptables, ``ufw``, ``fail2ban``); ``docker_user`` also drops blocked
    sources in Docker's ``DOCKER-USER`` chain (iptables; nftables' forward hook
    covers containers already). ``command_prefix`` goes before every command
    (``["sudo", "-n"]``; ``["ip", "netns", "exec", "lab"]``).
    ``default_ttl``/``max_ttl``: a block's lifetime when a playbook does not say,
    and the most any may ask. ``ipv6_prefix``: IPv6 attackers are blocked as
    their network of this many bits (64: the usual customer allocation).
    ``max_blocks_per_hour``: new blocks refused past it. ``allow_list``: addresses
    and networks never blocked, on top of ``[detect] allow_list``, this machine's
    own addresses, loopback and the analyst's own address. ``protected_users``:
    never locked. ``notify_url``/``ticket_url``: webhooks (``notify_format``:
    ``slack``, ``discord`` or ``json``); ``console_url``: the command center's
    address, linked from them. ``auto``: playbooks that run on their own
    (:mod:`soc.respond.auto`) against an open incident whose rule recommends
    them, once the incident reaches ``auto_min_severity``; they ask for
    enforcement, so ``mode``/``modes`` decide whether they only show their argv.
    """

    mode: str = DRY_RUN
    modes: dict[str, str] = field(default_factory=dict)
    playbooks_dir: str = "playbooks"
    firewall: str = "nftables"
    command_prefix: list[str] = field(default_factory=list)
    command_timeout: float = 30.0
    nft_table: str = "soc_response"
    nft_priority: int = -10
    ipset_name: str = "soc-block"
    docker_user: bool = False
    fail2ban_jail: str = "sshd"
    default_ttl: str = "1h"
    max_ttl: str = "30d"
    ipv6_prefix: int = 64
    max_blocks_per_hour: int = 100
    max_targets: int = 50
    allow_list: list[str] = field(default_factory=list)
    protected_users: list[str] = field(default_factory=lambda: ["root"])
    expiry_interval: float = 5.0
    notify_url: str = ""
    notify_format: str = "json"
    ticket_url: str = ""
    webhook_timeout: float = 10.0
    console_url: str = ""
    auto: list[str] = field(default_factory=list)
    auto_min_severity: str = "high"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"must be 'dry_run' or 'enforce', got {self.mode!r}", where="mode")
        for name, mode in self.modes.items():
            if mode not in MODES:
                raise ConfigError(
                    f"must be 'dry_run' or 'enforce', got {mode!r}", where=f"modes.{name}"
                )
        if self.firewall not in FIREWALLS:
            raise ConfigError(f"must be one of {', '.join(FIREWALLS)}", where="firewall")
        if not _NFT_NAME.match(self.nft_table):
            raise ConfigError("letters, digits and _, starting with a letter", where="nft_table")
        if not _IPSET_NAME.match(self.ipset_name):
            raise ConfigError("letters, digits, _ and -, at most 26", where="ipset_name")
        if not _JAIL.match(self.fail2ban_jail):
            raise ConfigError("not a fail2ban jail name", where="fail2ban_jail")
        if not all(isinstance(a, str) and a and not a.startswith(" ") for a in self.command_prefix):
            raise ConfigError("a list of non-empty strings", where="command_prefix")
        if self.notify_format not in ("slack", "discord", "json"):
            raise ConfigError("must be 'slack', 'discord' or 'json'", where="notify_format")
        if not 1 <= self.ipv6_prefix <= 128:
            raise ConfigError("must be between 1 and 128", where="ipv6_prefix")
        for name in ("max_blocks_per_hour", "max_targets"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", where=name)
        for name in ("command_timeout", "expiry_interval", "webhook_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError("must be more than 0", where=name)
        if parse_duration(self.default_ttl, "default_ttl") > self.max_ttl_seconds:
            raise ConfigError("longer than max_ttl", where="default_ttl")
        if self.auto_min_severity not in SEVERITIES:
            raise ConfigError(f"must be one of {', '.join(SEVERITIES)}", where="auto_min_severity")
        if not all(isinstance(name, str) and name for name in self.auto):
            raise ConfigError("a list of playbook names", where="auto")
        for name in ("notify_url", "ticket_url", "console_url"):
            url = getattr(self, name)
            if url and not _is_http_url(url):
                raise ConfigError("must be an http:// or https:// URL", where=name)

    @property
    def max_ttl_seconds(self) -> int:
        return parse_duration(self.max_ttl, "max_ttl")

    @property
    def default_ttl_seconds(self) -> int:
        return parse_duration(self.default_ttl, "default_ttl")

    def mode_for(self, name: str) -> Mode:
        """The configured mode of a firewall backend or an action."""
        mode = self.modes.get(name, self.mode)
        return ENFORCE if mode == ENFORCE else DRY_RUN

    @property
    def enforces_anything(self) -> bool:
        return self.mode == ENFORCE or ENFORCE in self.modes.values()


@dataclass(frozen=True, slots=True)
class Command:
    """One program run: an argv list (never a shell), optionally skipped.

    ``unless``: a check run first; when it exits 0 the command is not needed
    (an iptables rule already in place). ``ok_exit``: exit statuses that mean success.
    """

    argv: tuple[str, ...]
    unless: tuple[str, ...] | None = None
    ok_exit: tuple[int, ...] = (0,)

    def shown(self) -> list[str]:
        """The argv as a list (what dry-run shows and the audit log keeps)."""
        return list(self.argv)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP POST a step sends (a webhook): ``shown_url`` has its secret parts masked."""

    url: str
    shown_url: str
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    def shown(self) -> list[str]:
        return ["POST", self.shown_url]


@dataclass(slots=True)
class Outcome:
    """What running a step gave: success, the last exit status (commands), and an excerpt."""

    ok: bool
    exit_status: int | None = None
    output: str = ""


@dataclass(slots=True)
class Step:
    """One planned step: an action on one target, with what exactly it would do.

    A step does one of: ``commands`` (argv lists), ``request`` (a webhook), or
    ``local`` (a change to our own store, described by ``describe``). ``refused``
    says why it will not run; ``unchanged`` that it is already in force.
    ``after`` records its effect once it succeeded in enforce mode (a block).
    """

    index: int
    action: str
    target: str = ""
    backend: str = ""
    mode: Mode = DRY_RUN
    ttl: int | None = None
    commands: list[Command] = field(default_factory=list)
    request: Request | None = None
    local: Callable[[], str] | None = None
    describe: str = ""
    refused: str | None = None
    unchanged: str | None = None
    after: Callable[[Outcome], None] | None = None

    def argv(self) -> list[list[str]]:
        """Every argv this step runs (or, for a webhook, ``["POST", url]``), in order."""
        if self.request is not None:
            return [self.request.shown()]
        out: list[list[str]] = []
        for command in self.commands:
            if command.unless is not None:
                out.append(list(command.unless))
            out.append(command.shown())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.index,
            "action": self.action,
            "target": self.target,
            "backend": self.backend,
            "mode": self.mode,
            "ttl_seconds": self.ttl,
            "argv": self.argv(),
            "body": self.request.body if self.request is not None else None,
            "describe": self.describe,
            "refused": self.refused,
            "unchanged": self.unchanged,
        }


@dataclass(slots=True)
class Plan:
    """A playbook against one incident, planned: what the analyst confirms."""

    incident_id: int
    playbook: str
    actor: str
    client: str
    requested: Mode
    steps: list[Step]
    planned_at: float

    @property
    def mode(self) -> Mode:
        """``enforce`` if any step would enforce, else ``dry_run``."""
        return ENFORCE if any(s.mode == ENFORCE for s in self.steps) else DRY_RUN

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "playbook": self.playbook,
            "actor": self.actor,
            "mode": self.mode,
            "steps": [s.as_dict() for s in self.steps],
        }


@dataclass(slots=True)
class StepResult:
    """How one step ended, as the audit log records it."""

    step: Step
    result: str
    exit_status: int | None = None
    output: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.step.as_dict(),
            "result": self.result,
            "exit_status": self.exit_status,
            "output": self.output,
        }


@dataclass(slots=True)
class RunResult:
    """A playbook run: its id in the store, its overall status and every step's result."""

    run_id: int
    plan: Plan
    status: str
    steps: list[StepResult]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "incident_id": self.plan.incident_id,
            "playbook": self.plan.playbook,
            "actor": self.plan.actor,
            "mode": self.plan.mode,
            "status": self.status,
            "steps": [s.as_dict() for s in self.steps],
        }


__all__ = [
    "DRY_RUN",
    "ENFORCE",
    "FAILED",
    "FIREWALLS",
    "MODES",
    "OK",
    "REFUSED",
    "RESULTS",
    "UNCHANGED",
    "Command",
    "Mode",
    "Outcome",
    "Plan",
    "Request",
    "RespondConfig",
    "RespondError",
    "RunResult",
    "Step",
    "StepResult",
    "format_duration",
    "parse_duration",
]
