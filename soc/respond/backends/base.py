"""What a firewall backend is: argv lists to set itself up, block and unblock a network."""

from __future__ import annotations

from typing import Protocol

from soc.respond.base import Command, RespondConfig
from soc.respond.targets import IPNetwork


class Firewall(Protocol):
    """Turns blocks into commands; never runs them.

    ``expires_itself``: the kernel removes an element when its timeout ends
    (nftables sets, ipset); the responder's expiry worker removes it anyway, so
    that the store and the firewall agree, and is the only remover for the others.
    """

    name: str
    expires_itself: bool

    def __init__(self, config: RespondConfig) -> None: ...

    def setup(self) -> list[Command]:
        """Idempotent commands that make the backend ready (tables, sets, rules)."""
        ...

    def block(self, network: IPNetwork, ttl: int) -> list[Command]:
        """Commands that drop traffic from ``network`` for ``ttl`` s (replacing an earlier TTL)."""
        ...

    def unblock(self, network: IPNetwork) -> list[Command]:
        """Commands that lift a block; succeed when there was none."""
        ...


__all__ = ["Firewall"]
