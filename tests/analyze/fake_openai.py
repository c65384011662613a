"""A local HTTP server speaking OpenAI's chat completions wire protocol (as Ollama, vLLM,
llama.cpp's ``llama-server`` and LM Studio do).

- ``POST /v1/chat/completions``: a JSON body with ``model`` and ``messages``
  (each ``role`` and ``content``); a body that is not JSON, has no messages or
  a message without a role is a 400 with OpenAI's error shape
  (``{"error": {"message", "type", "param", "code"}}``); ``response_format``
  of type ``json_schema`` must carry ``json_schema.schema``;
- ``GET /v1/models``: ``{"object": "list", "data": [{"id", …}]}``;
- a key, when the fake has one, as ``Authorization: Bearer KEY``: missing or
  wrong is a 401 ``invalid_api_key`` quoting the key it got (as OpenAI answers,
  less its masking), so the client must keep it out of its messages;
- success as ``{"id", "object": "chat.completion", "created", "model",
  "choices": [{"index", "message": {"role", "content"}, "finish_reason"}],
  "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}``.

Tests queue answers with :meth:`FakeOpenAI.plan` (status, body, headers,
delay, or a dropped connection); an empty queue answers ``default_text``.
Every request is recorded with its arrival time.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import FakeService, TrackingHandler

API_KEY = "sk-fake-test-key-0123456789abcdef"
DEFAULT_TEXT = '{"severity": "high", "summary": "fake analyst reply"}'


@dataclass(slots=True)
class Planned:
    """One scripted answer: a status and JSON body (or raw bytes), headers, a delay, or a drop."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass(slots=True)
class Seen:
    """A request the fake received."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def completion(
    text: str, *, model: str = "qwen2.5:7b-instruct", finish: str = "stop", **message: Any
) -> Planned:
    """A successful chat completion whose message content is ``text``."""
    return Planned(
        body={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_763_719_200,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, **message},
                    "finish_reason": finish,
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        }
    )


def error(status: int, message: str = "", *, headers: dict[str, str] | None = None) -> Planned:
    """An OpenAI-style error answer."""
    kind = {400: "invalid_request_error", 401: "invalid_api_key", 429: "rate_limit_exceeded"}
    return Planned(
        status=status,
        body={
            "error": {
                "message": message or f"error {status}",
                "type": kind.get(status, "server_error"),
                "param": None,
                "code": kind.get(status, "server_error"),
            }
        },
        headers=headers or {},
    )


class FakeOpenAI(FakeService):
    """The fake server; ``key`` None accepts any request, ``models`` is what /models lists."""

    def __init__(self, *, key: str | None = API_KEY, models: list[str] | None = None) -> None:
        super().__init__()
        self.key = key
        self.models = ["qwen2.5:7b-instruct"] if models is None else models
        self.default_text = DEFAULT_TEXT
        self.requests: list[Seen] = []
        self._plan: deque[Planned] = deque()

    def plan(self, *answers: Planned) -> None:
        with self.lock:
            self._plan.extend(answers)

    def chat_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def _next(self) -> Planned:
        with self.lock:
            return self._plan.popleft() if self._plan else completion(self.default_text)

    def handler(self) -> type[TrackingHandler]:
        class Handler(TrackingHandler):
            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                fake: FakeOpenAI = self.server_fake  # type: ignore[assignment]
                path, _query, headers, raw = self.request_parts()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with fake.lock:
                    fake.requests.append(Seen(time.monotonic(), method, path, headers, body))
                given = headers.get("authorization", "")
                if fake.key is not None and given != f"Bearer {fake.key}":
                    # as some servers do: the key it got, quoted back
                    self._send(error(401, f"Incorrect API key provided: {given[7:]}."))
                    return
                if method == "GET" and path == "/v1/models":
                    data = [{"id": m, "object": "model", "owned_by": "me"} for m in fake.models]
                    self._send(Planned(body={"object": "list", "data": data}))
                    return
                if method != "POST" or path != "/v1/chat/completions":
                    self._send(error(404, f"no route {method} {path}"))
                    return
                problem = _request_problem(body)
                if problem:
                    self._send(error(400, problem))
                    return
                self._send(fake._next())

            def _send(self, planned: Planned) -> None:
                fake: FakeOpenAI = self.server_fake  # type: ignore[assignment]
                if planned.delay:
                    fake.stopping.wait(planned.delay)
                if planned.drop:
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                data = planned.raw if planned.raw is not None else json.dumps(planned.body).encode()
                with contextlib.suppress(OSError):
                    self.send_response(planned.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in planned.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)

        return Handler


def _request_problem(body: Any) -> str:
    """What OpenAI would refuse in a chat completion request, or ''."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' is a required property"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
        ):
            return f"Invalid value for 'messages[{i}].role'"
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("schema"), dict):
            return "Missing required parameter: 'response_format.json_schema.schema'."
    return ""
