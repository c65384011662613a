"""Replay finished log files (plain or gzip), as fast as possible or paced on event time.

``ReplaySource`` reads its files in the configured order, each from its first line
to its last, and is ``exhausted`` after the last line of the last file. With
``speed = 0`` every ``read()`` yields up to ``max_batch`` lines. With a speed factor
it paces on event time: a line whose timestamp is ``t`` seconds after the first
timestamped line is due ``t / speed`` seconds (on ``clock.monotonic()``) after that
line was yielded, and ``read()`` returns, without sleeping, as soon as the next line
is not yet due.

Lines are cut and decoded a chunk (1 MiB) at a time: one split and, for plain
ASCII, one decode per chunk; chunks with a CR, a non-ASCII byte or an overlong
line are decoded line by line, each anomaly counted as the other sources count it.
"""

from __future__ import annotations

import glob
import gzip
import itertools
import math
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from soc.acquire.base import MAX_LINE_BYTES, AcquireStats, batched_lines, decode_line
from soc.clock import Clock
from soc.errors import ConfigError, SourceError
from soc.events import Line

_CHUNK_BYTES: Final = 1 << 20
_GZIP_MAGIC: Final = b"\x1f\x8b"
_GLOB_CHARS: Final = frozenset("*?[")

TimestampOf = Callable[[str], float | None]
_Readable = IO[bytes] | gzip.GzipFile


@dataclass(slots=True)
class ReplaySourceConfig:
    """Which files to replay, and how fast.

    ``paths`` are files or glob patterns, read in the given order (the matches of
    one glob in sorted order); gzip files are recognised by their magic bytes.
    ``speed`` 0 means as fast as possible; otherwise it is event seconds per wall
    second (10 replays ten seconds of log per second). ``max_batch`` bounds the
    lines one ``read()`` yields so the engine gets control back.
    """

    paths: list[str] = field(default_factory=list)
    speed: float = 0.0
    max_batch: int = 50_000

    def __post_init__(self) -> None:
        if (
            not isinstance(self.paths, list)
            or not self.paths
            or not all(isinstance(p, str) and p for p in self.paths)
        ):
            raise ConfigError("must be a non-empty list of file paths or globs", "paths")
        if (
            isinstance(self.speed, bool)
            or not isinstance(self.speed, int | float)
            or not math.isfinite(self.speed)
            or self.speed < 0
        ):
            raise ConfigError("must be a finite number >= 0 (0 = as fast as possible)", "speed")
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int):
            raise ConfigError("must be an integer", "max_batch")
        if self.max_batch < 1:
            raise ConfigError("must be >= 1", "max_batch")


def resolve_paths(patterns: list[str]) -> list[str]:
    """The files ``patterns`` name, in order, each once; raise if one names nothing."""
    files: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        expanded = str(Path(pattern).expanduser())
        if _GLOB_CHARS.intersection(expanded):
            # glob.glob, not Path.glob: patterns may be absolute.
            found = glob.glob(expanded)  # noqa: PTH207
            matches = sorted(m for m in found if Path(m).is_file())
            if not matches:
                raise SourceError("glob matches no file", pattern)
        else:
            if not Path(expanded).is_file():
                raise SourceError("no such file", pattern)
            matches = [expanded]
        for path in matches:
            if not os.access(path, os.R_OK):
                raise SourceError("file is not readable", path)
            if path not in seen:
                seen.add(path)
                files.append(path)
    return files


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


class _Pending:
    """A line read ahead of its due time, with the position just after it."""

    __slots__ = ("line_no", "position", "raw_len", "text", "timestamp")

    def __init__(
        self, text: str, raw_len: int, line_no: int, position: int, timestamp: float | None
    ) -> None:
        self.text = text
        self.raw_len = raw_len
        self.line_no = line_no
        self.position = position
        self.timestamp = timestamp


class _Block:
    """The lines of one chunk of a file, decoded, and how far they have been taken."""

    __slots__ = ("at", "line_no", "positions", "sizes", "texts")

    def __init__(
        self, texts: list[str], sizes: list[int], positions: list[int], line_no: int
    ) -> None:
        self.texts = texts
        self.sizes = sizes  # each line's bytes as read (no terminator)
        self.positions = positions  # the position just after each line
        self.line_no = line_no  # the line number of texts[0]
        self.at = 0  # the next line to take


