"""The ``openai_compatible`` provider: any server speaking OpenAI's chat completions API.

Ollama, vLLM, llama.cpp's ``llama-server``, LM Studio, a hosted OpenAI-style
API, and the command center's own model server (:mod:`soc.modelserver`, which
is how the ``local`` provider runs the bundled model) all answer
``POST {base_url}/chat/completions``. The request carries the system and user
messages and asks for JSON in the report's schema through
``response_format = {"type": "json_schema", ...}``, which these servers turn
into constrained decoding; whatever comes back is still validated and grounded
by the analyst like any other reply.

Retries follow :mod:`soc.analyze.retry` (429, 5xx, 408, timeouts and broken
connections; ``Retry-After`` honoured). Failures become
:class:`~soc.analyze.base.ProviderError`: ``unavailable`` (no endpoint),
``rate_limited``, ``server_error`` (5xx, or the server cannot be reached),
``timeout``, ``refused`` (other 4xx: a wrong key, an unknown model, a schema
the server rejects; never retried) and ``bad_output`` (no text, a refusal, an
unreadable body). The API key (optional) is sent only as a bearer token and
scrubbed from every message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx2

from soc.analyze.base import AnalyzeConfig, Completion, ProviderError, scrub
from soc.analyze.retry import Failure, next_wait, parse_retry_after, too_long
from soc.config import Secret

_log = logging.getLogger(__name__)

#: The ``json_schema`` name sent with the report's schema.
SCHEMA_NAME: Final = "incident_report"
#: Seed sent with every request: servers that honour it give the same reply to the same prompt.
SEED: Final = 20250101


class ChatClient:
    """One OpenAI-style endpoint: chat completions with retries, and its model list.

    ``keep_alive`` false opens a connection per request (the supervised local
    server restarts under its clients; a pooled connection to a dead process
    would fail the next request for nothing). ``explain(sent)``, called when a
    request sent at ``sent`` (monotonic) lost its connection or timed out, may
    say what happened to the server (it died, and how) instead of the bare
    transport error. Thread-safe.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Secret | None = None,
        timeout: float,
        max_retries: int,
        backoff_seconds: float,
        temperature: float,
        max_tokens: int,
        label: str = "the OpenAI-compatible server",
        keep_alive: bool = True,
        explain: Callable[[float], str | None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = label
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._key = api_key
        self._keep_alive = keep_alive
        self._explain = explain
        self._client: httpx2.Client | None = None
        self._lock = threading.Lock()

    def complete(self, model: str, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        """One JSON completion in ``schema``, retrying transient failures."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": SEED,
            "stream": False,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": SCHEMA_NAME,
                    "schema": {**schema, "additionalProperties": False},
                    "strict": True,
                },
            },
        }
        started = time.monotonic()
        attempts = 0
        tokens_in = tokens_out = 0
        while True:
            attempts += 1
            sent = time.monotonic()
            try:
                response = self._http().post(f"{self.base_url}/chat/completions", json=body)
            except httpx2.TimeoutException:
                failure = Failure(
                    "timeout", f"no answer from {self.label} within {self.timeout:g} s", True
                )
                failure = self._explained(failure, sent)
            except httpx2.TransportError as exc:
                failure = Failure(
                    "server_error",
                    f"cannot reach {self.label} ({type(exc).__name__}: {self._scrub(exc)})",
                    True,
                )
                failure = self._explained(failure, sent)
            else:
                if response.status_code == 200:
                    return self._completion(response, model, started, attempts)
                failure = self._http_failure(response)
                spent_in, spent_out = _usage(_json_or_none(response))
                tokens_in += spent_in
                tokens_out += spent_out
            wait = next_wait(
                failure,
                attempts,
                max_retries=self.max_retries,
                backoff_seconds=self.backoff_seconds,
            )
            if wait is None:
                raise ProviderError(
                    failure.reason,
                    failure.message + (f" (after {attempts} attempts)" if attempts > 1 else ""),
                    retryable=failure.retryable,
                    attempts=attempts,
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                )
            _log.info(
                "%s: %s on attempt %d, retrying in %.2f s", model, failure.reason, attempts, wait
            )
            time.sleep(wait)

    def models(self) -> list[str]:
        """The model names ``GET {base_url}/models`` lists (ProviderError when it cannot)."""
        try:
            response = self._http().get(f"{self.base_url}/models")
        except httpx2.TransportError as exc:
            raise ProviderError(
                "server_error", f"cannot reach {self.label} ({type(exc).__name__})", attempts=0
            ) from None
        if response.status_code != 200:
            failure = self._http_failure(response)
            raise ProviderError(failure.reason, f"listing models: {failure.message}")
        data = _json_or_none(response)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderError("bad_output", f"{self.label} answered /models without a list")
        return [str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- internals -----------------------------------------------------------------
    def _explained(self, failure: Failure, sent: float) -> Failure:
        """``failure`` as ``explain`` tells it (a server's death), else unchanged."""
        told = None if self._explain is None else self._explain(sent)
        if told is None:
            return failure
        return Failure("server_error", told, failure.retryable)

    def _http(self) -> httpx2.Client:
        with self._lock:
            if self._client is None:
                headers = {"Accept": "application/json"}
                if self._key is not None and self._key.reveal().strip():
                    headers["Authorization"] = f"Bearer {self._key.reveal().strip()}"
                limits = httpx2.Limits(max_keepalive_connections=None if self._keep_alive else 0)
                self._client = httpx2.Client(
                    headers=headers,
                    timeout=httpx2.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                    limits=limits,
                    follow_redirects=False,
                    trust_env=False,  # a proxy from the environment would see the prompts
                )
            return self._client

    def _http_failure(self, response: httpx2.Response) -> Failure:
        code = response.status_code
        described = f"{self.label} answered {code}"
        detail = _error_message(_json_or_none(response)) or response.text
        if detail:
            described += f": {self._scrub(detail)}"
        if code == 429:
            delay = _retry_after(response)
            return Failure("rate_limited", described + too_long(delay), True, delay)
        if code in (408, 504):
            return Failure("timeout", described, True)
        if code >= 500:
            delay = _retry_after(response) if code == 503 else None
            return Failure("server_error", described, True, delay)
        return Failure("refused", described, False)

    def _completion(
        self, response: httpx2.Response, model: str, started: float, attempts: int
    ) -> Completion:
        data = _json_or_none(response)
        tokens_in, tokens_out = _usage(data)

        def bad(detail: str) -> ProviderError:
            return ProviderError(
                "bad_output",
                f"{self.label}: {detail}",
                attempts=attempts,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
            )

        if not isinstance(data, dict):
            raise bad("the answer is not a JSON object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("the answer has no choices")
        choice: dict[str, Any] = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            message = {}
        if message.get("refusal"):
            raise bad(f"the model refused ({self._scrub(message['refusal'])})")
        finish = str(choice.get("finish_reason") or "")
        if finish == "content_filter":
            raise bad("the answer was withheld (content_filter)")
        text = message.get("content")
        if not isinstance(text, str) or not text.strip():
            raise bad(f"the answer has no text (finish reason {finish or '-'})")
        return Completion(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            model=str(data.get("model") or model),
            latency_s=time.monotonic() - started,
            attempts=attempts,
        )

    def _scrub(self, value: object) -> str:
        return scrub(value, self._key)


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _usage(data: Any) -> tuple[int, int]:
    """(prompt, completion) tokens from an answer's ``usage``, 0 where absent."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return 0, 0

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return count("prompt_tokens"), count("completion_tokens")


def _error_message(data: Any) -> str:
    """The message of an OpenAI-style (``{"error": {"message"}}``) or FastAPI error body."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    detail = data.get("detail")
    return detail if isinstance(detail, str) else ""


def _retry_after(response: httpx2.Response) -> float | None:
    raw = response.headers.get("retry-after")
    return parse_retry_after(raw) if raw else None


class OpenAICompatibleProvider:
    """Completions from the endpoint in ``openai_base_url`` (``openai_model``; key optional).

    With ``openai_model`` empty, the model is the one the server lists at
    ``/models`` when it lists exactly one (llama-server, vLLM and LM Studio
    with one model loaded); a server listing several needs the setting.
    """

    name: str = "openai_compatible"

    def __init__(self, config: AnalyzeConfig, secrets: Mapping[str, Secret]) -> None:
        self.config = config
        self.model: str = config.openai_model
        self._client = ChatClient(
            config.openai_base_url,
            api_key=secrets.get("openai_api_key"),
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
            backoff_seconds=config.backoff_seconds,
            temperature=config.temperature,
            max_tokens=config.max_output_tokens,
            label=f"the OpenAI-compatible server at {config.openai_base_url}",
        )
        self._lock = threading.Lock()

    def unavailable(self) -> str | None:
        """Why the endpoint cannot be used (none configured), or None."""
        if not self.config.openai_base_url:
            return (
                "no endpoint: set openai_base_url (for example http://127.0.0.1:11434/v1 "
                "for Ollama)"
            )
        return None

    def start(self) -> None:
        """Nothing to start: the server is someone else's."""

    def complete(self, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        reason = self.unavailable()
        if reason is not None:
            raise ProviderError("unavailable", reason)
        return self._client.complete(self._model(), system, user, schema)

    def close(self) -> None:
        self._client.close()

    def _model(self) -> str:
        with self._lock:
            if self.model:
                return self.model
            names = self._client.models()
            if len(names) != 1:
                listed = ", ".join(names[:10]) or "none"
                raise ProviderError(
                    "refused",
                    f"{self._client.label} serves {len(names)} models ({listed}): "
                    "set openai_model to one of them",
                )
            self.model = names[0]
            return self.model


__all__ = ["SCHEMA_NAME", "ChatClient", "OpenAICompatibleProvider"]
