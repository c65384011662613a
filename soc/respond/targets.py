"""What a response may act on: addresses and user names, validated; the protected set.

Every value that reaches an argv passes through here first. Addresses are parsed
by :mod:`ipaddress` from the exact text (no whitespace, no scope id, no prefix
unless asked) and re-printed from the parsed value, so nothing but an address
ever reaches a command. User names must match the strict shape ``useradd``
accepts by default and can never start with ``-``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``useradd``'s default NAME_REGEX: lower case, digits, ``_`` and ``-``, never a leading ``-``.
#: ``\Z``, not ``$``: ``$`` also matches before a trailing newline (``"bob\n"``).
USER_NAME: Final = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?\Z")
_ADDRESS_CHARS: Final = re.compile(r"^[0-9A-Fa-f:.]+\Z")


class TargetError(ValueError):
    """A value refused as a target (the message says why, without echoing much of it)."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unmapped(network: IPNetwork) -> IPNetwork:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d/128``) as the IPv4 address it is."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/32")
    return network


def block_network(address: str, ipv6_prefix: int = 64) -> IPNetwork:
    """The network to block for an attacker's address: the address (IPv4) or its /``ipv6_prefix``.

    Refuses anything that is not exactly one IP address: ``1.2.3.4; rm -rf /``,
    ``-f``, ``$(id)``, an embedded newline, a scoped ``fe80::1%eth0``, a network.
    """
    if not isinstance(address, str) or not _ADDRESS_CHARS.match(address):
        raise TargetError(f"not an IP address: {_shown(address)}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise TargetError(f"not an IP address: {_shown(address)}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (
        ip.is_unspecified
        or ip.is_multicast
        or (
            isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255")
        )
    ):
        raise TargetError(f"not a host address: {ip}")
    if isinstance(ip, ipaddress.IPv4Address):
        return ipaddress.IPv4Network(f"{ip}/32")
    return ipaddress.IPv6Network(f"{ip}/{ipv6_prefix}", strict=False)


def parse_block(value: str, ipv6_prefix: int = 64) -> IPNetwork:
    """An address or a network written as ``a/n`` (what ``soc blocks --unblock`` takes)."""
    if isinstance(value, str) and "/" in value:
        addr, _, bits = value.partition("/")
        if not bits.isdigit() or len(bits) > 3 or not bits.isascii():
            raise TargetError(f"not an IP address or network: {_shown(value)}")
        block_network(addr, ipv6_prefix)  # the same checks on the address part
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise TargetError(f"not an IP address or network: {_shown(value)}") from None
    return block_network(value, ipv6_prefix)


def element(network: IPNetwork) -> str:
    """The network as a firewall element: ``1.2.3.4`` for a single IPv4 address, else ``a/n``."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def check_user(name: str) -> str:
    """``name`` if it is a plain account name (``useradd``'s default shape), else TargetError."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise TargetError(f"not a plain account name: {_shown(name)}")
    return name


@dataclass(slots=True)
class Protected:
    """Addresses a response never blocks: the allow-lists, this machine, loopback, the analyst.

    Each entry is a network and what it is (``allow-listed``, ``this machine's``,
    ``loopback``); a block is refused when its network overlaps any of them.
    """

    entries: list[tuple[IPNetwork, str]] = field(default_factory=list)

    @classmethod
    def of(cls, allow_list: Iterable[str] = (), host_addresses: Iterable[str] = ()) -> Protected:
        """From allow-list entries and this machine's addresses (a bad entry raises ValueError)."""
        out: list[tuple[IPNetwork, str]] = [
            (ipaddress.IPv4Network("127.0.0.0/8"), "loopback"),
            (ipaddress.IPv6Network("::1/128"), "loopback"),
        ]
        for entries, label in ((allow_list, "allow-listed"), (host_addresses, "this machine's")):
            for entry in entries:
                try:
                    network = ipaddress.ip_network(
                        str(entry).strip().split("%", 1)[0], strict=False
                    )
                except ValueError:
                    raise ValueError(f"not an address or network: {entry!r}") from None
                out.append((_unmapped(network), label))
        return cls(out)

    def why_protected(self, network: IPNetwork, client: str | None = None) -> str | None:
        """Why ``network`` must not be blocked (it overlaps a protected one), or None.

        ``client``: the address the analyst is connected from.
        """
        entries = list(self.entries)
        if client:
            with contextlib.suppress(ValueError):
                own = ipaddress.ip_network(client.split("%", 1)[0])
                entries.append((_unmapped(own), "the analyst's own"))
        for protected, label in entries:
            if protected.version == network.version and network.overlaps(protected):
                if label == "loopback":
                    return f"{network} is loopback"
                return f"{network} holds {label} address ({protected})"
        return None


__all__ = [
    "USER_NAME",
    "IPNetwork",
    "Protected",
    "TargetError",
    "block_network",
    "check_user",
    "element",
    "parse_block",
]
