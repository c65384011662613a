"""Model calls, counted by the analyst's real dispatch on event time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from soc.analyze import AnalyzeConfig
from soc.evaluate.calls import CallCounter
from soc.events import BRUTE_FORCE, CREDENTIAL_COMPROMISE, Incident
from soc.store import SqlStore, open_store

T0 = 1_762_128_000.0  # 2025-11-03 00:00 UTC


@pytest.fixture
def memory_store() -> Iterator[SqlStore]:
    store = open_store("sqlite://")
    try:
        yield store
    finally:
        store.close()


def _save(store: SqlStore, key: str, at: float, **fields: Any) -> int:
    values: dict[str, Any] = {
        "key": key,
        "kind": BRUTE_FORCE,
        "first_seen": at - 60,
        "last_seen": at,
        "source_ips": [key],
        "users": ["root"],
        "distinct_users": 1,
        "failures": 20,
        "events": 20,
        "severity": "medium",
        "technique": "T1110.001",
        "evidence": [f"Nov  3 10:00:01 web01 sshd[1]: Failed password for root from {key}"],
    }
    values.update(fields)
    with store.transaction(now=at) as tx:
        return tx.upsert_incident(Incident(**values), f"auth:{key}")


def test_batches_within_the_wait_own_calls_for_the_rest(memory_store: SqlStore) -> None:
    # batch_below_severity "high" (the default is "critical"): high ones get a call each.
    counter = CallCounter(memory_store, AnalyzeConfig(batch_below_severity="high"), T0)
    now = {"t": T0}
    counter.follow(lambda: now["t"])

    def commit(ids: list[int], at: float) -> None:
        now["t"] = at
        counter.notify(ids)

    # three medium incidents within two minutes of each other: one batch
    first = [_save(memory_store, f"203.0.113.{i}", T0 + 60 * i) for i in range(1, 4)]
    commit(first, T0 + 200)
    assert counter.model.calls == 0  # the batch waits for company
    # a high one an hour later: its own call; the batch was due long before
    high = _save(memory_store, "198.51.100.9", T0 + 3600, severity="high", failures=2000)
    commit([high], T0 + 3600)
    assert (counter.model.calls, counter.model.batch_calls) == (2, 1)
    # a medium one alone, then a compromise: each a call of its own
    alone = _save(memory_store, "198.51.100.10", T0 + 7200)
    owned = _save(
        memory_store, "198.51.100.11", T0 + 7300, kind=CREDENTIAL_COMPROMISE, severity="critical"
    )
    commit([alone, owned], T0 + 7300)
    count = counter.drain()
    assert count.model_calls == 4
    assert count.batch_calls == 1
    assert count.batched_incidents == 3
    assert count.reports == 4
    assert count.over_budget == 0


def test_an_incident_that_turns_severe_is_reported_again(memory_store: SqlStore) -> None:
    counter = CallCounter(memory_store, AnalyzeConfig(batch_below_severity="low"), T0)
    counter.follow(lambda: None)
    incident = _save(memory_store, "203.0.113.9", T0 + 10)
    counter.notify([incident])
    # the same campaign goes on, and an hour later it is severe
    _save(memory_store, "203.0.113.9", T0 + 3600, severity="high", failures=3000)
    counter.notify([incident])
    _save(memory_store, "203.0.113.9", T0 + 3700, severity="high", failures=3300)
    counter.notify([incident])  # more of the same: the report stands
    assert counter.drain().model_calls == 2
