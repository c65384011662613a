"""A local HTTP server speaking the Gemini API's ``generateContent`` wire protocol.

The tests cannot reach Google, so the Gemini provider talks to this instead,
through the real ``google-genai`` SDK over a real socket. It answers the way the
Gemini Developer API (``generativelanguage.googleapis.com``) does:

- ``POST /{v1beta|v1}/models/{model}:generateContent`` with a JSON body
  (``contents``, ``systemInstruction``, ``generationConfig``, …); anything else is
  a 404;
- the API key in ``x-goog-api-key`` (or ``?key=``): missing → 403
  ``PERMISSION_DENIED``, wrong → 400 ``INVALID_ARGUMENT`` with an ``ErrorInfo``
  ``API_KEY_INVALID`` detail, as Google answers;
- request checks Google makes: a body that is not JSON, an unknown field at the
  top level or in ``generationConfig``, no ``contents``, both ``responseSchema``
  and ``responseJsonSchema``, a schema without ``responseMimeType:
  application/json``: 400 ``INVALID_ARGUMENT``; a model outside ``models`` (when
  given): 404 ``NOT_FOUND``;
- errors as ``{"error": {"code", "message", "status", "details"?}}``;
- success as ``{"candidates": [{"content": {"parts": [{"text"}], "role":
  "model"}, "finishReason", "index"}], "usageMetadata": {…}, "modelVersion",
  "responseId"}``, with token counts estimated at four characters a token
  unless the plan gives them.

Each test scripts the answers: :meth:`FakeGemini.plan` queues
:class:`Planned` responses (status, body, headers, delay before answering, or a
dropped connection), consumed one per accepted request; when the queue is
empty the server replies with ``default_text``. Helpers build the usual ones:
:func:`reply`, :func:`error`, :func:`blocked`. Every request is recorded
(:attr:`FakeGemini.requests`) with its arrival time, so a test can check what
the SDK sent and when.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import FakeService, TrackingHandler

API_KEY = "AIzaSyFAKE-test-key-0123456789abcdefghij"
DEFAULT_TEXT = '{"severity": "high", "summary": "fake analyst reply"}'

_PATH = re.compile(r"^/(?P<version>v1beta|v1)/models/(?P<model>[^/:]+):generateContent$")

#: google.rpc.Code names for the HTTP statuses the API uses.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_DEFAULT_MESSAGES = {
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}

#: Fields of GenerateContentRequest and of its GenerationConfig (v1beta, camelCase).
_REQUEST_FIELDS = frozenset(
    {
        "model",
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
        "labels",
        "serviceTier",
        "store",
    }
)
_GENERATION_CONFIG_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "_responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
    }
)


@dataclass
class Planned:
    """One scripted answer.

    ``body``: a dict (sent as JSON), str or bytes (sent as is), or None: a
    success built from ``text`` (and ``finish_reason``, token counts) for a 200,
    Google's error body for anything else. ``delay``: seconds to wait before
    answering (a timeout, when longer than the client's). ``drop``: close the
    connection without any answer.
    """

    status: int = 200
    body: dict[str, Any] | str | bytes | None = None
    text: str | None = None
    finish_reason: str = "STOP"
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    thoughts_tokens: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def reply(text: str, **options: Any) -> Planned:
    """A 200 whose single candidate says ``text`` (options: see :class:`Planned`)."""
    return Planned(status=200, text=text, **options)


def error(
    status: int,
    message: str | None = None,
    *,
    retry_after: str | None = None,
    retry_delay: str | None = None,
    delay: float = 0.0,
) -> Planned:
    """Google's error answer; ``retry_after`` sets the header, ``retry_delay`` a RetryInfo."""
    body = error_body(status, message or _DEFAULT_MESSAGES.get(status, "error"))
    if retry_delay is not None:
        body["error"]["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Planned(status=status, body=body, headers=headers, delay=delay)


def blocked(reason: str = "SAFETY") -> Planned:
    """A 200 without candidates: the prompt itself was blocked."""
    return Planned(
        status=200,
        body={
            "promptFeedback": {"blockReason": reason},
            "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
            "modelVersion": "gemini-2.5-flash",
        },
    )


def error_body(status: int, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    """``{"error": {"code", "message", "status"}}`` as the API sends it."""
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return {"error": err}


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes
    at: float  # time.monotonic() on arrival
    version: str = ""
    model: str = ""
    body: dict[str, Any] | None = None
    status: int = 0  # what the fake answered (0: no answer)

    @property
    def generation_config(self) -> dict[str, Any]:
        config = (self.body or {}).get("generationConfig", {})
        return config if isinstance(config, dict) else {}

    @property
    def system_text(self) -> str:
        return _texts((self.body or {}).get("systemInstruction"))

    @property
    def user_text(self) -> str:
        contents = (self.body or {}).get("contents", [])
        return "".join(_texts(c) for c in contents) if isinstance(contents, list) else ""


class FakeGemini(FakeService):
    """A threaded fake Gemini API on 127.0.0.1; use as a context manager.

    ``api_key``: the only key accepted. ``models``: model ids served (None: any).
    """

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        models: set[str] | None = None,
        default_text: str = DEFAULT_TEXT,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = models
        self.default_text = default_text
        self.requests: list[Recorded] = []
        self._planned: deque[Planned] = deque()
        self._responses = 0

    def handler(self) -> type[TrackingHandler]:
        return _Handler

    # --- scripting and inspection --------------------------------------------------

    def plan(self, *answers: Planned) -> None:
        """Queue answers for the next accepted requests, in order."""
        with self.lock:
            self._planned.extend(answers)

    @property
    def pending(self) -> int:
        """Planned answers not used yet."""
        with self.lock:
            return len(self._planned)

    def generate_requests(self) -> list[Recorded]:
        """The ``generateContent`` requests received, in order."""
        with self.lock:
            return [r for r in self.requests if r.model]

    # --- request handling (handler threads) ------------------------------------------

    def handle(self, req: Recorded) -> Planned:
        """The answer to ``req``, after the checks Google makes."""
        with self.lock:
            self.requests.append(req)
        match = _PATH.match(req.path)
        if req.method != "POST" or match is None:
            return _err(404, f"Method not found: {req.method} {req.path}")
        req.version, req.model = match["version"], match["model"]
        key = req.headers.get("x-goog-api-key") or (req.query.get("key") or [""])[0]
        if not key:
            return _err(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity "
                "to call this API.",
            )
        if key != self.api_key:
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            return _err(400, "API key not valid. Please pass a valid API key.", [info])
        try:
            body = json.loads(req.raw or b"null")
        except (ValueError, UnicodeDecodeError):
            return _err(400, "Invalid JSON payload received. Unexpected token.")
        if not isinstance(body, dict):
            return _err(400, "Invalid JSON payload received. Expected an object.")
        req.body = body
        problem = _check_request(body)
        if problem is not None:
            return _err(400, problem)
        if self.models is not None and req.model not in self.models:
            return _err(
                404,
                f"models/{req.model} is not found for API version {req.version}, or is "
                "not supported for generateContent. Call ListModels to see the list of "
                "available models and their supported methods.",
            )
        with self.lock:
            planned = self._planned.popleft() if self._planned else reply(self.default_text)
            self._responses += 1
            response_id = f"fake-{self._responses:06d}"
        if planned.delay > 0:
            self.stopping.wait(planned.delay)
        if planned.status == 200 and planned.body is None:
            planned = Planned(
                status=200,
                body=self._success(req, planned, response_id),
                headers=planned.headers,
                drop=planned.drop,
            )
        elif planned.body is None:
            planned = Planned(
                status=planned.status,
                body=error_body(planned.status, _DEFAULT_MESSAGES.get(planned.status, "error")),
                headers=planned.headers,
                drop=planned.drop,
            )
        return planned

    def _success(self, req: Recorded, planned: Planned, response_id: str) -> dict[str, Any]:
        text = planned.text if planned.text is not None else self.default_text
        prompt = (
            planned.prompt_tokens
            if planned.prompt_tokens is not None
            else _estimate_tokens(req.system_text + req.user_text)
        )
        output = (
            planned.output_tokens if planned.output_tokens is not None else _estimate_tokens(text)
        )
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output + (planned.thoughts_tokens or 0),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if planned.thoughts_tokens:
            usage["thoughtsTokenCount"] = planned.thoughts_tokens
        return {
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": planned.finish_reason,
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": req.model,
            "responseId": response_id,
        }


class _Handler(TrackingHandler):
    server_fake: FakeGemini

    def _serve(self) -> None:
        path, query, headers, raw = self.request_parts()
        req = Recorded(
            method=self.command,
            path=path,
            query=query,
            headers=headers,
            raw=raw,
            at=time.monotonic(),
        )
        planned = self.server_fake.handle(req)
        if planned.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = planned.body
        if isinstance(body, dict):
            data = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = body or b""
        req.status = planned.status
        try:
            self.send_response(planned.status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Server", "scaffolding on HTTPServer2")
            self.send_header("Vary", "Origin, X-Origin, Referer")
            for name, value in planned.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up (a timeout)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve


def _err(status: int, message: str, details: list[Any] | None = None) -> Planned:
    return Planned(status=status, body=error_body(status, message, details))


def _check_request(body: dict[str, Any]) -> str | None:
    """What Google would refuse in this request body (a 400 message), or None."""
    for name in body:
        if name not in _REQUEST_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    config = body.get("generationConfig", {})
    if not isinstance(config, dict):
        return "Invalid JSON payload received. generation_config must be an object."
    for name in config:
        if name not in _GENERATION_CONFIG_FIELDS:
            return (
                f'Invalid JSON payload received. Unknown name "{name}" at '
                "'generation_config': Cannot find field."
            )
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    has_schema = "responseSchema" in config
    has_json_schema = "responseJsonSchema" in config or "_responseJsonSchema" in config
    if has_schema and has_json_schema:
        return "response_schema and response_json_schema cannot both be set."
    if (has_schema or has_json_schema) and config.get("responseMimeType") != "application/json":
        return (
            "* GenerateContentRequest.generation_config.response_mime_type: "
            "only 'application/json' is supported with a response schema."
        )
    return None


def _texts(content: Any) -> str:
    """The text parts of a Content object, joined."""
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts", [])
    if not isinstance(parts, list):
        return ""
    return "".join(p["text"] for p in parts if isinstance(p, dict) and "text" in p)


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))
