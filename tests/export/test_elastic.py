"""The Elasticsearch sink, through the official client, against a fake server on a real socket."""

from __future__ import annotations

import json
import logging

import pytest
from elasticsearch import Elasticsearch

from soc.clock import ManualClock
from soc.config import Secret
from soc.export import build_sink, to_ecs_alert
from soc.export.elastic import DEFAULT_INDEX, ElasticConfig, ElasticSink
from tests.export.conftest import API_KEY, T0, make_incident
from tests.export.fake_es import FakeElasticsearch

NOW = 1_800_000_000.0  # wall clock at sending (2027-01-15T08:00:00Z)


def es_sink(fake: FakeElasticsearch, **options: object) -> ElasticSink:
    config = ElasticConfig(hosts=[fake.url], **options)  # type: ignore[arg-type]
    return ElasticSink(
        config, secrets={"elasticsearch_api_key": Secret(API_KEY)}, clock=ManualClock(NOW)
    )


def alerts(count: int, **fields: object) -> list[dict[str, object]]:
    return [
        to_ecs_alert(make_incident(f"198.51.100.{i}", id=i, **fields), host_name="bastion")
        for i in range(1, count + 1)
    ]


def test_bulk_writes_ecs_alerts_with_stable_ids(fake_es: FakeElasticsearch) -> None:
    sink = es_sink(fake_es)
    docs = alerts(3, users=["root", "oracle"])
    result = sink.deliver(docs)
    assert [r.ok for r in result.results] == [True, True, True]
    assert [r.status for r in result.results] == [201, 201, 201]

    # the template went in first, then ONE bulk request in the client's wire format
    paths = [(r.method, r.path) for r in fake_es.requests]
    assert ("PUT", f"/_index_template/soc-alerts-{DEFAULT_INDEX}") in paths
    [bulk] = fake_es.bulk_requests()
    assert bulk.method == "PUT"
    assert bulk.path == "/_bulk"
    assert bulk.headers["content-type"] == (
        "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
    )
    assert bulk.headers["authorization"] == f"ApiKey {API_KEY}"
    lines = [json.loads(line) for line in bulk.body.splitlines()]
    assert lines[0] == {"index": {"_index": DEFAULT_INDEX, "_id": "soc-1"}}
    assert "_id" not in lines[1]  # metadata, not source

    template = fake_es.templates[f"soc-alerts-{DEFAULT_INDEX}"]
    assert template["index_patterns"] == [DEFAULT_INDEX]
    assert "data_stream" not in template
    props = template["template"]["mappings"]["properties"]
    assert props["source"]["properties"]["ip"] == {"type": "ip"}
    assert props["related"]["properties"]["ip"] == {"type": "ip"}

    stored = fake_es.documents(DEFAULT_INDEX)
    assert sorted(stored) == ["soc-1", "soc-2", "soc-3"]
    assert not fake_es.indices[DEFAULT_INDEX].data_stream  # a plain index: overwritable
    doc = stored["soc-2"]
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["ingested"] == "2027-01-15T08:00:00.000000Z"  # wall clock, not event time
    assert doc["@timestamp"] == "2025-11-21T10:00:10.000000Z"
    assert doc["threat"]["technique"]["subtechnique"]["id"] == ["T1110.001"]
    assert doc["threat"]["tactic"]["id"] == ["TA0006"]
    assert doc["source"]["ip"] == "198.51.100.2"
    assert doc["related"] == {"ip": ["198.51.100.2"], "user": ["root", "oracle"]}
    assert doc["host"]["name"] == "bastion"
    assert doc["soc"]["failures"] == 10
    # the outbox's copy is untouched by sending
    assert "ingested" not in docs[1]["event"]  # type: ignore[operator]

    # and the official client reads it back by id
    client = Elasticsearch(fake_es.url, api_key=API_KEY)
    got = client.get(index=DEFAULT_INDEX, id="soc-2")
    assert got["_source"]["message"] == doc["message"]
    client.close()
    sink.close()


