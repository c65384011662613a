"""nftables: a table of our own with one named set per family, elements with timeouts.

``table inet soc_response`` holds the sets ``block4`` (``ipv4_addr``) and
``block6`` (``ipv6_addr``), both with ``flags interval, timeout`` (so an IPv6
/64 is one element), and two base chains hooked on ``input`` and ``forward``
at priority -10 (before the usual filter chains, and before Docker's) that drop
their sources. Nothing else on the machine is touched: ``nft delete table inet
soc_response`` removes every trace.

Setup is idempotent (``add`` of an existing table, set or chain is a no-op and
each chain is flushed before its rule is added, in one nft transaction). A block
is one transaction too: add the element, delete it, add it with its timeout, so
a second block replaces the first's timeout instead of failing or keeping it.
An unblock adds then deletes, which succeeds whether or not the element was
still there (the kernel may have expired it already).
"""

from __future__ import annotations

from soc.respond.base import Command, RespondConfig
from soc.respond.targets import IPNetwork, element


class Nftables:
    name = "nftables"
    expires_itself = True

    def __init__(self, config: RespondConfig) -> None:
        self.table = config.nft_table
        self.priority = config.nft_priority

    def _set(self, network: IPNetwork) -> str:
        return "block4" if network.version == 4 else "block6"

    def setup(self) -> list[Command]:
        t = self.table
        script: list[str] = ["add", "table", "inet", t]
        for name, kind in (("block4", "ipv4_addr"), ("block6", "ipv6_addr")):
            script += [";", "add", "set", "inet", t, name]
            script += ["{", "type", kind, ";", "flags", "interval,", "timeout", ";", "}"]
        for hook in ("input", "forward"):
            script += [";", "add", "chain", "inet", t, hook]
            script += ["{", "type", "filter", "hook", hook, "priority", str(self.priority), ";"]
            script += ["policy", "accept", ";", "}"]
            script += [";", "flush", "chain", "inet", t, hook]
            script += [";", "add", "rule", "inet", t, hook, "ip", "saddr", "@block4", "drop"]
            script += [";", "add", "rule", "inet", t, hook, "ip6", "saddr", "@block6", "drop"]
        return [Command(("nft", *script))]

    def block(self, network: IPNetwork, ttl: int) -> list[Command]:
        t, s, e = self.table, self._set(network), element(network)
        return [
            Command(
                (
                    "nft",
                    *("add", "element", "inet", t, s, "{", e, "}", ";"),
                    *("delete", "element", "inet", t, s, "{", e, "}", ";"),
                    *("add", "element", "inet", t, s, "{", e, "timeout", f"{int(ttl)}s", "}"),
                )
            )
        ]

    def unblock(self, network: IPNetwork) -> list[Command]:
        t, s, e = self.table, self._set(network), element(network)
        return [
            Command(
                (
                    "nft",
                    *("add", "element", "inet", t, s, "{", e, "}", ";"),
                    *("delete", "element", "inet", t, s, "{", e, "}"),
                )
            )
        ]


__all__ = ["Nftables"]
