"""``block_ip`` / ``unblock_ip``: the incident's source addresses at the configured firewall.

Each address becomes a network (itself, or its /64 for IPv6) and is checked
against the protected set (allow-lists, this machine, loopback, the analyst's
own address) before any argv is made. Blocking what is already blocked for at
least as long adds nothing (``unchanged``); a longer TTL replaces a shorter one.
New blocks past ``max_blocks_per_hour`` are refused. At most ``max_targets``
addresses per step; the rest are refused and named in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from soc.respond.actions.base import Context
from soc.respond.base import ENFORCE, Outcome, Step, format_duration, parse_duration
from soc.respond.targets import IPNetwork, TargetError, block_network

#: Seconds within which a repeated block's expiry counts as the same.
SAME_WITHIN = 60.0


def _networks(ctx: Context) -> tuple[list[tuple[str, IPNetwork | None, str | None]], int]:
    """(address, network or None, refusal) per source address, and how many were left out."""
    out: list[tuple[str, IPNetwork | None, str | None]] = []
    seen: set[IPNetwork] = set()
    addresses = list(dict.fromkeys(ctx.incident.source_ips))
    kept, left = (
        addresses[: ctx.config.max_targets],
        max(0, len(addresses) - ctx.config.max_targets),
    )
    for address in kept:
        try:
            network = block_network(address, ctx.config.ipv6_prefix)
        except TargetError as exc:
            out.append((address, None, str(exc)))
            continue
        if network in seen:
            continue
        seen.add(network)
        out.append((address, network, ctx.protected.why_protected(network, ctx.client)))
    return out, left


class BlockIp:
    name = "block_ip"
    params: Mapping[str, type | tuple[type, ...]] = {"ttl": (str, int)}

    def check(self, params: Mapping[str, Any]) -> None:
        if "ttl" in params:
            parse_duration(params["ttl"], "ttl")

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        ttl = parse_duration(params["ttl"], "ttl") if "ttl" in params else ctx.ttl
        ttl = min(ttl, ctx.config.max_ttl_seconds)
        backend = ctx.firewall.name
        mode = ctx.mode(backend)
        steps: list[Step] = []
        targets, left = _networks(ctx)
        if not targets:
            steps.append(
                Step(
                    0,
                    self.name,
                    backend=backend,
                    mode=mode,
                    refused="the incident names no source address",
                )
            )
        for address, network, refusal in targets:
            target = str(network) if network is not None else address
            step = Step(0, self.name, target=target, backend=backend, mode=mode, ttl=ttl)
            steps.append(step)
            if network is None or refusal is not None:
                step.refused = refusal or "not an address"
                continue
            expires_at = ctx.now + ttl
            current = ctx.log.active_block(str(network), backend)
            # Repeating a block within a minute changes nothing: only a longer TTL wins.
            if current is not None and current.expires_at >= expires_at - SAME_WITHIN:
                step.unchanged = (
                    f"already blocked for {format_duration(current.expires_at - ctx.now)}"
                )
                continue
            if current is None:
                if ctx.block_budget <= 0:
                    limit = ctx.config.max_blocks_per_hour
                    step.refused = f"block limit reached ({limit} per hour, max_blocks_per_hour)"
                    continue
                ctx.block_budget -= 1  # a dry run shows what enforcing would refuse
            if ctx.needs_setup:
                step.commands.extend(ctx.firewall.setup())
                ctx.needs_setup = mode != ENFORCE  # a dry run sets nothing up
            step.commands.extend(ctx.firewall.block(network, ttl))
            step.describe = f"block {network} for {format_duration(ttl)} ({backend})"
            step.after = _recorder(ctx, str(network), backend, expires_at)
        if left:
            steps.append(
                Step(
                    0,
                    self.name,
                    target=f"{left} more addresses",
                    backend=backend,
                    mode=mode,
                    refused=f"more than {ctx.config.max_targets} addresses ([respond] max_targets)",
                )
            )
        return steps


def _recorder(
    ctx: Context, network: str, backend: str, expires_at: float
) -> Callable[[Outcome], None]:
    incident_id, playbook, actor, log, now = (
        ctx.incident.id,
        ctx.playbook,
        ctx.actor,
        ctx.log,
        ctx.now,
    )
    on_block = ctx.on_block

    def record(outcome: Outcome) -> None:
        log.record_block(
            network,
            backend,
            expires_at=expires_at,
            now=now,
            incident_id=incident_id,
            playbook=playbook,
            actor=actor,
        )
        if on_block is not None:
            on_block(backend)

    return record


class UnblockIp:
    name = "unblock_ip"
    params: Mapping[str, type | tuple[type, ...]] = {}

    def check(self, params: Mapping[str, Any]) -> None:
        return None

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        backend = ctx.firewall.name
        mode = ctx.mode(backend)
        steps = []
        targets, _ = _networks(ctx)
        for address, network, _refusal in targets:
            if network is None:
                steps.append(
                    Step(
                        0,
                        self.name,
                        target=address,
                        backend=backend,
                        mode=mode,
                        refused="not an address",
                    )
                )
                continue
            step = Step(0, self.name, target=str(network), backend=backend, mode=mode)
            current = ctx.log.active_block(str(network), backend)
            step.commands = ctx.firewall.unblock(network)
            step.describe = f"unblock {network} ({backend})"
            if current is None:
                step.unchanged = "not blocked"
            else:
                step.after = _ender(ctx, current.id)
            steps.append(step)
        return steps


def _ender(ctx: Context, block_id: int) -> Callable[[Outcome], None]:
    log, now, actor = ctx.log, ctx.now, ctx.actor

    def end(outcome: Outcome) -> None:
        log.end_block(block_id, now=now, by=actor, reason="unblocked")

    return end


BLOCK = BlockIp()
UNBLOCK = UnblockIp()

__all__ = ["BLOCK", "UNBLOCK", "BlockIp", "UnblockIp"]
