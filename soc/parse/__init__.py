"""Parsing: log lines of a registered format into ECS-shaped events.

``FORMATS`` maps a format name (``ParseConfig.format``) to ``"module:Class"``; the
class is imported only when the format is used. Every format class is built as
``Cls(config, reference_time)`` and has ``name``, ``patterns`` (the names of what it
recognises), ``parse(text, line_no)`` and ``which(text)`` (the pattern a line
matches; for tests and debugging). ``"auto"`` picks the format from a sample of lines
(:func:`detect_format`).

:func:`iter_parse_file` and :func:`parse_file_stats` parse a whole file (plain or
gzip) for the CLI and the benchmarks.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from soc.acquire.base import MAX_LINE_BYTES, AcquireStats, decode_line
from soc.errors import ParseError
from soc.events import Event
from soc.parse.base import ParseConfig, Parser, ParseStats, Skip
from soc.parse.detect import detect_format as _detect
from soc.registry import resolve

FORMATS: dict[str, str] = {
    "syslog": "soc.parse.syslog:SyslogParser",
    "web_access": "soc.parse.web:WebAccessParser",
    "web_error": "soc.parse.web:WebErrorParser",
    "ecs_json": "soc.parse.jsonl:EcsJsonParser",
    "wazuh_json": "soc.parse.jsonl:WazuhJsonParser",
    "journal_json": "soc.parse.jsonl:JournalJsonParser",
}

#: Lines read from the start of a file to detect its format.
SAMPLE_SIZE = 64
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_COUNT_BATCH = 1 << 16


class FormatParser(Parser, Protocol):
    """A registered format's parser: a :class:`Parser` that names its patterns."""

    patterns: tuple[str, ...]
    #: When year-less stamps are dated from (the parser is built with it).
    reference_time: float

    def which(self, text: str) -> str | None:
        """The name of the pattern ``text`` matches, or None."""
        ...

    def state(self) -> dict[str, Any]:
        """What reading the next line depends on, as plain JSON (``{}`` for none)."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue a stream from :meth:`state` of a parser of the same format and config."""
        ...


#: What a registered class is: ``Cls(config, reference_time)`` makes a parser.
ParserFactory = Callable[[ParseConfig, float], FormatParser]


def parser_class(name: str) -> ParserFactory:
    """The class registered for format ``name``."""
    if name not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ParseError(f"unknown format {name!r} (known: {known}, auto)", "format")
    (factory,) = resolve(FORMATS, name, "format")
    cls: ParserFactory = factory
    return cls


def detect_format(sample: Sequence[str]) -> str:
    """The registered format the lines of ``sample`` look like (``syslog`` if unsure)."""
    return _detect(sample, FORMATS)


def make_parser(
    config: ParseConfig, *, reference_time: float, sample: Sequence[str] = ()
) -> FormatParser:
    """A parser for one source; format ``"auto"`` is detected from ``sample``."""
    name = detect_format(sample) if config.format == "auto" else config.format
    return parser_class(name)(config, reference_time)


def parse_batch(
    config: ParseConfig,
    format_name: str,
    reference_time: float,
    lines: Sequence[str],
    state: Mapping[str, Any] | None,
    *,
    first_line: int = 1,
) -> tuple[list[Event | Skip], dict[str, Any]]:
    """The parsing stage as a pure function: (batch, carried state) → (results, state).

    ``lines`` are one stream's next lines, numbered from ``first_line``; ``state``
    is what the previous call returned (None at the start). The same results come
    out as from one parser reading the stream line after line: the shape a
    distributed engine's per-partition operator runs.
    """
    parser = parser_class(format_name)(config, reference_time)
    if state is not None:
        parser.restore(state)
    parse = parser.parse
    results = [parse(text, number) for number, text in enumerate(lines, first_line)]
    return results, parser.state()


