"""Scoring incidents against labels: precision and recall per kind, legitimate addresses flagged.

An incident's addresses are its source addresses (for a distributed attack, the
sources it lists; its key otherwise, when that is an address). Its verdict:

- ``legitimate``: one of its addresses is legitimate (a false alarm about a user);
- ``correct``: otherwise, more than half of its addresses belong to campaigns
  that an incident of its kind describes (the campaign's kind, or one of its
  ``also`` kinds: a brute force that ends in a compromise is still a brute force);
- ``wrong_kind``: hostile addresses, but attacks of other kinds;
- ``noise``: hostile addresses of no campaign worth an incident (scanners);
- ``unlabelled``: an address the labels do not know (a generator bug).

A campaign is *caught* when an incident of its kind names at least one of its
addresses; campaigns a file's line limit cut short are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from soc.evaluate.labels import Campaign, Labels
from soc.events import INCIDENT_KINDS, Incident, is_ip_address

CORRECT: Final = "correct"
LEGITIMATE: Final = "legitimate"
WRONG_KIND: Final = "wrong_kind"
NOISE: Final = "noise"
UNLABELLED: Final = "unlabelled"


@dataclass(slots=True)
class Verdict:
    """One incident as scored."""

    id: int
    kind: str
    key: str
    verdict: str
    addresses: list[str]
    legitimate: list[str]
    failures: int
    severity: str
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The verdict as plain data."""
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "verdict": self.verdict,
            "severity": self.severity,
            "failures": self.failures,
            "addresses": self.addresses[:10],
            "address_count": len(self.addresses),
            "legitimate": self.legitimate[:10],
            "evidence": self.evidence,
        }


@dataclass(slots=True)
class KindScore:
    """Incidents of one kind and how many were right; campaigns of it and how many were caught."""

    kind: str
    incidents: int = 0
    correct: int = 0
    campaigns: int = 0
    caught: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.incidents if self.incidents else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.campaigns if self.campaigns else None

    def add(self, other: KindScore) -> None:
        """Add another run's counts of the same kind."""
        self.incidents += other.incidents
        self.correct += other.correct
        self.campaigns += other.campaigns
        self.caught += other.caught

    def as_dict(self) -> dict[str, Any]:
        """The counts, precision and recall as plain data."""
        return {
            "incidents": self.incidents,
            "correct": self.correct,
            "precision": _round(self.precision),
            "campaigns": self.campaigns,
            "caught": self.caught,
            "recall": _round(self.recall),
        }


@dataclass(slots=True)
class Score:
    """One scenario's incidents scored against its labels."""

    kinds: dict[str, KindScore]
    verdicts: list[Verdict]
    legitimate_addresses: int
    legitimate_flagged: list[str]
    missed: list[Campaign]

    @property
    def campaigns(self) -> int:
        return sum(k.campaigns for k in self.kinds.values())

    @property
    def caught(self) -> int:
        return sum(k.caught for k in self.kinds.values())

    def by_verdict(self, verdict: str) -> list[Verdict]:
        """The incidents with this verdict."""
        return [v for v in self.verdicts if v.verdict == verdict]


def empty_kinds() -> dict[str, KindScore]:
    """A zero score for every incident kind."""
    return {kind: KindScore(kind) for kind in INCIDENT_KINDS}


def incident_addresses(incident: Incident) -> list[str]:
    """The source addresses an incident names (its key when it lists none and is one)."""
    if incident.source_ips:
        return list(incident.source_ips)
    return [incident.key] if is_ip_address(incident.key) else []


def score(labels: Labels, incidents: Iterable[Incident]) -> Score:
    """Score ``incidents`` against ``labels``."""
    owners = labels.by_address()
    legitimate = labels.legitimate_addresses
    kinds = empty_kinds()
    verdicts: list[Verdict] = []
    flagged: dict[str, None] = {}
    named: dict[str, set[str]] = {}  # kind → addresses an incident of that kind named
    for incident in incidents:
        addresses = incident_addresses(incident)
        hits = [a for a in addresses if a in legitimate]
        flagged.update(dict.fromkeys(hits))
        verdict = _verdict(incident.kind, addresses, hits, owners)
        tally = kinds.setdefault(incident.kind, KindScore(incident.kind))
        tally.incidents += 1
        tally.correct += verdict == CORRECT
        named.setdefault(incident.kind, set()).update(addresses)
        verdicts.append(
            Verdict(
                id=int(incident.id or 0),
                kind=incident.kind,
                key=incident.key,
                verdict=verdict,
                addresses=addresses,
                legitimate=hits,
                failures=incident.failures,
                severity=incident.severity,
            )
        )
    missed: list[Campaign] = []
    for campaign in labels.attacks:
        if not campaign.complete or campaign.kind is None:
            continue
        tally = kinds.setdefault(campaign.kind, KindScore(campaign.kind))
        tally.campaigns += 1
        if named.get(campaign.kind, set()).intersection(campaign.addresses):
            tally.caught += 1
        else:
            missed.append(campaign)
    return Score(
        kinds=kinds,
        verdicts=verdicts,
        legitimate_addresses=len(legitimate),
        legitimate_flagged=list(flagged),
        missed=missed,
    )


def _verdict(
    kind: str, addresses: list[str], hits: list[str], owners: dict[str, list[Campaign]]
) -> str:
    if hits:
        return LEGITIMATE
    if not addresses or any(a not in owners for a in addresses):
        return UNLABELLED
    right = sum(1 for a in addresses if any(c.accepts(kind) for c in owners[a]))
    if right * 2 > len(addresses):
        return CORRECT
    if any(c.kind is not None for a in addresses for c in owners[a]):
        return WRONG_KIND
    return NOISE


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


__all__ = [
    "CORRECT",
    "LEGITIMATE",
    "NOISE",
    "UNLABELLED",
    "WRONG_KIND",
    "KindScore",
    "Score",
    "Verdict",
    "empty_kinds",
    "incident_addresses",
    "score",
]
