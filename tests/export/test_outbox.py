"""Outbox → sink on the real store (SQLite, PostgreSQL): outages lose nothing, duplicate nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from soc.config import Secret
from soc.events import Incident
from soc.export import deliver_pending, enqueue_alert, to_ecs_alert
from soc.export.elastic import DEFAULT_INDEX, ElasticConfig, ElasticSink
from soc.export.webhook import WebhookConfig, WebhookSink
from soc.store import SqlStore
from tests.export.conftest import API_KEY, T0, Receiver, make_incident
from tests.export.fake_es import FakeElasticsearch

ES = "elasticsearch"
NOW = 1_800_000_000.0


def elastic(fake: FakeElasticsearch, **options: Any) -> ElasticSink:
    config = ElasticConfig(hosts=[fake.url], max_retries=0, **options)
    return ElasticSink(config, name=ES, secrets={"elasticsearch_api_key": Secret(API_KEY)})


def record(store: SqlStore, incident: Incident, sinks: list[str], *, now: float = T0) -> int:
    """Store the incident and queue its alert in one transaction, as the engine does."""
    with store.transaction(now=now) as tx:
        incident_id = tx.upsert_incident(incident, incident.key)
        enqueue_alert(tx, sinks, incident, host_name="bastion")
    return incident_id


def campaign(store: SqlStore, count: int, sinks: list[str]) -> list[int]:
    return [
        record(store, make_incident(f"192.0.2.{i}", id=None, failures=10 * i), sinks)
        for i in range(1, count + 1)
    ]


def test_outage_then_recovery_delivers_everything_exactly_once(
    store: SqlStore, fake_es: FakeElasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    sink = elastic(fake_es)
    ids = campaign(store, 5, [ES])
    assert store.outbox_depth(ES) == 5

    fake_es.stop()
    assert not sink.health().ok
    with caplog.at_level(logging.WARNING, logger="soc.export.outbox"):
        report = deliver_pending(store, sink, NOW)
    assert (report.attempted, report.delivered, report.failed) == (5, 0, 5)
    assert report.errors == {"ConnectionError": 5}
    assert report.next_attempt_at == NOW + 1.0  # backoff_base
    assert "5 failed" in caplog.text
    assert store.outbox_depth(ES) == 5  # nothing lost
    [first, *_] = store.pending_exports(ES, NOW + 1, 10)
    assert first.attempts == 1 and first.last_error is not None
    assert "ConnectionError" in first.last_error

    # backoff is respected: nothing is due before next_attempt_at
    assert deliver_pending(store, sink, NOW + 0.5).attempted == 0
    # still down at the retry: the wait doubles
    report = deliver_pending(store, sink, NOW + 1)
    assert (report.failed, report.next_attempt_at) == (5, NOW + 1 + 2.0)

    # the campaign behind incident 1 goes on during the outage: its queued alert is replaced
    record(store, make_incident("192.0.2.1", id=None, failures=5000, last_seen=T0 + 900), [ES])
    assert store.outbox_depth(ES) == 5

    fake_es.start()
    assert sink.health().ok
    report = deliver_pending(store, sink, NOW + 3)
    assert (report.attempted, report.delivered, report.failed) == (5, 5, 0)
    assert store.outbox_depth(ES) == 0
    assert deliver_pending(store, sink, NOW + 1000).attempted == 0

    stored = fake_es.documents(DEFAULT_INDEX)
    assert sorted(stored) == sorted(f"soc-{i}" for i in ids)
    assert fake_es.bulk_items_applied == 5  # each written once
    assert all(fake_es.version(DEFAULT_INDEX, f"soc-{i}") == 1 for i in ids)
    latest = stored[f"soc-{ids[0]}"]
    assert latest["soc"]["failures"] == 5000
    assert latest["event"]["end"] == "2025-11-21T10:15:00.000000Z"
    assert latest["event"]["kind"] == "alert"
    assert latest["threat"]["technique"]["subtechnique"]["id"] == ["T1110.001"]
    assert latest["related"]["ip"] == ["192.0.2.1"]
    assert latest["related"]["user"] == ["root"]
    assert latest["host"]["name"] == "bastion"


def test_rejected_items_are_retried_after_backoff(
    store: SqlStore, fake_es: FakeElasticsearch
) -> None:
    sink = elastic(fake_es)
    ids = campaign(store, 5, [ES])
    fake_es.reject_items = 2
    report = deliver_pending(store, sink, NOW)
    assert (report.delivered, report.failed) == (3, 2)
    assert report.errors == {"http_429": 2}
    assert store.outbox_depth(ES) == 2
    assert deliver_pending(store, sink, NOW + 0.9).attempted == 0
    report = deliver_pending(store, sink, NOW + 1)
    assert (report.delivered, report.failed) == (2, 0)
    assert sorted(fake_es.documents(DEFAULT_INDEX)) == sorted(f"soc-{i}" for i in ids)
    assert fake_es.bulk_items_applied == 5


def test_lost_acknowledgement_is_resent_without_a_duplicate(
    store: SqlStore, fake_es: FakeElasticsearch
) -> None:
    sink = elastic(fake_es)
    ids = campaign(store, 3, [ES])
    fake_es.drop_bulk_responses = 1
    assert deliver_pending(store, sink, NOW).failed == 3
    assert store.outbox_depth(ES) == 3
    assert deliver_pending(store, sink, NOW + 1).delivered == 3
    assert sorted(fake_es.documents(DEFAULT_INDEX)) == sorted(f"soc-{i}" for i in ids)
    assert fake_es.bulk_items_applied == 6  # written twice, still one document each


def test_a_permanent_rejection_waits_the_longest_backoff(
    store: SqlStore, fake_es: FakeElasticsearch
) -> None:
    sink = elastic(fake_es, index="logs-soc.alerts-default", install_template=False)
    campaign(store, 1, [ES])
    report = deliver_pending(store, sink, NOW)
    assert report.errors == {"http_400": 1}
    assert report.next_attempt_at == NOW + 300.0
    [row] = store.pending_exports(ES, NOW + 300, 10)
    assert row.last_error is not None and "op_type of create" in row.last_error


def test_several_queued_updates_of_one_incident_send_only_the_newest(
    store: SqlStore, fake_es: FakeElasticsearch
) -> None:
    sink = elastic(fake_es)
    incident = make_incident("192.0.2.77", id=None, failures=10)
    incident_id = record(store, incident, [ES])
    newer = make_incident("192.0.2.77", id=incident_id, failures=20)
    with store.transaction(now=T0) as tx:
        tx.enqueue_export(ES, incident_id, to_ecs_alert(newer), replace_pending=False)
    assert store.outbox_depth(ES) == 2
    report = deliver_pending(store, sink, NOW)
    assert (report.superseded, report.delivered) == (1, 1)
    assert store.outbox_depth(ES) == 0
    assert fake_es.documents(DEFAULT_INDEX)[f"soc-{incident_id}"]["soc"]["failures"] == 20
    assert fake_es.bulk_items_applied == 1


def test_webhook_through_the_outbox_with_a_failing_receiver(
    store: SqlStore, receiver: Receiver
) -> None:
    sink = WebhookSink(
        WebhookConfig(url=receiver.url, token_secret="webhook_token"),  # noqa: S106 (a name)
        secrets={"webhook_token": Secret("hook-token-123")},
    )
    ids = campaign(store, 3, ["webhook", ES])
    receiver.script = [200, 503, 200]
    report = deliver_pending(store, sink, NOW)
    assert (report.delivered, report.failed) == (2, 1)
    assert report.errors == {"http_503": 1}
    assert store.outbox_depth("webhook") == 1
    assert store.outbox_depth(ES) == 3  # each sink has its own queue
    report = deliver_pending(store, sink, NOW + 1)
    assert report.delivered == 1
    assert store.outbox_depth("webhook") == 0

    bodies = receiver.bodies()
    assert len(bodies) == 4  # 3 alerts + 1 retry
    delivered = {b["soc"]["incident"]["id"] for b in bodies}
    assert delivered == set(ids)
    retried = [r for r in receiver.received if r.headers["x-soc-alert-id"] == f"soc-{ids[1]}"]
    assert len(retried) == 2
    # the retry carries the same idempotency key: the receiver can drop a duplicate
    assert retried[0].headers["idempotency-key"] == retried[1].headers["idempotency-key"]
    assert all(r.headers["authorization"] == "Bearer hook-token-123" for r in receiver.received)


def test_a_backlog_drains_in_batches(store: SqlStore, fake_es: FakeElasticsearch) -> None:
    sink = elastic(fake_es, batch_size=2)
    campaign(store, 5, [ES])
    reports = []
    while True:
        report = deliver_pending(store, sink, NOW)
        if not report.attempted or report.failed:
            break
        reports.append(report.delivered)
    assert reports == [2, 2, 1]
    assert len(fake_es.bulk_requests()) == 3
    assert store.outbox_depth(ES) == 0