def _open(path: Path) -> io.BufferedIOBase:
    """``path`` for reading bytes, decompressed if it is gzip (by content, not name)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return path.open("rb")


def _text_blocks(f: io.BufferedIOBase, stats: AcquireStats) -> Iterator[list[str]]:
    """The lines of a binary file in blocks, decoded as sources decode them.

    A clean block of lines (valid UTF-8, no CR, no overlong line) is decoded and split
    in one go; any other block goes line by line through ``decode_line``, which drops
    a trailing CR, cuts lines over ``MAX_LINE_BYTES`` and replaces invalid UTF-8,
    counting each in ``stats``.
    """
    rest = b""
    while True:
        chunk = f.read(_CHUNK)
        data = rest + chunk if rest else chunk
        if not chunk:
            break
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if len(rest) > MAX_LINE_BYTES:
            # Only the first MAX_LINE_BYTES of a line are kept; one more marks the cut.
            rest = rest[: MAX_LINE_BYTES + 1]
        if cut == 0:
            continue
        block = data[:cut]
        if b"\r" not in block:
            try:
                lines = block.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                lines = []
            else:
                lines.pop()  # what follows the last newline: nothing
                # A line of at most MAX_LINE_BYTES // 4 characters fits in the limit.
                if max(map(len, lines)) <= MAX_LINE_BYTES // 4:
                    yield lines
                    continue
        yield [decode_line(raw, stats) for raw in block[:-1].split(b"\n")]
    if data:
        yield [decode_line(data, stats)]


def _text_lines(f: io.BufferedIOBase, stats: AcquireStats) -> Iterator[str]:
    """The lines of a binary file, decoded as sources decode them (``decode_line``)."""
    for block in _text_blocks(f, stats):
        yield from block


def _sample(path: Path) -> list[str]:
    lines: list[str] = []
    stats = AcquireStats()
    with _open(path) as f:
        for text in _text_lines(f, stats):
            if text.strip():
                lines.append(text)
                if len(lines) >= SAMPLE_SIZE:
                    break
    return lines


def _file_parser(path: Path, config: ParseConfig) -> FormatParser:
    try:
        reference_time = path.stat().st_mtime
        sample = _sample(path) if config.format == "auto" else []
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}", str(path)) from exc
    return make_parser(config, reference_time=reference_time, sample=sample)


def iter_parse_file(path: Path, config: ParseConfig) -> Iterator[tuple[int, Event | Skip]]:
    """Each line of ``path`` (1-based number) with its event or skip.

    Bytes are decoded as sources decode them (``decode_line``); the reference time
    for year-less stamps is the file's modification time.
    """
    parser = _file_parser(path, config)
    parse = parser.parse
    stats = AcquireStats()
    with _open(path) as f:
        for line_no, text in enumerate(_text_lines(f, stats), 1):
            yield line_no, parse(text, line_no)


def parse_file_stats(
    path: Path, config: ParseConfig, acquire: AcquireStats | None = None
) -> ParseStats:
    """What parsing ``path`` gives, counted (events by kind, ignored, unparsed).

    ``acquire``: also counts what decoding found (``invalid_utf8``, ``truncated``),
    as a source reading the file would.
    """
    parser = _file_parser(path, config)
    parse = parser.parse
    acquire = acquire if acquire is not None else AcquireStats()
    # Each line's kind (an event's) or Skip goes in a list that Counter sums up in C.
    outcomes: Counter[str | Skip] = Counter()
    keys: list[str | Skip] = []
    add = keys.append
    line_no = 0
    with _open(path) as f:
        for block in _text_blocks(f, acquire):
            for text in block:
                line_no += 1
                result = parse(text, line_no)
                add(result.kind if isinstance(result, Event) else result)
            outcomes.update(keys)
            keys.clear()
    stats = ParseStats()
    stats.add_outcomes(outcomes)
    return stats


__all__ = [
    "FORMATS",
    "SAMPLE_SIZE",
    "FormatParser",
    "ParseConfig",
    "ParseStats",
    "Parser",
    "ParserFactory",
    "Skip",
    "detect_format",
    "iter_parse_file",
    "make_parser",
    "parse_batch",
    "parse_file_stats",
    "parser_class",
]
