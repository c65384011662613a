"""Scoring: an incident's verdict from its addresses, a campaign caught by its kind only."""

from __future__ import annotations

from typing import Any

from soc.evaluate.labels import Campaign, Labels
from soc.evaluate.score import score
from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    SLOW_BRUTE_FORCE,
    Incident,
)

BOTS = tuple(f"10.9.0.{i}" for i in range(1, 11))
LABELS = Labels(
    campaigns=[
        Campaign(0, "alice", None, legitimate=True, addresses=("198.51.100.7",)),
        Campaign(1, "hammer", BRUTE_FORCE, False, frozenset({SLOW_BRUTE_FORCE}), ("203.0.113.5",)),
        Campaign(2, "botnet", DISTRIBUTED_BRUTE_FORCE, False, addresses=BOTS),
        Campaign(3, "scanner", None, legitimate=False, addresses=("10.8.0.1",)),
        Campaign(4, "spray", PASSWORD_SPRAY, False, addresses=("203.0.113.6",)),
        Campaign(5, "cut", BRUTE_FORCE, False, addresses=("203.0.113.7",), complete=False),
    ]
)


def _incident(kind: str, addresses: list[str], key: str = "", **fields: Any) -> Incident:
    return Incident(
        key=key or addresses[0], kind=kind, first_seen=0.0, last_seen=1.0,
        source_ips=addresses, **fields,
    )  # fmt: skip


def test_verdicts_follow_the_labels() -> None:
    scored = score(
        LABELS,
        [
            _incident(BRUTE_FORCE, ["203.0.113.5"]),
            _incident(SLOW_BRUTE_FORCE, ["203.0.113.5"]),  # one of its "also" kinds
            _incident(CREDENTIAL_COMPROMISE, ["198.51.100.7"]),
            _incident(PASSWORD_SPRAY, ["203.0.113.5"]),  # an attacker, not a spray
            _incident(BRUTE_FORCE, ["10.8.0.1"]),
            _incident(BRUTE_FORCE, ["192.0.2.99"]),
            # most of its sources are the botnet's: correct, the scanner among them
            _incident(DISTRIBUTED_BRUTE_FORCE, [*BOTS[:3], "10.8.0.1"], key="root"),
            _incident(DISTRIBUTED_BRUTE_FORCE, [*BOTS[:1], "10.8.0.1"], key="admin"),
        ],
    )
    assert [v.verdict for v in scored.verdicts] == [
        "correct", "correct", "legitimate", "wrong_kind", "noise", "unlabelled", "correct",
        "wrong_kind",
    ]  # fmt: skip
    assert scored.legitimate_flagged == ["198.51.100.7"]
    assert scored.legitimate_addresses == 1
    assert (scored.kinds[BRUTE_FORCE].incidents, scored.kinds[BRUTE_FORCE].correct) == (3, 1)
    assert scored.kinds[BRUTE_FORCE].precision == 1 / 3


def test_a_campaign_is_caught_only_by_an_incident_of_its_kind() -> None:
    scored = score(
        LABELS,
        [
            _incident(SLOW_BRUTE_FORCE, ["203.0.113.5"]),  # right attacker, not its kind
            _incident(DISTRIBUTED_BRUTE_FORCE, [BOTS[7]], key="root"),  # one member named
            _incident(PASSWORD_SPRAY, ["203.0.113.6"]),
        ],
    )
    assert [c.name for c in scored.missed] == ["hammer"]
    assert scored.kinds[BRUTE_FORCE].campaigns == 1  # the cut-short campaign is not counted
    assert (scored.campaigns, scored.caught) == (3, 2)
    assert scored.kinds[PASSWORD_SPRAY].recall == 1.0
    assert scored.kinds[BRUTE_FORCE].recall == 0.0
    assert scored.kinds[CREDENTIAL_COMPROMISE].recall is None  # no campaign of that kind
