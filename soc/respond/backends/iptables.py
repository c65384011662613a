"""ipset + iptables: one ``hash:net`` set per family with timeouts, matched by a DROP rule.

Sets ``<ipset_name>4`` and ``<ipset_name>6`` (``family inet``/``inet6``,
``timeout 0``: every element carries its own). The DROP rule is inserted at the
top of ``INPUT`` (and ``DOCKER-USER`` with ``docker_user``, where Docker's
published ports are filtered) only when ``-C`` says it is missing, so setup is
idempotent. ``ipset add … -exist`` on an element already there replaces its
timeout; ``ipset del … -exist`` succeeds when it is gone.
"""

from __future__ import annotations

from soc.respond.base import Command, RespondConfig
from soc.respond.targets import IPNetwork, element


class IpsetIptables:
    name = "iptables"
    expires_itself = True

    def __init__(self, config: RespondConfig) -> None:
        self.set_name = config.ipset_name
        self.chains = ["INPUT", *(["DOCKER-USER"] if config.docker_user else [])]

    def _set(self, network: IPNetwork) -> str:
        return f"{self.set_name}{network.version}"

    def setup(self) -> list[Command]:
        out = []
        for version, family, tool in ((4, "inet", "iptables"), (6, "inet6", "ip6tables")):
            name = f"{self.set_name}{version}"
            out.append(
                Command(
                    (
                        "ipset",
                        "create",
                        name,
                        "hash:net",
                        "family",
                        family,
                        "timeout",
                        "0",
                        "-exist",
                    )
                )
            )
            for chain in self.chains:
                rule = (chain, "-m", "set", "--match-set", name, "src", "-j", "DROP")
                out.append(Command((tool, "-w", "-I", *rule), unless=(tool, "-w", "-C", *rule)))
        return out

    def block(self, network: IPNetwork, ttl: int) -> list[Command]:
        return [
            Command(
                (
                    "ipset",
                    "add",
                    self._set(network),
                    element(network),
                    "timeout",
                    str(int(ttl)),
                    "-exist",
                )
            )
        ]

    def unblock(self, network: IPNetwork) -> list[Command]:
        return [Command(("ipset", "del", self._set(network), element(network), "-exist"))]


__all__ = ["IpsetIptables"]
