"""When a failed model call is tried again: shared by the HTTP providers (Gemini, OpenAI API).

A 429, a 5xx (and 408), a timeout or a broken connection is tried again up to
``max_retries`` times, after an exponential backoff from ``backoff_seconds``
(doubling, at most :data:`MAX_DELAY_SECONDS`) or, when the server says how long
to wait (``Retry-After``, or a provider's own hint), after that delay. A server
asking for more than :data:`MAX_DELAY_SECONDS` is not retried at all: the call
fails at once (a daily quota, typically), so the chain falls back instead of waiting.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

#: Longest wait between two attempts, and longest server-requested delay honoured.
MAX_DELAY_SECONDS: Final = 60.0


@dataclass(slots=True, frozen=True)
class Failure:
    """One failed attempt: what to report and whether (and when) to try again."""

    reason: str
    message: str
    retryable: bool
    #: Seconds the server asked to wait (Retry-After, RetryInfo), if it did.
    server_delay: float | None = None


def next_wait(
    failure: Failure, attempts: int, *, max_retries: int, backoff_seconds: float
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up now."""
    if not failure.retryable or attempts > max_retries:
        return None
    if failure.server_delay is not None:
        if failure.server_delay > MAX_DELAY_SECONDS:
            return None  # the server wants more than we would wait: fall back now
        return failure.server_delay
    return min(backoff_seconds * 2.0 ** (attempts - 1), MAX_DELAY_SECONDS)


def parse_retry_after(value: str) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP date (RFC 9110 §10.2.3); None if neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def too_long(delay: float | None) -> str:
    """The note added to a message when the server asks for a longer wait than we give."""
    if delay is not None and delay > MAX_DELAY_SECONDS:
        return f" (asks to wait {delay:g} s, more than {MAX_DELAY_SECONDS:g} s)"
    return ""


__all__ = ["MAX_DELAY_SECONDS", "Failure", "next_wait", "parse_retry_after", "too_long"]
