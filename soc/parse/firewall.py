"""Netfilter packet logs (ufw, iptables ``LOG``, nftables ``log``) from the kernel.

``kernel: [12.345] [UFW BLOCK] IN=eth0 OUT= MAC=… SRC=203.0.113.7 DST=10.0.0.1 LEN=60 …
PROTO=TCP SPT=51234 DPT=22 …`` is a ``firewall_drop`` with source and destination
address and port and ``network.transport``. Whatever comes before ``IN=`` is the rule's
log prefix: ``[UFW BLOCK]`` and ``[UFW LIMIT BLOCK]`` are drops, and so is any
administrator-chosen iptables/nftables prefix, unless it says the packet was let
through (``[UFW ALLOW]``, ``[UFW AUDIT]``, or a prefix containing ``ACCEPT``/``ALLOW``),
which is recognised and skipped. Other kernel messages are skipped as not security
relevant.

``event.outcome`` is ``success``: ECS records a firewall's block as a successful
action of the firewall (the denial itself is the action, ``firewall_drop``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from soc.events import FIREWALL_DROP, SUCCESS, Event
from soc.parse.address import AddressMemo
from soc.parse.base import NOT_RELEVANT, Header, Skip

DATASET: Final = "firewall"
ACTION: Final = "firewall_drop"

PATTERNS: Final[tuple[str, ...]] = (
    "firewall.ufw",
    "firewall.netfilter",
    "firewall.allowed",
    "kernel.other",
)

# Field order is fixed by nf_log: IN OUT [MAC] SRC DST … PROTO [SPT DPT].
_PACKET_RE: Final = re.compile(
    r"(?:\[ *\d+\.\d+\] ?)?(.*?) ?\bIN=(\S*) OUT=(\S*) .*?\bSRC=(\S+) DST=(\S+) "
    r".*?\bPROTO=(\S+)(?: .*?\bSPT=(\d+) DPT=(\d+))?",
    re.DOTALL,
)
_TRANSPORTS: Final = {
    "TCP": "tcp",
    "UDP": "udp",
    "ICMP": "icmp",
    "ICMPV6": "ipv6-icmp",
    "UDPLITE": "udplite",
    "SCTP": "sctp",
    "2": "igmp",
    "47": "gre",
    "50": "esp",
    "51": "ah",
}
_LET_THROUGH: Final = ("ALLOW", "ACCEPT", "AUDIT")

Fallback = Callable[[str, Header], Event | Skip | None]


def _port(text: str | None) -> int | None:
    if text is None or len(text) > 5:
        return None
    port = int(text)
    return port if port <= 65535 else None


class FirewallMessages:
    """Parses kernel messages; ``pattern`` names what the last message matched."""

    __slots__ = ("_addresses", "_fallback", "pattern")

    def __init__(
        self, addresses: AddressMemo | None = None, *, fallback: Fallback | None = None
    ) -> None:
        self._addresses = addresses if addresses is not None else AddressMemo()
        self._fallback = fallback
        self.pattern: str | None = None

    def parse(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        """Parse one kernel (or ulogd) message."""
        if "IN=" not in message or "SRC=" not in message:
            if self._fallback is not None:
                # "message repeated N times: [ … ]" and friends.
                result = self._fallback(message, h)
                if result is not None:
                    return result
            self.pattern = "kernel.other"
            return NOT_RELEVANT
        m = _PACKET_RE.match(message)
        if m is None:
            self.pattern = "kernel.other"
            return NOT_RELEVANT
        prefix, source, destination, proto, sport, dport = m.group(1, 4, 5, 6, 7, 8)
        upper = prefix.upper()
        if any(word in upper for word in _LET_THROUGH):
            self.pattern = "firewall.allowed"
            return NOT_RELEVANT
        self.pattern = "firewall.ufw" if upper.startswith("[UFW ") else "firewall.netfilter"
        source_ip, source_name = self._addresses.split(source)
        destination_ip = self._addresses.split(destination)[0]
        label = prefix.strip("[]: ") or "netfilter"
        timestamp, hostname, program, _, line_no, raw = h
        return Event(
            timestamp,
            FIREWALL_DROP,
            SUCCESS,
            ACTION,
            source_ip,
            source_name,
            _port(sport),
            None,
            hostname,
            program,
            None,
            1,
            destination_ip,
            _port(dport),
            _TRANSPORTS.get(proto.upper(), proto.lower()),
            None,
            None,
            None,
            None,
            label,
            DATASET,
            line_no,
            raw,
        )


__all__ = ["ACTION", "DATASET", "PATTERNS", "FirewallMessages"]
