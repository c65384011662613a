"""Sinks never put a credential into the outbox's error column, their repr or the logs.

Real sinks against local servers (a webhook receiver that answers with a
redirect quoting part of the token; an Elasticsearch address that refuses), the
real outbox on the real store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from soc.config import Secret
from soc.export import deliver_pending, enqueue_alert
from soc.export.elastic import ElasticConfig, ElasticSink
from soc.export.webhook import WebhookConfig, WebhookSink
from soc.redact import process_secrets
from soc.store import SqlStore
from tests.export.conftest import T0, Receiver, make_incident

# Test values, never real credentials.
TOKEN = "whk-Secret-Token-83c1d9e4"  # noqa: S105
QUERY_TOKEN = "q-T0ken-5521aa7"  # noqa: S105
ES_PASSWORD = "Es-Passw0rd-552"  # noqa: S105
NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    """Only what each sink knows of its own secrets may mask them here."""
    process_secrets().clear()
    yield
    process_secrets().clear()


def _queue(store: SqlStore, sink: str) -> None:
    with store.transaction(now=T0) as tx:
        incident = make_incident("192.0.2.1", id=None)
        incident.id = tx.upsert_incident(incident, incident.key)
        enqueue_alert(tx, [sink], incident, host_name="bastion")


def test_a_webhook_echo_of_its_token_is_not_stored(
    store: SqlStore, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{receiver.url}?channel=soc&token={QUERY_TOKEN}"
    sink = WebhookSink(
        WebhookConfig(url=url, token_secret="webhook_token", backoff_base=1.0),  # noqa: S106
        name="hook",
        secrets={"webhook_token": Secret(TOKEN)},
    )
    # a receiver redirecting to an address quoting the token, cut short and re-cased
    location = f"https://evil.example/{TOKEN[:12].upper()}/cb?sig={QUERY_TOKEN}&token={TOKEN}"
    receiver.script = [("redirect", location)]
    _queue(store, "hook")
    with caplog.at_level(logging.DEBUG):
        report = deliver_pending(store, sink, NOW)
    assert (report.attempted, report.failed) == (1, 1)
    (row,) = store.pending_exports("hook", NOW + 3600, 10)
    error = row.last_error or ""
    assert error == "302 redirect to https://evil.example/***/cb?sig=***&token=*** not followed"
    shown = [error, repr(sink), caplog.text]
    for text in shown:
        for leaked in (TOKEN, TOKEN[:12].upper(), QUERY_TOKEN):
            assert leaked not in text
    assert "token=***" in repr(sink)


def test_an_elasticsearch_host_password_is_not_stored_or_shown(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    # port 1 refuses: a connection error that names the node
    sink = ElasticSink(
        ElasticConfig(hosts=[f"http://elastic:{ES_PASSWORD}@127.0.0.1:1"], max_retries=0),
        name="siem",
    )
    _queue(store, "siem")
    with caplog.at_level(logging.DEBUG):
        report = deliver_pending(store, sink, NOW)
        health = sink.health()
    sink.close()
    assert report.failed == 1 and not health.ok
    (row,) = store.pending_exports("siem", NOW + 3600, 10)
    assert row.last_error is not None and row.last_error.startswith("ConnectionError")
    assert "hosts=['http://elastic:***@127.0.0.1:1']" in repr(sink)
    for text in (row.last_error, repr(sink), health.detail, caplog.text):
        assert ES_PASSWORD not in text
