"""The allow-list: addresses and networks whose activity never raises an incident."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
from collections.abc import Iterable

from soc.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Distinct addresses remembered with their verdict before the memo starts over.
_MEMO_SIZE = 65_536


def parse_networks(entries: Iterable[str], where: str = "allow_list") -> list[IPNetwork]:
    """Addresses and CIDR networks as networks; anything else is refused."""
    networks: list[IPNetwork] = []
    for i, entry in enumerate(entries):
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"not an IP address or CIDR network: {entry!r}", where=f"{where}[{i}]"
            ) from None
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
            mapped = network.network_address.ipv4_mapped
            if mapped is not None:  # ::ffff:a.b.c.d: parsers report it as a.b.c.d
                network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        networks.append(network)
    return networks


class AllowList:
    """Answers "is this source allow-listed?" for addresses as events carry them.

    Host names (sources that are not IP addresses) are never allow-listed: a name
    in a log line is whatever the client or a resolver said.
    """

    def __init__(self, entries: Iterable[str] = (), *, where: str = "allow_list") -> None:
        self.networks = parse_networks(entries, where)
        self._memo: dict[str, bool] = {}

    def __len__(self) -> int:
        return len(self.networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self.networks:
            return False
        found = self._memo.get(address)
        if found is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[address] = self._lookup(address)
        return found

    def _lookup(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks if network.version == ip.version)


def discover_host_addresses() -> list[str]:
    """This machine's own IP addresses (loopback included), best effort, no dependencies.

    Reads ``ip -j addr`` (iproute2) when it is installed, and adds what the host
    name resolves to. Never raises: a machine where neither works gets the
    loopback addresses only.
    """
    found: dict[str, None] = {"127.0.0.1": None, "::1": None}
    ip_tool = shutil.which("ip")
    if ip_tool is not None:
        try:
            result = subprocess.run(
                [ip_tool, "-j", "addr"], capture_output=True, timeout=5, check=False
            )
            interfaces = json.loads(result.stdout or b"[]")
        except (OSError, subprocess.SubprocessError, ValueError):
            interfaces = []
        for interface in interfaces if isinstance(interfaces, list) else []:
            for info in interface.get("addr_info", []) if isinstance(interface, dict) else []:
                local = info.get("local") if isinstance(info, dict) else None
                if isinstance(local, str):
                    found[local] = None
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            found[str(sockaddr[0]).split("%", 1)[0]] = None
    except OSError:
        pass
    out = []
    for address in found:
        try:
            out.append(str(ipaddress.ip_address(address)))
        except ValueError:
            continue
    return list(dict.fromkeys(out))


__all__ = ["AllowList", "discover_host_addresses", "parse_networks"]
