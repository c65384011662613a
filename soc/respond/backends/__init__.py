"""Firewall backends for ``block_ip``/``unblock_ip``, one module each, registered by name.

A backend only turns (network, TTL) into argv lists (:class:`soc.respond.base.Command`):
it never runs anything itself, so dry-run shows exactly what enforce would run.
Adding one: write its module (a class with ``name``, ``expires_itself``,
``setup``, ``block`` and ``unblock``) and add one line to :data:`BACKENDS`.
"""

from __future__ import annotations

from typing import Final

from soc.registry import resolve
from soc.respond.backends.base import Firewall
from soc.respond.base import RespondConfig

#: Backend name → ``module:Class``.
BACKENDS: Final[dict[str, str]] = {
    "nftables": "soc.respond.backends.nftables:Nftables",
    "iptables": "soc.respond.backends.iptables:IpsetIptables",
    "ufw": "soc.respond.backends.ufw:Ufw",
    "fail2ban": "soc.respond.backends.fail2ban:Fail2ban",
}


def firewall(name: str, config: RespondConfig) -> Firewall:
    """The backend called ``name``, set up from ``config``."""
    (cls,) = resolve(BACKENDS, name, "firewall backend")
    backend: Firewall = cls(config)
    return backend


__all__ = ["BACKENDS", "Firewall", "firewall"]
