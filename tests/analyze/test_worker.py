"""Dispatch: one report per incident, again only on a material change, never one per update."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from soc.analyze import AnalyzeConfig
from soc.analyze.analyst import Analyst
from soc.analyze.worker import AnalysisWorker
from soc.clock import SystemClock
from soc.events import BRUTE_FORCE, CREDENTIAL_COMPROMISE, Incident
from soc.store import SqlStore, open_store

T0 = 1_763_719_200.0


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


def _save(store: SqlStore, **fields: Any) -> int:
    values: dict[str, Any] = {
        "key": "203.0.113.9",
        "kind": BRUTE_FORCE,
        "first_seen": T0,
        "last_seen": T0 + 30,
        "source_ips": ["203.0.113.9"],
        "users": ["root"],
        "distinct_users": 1,
        "failures": 20,
        "events": 20,
        "severity": "medium",
        "technique": "T1110.001",
        "evidence": ["Nov 21 10:00:01 web01 sshd[1]: Failed password for root"],
    }
    values.update(fields)
    with store.transaction(now=T0) as tx:
        return tx.upsert_incident(Incident(**values), f"auth:{values['key']}:1")


def _worker(store: SqlStore, interval: float) -> AnalysisWorker:
    config = AnalyzeConfig(chain=["offline"], reanalyze_interval_seconds=interval)
    return AnalysisWorker(store, Analyst(config, {}, SystemClock()), SystemClock())


def test_updates_reuse_the_report_until_the_incident_changes_materially(
    store: SqlStore,
) -> None:
    worker = _worker(store, interval=0)
    incident_id = _save(store)
    worker.notify([incident_id, incident_id])
    assert worker.run_pending() == 1
    # more failures, same severity: the report stands
    _save(store, failures=60, last_seen=T0 + 90)
    worker.notify([incident_id])
    assert worker.run_pending() == 0
    assert worker.analyst.usage.cache_hits == 1
    # the severity rises: analysed again
    _save(store, failures=1500, severity="high")
    worker.notify([incident_id])
    assert worker.run_pending() == 1
    # the attacker got in: analysed again
    _save(store, kind=CREDENTIAL_COMPROMISE, severity="critical", successes=1)
    worker.notify([incident_id])
    assert worker.run_pending() == 1
    records = store.analyses(incident_id)
    assert [r.structured["incident"]["severity"] for r in records] == [
        "medium",
        "high",
        "critical",
    ]
    assert all(r.grounded and r.provider == "offline" for r in records)
    assert "credential" in records[-1].markdown.lower()


def test_a_change_within_the_interval_waits_and_is_analysed_on_drain(store: SqlStore) -> None:
    worker = _worker(store, interval=3600)
    incident_id = _save(store)
    worker.notify([incident_id])
    assert worker.run_pending() == 1
    _save(store, failures=1500, severity="high")
    worker.notify([incident_id])
    assert worker.run_pending() == 0  # too soon: kept pending, not dropped
    assert len(store.analyses(incident_id)) == 1
    assert worker.drain() == 1
    assert [r.structured["incident"]["severity"] for r in store.analyses(incident_id)] == [
        "medium",
        "high",
    ]


def test_a_restarted_worker_knows_what_was_analysed(store: SqlStore) -> None:
    incident_id = _save(store)
    first = _worker(store, interval=0)
    first.notify([incident_id])
    assert first.run_pending() == 1
    second = _worker(store, interval=0)  # a new process: reads the stored analyses
    second.notify([incident_id])
    assert second.run_pending() == 0
    assert len(store.analyses(incident_id)) == 1


def test_the_background_thread_analyses_what_it_is_told(store: SqlStore) -> None:
    worker = _worker(store, interval=0)
    worker.start()
    try:
        ids = [_save(store)]
        worker.notify(ids)
    finally:
        worker.drain()
    assert len(store.analyses(ids[0])) == 1


def test_a_shutdown_drain_writes_offline_reports_without_waiting_for_a_model(
    store: SqlStore,
) -> None:
    # the configured chain names Gemini without a key: a drain must not even try it
    config = AnalyzeConfig(chain=["gemini"], reanalyze_interval_seconds=0)
    from soc.analyze.analyst import build_providers

    analyst = Analyst(config, build_providers(config, {}), SystemClock())
    worker = AnalysisWorker(store, analyst, SystemClock())
    incident_id = _save(store)
    worker.notify([incident_id])
    assert worker.drain(offline_only=True) == 1
    (record,) = store.analyses(incident_id)
    assert record.provider == "offline"
    assert record.fallback_reason is None  # offline was asked for, not fallen back to


def test_offline_first_gives_a_report_at_once_and_the_model_upgrades_it(
    store: SqlStore,
) -> None:
    from soc.analyze.analyst import build_providers
    from soc.config import Secret
    from tests.analyze.fake_gemini import API_KEY, FakeGemini, reply

    with FakeGemini() as fake:
        config = AnalyzeConfig(chain=["gemini"], gemini_base_url=fake.url, backoff_seconds=0.05)
        providers = build_providers(config, {"gemini_api_key": Secret(API_KEY)})
        analyst = Analyst(config, providers, SystemClock())
        worker = AnalysisWorker(store, analyst, SystemClock(), offline_first=True)
        first, second = _save(store), _save(store, key="198.51.100.7")
        fake.plan(reply("{not json"), reply("{not json"))  # the model fails for the first
        worker.notify([first])
        assert worker.run_pending() == 1  # the offline report, at once
        assert [r.provider for r in store.analyses(first)] == ["offline"]
        assert fake.generate_requests() == []
        worker.notify([second])
        assert worker.run_pending() == 2  # the new incident first, then one upgrade
        assert [r.provider for r in store.analyses(second)] == ["offline"]
        upgraded = store.analyses(first)
        assert [r.provider for r in upgraded] == ["offline", "offline"]
        assert upgraded[-1].fallback_reason and upgraded[-1].fallback_reason.startswith("gemini")
        assert worker.drain(offline_only=True) == 0  # a shutdown keeps the offline report
        assert len(store.analyses(second)) == 1
