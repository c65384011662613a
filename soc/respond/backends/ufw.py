"""ufw: a ``deny from`` rule prepended per block; ufw has no timeouts, so expiry is ours.

``ufw prepend`` puts the rule before any ``allow`` (IPv4 and IPv6 alike; ``insert
1`` refuses IPv6 rules while IPv4 ones exist). ufw skips a rule it already has,
and ``ufw delete deny from X`` of a rule that is gone exits non-zero with
"Could not delete non-existent rule", which counts as done (exit 1 accepted).
Not run by the test suite (ufw cannot run in a test's network namespace here):
its argv is tested.
"""

from __future__ import annotations

from soc.respond.base import Command, RespondConfig
from soc.respond.targets import IPNetwork


class Ufw:
    name = "ufw"
    expires_itself = False

    def __init__(self, config: RespondConfig) -> None:
        pass

    def setup(self) -> list[Command]:
        return []

    def block(self, network: IPNetwork, ttl: int) -> list[Command]:
        return [
            Command(("ufw", "prepend", "deny", "from", _source(network), "comment", "soc-response"))
        ]

    def unblock(self, network: IPNetwork) -> list[Command]:
        return [Command(("ufw", "delete", "deny", "from", _source(network)), ok_exit=(0, 1))]


def _source(network: IPNetwork) -> str:
    return (
        str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
    )


__all__ = ["Ufw"]
