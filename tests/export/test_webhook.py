"""The JSON webhook sink against local HTTP servers."""

# ruff: noqa: S105, S106  (made-up tokens and the names of secrets)

from __future__ import annotations

import logging
import socket
import time

import pytest

from soc.config import Secret
from soc.errors import ConfigError
from soc.export import build_sink, to_ecs_alert
from soc.export.webhook import WebhookConfig, WebhookSink
from tests.export.conftest import Receiver, make_incident

TOKEN = "whk-7f3c9e1a5b"


def hook(url: str, **options: object) -> WebhookSink:
    config = WebhookConfig(url=url, token_secret="webhook_token", **options)  # type: ignore[arg-type]
    return WebhookSink(config, secrets={"webhook_token": Secret(TOKEN)})


def docs(count: int) -> list[dict[str, object]]:
    return [to_ecs_alert(make_incident(f"198.51.100.{i}", id=i)) for i in range(1, count + 1)]


def test_posts_one_json_alert_per_request(receiver: Receiver) -> None:
    sink = hook(receiver.url)
    alerts = docs(2)
    result = sink.deliver(alerts)
    assert [(r.ok, r.status) for r in result.results] == [(True, 200), (True, 200)]
    assert [r.path for r in receiver.received] == ["/hooks/soc", "/hooks/soc"]
    first = receiver.received[0]
    assert first.method == "POST"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["x-soc-alert-id"] == "soc-1"
    assert first.headers["idempotency-key"].startswith("soc-1-")
    assert first.headers["user-agent"].startswith("soc-command-center/")
    body = first.json()
    assert "_id" not in body
    assert body["event"]["kind"] == "alert"
    assert body["threat"]["technique"]["id"] == ["T1110"]
    assert body == {k: v for k, v in alerts[0].items() if k != "_id"}


def test_status_classification(receiver: Receiver) -> None:
    sink = hook(receiver.url)
    receiver.script = [500, 429, 404, 204]
    results = sink.deliver(docs(4)).results
    assert [(r.ok, r.status, r.retryable) for r in results] == [
        (False, 500, True),
        (False, 429, True),
        (False, 404, False),
        (True, 204, True),
    ]
    assert results[0].error is not None and "nope" in results[0].error  # the receiver's answer


def test_redirects_are_never_followed(receiver: Receiver, other_receiver: Receiver) -> None:
    sink = hook(receiver.url)
    receiver.script = [("redirect", other_receiver.url)]
    [result] = sink.deliver(docs(1)).results
    assert (result.ok, result.status, result.retryable) == (False, 302, False)
    assert result.error is not None and "not followed" in result.error
    assert other_receiver.received == []  # neither the alert nor the token went there


def test_unreachable_endpoint_fails_fast_for_the_whole_batch() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens
    sink = hook(f"http://127.0.0.1:{port}/hook")
    results = sink.deliver(docs(3)).results
    assert all(not r.ok and r.status is None and r.retryable for r in results)
    assert results[0].error is not None and "ConnectionRefusedError" in results[0].error
    assert results[1].error is not None and results[1].error.startswith("not attempted")
    health = sink.health()
    assert not health.ok and "unreachable" in health.detail


def test_timeout_is_a_retryable_failure(receiver: Receiver) -> None:
    sink = hook(receiver.url, timeout=0.3)
    receiver.script = [("sleep", 1.0)]
    started = time.monotonic()
    results = sink.deliver(docs(3)).results
    assert time.monotonic() - started < 0.9  # one timeout, not three
    assert all(not r.ok and r.status is None and r.retryable for r in results)
    assert len(receiver.received) == 1
    assert sink.health().ok


def test_token_is_required_when_named_and_never_shown(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match="not set") as info:
        WebhookSink(WebhookConfig(url=receiver.url, token_secret="webhook_token"), secrets={})
    assert info.value.where == "token_secret"
    with pytest.raises(ConfigError, match="line break"):
        WebhookSink(
            WebhookConfig(url=receiver.url, token_secret="t"), secrets={"t": Secret("a\r\nX: y")}
        )

    with caplog.at_level(logging.DEBUG):
        sink = build_sink(
            "webhook",
            {
                "url": receiver.url,
                "token_secret": "webhook_token",
                "token_header": "X-Token",
                "token_prefix": "",
            },
            secrets={"webhook_token": Secret(TOKEN)},
        )
        # a receiver that echoes our headers back in its error body
        receiver.script = [("echo", 500)]
        [echoed] = sink.deliver(docs(1)).results
        texts = [repr(sink), str(echoed), str(sink.health())]
    assert receiver.received[0].headers["x-token"] == TOKEN
    assert echoed.error is not None and "***" in echoed.error
    for text in [*texts, caplog.text]:
        assert TOKEN not in text


def test_anonymous_webhook_sends_no_token(receiver: Receiver) -> None:
    sink = WebhookSink(WebhookConfig(url=receiver.url))
    assert sink.deliver(docs(1)).ok
    assert "authorization" not in receiver.received[0].headers
