"""Events as the parsers hand them over, and helpers to run a detector over them."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc.detect import Detector
from soc.events import (
    AUTH_FAILURE,
    AUTH_SUCCESS,
    FAILURE,
    FIREWALL_DROP,
    INVALID_USER,
    PREAUTH,
    SUCCESS,
    UNKNOWN,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    Event,
    Incident,
)
from soc.parse import ParseConfig, iter_parse_file
from soc.parse.base import Skip

T0 = datetime(2025, 11, 21, 10, 0, 0, tzinfo=UTC).timestamp()
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def failure(
    t: float, ip: str, user: str | None = "root", *, count: int = 1, invalid: bool = False
) -> Event:
    """``Failed password for [invalid user] U from IP``."""
    kind = INVALID_USER if invalid else AUTH_FAILURE
    who = f"invalid user {user}" if invalid else user
    return Event(
        t,
        kind,
        FAILURE,
        "ssh_login",
        source_ip=ip,
        user=user,
        process_name="sshd",
        count=count,
        reason="failed password",
        dataset="sshd",
        raw=f"{stamp(t)} web01 sshd[1]: Failed password for {who} from {ip} port 4000 ssh2",
    )


def pam_echo(t: float, ip: str, user: str = "root") -> Event:
    """The PAM line sshd's PAM stack writes next to a failed password."""
    return Event(
        t,
        AUTH_FAILURE,
        FAILURE,
        "pam_auth",
        source_ip=ip,
        user=user,
        process_name="sshd",
        reason="pam_unix authentication failure (sshd:auth)",
        dataset="pam",
        raw=f"{stamp(t)} web01 sshd[1]: pam_unix(sshd:auth): authentication failure; rhost={ip}",
    )


def announce(t: float, ip: str, user: str) -> Event:
    """``Invalid user U from IP`` (an announcement, not an attempt)."""
    return Event(
        t,
        INVALID_USER,
        FAILURE,
        "ssh_login",
        source_ip=ip,
        user=user,
        process_name="sshd",
        reason="invalid user",
        dataset="sshd",
        raw=f"{stamp(t)} web01 sshd[1]: Invalid user {user} from {ip} port 4000",
    )


def success(t: float, ip: str, user: str = "deploy") -> Event:
    """``Accepted password for U from IP``."""
    return Event(
        t,
        AUTH_SUCCESS,
        SUCCESS,
        "ssh_login",
        source_ip=ip,
        user=user,
        process_name="sshd",
        reason="accepted password",
        dataset="sshd",
        raw=f"{stamp(t)} web01 sshd[1]: Accepted password for {user} from {ip} port 4000 ssh2",
    )


def closed(t: float, ip: str) -> Event:
    """A connection closed before authentication (outcome unknown)."""
    return Event(
        t,
        PREAUTH,
        UNKNOWN,
        "ssh_connection",
        source_ip=ip,
        process_name="sshd",
        dataset="sshd",
        raw=f"{stamp(t)} web01 sshd[1]: Connection closed by {ip} port 4000 [preauth]",
    )


def web(t: float, ip: str, path: str, status: int, user: str | None = None) -> Event:
    """An access-log line (401 is an authentication failure, >= 400 a failure)."""
    kind = WEB_AUTH_FAILURE if status == 401 else WEB_REQUEST
    return Event(
        t,
        kind,
        FAILURE if status >= 400 else SUCCESS,
        "http_request",
        source_ip=ip,
        user=user,
        url_path=path,
        http_status=status,
        dataset="web.access",
        raw=f'{ip} - {user or "-"} [..] "GET {path} HTTP/1.1" {status} 153',
    )


def drop(t: float, ip: str, port: int) -> Event:
    """A firewall drop."""
    return Event(
        t,
        FIREWALL_DROP,
        SUCCESS,
        "firewall_drop",
        source_ip=ip,
        destination_port=port,
        dataset="firewall",
        raw=f"{stamp(t)} web01 kernel: [UFW BLOCK] SRC={ip} DPT={port}",
    )


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%b %d %H:%M:%S")


def iso_to_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_events(path: Path, fmt: str) -> tuple[list[Event], list[tuple[int, Skip]]]:
    """The events of a log file (year 2025, UTC), and the lines no parser understood."""
    config = ParseConfig(format=fmt, timezone="UTC", year=2025)
    events: list[Event] = []
    unparsed: list[tuple[int, Skip]] = []
    for line_no, result in iter_parse_file(path, config):
        if isinstance(result, Event):
            events.append(result)
        elif not result.recognized:
            unparsed.append((line_no, result))
    return events, unparsed


def final(incidents: Iterable[Incident]) -> dict[str, Incident]:
    """The last version of each incident, by detector key."""
    out: dict[str, Incident] = {}
    for incident in incidents:
        out[incident.detector_key] = incident
    return out


def run_batches(
    detector: Detector, batches: Iterable[Sequence[Event]], *, close_quiet: bool = False
) -> dict[str, Incident]:
    """Every batch through ``detector``, then its flush: the final incidents."""
    seen: list[Incident] = []
    for batch in batches:
        seen.extend(detector.process(batch))
        if close_quiet and detector.watermark is not None:
            seen.extend(detector.close_quiet(detector.watermark))
    seen.extend(detector.flush())
    return final(seen)


def random_batches(events: Sequence[Event], seed: int, *, most: int = 50) -> list[list[Event]]:
    """``events`` cut at random boundaries (empty batches included)."""
    rng = random.Random(seed)
    out: list[list[Event]] = []
    i = 0
    while i < len(events):
        n = rng.choice((0, 1, 1, 2, 3, rng.randint(1, most)))
        out.append(list(events[i : i + n]))
        i += n
    return out


def comparable(incident: Incident) -> dict[str, Any]:
    """An incident as plain data (what the determinism tests compare)."""
    return {name: getattr(incident, name) for name in incident.__dataclass_fields__}
