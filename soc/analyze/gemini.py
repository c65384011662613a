"""The Gemini provider: one ``generateContent`` call through the ``google-genai`` SDK.

The request asks for JSON (``response_mime_type="application/json"``) shaped by
the report's JSON Schema (``response_json_schema``, sent to the API as
``generationConfig.responseJsonSchema`` unchanged). Retries are done here, not
by the SDK (its own are switched off, and so are its automatic continuation
and function calling, which would send extra requests), as :mod:`soc.analyze.retry`
says: a 429, a 5xx (and 408), a timeout or a broken connection is tried again
with backoff; on 429 and 503 after the delay the server asks for
(``Retry-After``, else the ``RetryInfo`` detail Google puts in its error body).

Failures become :class:`~soc.analyze.base.ProviderError` with a reason:
``unavailable`` (no key), ``rate_limited``, ``server_error`` (5xx, or the
service could not be reached), ``timeout``, ``refused`` (other 4xx: a bad key,
an unknown model, a request the API rejects; never retried) and ``bad_output``
(an answer without text, blocked by safety filters, or unreadable). The API key
is revealed only to the SDK client and scrubbed from every message.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from soc.analyze.base import AnalyzeConfig, Completion, ProviderError, scrub
from soc.analyze.retry import MAX_DELAY_SECONDS, Failure, next_wait, parse_retry_after, too_long
from soc.config import Secret

_log = logging.getLogger(__name__)

#: API version the requests go to (``responseJsonSchema`` is a v1beta field).
API_VERSION: Final = "v1beta"

#: Finish reasons meaning the answer was withheld, whatever text came with it.
_BLOCKED_FINISH: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    }
)
_RETRY_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout, other transport) exception classes of the HTTP libraries the SDK may use.

    The SDK sends through ``httpx2`` or ``httpx``, whichever is installed; both
    raise their own exception types, which it lets through unchanged.
    """
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


_TIMEOUT_ERRORS, _TRANSPORT_ERRORS = _transport_errors()


