"""Analyst feedback: stored and read back, and what it does to the simulator."""

from __future__ import annotations

import pytest

from soc.events import BRUTE_FORCE, PORT_SCAN
from soc.respond.policy.env import DEFAULT_FALSE_ALARMS, EnvConfig
from soc.respond.policy.feedback import PRIOR_WEIGHT, adjusted_config, final_action
from soc.store import SqlStore
from soc.store.policy import FeedbackRecord, PolicyFeedback


def test_feedback_round_trips_through_the_store(store: SqlStore) -> None:
    log = PolicyFeedback(store)
    first = log.record(
        incident_id=7, at=100.0, actor="alice", kind=BRUTE_FORCE,
        recommended="block_1h", probability=0.8, accepted=True, features=[1.0, 0.5],
    )  # fmt: skip
    second = log.record(
        incident_id=8, at=200.0, actor="bob", kind=PORT_SCAN,
        recommended="block_1h", probability=0.55, accepted=False, chosen="ignore",
    )  # fmt: skip
    rows = log.list()
    assert [r.id for r in rows] == [second, first]  # newest first
    assert rows[1] == FeedbackRecord(
        id=first, incident_id=7, at=100.0, actor="alice", kind=BRUTE_FORCE,
        recommended="block_1h", probability=0.8, accepted=True, chosen="block_1h",
        features=[1.0, 0.5],
    )  # fmt: skip
    assert rows[0].chosen == "ignore" and rows[0].features == []
    assert [r.id for r in log.list(kind=PORT_SCAN)] == [second]
    assert [r.id for r in log.list(accepted=True)] == [first]
    assert [r.id for r in log.list(incident_id=7)] == [first]
    assert [r.id for r in log.list(since=150.0)] == [second]
    assert len(log.list(limit=1)) == 1


def _answer(kind: str, recommended: str, accepted: bool, chosen: str | None) -> FeedbackRecord:
    return FeedbackRecord(0, 1, 0.0, "a", kind, recommended, 0.5, accepted, chosen, [])


def test_feedback_moves_the_false_alarm_prior() -> None:
    dismissed = [_answer(PORT_SCAN, "block_1h", False, "ignore") for _ in range(20)]
    confirmed = [_answer(BRUTE_FORCE, "block_1h", True, "block_1h") for _ in range(20)]
    unreadable = [_answer(BRUTE_FORCE, "block_1h", False, "reboot")]
    config, summary = adjusted_config(EnvConfig(), [*dismissed, *confirmed, *unreadable])
    prior = DEFAULT_FALSE_ALARMS[PORT_SCAN]
    assert config.false_alarm(PORT_SCAN) == pytest.approx(
        (prior * PRIOR_WEIGHT + 20) / (PRIOR_WEIGHT + 20)
    )
    assert config.false_alarm(BRUTE_FORCE) == pytest.approx(DEFAULT_FALSE_ALARMS[BRUTE_FORCE] / 2)
    assert summary["answers"] == 40 and summary["skipped"] == 1
    assert final_action(_answer(PORT_SCAN, "block_1h", False, None)) == "ignore"
    assert final_action(_answer(PORT_SCAN, "ignore", False, "block-and-notify")) == (
        "block_24h_notify"
    )
