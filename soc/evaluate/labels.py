"""The ground truth of a generated scenario: who is legitimate, and which attack is whose.

A :class:`Campaign` is one labelled actor or group in a scenario's logs: a
legitimate user (or office, CI host, crawler), an attack of one incident kind,
or hostile noise (internet scanners too small to be a campaign worth an
incident). :class:`Labels` holds a scenario's campaigns as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Campaign:
    """One labelled actor: legitimate, an attack of ``kind``, or hostile noise.

    ``kind``: the incident kind that must catch it (None for legitimate activity
    and for noise). ``also``: other incident kinds that describe it correctly too
    (a brute force that ends in a compromise is still a brute force).
    ``addresses``: the source addresses its lines show. ``complete``: every line
    it was given was written (a file's line limit may cut the last campaigns).
    """

    id: int
    name: str
    kind: str | None
    legitimate: bool
    also: frozenset[str] = frozenset()
    addresses: tuple[str, ...] = ()
    lines: int = 0
    complete: bool = True

    @property
    def hostile(self) -> bool:
        """An attacker or hostile noise."""
        return not self.legitimate

    def accepts(self, kind: str) -> bool:
        """True when an incident of ``kind`` describes this campaign correctly."""
        return kind == self.kind or kind in self.also

    def as_dict(self) -> dict[str, Any]:
        """The label as plain data."""
        return {
            "name": self.name,
            "kind": self.kind,
            "legitimate": self.legitimate,
            "also": sorted(self.also),
            "addresses": list(self.addresses),
            "lines": self.lines,
            "complete": self.complete,
        }


@dataclass(slots=True)
class Labels:
    """A scenario's campaigns as written, and the lines of each file."""

    campaigns: list[Campaign] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def legitimate_addresses(self) -> set[str]:
        """Every source address of legitimate activity."""
        return {a for c in self.campaigns if c.legitimate for a in c.addresses}

    @property
    def hostile_addresses(self) -> set[str]:
        """Every source address of an attack or of hostile noise."""
        return {a for c in self.campaigns if c.hostile for a in c.addresses}

    @property
    def attacks(self) -> list[Campaign]:
        """The campaigns an incident must catch."""
        return [c for c in self.campaigns if c.kind is not None]

    def by_address(self) -> dict[str, list[Campaign]]:
        """The campaigns each source address belongs to."""
        out: dict[str, list[Campaign]] = {}
        for campaign in self.campaigns:
            for address in campaign.addresses:
                out.setdefault(address, []).append(campaign)
        return out


__all__ = ["Campaign", "Labels"]
