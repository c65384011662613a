"""Injectable clocks: stage code never reads ``time.time()`` directly."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where stage code gets "now" from: the wall clock live, event time in replay."""

    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards, for timeouts and pacing."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a manual clock advances instead of waiting."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to: tests and event-time replay."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds > 0:
            self._now += seconds
            self._mono += seconds

    def set(self, now: float) -> None:
        """Move the wall clock to ``now`` if that is later (event time never goes back)."""
        if now > self._now:
            self._mono += now - self._now
            self._now = now