class GeminiProvider:
    """Completions from the Gemini API (``google-genai``), with retries and backoff.

    The SDK client is created on the first call and reused (one connection
    pool); it is safe to share between threads.
    """

    name: str = "gemini"

    def __init__(self, config: AnalyzeConfig, secrets: Mapping[str, Secret]) -> None:
        self.config = config
        self.model: str = config.gemini_model
        self._key = secrets.get("gemini_api_key")
        self._client: genai.Client | None = None
        self._lock = threading.Lock()

    # --- Provider protocol -------------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why Gemini cannot be used (no API key), or None."""
        if self._key is None:
            return (
                "no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) or "
                "gemini_api_key in .streamlit/secrets.toml"
            )
        return None

    def start(self) -> None:
        """Nothing to start: the API is Google's (the client is made on the first call)."""

    def complete(self, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        """One JSON completion for ``user`` under ``system``, retrying transient failures.

        ``latency_s`` is the wall time of the whole call, retries and waits
        included; ``attempts`` counts the requests sent.
        """
        reason = self.unavailable()
        if reason is not None:
            raise ProviderError("unavailable", reason)
        client = self._get_client()
        request_config = types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_json_schema=dict(schema),
            temperature=self.config.temperature,
            max_output_tokens=self.config.max_output_tokens,
            candidate_count=1,
            automatic_continuation=False,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                response = client.models.generate_content(
                    model=self.model, contents=user, config=request_config
                )
            except genai_errors.APIError as exc:
                failure = self._api_failure(exc)
            except _TIMEOUT_ERRORS:
                failure = Failure(
                    "timeout",
                    f"no answer from the Gemini API within {self.config.timeout_seconds:g} s",
                    retryable=True,
                )
            except _TRANSPORT_ERRORS as exc:
                failure = Failure(
                    "server_error",
                    f"cannot reach the Gemini API ({type(exc).__name__}: {self._scrub(exc)})",
                    retryable=True,
                )
            except ValueError as exc:  # a 200 whose body is not a generateContent response
                raise ProviderError(
                    "bad_output",
                    f"unreadable answer from the Gemini API ({type(exc).__name__})",
                    attempts=attempts,
                ) from None
            else:
                return self._completion(response, started, attempts)

            wait = next_wait(
                failure,
                attempts,
                max_retries=self.config.max_retries,
                backoff_seconds=self.config.backoff_seconds,
            )
            if wait is None:
                raise ProviderError(
                    failure.reason,
                    f"{failure.message} (after {attempts} attempt{'s' if attempts > 1 else ''})",
                    retryable=failure.retryable,
                    attempts=attempts,
                ) from None
            _log.info(
                "gemini: %s on attempt %d, retrying in %.2f s", failure.reason, attempts, wait
            )
            time.sleep(wait)

    def close(self) -> None:
        """Close the SDK client's connection pool (a later call opens a new one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- internals -----------------------------------------------------------------

    def _get_client(self) -> genai.Client:
        with self._lock:
            if self._client is None:
                key = self._key.reveal().strip() if self._key is not None else ""
                if not key:
                    raise ProviderError("unavailable", "the Gemini API key is empty")
                options = types.HttpOptions(
                    base_url=self.config.gemini_base_url or None,
                    api_version=API_VERSION,
                    timeout=max(1, math.ceil(self.config.timeout_seconds * 1000)),  # ms
                    retry_options=types.HttpRetryOptions(attempts=1),  # we retry ourselves
                )
                self._client = genai.Client(enterprise=False, api_key=key, http_options=options)
            return self._client

    def _api_failure(self, exc: genai_errors.APIError) -> Failure:
        """Classify an HTTP error answer."""
        code = exc.code if isinstance(exc.code, int) else 0
        described = f"Gemini API answered {code} {exc.status or ''}".rstrip()
        if exc.message:
            described += f": {self._scrub(exc.message)}"
        if code == 429:
            delay = _server_delay(exc)
            message = described + too_long(delay)
            return Failure("rate_limited", message, retryable=True, server_delay=delay)
        if code >= 500:
            delay = _server_delay(exc) if code == 503 else None
            return Failure("server_error", described, retryable=True, server_delay=delay)
        if code == 408:
            return Failure("timeout", described, retryable=True)
        return Failure("refused", described, retryable=False)

    def _completion(
        self, response: types.GenerateContentResponse, started: float, attempts: int
    ) -> Completion:
        """The completion in ``response``, or ``bad_output`` when it holds no usable text.

        A ``bad_output`` carries the attempts and tokens spent: a withheld answer
        is still billed.
        """
        usage = response.usage_metadata
        tokens_in = tokens_out = 0
        if usage is not None:
            tokens_in = usage.prompt_token_count or 0
            tokens_out = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)

        def bad(detail: str) -> ProviderError:
            return ProviderError(
                "bad_output",
                f"Gemini: {detail}",
                attempts=attempts,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
            )

        if not response.candidates:
            feedback = response.prompt_feedback
            block = feedback.block_reason if feedback is not None else None
            if block is not None:
                raise bad(f"the prompt was blocked ({_enum_name(block)})")
            raise bad("the answer has no candidates")
        finish = _enum_name(response.candidates[0].finish_reason)
        if finish in _BLOCKED_FINISH:
            raise bad(f"the answer was withheld ({finish})")
        text = response.text
        if not text or not text.strip():
            raise bad(f"the answer has no text (finish reason {finish or '-'})")
        return Completion(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            model=response.model_version or self.model,
            latency_s=time.monotonic() - started,
            attempts=attempts,
        )

    def _scrub(self, value: object) -> str:
        return scrub(value, self._key)


def _enum_name(value: object) -> str:
    """``FinishReason.STOP`` → ``"STOP"``; None → ``""``."""
    if value is None:
        return ""
    name = getattr(value, "value", value)
    return str(name)


def _server_delay(exc: genai_errors.APIError) -> float | None:
    """Seconds the server asked to wait: ``Retry-After`` (seconds or a date), else RetryInfo."""
    headers = getattr(exc.response, "headers", None)
    raw = headers.get("retry-after") if headers is not None else None
    if isinstance(raw, str) and raw.strip():
        parsed = parse_retry_after(raw)
        if parsed is not None:
            return parsed
    details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else None
    items = details.get("details") if isinstance(details, dict) else None
    for item in items if isinstance(items, list) else []:
        if (
            isinstance(item, dict)
            and str(item.get("@type", "")).endswith("google.rpc.RetryInfo")
            and isinstance(item.get("retryDelay"), str)
        ):
            match = _RETRY_DELAY.match(item["retryDelay"])
            if match:
                return float(match[1])
    return None


__all__ = ["API_VERSION", "MAX_DELAY_SECONDS", "GeminiProvider"]
