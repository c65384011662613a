"""What a parser is: one log line in, an ``Event`` or a counted reason out."""

from __future__ import annotations

import abc
import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, NamedTuple, Protocol

from soc.events import Event, Line


class Skip:
    """Why a line gave no event. Shared singletons: the hot path allocates nothing.

    ``recognized`` is True when the format understood the line and it simply is not
    a security event (``Server listening on …``): that is *ignored*, not *unparsed*.
    """

    __slots__ = ("reason", "recognized")

    def __init__(self, reason: str, recognized: bool) -> None:
        self.reason = reason
        self.recognized = recognized

    def __repr__(self) -> str:
        return f"Skip({self.reason!r}, recognized={self.recognized})"


NO_MATCH: Final = Skip("no_match", False)  # no parser of this format understood the line
BAD_TIMESTAMP: Final = Skip("bad_timestamp", False)
BAD_JSON: Final = Skip("bad_json", False)
BLANK: Final = Skip("blank", True)
NOT_RELEVANT: Final = Skip("not_security_relevant", True)


class Header(NamedTuple):
    """Where a line is and what its framing says: one value for every message handler.

    ``program`` is the syslog tag's program (ECS ``process.name``), ``line`` the
    line's 1-based number in its source and ``raw`` the line itself when the source
    keeps it for evidence. Every event built from the line copies these.
    """

    timestamp: float | None
    hostname: str | None
    program: str
    pid: int | None
    line: int | None
    raw: str | None


#: ``new_header((timestamp, hostname, program, pid, line, raw))``: a ``Header`` without
#: the generated ``__new__``'s Python frame (the hot path makes one per line).
new_header: Final = functools.partial(tuple.__new__, Header)

#: Builds the result of a message family from its expression's match (named groups)
#: and the line's header.
Builder = Callable[[re.Match[str], Header], Event | Skip]


class Row(NamedTuple):
    """One message family of a program's table.

    ``start``: how its messages start (sshd: the first word; PAM: the spelling sshd
    hands over); ``regex``: the family's one expression (named groups); ``build``:
    the name of the parser's method that builds the result (a :data:`Builder`).

    ``shortcut``: the row reads only the commonest shape of a family that a later row
    of the same word reads in full, with a cheaper expression, the same group names
    and a builder that gives what that row's would: it changes no answer, only the
    cost (a property test compares the table with and without its shortcuts).
    """

    start: str
    regex: re.Pattern[str]
    build: str
    shortcut: bool = False


class LineParser(abc.ABC):
    """``parse`` and ``which`` of a parser whose ``_parse`` reads a line as one pattern
    and returns that pattern's name with the result (web logs, JSON documents); no
    state across lines unless a subclass keeps some (``state``/``restore``)."""

    @abc.abstractmethod
    def _parse(self, text: str, line_no: int | None) -> tuple[str | None, Event | Skip]:
        """The name of the pattern that read ``text`` (None if none did) and the result."""

    def parse(self, text: str, line_no: int | None = None) -> Event | Skip:
        """Parse one line (without its terminator)."""
        return self._parse(text, line_no)[1]

    def which(self, text: str) -> str | None:
        """The name of the pattern the line matches, or None (for tests and debugging)."""
        return recognized_name(*self._parse(text, None))

    def state(self) -> dict[str, Any]:
        """Nothing: each line is read on its own (caches are not state)."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:  # noqa: B027  (stateful ones override)
        """Nothing to continue (see :meth:`state`)."""


def recognized_name(name: str | None, result: Event | Skip) -> str | None:
    """``name`` when the line was understood (an event or a recognised skip), else None."""
    if isinstance(result, Event) or result.recognized:
        return name
    return None


class Parser(Protocol):
    """Turns one line of one format into an event.

    A parser instance belongs to one source: it may keep state across lines of
    that source (the year of traditional syslog timestamps, per-connection sshd
    state). It never raises on bad input: it returns a ``Skip``.
    """

    name: str

    def parse(self, text: str, line_no: int | None = None) -> Event | Skip:
        """Parse one line (without its terminator)."""
        ...


@dataclass(slots=True)
class ParseConfig:
    """How a source's lines are parsed.

    ``format`` is a registered format name or ``"auto"`` (detected from the first
    lines). ``timezone`` is the IANA zone of timestamps that carry none
    (traditional syslog, web access logs without offset): ``"local"`` means this
    machine's zone. ``year`` fixes the year of year-less timestamps (otherwise it
    is inferred from the reference time, with New Year rollover handled).
    ``keep_raw`` keeps the original line on each event (for evidence).
    """

    format: str = "auto"
    timezone: str = "local"
    year: int | None = None
    keep_raw: bool = True


@dataclass(slots=True)
class ParseStats:
    """What parsing did with every line: an event of a kind, ignored, or unparsed."""

    lines: int = 0
    events: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    unparsed: Counter[str] = field(default_factory=Counter)

    def add_outcomes(self, outcomes: Mapping[str | Skip, int]) -> None:
        """Account for lines by outcome: an event's kind, or the ``Skip`` a line gave."""
        for key, n in outcomes.items():
            self.lines += n
            if isinstance(key, Skip):
                (self.ignored if key.recognized else self.unparsed)[key.reason] += n
            else:
                self.events += n
                self.by_kind[key] += n

    @property
    def unparsed_total(self) -> int:
        return sum(self.unparsed.values())

    def merge(self, other: ParseStats) -> None:
        self.lines += other.lines
        self.events += other.events
        self.by_kind.update(other.by_kind)
        self.ignored.update(other.ignored)
        self.unparsed.update(other.unparsed)

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "events": self.events,
            "by_kind": dict(sorted(self.by_kind.items())),
            "ignored": sum(self.ignored.values()),
            "unparsed": self.unparsed_total,
            "unparsed_by_reason": dict(sorted(self.unparsed.items())),
        }


_KIND: Final = attrgetter("kind")


def parse_lines(
    parse: Callable[[str, int | None], Event | Skip], lines: Iterable[Line], stats: ParseStats
) -> list[Event]:
    """The events of ``lines`` in order, each line counted in ``stats``.

    The batch loop of one parser: the outcomes are summed once per call (in C, by
    ``Counter``), not once per line.
    """
    events: list[Event] = []
    skipped: list[Skip] = []
    event, skip = events.append, skipped.append
    for line in lines:
        result = parse(line.text, line.line_no)
        if isinstance(result, Skip):
            skip(result)
        else:
            event(result)
    outcomes: Counter[str | Skip] = Counter(skipped)
    outcomes.update(map(_KIND, events))
    stats.add_outcomes(outcomes)
    return events
