"""Dispatch: one report per incident, again only on a material change, never one per update."""

from __future__ import annotations

import json
from typing import Any

import pytest

from soc.analyze import AnalyzeConfig
from soc.analyze.analyst import Analyst
from soc.analyze.worker import AnalysisWorker
from soc.clock import Clock, ManualClock, SystemClock
from soc.events import BRUTE_FORCE, CREDENTIAL_COMPROMISE, Incident
from soc.store import SqlStore

T0 = 1_763_719_200.0


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


def _worker(
    store: SqlStore, interval: float, clock: Clock | None = None, **options: Any
) -> AnalysisWorker:
    """An offline worker; one report per incident unless ``options`` turn batches on."""
    settings: dict[str, Any] = {"batch_below_severity": "low", **options}
    config = AnalyzeConfig(chain=["offline"], reanalyze_interval_seconds=interval, **settings)
    clock = clock or SystemClock()
    return AnalysisWorker(store, Analyst(config, {}, clock), clock)


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
    config = AnalyzeConfig(
        chain=["gemini"], reanalyze_interval_seconds=0, batch_below_severity="low"
    )
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
        config = AnalyzeConfig(
            chain=["gemini"],
            gemini_base_url=fake.url,
            backoff_seconds=0.05,
            batch_below_severity="low",
        )
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


# --- batches: incidents below the batch severity share one report -----------------------


def _bots(store: SqlStore, n: int, **fields: Any) -> list[int]:
    """``n`` small incidents, one per source address."""
    return [
        _save(
            store,
            key=f"198.51.100.{i}",
            source_ips=[f"198.51.100.{i}"],
            failures=5 + i,
            severity="low" if i % 2 else "medium",
            **fields,
        )
        for i in range(1, n + 1)
    ]


def test_small_incidents_share_one_batch_report_and_severe_ones_get_their_own(
    store: SqlStore,
) -> None:
    clock = ManualClock(T0)
    worker = _worker(store, 0, clock, batch_below_severity="high", batch_wait_seconds=300)
    small = _bots(store, 5)
    severe = _save(store, key="203.0.113.50", failures=1500, severity="high")
    worker.notify([*small, severe])
    assert worker.run_pending() == 1  # the severe one at once; the rest wait for company
    assert worker.pending == 5
    assert all(store.analyses(i) == [] for i in small)
    clock.advance(299)
    assert worker.run_pending() == 0
    clock.advance(1)
    assert worker.run_pending() == 5  # the first waited batch_wait_seconds: one report
    usage = worker.analyst.usage
    assert (usage.analyses, usage.batches, usage.batched_incidents) == (2, 1, 5)
    records = [store.analyses(i) for i in small]
    assert all(len(r) == 1 and r[0].grounded for r in records)
    assert sum(not r[0].reused for r in records) == 1  # one row carries the batch's cost
    assert {r[0].structured["batch"]["incidents"] for r in records} == {5}
    assert [r[0].structured["incident"]["severity"] for r in records] == [
        "low",
        "medium",
        "low",
        "medium",
        "low",
    ]
    (own,) = store.analyses(severe)
    assert "batch" not in own.structured
    assert worker.reports[small[0]].batch_incidents == 5


def test_a_full_batch_is_written_at_once_and_the_rest_on_drain(store: SqlStore) -> None:
    worker = _worker(store, 0, ManualClock(T0), batch_below_severity="high", batch_max_incidents=2)
    ids = _bots(store, 5)
    worker.notify(ids)
    assert worker.run_pending() == 4  # two full batches
    assert worker.pending == 1
    assert worker.drain() == 1  # the last on the way out: alone, a report of its own
    assert worker.pending == 0
    usage = worker.analyst.usage
    assert (usage.analyses, usage.batches, usage.batched_incidents) == (3, 2, 4)
    assert all(len(store.analyses(i)) == 1 for i in ids)
    assert "batch" not in store.analyses(ids[-1])[0].structured


def test_an_incident_that_rises_above_the_batch_severity_gets_its_own_report(
    store: SqlStore,
) -> None:
    worker = _worker(store, 0, ManualClock(T0), batch_below_severity="high")
    ids = _bots(store, 3)
    worker.notify(ids)
    assert worker.run_pending() == 0
    _save(store, key="198.51.100.1", source_ips=["198.51.100.1"], failures=1500, severity="high")
    worker.notify([ids[0]])
    assert worker.run_pending() == 1
    assert worker.drain() == 2
    (own,) = store.analyses(ids[0])
    assert own.structured["incident"]["severity"] == "high" and "batch" not in own.structured
    assert [store.analyses(i)[0].structured["batch"]["incidents"] for i in ids[1:]] == [2, 2]


