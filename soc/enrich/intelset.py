"""Fast lookup of an address in every network a feed lists.

Networks are kept in one dict per (IP version, prefix length), keyed by the
network's address as an integer: looking an address up costs one dict probe per
prefix length present in the feed (at most 33 for IPv4, 129 for IPv6), whatever
the number of networks; a feed of 100,000 /32s and /24s costs two probes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from soc.enrich.base import Indicator, Network

_BITS: Final = {4: 32, 6: 128}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: One prefix length's networks: network address (an int) -> (indicator index, network) pairs.
_Table = dict[int, tuple[tuple[int, Network], ...]]


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address (IPv4-mapped IPv6 unmapped), or None if it is none."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class IntelSet:
    """The indicators of one feed, indexed by network for lookup by address.

    Immutable once built: a refresh builds a new set and swaps it in, so readers
    on other threads never see a half-loaded feed.
    """

    __slots__ = ("_indicators", "_networks", "_tables")

    def __init__(self, indicators: Iterable[Indicator]) -> None:
        self._indicators: tuple[Indicator, ...] = tuple(indicators)
        # version -> [(prefix length, {network int: ((indicator index, network), …)})],
        # longest prefix first
        tables: dict[int, dict[int, dict[int, list[tuple[int, Network]]]]] = {4: {}, 6: {}}
        networks = 0
        for index, indicator in enumerate(self._indicators):
            for network in indicator.networks:
                by_prefix = tables[network.version].setdefault(network.prefixlen, {})
                entries = by_prefix.setdefault(int(network.network_address), [])
                if all(i != index for i, _ in entries):  # an indicator listing a network twice
                    entries.append((index, network))
                    networks += 1
        self._networks = networks
        self._tables: dict[int, tuple[tuple[int, _Table], ...]] = {
            version: tuple(
                (prefix, {key: tuple(v) for key, v in by_prefix[prefix].items()})
                for prefix in sorted(by_prefix, reverse=True)
            )
            for version, by_prefix in tables.items()
        }

    def __len__(self) -> int:
        return len(self._indicators)

    @property
    def networks(self) -> int:
        """How many (indicator, network) entries the set holds."""
        return self._networks

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        """Every indicator, in load order."""
        return self._indicators

    def lookup(self, address: Address) -> list[tuple[Indicator, Network]]:
        """Every indicator listing a network that holds ``address``, longest prefix first."""
        bits = _BITS[address.version]
        value = int(address)
        found: list[tuple[Indicator, Network]] = []
        for prefix, table in self._tables[address.version]:
            entries = table.get((value >> (bits - prefix)) << (bits - prefix))
            if entries is not None:
                found.extend((self._indicators[i], network) for i, network in entries)
        return found

    def expired(self, now: float) -> int:
        """How many indicators are past their ``valid_until`` at ``now``."""
        return sum(
            1 for i in self._indicators if i.valid_until is not None and now >= i.valid_until
        )


EMPTY: Final = IntelSet(())

__all__ = ["EMPTY", "Address", "IntelSet", "parse_address"]