def test_campaign_update_overwrites_its_one_document(fake_es: FakeElasticsearch) -> None:
    sink = es_sink(fake_es)
    first = to_ecs_alert(make_incident(id=9, failures=10))
    later = to_ecs_alert(make_incident(id=9, failures=4000, last_seen=T0 + 600, severity="high"))
    assert sink.deliver([first]).ok
    assert sink.deliver([later]).ok
    stored = fake_es.documents(DEFAULT_INDEX)
    assert list(stored) == ["soc-9"]
    assert stored["soc-9"]["soc"]["failures"] == 4000
    assert stored["soc-9"]["event"]["severity"] == 73
    assert fake_es.version(DEFAULT_INDEX, "soc-9") == 2


def test_per_item_429_is_reported_per_document(fake_es: FakeElasticsearch) -> None:
    sink = es_sink(fake_es)
    fake_es.reject_items = 1
    result = sink.deliver(alerts(3))
    first, *rest = result.results
    assert (first.ok, first.status, first.retryable) == (False, 429, True)
    assert first.error is not None and "es_rejected_execution_exception" in first.error
    assert all(r.ok for r in rest)
    assert sorted(fake_es.documents(DEFAULT_INDEX)) == ["soc-2", "soc-3"]


def test_503_fails_every_document_retryably_and_health_says_so(
    fake_es: FakeElasticsearch,
) -> None:
    sink = es_sink(fake_es, max_retries=0)
    fake_es.unavailable = True
    result = sink.deliver(alerts(2))
    assert [(r.ok, r.status, r.retryable) for r in result.results] == [(False, 503, True)] * 2
    health = sink.health()
    assert not health.ok
    assert "503" in health.detail
    fake_es.unavailable = False
    assert sink.health().ok
    assert sink.deliver(alerts(2)).ok


def test_connection_refused_then_back(fake_es: FakeElasticsearch) -> None:
    sink = es_sink(fake_es)
    assert sink.health().ok
    fake_es.stop()
    result = sink.deliver(alerts(2))
    assert [(r.ok, r.status, r.retryable) for r in result.results] == [(False, None, True)] * 2
    assert result.results[0].error is not None
    assert "ConnectionError" in result.results[0].error
    health = sink.health()
    assert not health.ok and "ConnectionError" in health.detail
    fake_es.start()
    health = sink.health()
    assert health.ok, health.detail
    assert health.detail == "Elasticsearch 9.1.0, cluster 'fake-cluster'"
    assert sink.deliver(alerts(2)).ok


def test_lost_acknowledgement_never_duplicates(fake_es: FakeElasticsearch) -> None:
    # The bulk is applied but the answer is lost: the retry overwrites the same _id.
    sink = es_sink(fake_es, max_retries=0)
    fake_es.drop_bulk_responses = 1
    docs = alerts(2)
    assert not sink.deliver(docs).results[0].ok
    assert sink.deliver(docs).ok
    assert sorted(fake_es.documents(DEFAULT_INDEX)) == ["soc-1", "soc-2"]
    assert fake_es.version(DEFAULT_INDEX, "soc-1") == 2

    # with the client's own immediate retry the first call already succeeds
    retrying = es_sink(fake_es, max_retries=1)
    fake_es.drop_bulk_responses = 1
    assert retrying.deliver(docs).ok
    assert sorted(fake_es.documents(DEFAULT_INDEX)) == ["soc-1", "soc-2"]