def test_a_batch_is_one_model_call_after_each_incident_got_its_offline_report(
    store: SqlStore,
) -> None:
    from soc.analyze.analyst import BATCH_SYSTEM_PROMPT, build_providers
    from soc.config import Secret
    from tests.analyze.fake_gemini import API_KEY, FakeGemini, reply

    clock = ManualClock(T0)
    with FakeGemini() as fake:
        config = AnalyzeConfig(chain=["gemini"], gemini_base_url=fake.url, backoff_seconds=0.05)
        providers = build_providers(config, {"gemini_api_key": Secret(API_KEY)})
        worker = AnalysisWorker(store, Analyst(config, providers, clock), clock, offline_first=True)
        ids = _bots(store, 30)
        worker.notify(ids)
        assert worker.run_pending() == 30  # every one gets its offline report at once
        assert fake.generate_requests() == []
        fake.plan(
            reply(
                json.dumps(
                    {
                        "summary": "30 incidents below high severity from 30 source addresses.",
                        "what_happened": "Password guessing from 198.51.100.0/24; the most "
                        "active source was 198.51.100.30.",
                        "assessment": "Background noise; no login succeeded.",
                        "severity": "medium",
                        "confidence": "medium",
                    }
                )
            )
        )
        clock.advance(config.batch_wait_seconds)
        assert worker.run_pending() == 30
        (request,) = fake.generate_requests()
        assert request.body is not None
        sent = json.dumps(request.body)
        assert json.dumps(BATCH_SYSTEM_PROMPT)[1:40] in sent
        assert "<untrusted-data>" in sent
    rows = [store.analyses(i) for i in ids]
    assert all([r.provider for r in row] == ["offline", "gemini"] for row in rows)
    assert all(row[-1].grounded for row in rows)
    costly = [row[-1] for row in rows if row[-1].cost_usd > 0]
    assert len(costly) == 1 and costly[0].tokens_in > 0
    assert worker.analyst.usage.calls == 1


def test_a_restarted_worker_keeps_counting_what_the_budget_spent(store: SqlStore) -> None:
    from soc.analyze.analyst import build_providers
    from soc.config import Secret
    from tests.analyze.fake_gemini import API_KEY, FakeGemini, reply

    grounded = json.dumps(
        {
            "summary": "A brute-force attack from 203.0.113.9 made 20 failed attempts.",
            "what_happened": "Password guessing against root.",
            "assessment": "Medium.",
            "severity": "medium",
            "confidence": "high",
        }
    )
    with FakeGemini() as fake:
        config = AnalyzeConfig(
            chain=["gemini"],
            gemini_base_url=fake.url,
            batch_below_severity="low",
            max_calls_per_hour=1,
        )
        secrets = {"gemini_api_key": Secret(API_KEY)}

        def start() -> AnalysisWorker:
            analyst = Analyst(config, build_providers(config, secrets), SystemClock())
            return AnalysisWorker(store, analyst, SystemClock())

        fake.plan(reply(grounded))
        first = start()
        incident_id = _save(store)
        first.notify([incident_id])
        assert first.run_pending() == 1
        assert first.reports[incident_id].provider == "gemini"
        second = start()  # a restart within the hour: the call made is still counted
        assert second.analyst.budget.exceeded() == "1 model calls in the last hour"
        second.notify([_save(store, key="198.51.100.7")])
        assert second.run_pending() == 1
        (report,) = second.reports.values()
        assert report.provider == "offline"
        assert report.fallback_reason == "gemini: budget (1 model calls in the last hour)"
        assert len(fake.generate_requests()) == 1
        # tokens and dollars per day, too
        assert second.analyst.budget.tokens_today == first.analyst.budget.tokens_today > 0
        assert second.analyst.budget.cost_today == pytest.approx(first.analyst.budget.cost_today)
        assert first.analyst.budget.cost_today > 0


# --- reuse: a similar earlier incident's report instead of a model call ------------------


class _Precedents:
    """Stands in for the similar-incident memory (soc.similar), which has its own tests:
    here only the worker's decision is under test."""

    def __init__(self, matches: dict[int, list[tuple[int, float]]], max_age: float) -> None:
        self.matches = matches
        self.max_age_seconds = max_age

    def candidates(self, incident: Incident) -> list[tuple[int, float]]:
        return self.matches.get(int(incident.id or 0), [])


