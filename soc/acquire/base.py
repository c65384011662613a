"""What a log source is: a generator of the lines available now, plus a checkpoint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from soc.events import Line

#: Longest line kept whole; longer lines are truncated to this and counted.
MAX_LINE_BYTES = 64 * 1024


@dataclass(slots=True)
class AcquireStats:
    """Counters a source keeps: lines and bytes read, and every anomaly by reason.

    Reasons in ``anomalies`` include ``invalid_utf8`` (bytes replaced by U+FFFD),
    ``truncated`` (line over ``MAX_LINE_BYTES``), ``malformed_frame`` (syslog),
    ``rotation``/``truncation``/``recreated`` (file events), ``buffer_full`` (UDP
    datagrams the kernel dropped) and ``unread_at_close`` (received, never handed
    to the engine because the source was closed).
    """

    lines: int = 0
    bytes: int = 0
    anomalies: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "bytes": self.bytes, **dict(sorted(self.anomalies.items()))}


class Source(Protocol):
    """A log source. ``read()`` yields the lines available now and then returns.

    It never blocks waiting for data: the engine calls ``read()`` again on its next
    turn. After the engine has committed everything derived from the lines read so
    far, it persists ``checkpoint()`` in the same store transaction; on restart it
    passes that state to ``restore()`` before the first ``read()``, and the source
    resumes exactly after the last committed line.
    """

    name: str
    stats: AcquireStats

    def read(self) -> Iterator[Line]:
        """Yield the complete lines available now; return when there are none."""
        ...

    # A source may also offer ``read_batches(size) -> Iterator[list[Line]]``: the
    # lines of ``read()`` in lists of ``size``, the checkpoint just after a list's
    # last line while suspended after it (see :func:`batches`).

    def checkpoint(self) -> dict[str, Any] | None:
        """JSON-serialisable position just after the last line yielded, or None."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from a state ``checkpoint()`` returned in an earlier run."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when the source will never yield again (end of a replayed file)."""
        ...

    def close(self) -> None:
        """Release files, sockets, threads and child processes."""
        ...


def batched_lines(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    """``lines`` in lists of ``size`` (the last may be shorter), each yielded as soon
    as it is full: a generator source is suspended just after a list's last line,
    so its checkpoint then is exactly the end of that list."""
    batch: list[Line] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def batches(source: Source, size: int) -> Iterator[list[Line]]:
    """The lines ``source`` has now, in lists of ``size``: its own ``read_batches``
    where it has one (the replay source cuts them out of a chunk at once), else its
    ``read()`` batched line by line."""
    read_batches = getattr(source, "read_batches", None)
    if read_batches is not None:
        return cast(Iterator[list[Line]], read_batches(size))
    return batched_lines(source.read(), size)


def decode_line(raw: bytes, stats: AcquireStats) -> str:
    """Decode one line's bytes (terminator already removed), counting anomalies.

    A trailing CR (CRLF files) is dropped; lines over ``MAX_LINE_BYTES`` are cut (on
    a UTF-8 character boundary, so at most 3 bytes short) and counted as
    ``truncated``; invalid UTF-8 becomes U+FFFD and is counted.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) > MAX_LINE_BYTES:
        # Cut on a character boundary: a UTF-8 sequence split by the cut is not
        # invalid input, so back up over its continuation bytes (at most 3).
        cut = MAX_LINE_BYTES
        while cut > MAX_LINE_BYTES - 3 and raw[cut] & 0xC0 == 0x80:
            cut -= 1
        raw = raw[:cut]
        stats.anomalies["truncated"] += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.anomalies["invalid_utf8"] += 1
        return raw.decode("utf-8", errors="replace")
