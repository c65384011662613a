"""Read log lines piped into standard input (``tail -F x.log | soc run --stdin``).

The file descriptor is switched to non-blocking mode (and switched back on
``close()``, because a terminal's descriptor is shared with the shell), so
``read()`` returns as soon as nothing is waiting. End of input makes the source
exhausted; the last line is yielded even without a final newline.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from soc.acquire.base import MAX_LINE_BYTES, AcquireStats, decode_line
from soc.clock import Clock
from soc.errors import ConfigError, SourceError
from soc.events import Line

_READ_BYTES: Final = 1 << 20


@dataclass(slots=True)
class StdinSourceConfig:
    """How much one ``read()`` may yield before the engine gets control back."""

    max_batch: int = 50_000

    def __post_init__(self) -> None:
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int):
            raise ConfigError(f"must be an integer, not {self.max_batch!r}", "max_batch")
        if self.max_batch < 1:
            raise ConfigError("must be >= 1", "max_batch")


class StdinSource:
    """A source reading the process's standard input (or ``stream``, for tests).

    There is no checkpoint: a pipe cannot be rewound.
    """

    def __init__(
        self,
        name: str,
        config: StdinSourceConfig,
        clock: Clock,
        *,
        stream: IO[bytes] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.stats = AcquireStats()
        self._clock = clock
        if stream is None:
            if sys.stdin is None:
                raise SourceError("there is no standard input to read", name)
            stream = sys.stdin.buffer
        try:
            self._fd = stream.fileno()
            mode = os.fstat(self._fd).st_mode
        except (OSError, ValueError) as exc:
            raise SourceError(f"standard input cannot be read: {exc}", name) from exc
        self._was_blocking: bool | None = None
        if not stat.S_ISREG(mode):
            # A regular file never blocks; pipes, terminals and sockets do.
            self._was_blocking = os.get_blocking(self._fd)
            os.set_blocking(self._fd, False)
        self._pending: deque[bytes] = deque()
        self._partial = b""
        self._partial_dropped = False  # the partial line outgrew the limit and was cut
        self._line_no = 0
        self._eof = False
        self._closed = False
        self.last_error: str | None = None

    @property
    def exhausted(self) -> bool:
        """True once input has ended and every line was yielded."""
        return self._eof and not self._pending

    def read(self) -> Iterator[Line]:
        """Yield the lines waiting on the input (at most ``max_batch``), then return."""
        budget = self.config.max_batch
        while budget > 0 and not self._closed:
            if not self._pending and (self._eof or not self._fill()):
                return
            received = self._clock.now()
            while self._pending and budget > 0:
                raw = self._pending.popleft()
                budget -= 1
                self._line_no += 1
                self.stats.lines += 1
                self.stats.bytes += len(raw)
                yield Line(
                    decode_line(raw, self.stats), self.name, "stdin", self._line_no, None, received
                )

    def checkpoint(self) -> dict[str, Any] | None:
        """None: standard input cannot be rewound."""
        return None

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing to restore: input starts where it is."""

    def close(self) -> None:
        """Give the descriptor back its blocking mode; the descriptor stays open."""
        if self._closed:
            return
        self._closed = True
        if self._was_blocking is not None:
            with contextlib.suppress(OSError):  # already closed by its owner
                os.set_blocking(self._fd, self._was_blocking)

    def _fill(self) -> bool:
        """Read one chunk into ``_pending``; False if no line came out of it."""
        try:
            chunk = os.read(self._fd, _READ_BYTES)
        except BlockingIOError:
            return False
        except OSError as exc:
            self.stats.anomalies["read_error"] += 1
            self.last_error = str(exc)
            chunk = b""
        if not chunk:
            self._eof = True
            if self._partial:
                self._pending.append(self._partial)
                self._partial = b""
            return bool(self._pending)
        if self._partial_dropped:
            # Still inside an overlong line whose head is kept: drop up to its end.
            end = chunk.find(b"\n")
            if end < 0:
                return False
            self._pending.append(self._partial)
            self._partial = b""
            self._partial_dropped = False
            chunk = chunk[end + 1 :]
        data = self._partial + chunk if self._partial else chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        self._pending.extend(lines)
        if len(self._partial) > MAX_LINE_BYTES + 1:
            # Keep one byte over the limit so decode_line counts the line as truncated.
            self._partial = self._partial[: MAX_LINE_BYTES + 1]
            self._partial_dropped = True
        return bool(self._pending)