def test_index_op_on_a_data_stream_is_refused_create_appends_without_duplicates(
    fake_es: FakeElasticsearch,
) -> None:
    stream = "logs-soc.alerts-default"
    # logs-*-* is a data stream by the built-in template...
    overwriting = es_sink(fake_es, index=stream, install_template=False)
    [refused] = overwriting.deliver(alerts(1)).results
    assert (refused.ok, refused.status, refused.retryable) == (False, 400, False)
    assert refused.error is not None and "op_type of create" in refused.error
    assert fake_es.indices[stream].data_stream

    appending = es_sink(fake_es, index=stream, op_type="create")
    assert not appending.latest_only
    first = to_ecs_alert(make_incident(id=5, failures=10))
    [ok] = appending.deliver([first]).results
    assert ok.ok and ok.status == 201
    [again] = appending.deliver([first]).results  # a retry whose answer was lost
    assert again.ok and again.status == 409
    update = to_ecs_alert(make_incident(id=5, failures=99))
    assert appending.deliver([update]).ok
    ids = sorted(fake_es.documents(stream))
    assert len(ids) == 2 and all(i.startswith("soc-5-") for i in ids)
    assert not any(r.path.startswith("/_index_template") for r in fake_es.requests)

    # ...unless our exact-name template, which outranks it, makes it a plain index
    templated = es_sink(fake_es, index="logs-soc.other-default")
    assert templated.deliver(alerts(1)).ok
    assert not fake_es.indices["logs-soc.other-default"].data_stream


def test_template_refusal_is_logged_once_and_delivery_goes_on(
    fake_es: FakeElasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_es.template_status = 403
    sink = es_sink(fake_es)
    with caplog.at_level(logging.WARNING, logger="soc.export.elastic"):
        assert sink.deliver(alerts(1)).ok
        assert sink.deliver(alerts(2)).ok
    warnings = [r for r in caplog.records if "index template" in r.getMessage()]
    assert len(warnings) == 1
    assert "403" in warnings[0].getMessage()
    assert sum(r.path.startswith("/_index_template") for r in fake_es.requests) == 1


def test_wrong_api_key_is_not_retryable_and_unhealthy(fake_es: FakeElasticsearch) -> None:
    config = ElasticConfig(hosts=[fake_es.url], install_template=False)
    sink = ElasticSink(config, secrets={"elasticsearch_api_key": Secret("wrong")})
    [result] = sink.deliver(alerts(1)).results
    assert (result.ok, result.status, result.retryable) == (False, 401, False)
    health = sink.health()
    assert not health.ok and "401" in health.detail
    anonymous = ElasticSink(ElasticConfig(hosts=[fake_es.url], api_key_secret=""))
    assert not anonymous.health().ok
    assert "authorization" not in fake_es.requests[-1].headers


def test_a_server_that_is_not_elasticsearch_is_refused() -> None:
    with FakeElasticsearch(product_header=False) as impostor:
        sink = ElasticSink(ElasticConfig(hosts=[impostor.url], install_template=False))
        health = sink.health()
        assert not health.ok
        assert "UnsupportedProductError" in health.detail
        [result] = sink.deliver(alerts(1)).results
        assert not result.ok and result.retryable
        assert result.error is not None and "UnsupportedProductError" in result.error


def test_api_key_never_in_logs_reprs_or_errors(
    fake_es: FakeElasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        sink = build_sink(
            "elasticsearch",
            {"hosts": [fake_es.url], "max_retries": 0},
            secrets={"elasticsearch_api_key": Secret(API_KEY)},
        )
        texts = [repr(sink), repr(getattr(sink, "config", None)), str(sink.health())]
        texts.append(str(sink.deliver(alerts(2))))
        fake_es.unavailable = True
        texts += [str(sink.deliver(alerts(1))), str(sink.health())]
        fake_es.stop()
        texts += [str(sink.deliver(alerts(1))), str(sink.health())]
    assert fake_es.requests and all(
        r.headers.get("authorization") == f"ApiKey {API_KEY}" for r in fake_es.requests
    )  # the key was used on every request...
    assert caplog.records  # (the client did log at DEBUG/INFO)
    for text in [*texts, caplog.text]:
        assert API_KEY not in text  # ...and shown nowhere
        assert API_KEY[:12] not in text