class ReplaySource:
    """A source that replays finished files once, then is exhausted.

    ``timestamp_of`` extracts a line's event time (seconds since the epoch) for
    pacing; it is only called when ``speed`` is not 0. Lines it returns None for
    take the previous line's time. ``checkpoint()`` is the file and the position
    just after the last line yielded: a byte offset for plain files, a line count
    for gzip files (which cannot be seeked cheaply).
    """

    def __init__(
        self,
        name: str,
        config: ReplaySourceConfig,
        clock: Clock,
        *,
        timestamp_of: TimestampOf | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.stats = AcquireStats()
        self._clock = clock
        self._timestamp_of = timestamp_of if config.speed > 0 else None
        self._files = resolve_paths(config.paths)
        self._gzip = [_is_gzip(p) for p in self._files]
        # Where the next file to open starts: index into _files, and the restored
        # position inside it (offset for plain files, lines to skip for gzip).
        self._file_index = 0
        self._start_position = 0
        self._start_line_no = 0
        self._handle: _Readable | None = None
        self._lines: Iterator[tuple[list[bytes], list[int]]] | None = None
        self._block: _Block | None = None  # the lines of the chunk being read
        self._line_no = 0  # line number of the last line read from the open file
        self._held: _Pending | None = None
        # Position just after the last line *yielded*: what checkpoint() reports.
        self._done_index = 0
        self._done_line_no = 0
        self._done_position = 0
        self._last_timestamp: float | None = None
        self._anchor: tuple[float, float] | None = None  # (event time, monotonic)
        self._exhausted = False
        self.last_error: str | None = None  # the last file that could not be read, and why

    @property
    def files(self) -> list[str]:
        """The files this replay reads, in order (globs expanded)."""
        return list(self._files)

    @property
    def exhausted(self) -> bool:
        """True once the last line of the last file has been yielded."""
        return self._exhausted

    def read(self) -> Iterator[Line]:
        """Yield the lines due now (at most ``max_batch``); return when none is due."""
        for batch in self.read_batches(1):
            yield batch[0]

    def read_batches(self, size: int) -> Iterator[list[Line]]:
        """:meth:`read`'s lines in lists of ``size`` (the last one may be shorter).

        While suspended after a list, :meth:`checkpoint` is just after its last
        line. A list is cut out of the chunk being read at once, its bookkeeping done
        once, not line by line (a paced replay is read line by line, as it is due).
        """
        if self._exhausted:
            return
        received = self._clock.now()
        if self._timestamp_of is not None:
            yield from batched_lines(self._read_paced(received, self._timestamp_of), size)
            return
        left = self.config.max_batch
        stats = self.stats
        name = self.name
        batch: list[Line] = []
        while left > 0:
            block = self._block
            if block is None or block.at >= len(block.texts):
                block = self._block = self._next_block()
                if block is None:
                    self._exhausted = True
                    self._close_file()
                    break
            self._done_index = self._file_index
            path = self._files[self._file_index]
            first_no = block.line_no
            start = block.at
            end = min(len(block.texts), start + left, start + size - len(batch))
            left -= end - start
            positions = block.positions[start:end]
            batch.extend(
                map(
                    Line,
                    block.texts[start:end],
                    itertools.repeat(name),
                    itertools.repeat(path),
                    range(first_no + start, first_no + end),
                    positions,
                    itertools.repeat(received),
                )
            )
            # Before the yield: the checkpoint taken while suspended is just after
            # the batch's last line.
            block.at = end
            self._done_line_no = first_no + end - 1
            self._done_position = positions[-1]
            stats.lines += end - start
            stats.bytes += sum(block.sizes[start:end])
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _read_paced(self, received: float, timestamp_of: TimestampOf) -> Iterator[Line]:
        """``read`` on event time: line by line, each when it is due."""
        for _ in range(self.config.max_batch):
            pending = self._held if self._held is not None else self._next(timestamp_of)
            if pending is None:
                self._exhausted = True
                self._close_file()
                return
            if not self._due(pending):
                self._held = pending
                return
            self._held = None
            self._done_index = self._file_index
            self._done_line_no = pending.line_no
            self._done_position = pending.position
            self.stats.lines += 1
            self.stats.bytes += pending.raw_len
            yield Line(
                pending.text,
                self.name,
                self._files[self._file_index],
                pending.line_no,
                pending.position,
                received,
            )

    def checkpoint(self) -> dict[str, Any] | None:
        """The file and position just after the last line yielded."""
        state: dict[str, Any] = {
            "path": self._files[self._done_index],
            "line_no": self._done_line_no,
        }
        if not self._gzip[self._done_index]:
            state["offset"] = self._done_position
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Resume just after the line a previous ``checkpoint()`` named."""
        path = state.get("path")
        line_no = state.get("line_no")
        if path not in self._files:
            raise SourceError(f"checkpoint names a file not in this replay: {path!r}", self.name)
        if not isinstance(line_no, int) or isinstance(line_no, bool) or line_no < 0:
            raise SourceError(f"checkpoint has a bad line_no: {line_no!r}", self.name)
        index = self._files.index(path)
        if self._gzip[index]:
            position = line_no
        else:
            offset = state.get("offset")
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise SourceError(f"checkpoint has a bad offset: {offset!r}", self.name)
            if offset > Path(path).stat().st_size:
                raise SourceError(
                    f"checkpoint offset {offset} is past the end of {path} (file changed?)",
                    self.name,
                )
            position = offset
        self._close_file()
        self._held = None
        self._anchor = None
        self._last_timestamp = None
        self._exhausted = False
        self._file_index = index
        self._start_position = position
        self._start_line_no = line_no
        self._done_index = index
        self._done_line_no = line_no
        self._done_position = position

    def close(self) -> None:
        """Close the open file."""
        self._close_file()

    # --- internals ----------------------------------------------------------------

    def _due(self, pending: _Pending) -> bool:
        if self._timestamp_of is None or pending.timestamp is None:
            return True
        now = self._clock.monotonic()
        if self._anchor is None:
            self._anchor = (pending.timestamp, now)
            return True
        event0, mono0 = self._anchor
        return now >= mono0 + (pending.timestamp - event0) / self.config.speed

    def _next(self, timestamp_of: TimestampOf) -> _Pending | None:
        """The next line of the replay with its event time (paced replays)."""
        block = self._block
        if block is None or block.at >= len(block.texts):
            block = self._block = self._next_block()
            if block is None:
                return None
        i = block.at
        block.at += 1
        text = block.texts[i]
        timestamp = timestamp_of(text)
        if timestamp is None or not math.isfinite(timestamp):
            timestamp = self._last_timestamp
        else:
            self._last_timestamp = timestamp
        return _Pending(text, block.sizes[i], block.line_no + i, block.positions[i], timestamp)

    def _next_block(self) -> _Block | None:
        """The next chunk's lines of the replay, opening the next file as needed."""
        while self._file_index < len(self._files):
            if self._lines is None:
                self._lines = self._open_file()
                if self._lines is None:
                    self._advance_file()
                    continue
            try:
                raws, positions = next(self._lines)
            except StopIteration:
                self._advance_file()
                continue
            except (OSError, EOFError, zlib.error) as exc:
                # A corrupt or truncated gzip member: keep what was read, go on.
                self.stats.anomalies["read_error"] += 1
                self.last_error = f"{self._files[self._file_index]}: {exc}"
                self._advance_file()
                continue
            block = _Block(
                _decode(raws, self.stats), [len(r) for r in raws], positions, self._line_no + 1
            )
            self._line_no += len(raws)
            return block
        return None

    def _open_file(self) -> Iterator[tuple[list[bytes], list[int]]] | None:
        """Open the current file at its start position; None (counted) if it cannot be."""
        path = self._files[self._file_index]
        handle: _Readable
        try:
            if self._gzip[self._file_index]:
                handle = gzip.open(path, "rb")  # noqa: SIM115  (held open across read() calls)
                lines = _gzip_lines(handle, self._start_position)
            else:
                handle = open(path, "rb")  # noqa: SIM115
                handle.seek(self._start_position)
                lines = _plain_lines(handle, self._start_position)
        except OSError as exc:
            self.stats.anomalies["read_error"] += 1
            self.last_error = f"{path}: {exc}"
            return None
        self._handle = handle
        self._line_no = self._start_line_no
        return lines

    def _advance_file(self) -> None:
        self._close_file()
        self._file_index += 1
        self._start_position = 0
        self._start_line_no = 0

    def _close_file(self) -> None:
        self._lines = None
        self._block = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _split_lines(chunks: Iterator[bytes]) -> Iterator[tuple[list[bytes], list[int]]]:
    """Split a byte stream into lines, a chunk's at a time: the lines, and after each
    the bytes consumed so far.

    A line longer than ``MAX_LINE_BYTES`` keeps only its head (one byte over the
    limit, so that ``decode_line`` counts it as truncated): memory stays bounded
    whatever the file holds.
    """
    consumed = 0
    rest = b""
    rest_dropped = 0  # bytes of an overlong line already thrown away
    for chunk in chunks:
        lines = (rest + chunk if rest else chunk).split(b"\n")
        rest = lines.pop()
        if lines:
            steps = [len(line) + 1 for line in lines]
            steps[0] += rest_dropped
            rest_dropped = 0
            ends = list(itertools.accumulate(steps, initial=consumed))[1:]
            consumed = ends[-1]
            yield lines, ends
        if len(rest) > MAX_LINE_BYTES + 1:
            rest_dropped += len(rest) - MAX_LINE_BYTES - 1
            rest = rest[: MAX_LINE_BYTES + 1]
    if rest or rest_dropped:
        consumed += len(rest) + rest_dropped
        yield [rest], [consumed]


def _decode(raws: list[bytes], stats: AcquireStats) -> list[str]:
    """Each line's text as ``decode_line`` gives it; a chunk of plain ASCII at once."""
    joined = b"\n".join(raws)
    if joined.isascii() and b"\r" not in joined and max(map(len, raws)) <= MAX_LINE_BYTES:
        return joined.decode("ascii").split("\n")
    return [decode_line(raw, stats) for raw in raws]


def _read_chunks(handle: _Readable) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK_BYTES):
        yield chunk


def _plain_lines(handle: _Readable, offset: int) -> Iterator[tuple[list[bytes], list[int]]]:
    """Lines of a plain file from ``offset``, each with the byte offset after it."""
    for lines, ends in _split_lines(_read_chunks(handle)):
        yield lines, [offset + end for end in ends]


def _gzip_lines(handle: _Readable, skip: int) -> Iterator[tuple[list[bytes], list[int]]]:
    """Lines of a gzip file after its first ``skip`` lines, each with its line count."""
    count = 0
    for lines, _ in _split_lines(_read_chunks(handle)):
        first = count + 1
        count += len(lines)
        if count > skip:
            drop = max(0, skip - first + 1)
            yield lines[drop:], list(range(first + drop, count + 1))