_GENERIC = {
    "summary": "Password guessing against the root account over SSH from one address.",
    "what_happened": "The address tried passwords for root repeatedly without success.",
    "assessment": "Commodity brute force; no login succeeded.",
    "severity": "medium",
    "confidence": "high",
}


def _gemini_worker(store: SqlStore, fake: Any, precedents: Any, clock: Clock) -> AnalysisWorker:
    from soc.analyze.analyst import build_providers
    from soc.config import Secret
    from tests.analyze.fake_gemini import API_KEY

    config = AnalyzeConfig(
        chain=["gemini"], gemini_base_url=fake.url, backoff_seconds=0.05, batch_below_severity="low"
    )
    providers = build_providers(config, {"gemini_api_key": Secret(API_KEY)})
    analyst = Analyst(config, providers, clock)
    return AnalysisWorker(store, analyst, clock, precedents=precedents)


def test_a_similar_incident_reuses_an_earlier_report_with_its_own_facts(store: SqlStore) -> None:
    from tests.analyze.fake_gemini import FakeGemini, reply

    clock = ManualClock(T0 + 100)
    with FakeGemini() as fake:
        first = _save(store)
        second = _save(store, key="198.51.100.7", source_ips=["198.51.100.7"], failures=35)
        worker = _gemini_worker(store, fake, _Precedents({second: [(first, 0.99)]}, 3600), clock)
        fake.plan(reply(json.dumps(_GENERIC)))
        worker.notify([first])
        assert worker.run_pending() == 1
        assert len(fake.generate_requests()) == 1
        worker.notify([second])
        assert worker.run_pending() == 1
        assert len(fake.generate_requests()) == 1  # no second model call
        assert worker.analyst.usage.cache_hits == 1
        (record,) = store.analyses(second)
        assert record.reused and record.provider == "gemini" and record.grounded
        assert record.cost_usd == 0 and record.tokens_in == 0
        origin = record.structured["reused_from"]
        assert origin["incident_id"] == first and origin["score"] == 0.99
        assert record.structured["summary"] == _GENERIC["summary"]
        # the evidence and counts are the new incident's, and the reuse is said
        assert "198.51.100.7" in record.markdown and "203.0.113.9" not in record.markdown
        assert "Failed attempts: 35" in record.markdown
        assert f"similar incident #{first}" in record.markdown


def test_reuse_is_refused_when_the_earlier_text_does_not_hold_for_the_new_facts(
    store: SqlStore,
) -> None:
    from tests.analyze.fake_gemini import FakeGemini, reply

    clock = ManualClock(T0 + 100)
    counted = {**_GENERIC, "what_happened": "The address made 17 failed attempts for root."}
    with FakeGemini() as fake:
        first = _save(store, failures=17, events=17)
        second = _save(store, key="198.51.100.7", source_ips=["198.51.100.7"], failures=35)
        # another severity: a different verdict, never reused (as across kinds)
        third = _save(store, key="192.0.2.4", source_ips=["192.0.2.4"], severity="high")
        matches = {second: [(first, 0.99)], third: [(first, 0.99)]}
        worker = _gemini_worker(store, fake, _Precedents(matches, 3600), clock)
        fake.plan(
            reply(json.dumps(counted)),
            reply(json.dumps({**_GENERIC, "what_happened": "Repeated guesses for root."})),
            reply(json.dumps({**_GENERIC, "severity": "high"})),
        )
        worker.notify([first])
        worker.run_pending()
        worker.notify([second, third])
        assert worker.run_pending() == 2
        # "17 failed attempts" is not the second incident's figure: it gets its own call
        assert len(fake.generate_requests()) == 3
        assert not any(r.reused for r in store.analyses(second) + store.analyses(third))
        assert worker.analyst.usage.cache_hits == 0


def test_an_old_or_offline_report_is_not_reused(store: SqlStore) -> None:
    from tests.analyze.fake_gemini import FakeGemini, reply

    clock = ManualClock(T0 + 100)
    with FakeGemini() as fake:
        first = _save(store)
        second = _save(store, key="198.51.100.7", source_ips=["198.51.100.7"])
        worker = _gemini_worker(store, fake, _Precedents({second: [(first, 0.99)]}, 3600), clock)
        fake.plan(reply(json.dumps(_GENERIC)), reply(json.dumps(_GENERIC)))
        worker.notify([first])
        worker.run_pending()
        clock.advance(3601)  # older than the reuse age
        worker.notify([second])
        worker.run_pending()
        assert len(fake.generate_requests()) == 2
        assert not store.analyses(second)[0].reused
