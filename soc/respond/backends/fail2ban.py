"""fail2ban: ``fail2ban-client set JAIL banip`` / ``unbanip``; the jail's own actions block.

The jail's ``bantime`` decides when fail2ban itself lifts a ban; the responder's
expiry worker unbans at the block's own expiry (so the longer of the two does
not win silently) and re-bans what is still in force when it starts. Not run by
the test suite (no fail2ban server in a test's namespace): its argv is tested.
"""

from __future__ import annotations

from soc.respond.base import Command, RespondConfig
from soc.respond.targets import IPNetwork


class Fail2ban:
    name = "fail2ban"
    expires_itself = False

    def __init__(self, config: RespondConfig) -> None:
        self.jail = config.fail2ban_jail

    def setup(self) -> list[Command]:
        return []

    def block(self, network: IPNetwork, ttl: int) -> list[Command]:
        return [Command(("fail2ban-client", "set", self.jail, "banip", _source(network)))]

    def unblock(self, network: IPNetwork) -> list[Command]:
        return [Command(("fail2ban-client", "set", self.jail, "unbanip", _source(network)))]


def _source(network: IPNetwork) -> str:
    return (
        str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
    )


__all__ = ["Fail2ban"]
