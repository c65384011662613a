"""Syslog framing, in every shape auth logs come in, dispatched to the program parsers.

(Why this file is long: the framings are many and each is small; the stamps' year
inference and memo belong to them, and so does the dispatch to the program parsers.)

One parser reads all of these, line by line (a stream may mix them):

* traditional BSD syslog / ``journalctl -o short``: ``Nov 21 23:14:28 host sshd[42]: msg``
  (also ``-o short-precise`` fractions, and a year after the day);
* RFC 3339 stamps, Debian 12's rsyslog default and ``journalctl -o short-iso``:
  ``2025-11-21T23:14:28.123456+01:00 host sshd[42]: msg`` (offset ``+01:00``, ``+0100``
  or ``Z``);
* RFC 5424: ``<38>1 2025-11-21T23:14:28Z host sshd 42 - [sd …] msg``;
* an optional ``<PRI>`` before any of them, and the noise fail2ban tolerates: no host
  name, ``[sshd]`` or ``sshd`` without a PID, ``<auth.info>``, ``@vserver_…``, Solaris
  ``[ID 800047 auth.info]``, the kernel's ``[ 12.345]`` uptime, journalctl's
  ``-- Boot … --`` markers, rsyslog's ``message repeated N times: [ … ]`` and BSD
  syslogd's ``last message repeated N times``.

The message goes to the parser of its program: ``sshd``, ``sshd-session`` and
``sshd-auth`` to :mod:`soc.parse.sshd`, any PAM line to :mod:`soc.parse.pam`, ``kernel``
and ``ulogd`` to :mod:`soc.parse.firewall`, web servers (``nginx``, ``httpd``,
``apache2``) to :mod:`soc.parse.web`; other programs are recognised and skipped
(``other_program``). :func:`parse_program_message` is that dispatch on its own, for
sources that deliver the program and message already split (the journal).

Stamps without a year get ``ParseConfig.year``, else the latest year that does not put
them more than a day after the reference time, which advances with the stream: a
file read after the fact (reference = its mtime) gets December lines in last year and
January lines in this one, and a live stream crossing New Year moves on to the next
year. Stamps without an offset are in ``ParseConfig.timezone``.

One table per program reads the message: the program's parser picks the message's
family by its first word and reads it with that family's expression, whose builder
makes the event (``sshd.ROWS``, ``pam.ROWS``; words no single expression reads have a
handler). A line's framing gives its :class:`~soc.parse.base.Header` (stamp, host,
program, PID, line number, raw line), the one value every builder gets.

The lines of a brute force take a shortcut through the same table: each sshd and PAM
row is also compiled with the common framing in front (a "lane", picked by the
message's first four characters), so such a line is read in one match. Anything a
lane does not read goes the long way: one framing expression, a dictionary lookup by
program, then the rows. Both give the same answer (a property test checks it), and
lines in any other framing (RFC 5424, no host, ``<auth.info>``, …) are taken apart
piece by piece before the same dispatch. Stamps come from a memo keyed by their text
(lines share their second), addresses from a memo too.
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soc.errors import ParseError
from soc.events import Event, event_values
from soc.parse import firewall, pam, sshd, web
from soc.parse.address import AddressMemo
from soc.parse.base import (
    BAD_TIMESTAMP,
    BLANK,
    NO_MATCH,
    NOT_RELEVANT,
    Builder,
    Header,
    ParseConfig,
    Skip,
    new_header,
)

#: A line from a program we do not parse (cron, systemd, …): understood, not relevant.
OTHER_PROGRAM: Final = Skip("other_program", True)

FRAME_PATTERNS: Final[tuple[str, ...]] = (
    "syslog.other_program",
    "syslog.last_message_repeated",
    "syslog.journal_marker",
)
PATTERNS: Final[tuple[str, ...]] = (
    *FRAME_PATTERNS,
    *sshd.PATTERNS,
    *pam.PATTERNS,
    *firewall.PATTERNS,
    # Web servers logging through syslog give the web parsers' patterns.
    *web.WebAccessParser.patterns,
    *web.WebErrorParser.patterns,
)

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_DAY: Final = 86400.0
#: Stamps remembered before the memo starts over.
_STAMP_MEMO_SIZE: Final = 4096

_A: Final = re.ASCII
# The two framings nearly every line has: "<stamp> <host> <prog>[<pid>]: ".
_TRADITIONAL_STAMP: Final = r"([A-Z][a-z][a-z] [ 0-9]?[0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]) "
_ISO_STAMP: Final = (
    r"([0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9])(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9][0-9](?::?[0-9][0-9])?)? "
)
# A host name (no "[", "]" or whitespace; not "<" first, not ":" last unless it is one
# character), after the stamp's space: possessive, so a line is scanned once.
_HOST: Final = r"([^\s\[\]<][^\s\[\]]*+(?<!\S:)) "
_TAG: Final = r"([^\s\[\]:]++)(?:\[([0-9]{1,10})\])?: "
_TRADITIONAL_FRAME_RE: Final = re.compile(_TRADITIONAL_STAMP + _HOST + _TAG)
_ISO_FRAME_RE: Final = re.compile(_ISO_STAMP + _HOST + _TAG)
# The framing in front of a row of sshd or PAM (sshd's tag with a PID; either stamp):
# the traditional stamp; the RFC 3339 stamp, its fraction and offset; host, program, PID.
_LANE_FRAME: Final = (
    f"(?:{_TRADITIONAL_STAMP[:-1]}|{_ISO_STAMP[:-1]}) {_HOST}"
    r"(sshd|sshd-session|sshd-auth)\[([0-9]{1,10})\]: "
)


@functools.cache
def _lane(regex: re.Pattern[str]) -> re.Pattern[str]:
    """A row's expression with the framing in front: a whole line in one match."""
    return re.compile(_LANE_FRAME + regex.pattern, regex.flags)


# Everything else, piece by piece.
_TRADITIONAL_RE: Final = re.compile(
    r"([A-Z][a-z][a-z]) +(\d{1,2}) (?:(\d{4}) )?(\d\d):(\d\d):(\d\d)(\.\d{1,9})?(?: +|\Z)", _A
)
_ISO_RE: Final = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d(?::?\d\d)?)?(?: +|\Z)", _A
)
_TAG_RE: Final = re.compile(r"\[?([^\s\[\]]+?)\]?(?:\[(\d{1,10})\])?:?\Z", _A)
_REPEATED_RE: Final = re.compile(
    r"message repeated ([1-9][0-9]{0,8}) times?: \[ ?(.*)\]\s*\Z", re.DOTALL
)
_LAST_REPEATED_RE: Final = re.compile(
    r"(?:--- )?last message repeated ([1-9][0-9]{0,8}) times?(?: ---)?\s*\Z", _A
)
_PAM_PREFIXES: Final = ("pam_", "(pam_", "PAM ")


def zone_of(name: str) -> tzinfo | None:
    """The zone ``ParseConfig.timezone`` names (None for this machine's local zone)."""
    if name == "local":
        return None
    if name.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return UTC
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", name)
    if m is not None:
        offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-offset if m.group(1) == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParseError(f"unknown time zone {name!r}", where="timezone") from exc


def _offset_seconds(text: str) -> int:
    """Seconds east of UTC of ``Z``, ``+01:00``, ``+0100`` or ``+01``."""
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) > 2 else 0)
    return -seconds if text[0] == "-" else seconds


class Stamps:
    """Syslog stamps to epoch seconds for one stream: zone, year inference, memo."""

    __slots__ = (
        "_hours",
        "_iso",
        "_memo_reference",
        "_minutes",
        "_year",
        "_zone",
        "reference",
        "traditional_memo",
    )

    def __init__(self, zone: tzinfo | None, year: int | None, reference_time: float) -> None:
        self._zone = zone
        self._year = year
        self.reference = reference_time
        self._memo_reference = reference_time
        #: Epoch by traditional stamp text; read directly on the hot path.
        self.traditional_memo: dict[str, float] = {}
        # Epoch of the hour by "Nov 21 23", and of the minute by "Nov 21 23:14" (the
        # hour's plus its minutes): a new second then costs one int() call.
        self._hours: dict[str, float] = {}
        self._minutes: dict[str, float] = {}
        self._iso: dict[str, float] = {}

    def state(self) -> dict[str, Any]:
        """What dating later stamps depends on: the reference and the hours' years.

        The other memos are rebuilt from these. (A stamp that was more than a day past
        the reference when first seen was dated on its own; it is dated again from
        the reference at restore, which can only have grown.)
        """
        return {
            "reference": self.reference,
            "memo_reference": self._memo_reference,
            "hours": dict(self._hours),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` (the memos start over)."""
        self.reference = float(state["reference"])
        self._memo_reference = float(state["memo_reference"])
        for memo in (self.traditional_memo, self._hours, self._minutes, self._iso):
            memo.clear()
        self._hours.update((str(k), float(v)) for k, v in state["hours"].items())

    def _local(self, y: int, mo: int, d: int, h: int, mi: int, s: int) -> float | None:
        """Epoch of a wall-clock time in the configured zone, None if no such date."""
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s <= 60):
            return None
        if d > calendar.monthrange(y, mo)[1]:
            return None
        s = min(s, 59)  # a leap second is logged as :60
        if self._zone is UTC:
            return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))
        return datetime(y, mo, d, h, mi, s, tzinfo=self._zone).timestamp()

    def _yearless(self, mo: int, d: int, h: int, mi: int, s: int) -> float | None:
        """Epoch of a stamp without a year: the configured one, else inferred."""
        if self._year is not None:
            return self._local(self._year, mo, d, h, mi, s)
        limit = self.reference + _DAY
        # The limit's UTC year, plus one for zones ahead of UTC; Feb 29 may need to go
        # back to the last leap year.
        year = time.gmtime(limit).tm_year + 1
        for candidate in range(year, year - 10, -1):
            epoch = self._local(candidate, mo, d, h, mi, s)
            if epoch is not None and epoch <= limit:
                return epoch
        return None

    def _remember(self, memo: dict[str, float], key: str, epoch: float) -> None:
        # A memoised year is only valid while the reference stays within the same year.
        if len(memo) >= _STAMP_MEMO_SIZE or self.reference - self._memo_reference > 30 * _DAY:
            self.traditional_memo.clear()
            self._hours.clear()
            self._minutes.clear()
            self._iso.clear()
            self._memo_reference = self.reference
        memo[key] = epoch

    def traditional(self, stamp: str) -> float | None:
        """``Nov 21 23:14:28`` (one or two spaces before the day) to epoch seconds."""
        epoch = self.traditional_memo.get(stamp)
        if epoch is None:
            second = int(stamp[-2:])
            if second > 60:
                return None
            minute_key = stamp[:-3]
            start = self._minutes.get(minute_key)
            if start is None:
                start = self._minute(stamp)
                if start is None:
                    return None
                minutes = self._minutes
                if len(minutes) >= _STAMP_MEMO_SIZE:
                    minutes.clear()  # it only repeats the hours' sums
                minutes[minute_key] = start
            epoch = start + min(second, 59)
            if self._year is None and epoch > self.reference + _DAY:
                # The hour fits the year but this second is past the limit: decide alone.
                found = self._yearless(
                    _MONTHS[stamp[:3]],
                    int(stamp[4:6]),
                    int(stamp[-8:-6]),
                    int(stamp[-5:-3]),
                    second,
                )
                if found is None:
                    return None
                epoch = found
            self._remember(self.traditional_memo, stamp, epoch)
        self.reference = max(self.reference, epoch)
        return epoch

    def _minute(self, stamp: str) -> float | None:
        """Epoch of the start of a traditional stamp's minute, None if there is none."""
        minute = int(stamp[-5:-3])
        if minute > 59:
            return None
        hour_key = stamp[:-6]
        hour = self._hours.get(hour_key)
        if hour is None:
            month = _MONTHS.get(stamp[:3])
            day = stamp[4:6].strip()
            if month is None or not day.isdigit():
                return None
            hour = self._yearless(month, int(day), int(stamp[-8:-6]), 0, 0)
            if hour is None:
                return None
            self._remember(self._hours, hour_key, hour)
        return hour + minute * 60

    def traditional_parts(self, m: re.Match[str]) -> float | None:
        """Epoch of a :data:`_TRADITIONAL_RE` match (optional year and fraction)."""
        month = _MONTHS.get(m.group(1))
        if month is None:
            return None
        day, hour, minute, second = (
            int(m.group(2)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
        )
        year = m.group(3)
        if year is not None:
            epoch = self._local(int(year), month, day, hour, minute, second)
        else:
            epoch = self._yearless(month, day, hour, minute, second)
        if epoch is None:
            return None
        self.reference = max(self.reference, epoch)
        fraction = m.group(7)
        return epoch + float(fraction) if fraction else epoch

    def iso(self, base: str, fraction: str | None, offset: str | None) -> float | None:
        """``2025-11-21T23:14:28`` + ``.123456`` + ``+01:00`` to epoch seconds."""
        key = base if offset is None else base + offset
        epoch = self._iso.get(key)
        if epoch is None:
            y, mo, d = int(base[0:4]), int(base[5:7]), int(base[8:10])
            h, mi, s = int(base[11:13]), int(base[14:16]), int(base[17:19])
            if offset is None:
                epoch = self._local(y, mo, d, h, mi, s)
                if epoch is None:
                    return None
            else:
                if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
                    return None
                if h > 23 or mi > 59 or s > 60:
                    return None
                wall = calendar.timegm((y, mo, d, h, mi, min(s, 59), 0, 0, 0))
                epoch = float(wall - _offset_seconds(offset))
            self._remember(self._iso, key, epoch)
        return epoch + float(fraction) if fraction else epoch


class MessageParser(Protocol):
    """What the program parsers (sshd, PAM, firewall) have in common."""

    pattern: str | None

    def parse(self, message: str, h: Header) -> Event | Skip: ...


class ProgramRouter:
    """Sends one program's message to its parser; holds their per-stream state.

    With ``stateful=False`` sshd lines are read one at a time, without
    per-connection memory.
    """

    __slots__ = ("firewall", "pam", "pattern", "programs", "sshd", "web")

    def __init__(self, *, stateful: bool = True) -> None:
        addresses = AddressMemo()
        self.pam = pam.PamMessages(addresses)
        self.sshd = sshd.SshdMessages(addresses, stateful=stateful, fallback=self.special)
        self.firewall = firewall.FirewallMessages(addresses, fallback=self.special)
        self.web = web.WebMessages(addresses)
        #: The parser of each program we parse, by syslog tag.
        self.programs: dict[str, MessageParser] = {
            "sshd": self.sshd,
            "sshd-session": self.sshd,
            "sshd-auth": self.sshd,
            "kernel": self.firewall,
            "ulogd": self.firewall,
            **dict.fromkeys(web.WEB_PROGRAMS, self.web),
        }
        #: The frame-level pattern the last line matched (the parsers keep their own).
        self.pattern: str | None = None

    def state(self) -> dict[str, Any]:
        """The stream's per-connection memory (only sshd keeps any)."""
        return {"sshd": self.sshd.state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.sshd.restore(state["sshd"])

    def last_pattern(self) -> str | None:
        """The pattern the last message matched (meaningful on a fresh router)."""
        return (
            self.pattern
            or self.sshd.pattern
            or self.pam.pattern
            or self.firewall.pattern
            or self.web.pattern
        )

    def route(self, message: str, h: Header) -> Event | Skip:
        """Parse ``message`` logged by the header's program."""
        program = h.program
        target = self.programs.get(program)
        if target is not None:
            return target.parse(message, h)
        result = self.special(message, h)
        if result is not None:
            return result
        slash = program.rfind("/")
        if slash >= 0:
            # "/usr/sbin/sshd[42]:": ECS process.name is the name, not the path.
            name = program[slash + 1 :]
            target = self.programs.get(name)
            if target is not None:
                return target.parse(message, h._replace(program=name))
            if program[:slash] in web.WEB_PROGRAMS:
                # Apache's "httpd/backend1": a web server tagged with its instance.
                return self.web.parse(message, h)
        if "IN=" in message and " SRC=" in message and " PROTO=" in message:
            return self.firewall.parse(message, h)
        self.pattern = "syslog.other_program"
        return OTHER_PROGRAM

    def special(self, message: str, h: Header) -> Event | Skip | None:
        """PAM from any program, rsyslog's repeats, Solaris noise; None otherwise."""
        if message.startswith(_PAM_PREFIXES) or "(pam_" in h.program:
            return self.pam.parse(message, h)
        if message.startswith("message repeated "):
            m = _REPEATED_RE.match(message)
            if m is None:
                return None
            result = self.route(m.group(2), h)
            if isinstance(result, Event):
                # rsyslog logged the first one on its own line: these are the N more.
                result.count = int(m.group(1))
            return result
        if message.startswith("[ID "):
            end = message.find("] ")
            if end < 0:
                return None
            return self.route(message[end + 2 :], h)
        return None


def parse_program_message(
    message: str, h: Header, *, router: ProgramRouter | None = None
) -> Event | Skip:
    """Parse one message of a syslog program (sshd, a PAM user, the kernel firewall).

    Without ``router`` the message is read on its own (no per-connection memory);
    a per-source caller passes its own :class:`ProgramRouter` to keep that state.
    """
    if router is None:
        router = ProgramRouter(stateful=False)
    return router.route(message, h)


def _copy(
    event: Event, count: int, timestamp: float | None, line_no: int | None, raw: str | None
) -> Event:
    """The same event again, standing for ``count`` more lines up to ``timestamp``."""
    copy = Event(*event_values(event))
    copy.timestamp = timestamp
    copy.count = count
    copy.line = line_no
    copy.raw = raw
    return copy


class SyslogParser:
    """Parses syslog lines of one source (any framing) into events."""

    name = "syslog"
    patterns: tuple[str, ...] = PATTERNS

    def __init__(self, config: ParseConfig, reference_time: float) -> None:
        self.config = config
        self.reference_time = reference_time
        self._stamps = Stamps(zone_of(config.timezone), config.year, reference_time)
        self._router = ProgramRouter()
        self._programs = self._router.programs
        self._traditional_memo = self._stamps.traditional_memo
        self._keep_raw = config.keep_raw
        self._previous: Event | Skip = BLANK
        lanes: dict[str, list[tuple[Callable[[str], re.Match[str] | None], Builder]]] = {}
        for start, regex, build in (*self._router.sshd.lanes(), *self._router.pam.lanes()):
            lanes.setdefault(start[:4], []).append((_lane(regex).match, build))
        #: The rows of sshd and PAM with the framing in front, by the message's first
        #: four characters: the lines of a brute force are read in one match each.
        self._lanes = {key: tuple(rows) for key, rows in lanes.items()}
        # Where the message began in the last line a lane read (a guess).
        self._message_start = 0
        #: Off only to check that the lanes and the framing-then-rows path agree.
        self.fast_lane = True

    def parse(self, text: str, line_no: int | None = None) -> Event | Skip:
        """Parse one line (without its terminator)."""
        if self.fast_lane:
            found = self._read_lane(text, line_no)
            if found is not None:
                self._previous = found
                return found
        m = _TRADITIONAL_FRAME_RE.match(text)
        if m is not None:
            stamp, hostname, program, pid = m.groups()
            timestamp = self._traditional_memo.get(stamp)
            if timestamp is None:
                timestamp = self._stamps.traditional(stamp)
                if timestamp is None:
                    self._previous = BAD_TIMESTAMP
                    return BAD_TIMESTAMP
        else:
            m = _ISO_FRAME_RE.match(text)
            if m is None:
                result = self._parse_general(text, line_no)
                self._previous = result
                return result
            base, fraction, offset, hostname, program, pid = m.groups()
            timestamp = self._stamps.iso(base, fraction, offset)
            if timestamp is None:
                self._previous = BAD_TIMESTAMP
                return BAD_TIMESTAMP
        h = new_header(
            (
                timestamp,
                hostname,
                program,
                None if pid is None else int(pid),
                line_no,
                text if self._keep_raw else None,
            )
        )
        # The router's lookup is its first step: skipping it saves a call per line.
        target = self._programs.get(program)
        message = text[m.end() :]
        result = self._router.route(message, h) if target is None else target.parse(message, h)
        self._previous = result
        return result

    def state(self) -> dict[str, Any]:
        """What the next line's reading depends on, as plain JSON (see :meth:`restore`).

        The stamps' reference year, each sshd connection's address and pending
        failure, and the last event (BSD's ``last message repeated N times`` repeats it).
        """
        previous = self._previous
        return {
            "stamps": self._stamps.state(),
            "router": self._router.state(),
            "previous": event_values(previous) if isinstance(previous, Event) else None,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue a stream from what :meth:`state` returned (the same answers follow)."""
        self._stamps.restore(state["stamps"])
        self._router.restore(state["router"])
        previous = state["previous"]
        self._previous = BLANK if previous is None else Event(*previous)

    def _read_lane(self, text: str, line_no: int | None) -> Event | Skip | None:
        """The line read by a row with the framing in front, or None (no row reads it).

        The message's first four characters pick the rows. The message starts where
        it did in the last lane line (same host, a PID of the same length), or else
        after the first "]" (in any line a lane reads, the one closing the tag's PID);
        the match checks the guess.
        """
        lanes = self._lanes
        at = self._message_start
        for guess in (1, 2):
            if guess == 2:
                found = text.find("]", 16) + 3
                if found == at:
                    return None
                at = found
            rows = lanes.get(text[at : at + 4])
            if rows is None:
                continue
            for match, build in rows:
                m = match(text)
                if m is not None:
                    self._message_start = at
                    stamp, base, fraction, offset, hostname, program, pid = m.group(
                        1, 2, 3, 4, 5, 6, 7
                    )
                    if stamp is not None:
                        timestamp = self._traditional_memo.get(stamp)
                        if timestamp is None:
                            timestamp = self._stamps.traditional(stamp)
                    else:
                        timestamp = self._stamps.iso(base, fraction, offset)
                    if timestamp is None:
                        return BAD_TIMESTAMP
                    raw = text if self._keep_raw else None
                    return build(
                        m, new_header((timestamp, hostname, program, int(pid), line_no, raw))
                    )
        return None

    def which(self, text: str) -> str | None:
        """The name of the pattern the line matches, or None (tests and debugging)."""
        probe = SyslogParser(self.config, self.reference_time)
        probe.fast_lane = self.fast_lane
        result = probe.parse(text)
        if isinstance(result, Event) or result.recognized:
            return probe._router.last_pattern()
        return None

    # --- any other framing ----------------------------------------------------------

    def _parse_general(self, text: str, line_no: int | None) -> Event | Skip:
        """Any framing, piece by piece (the common framing expressions did not match)."""
        self._router.pattern = None
        if not text or text.isspace():
            return BLANK
        if text.startswith("-- "):
            # journalctl's "-- Boot 3f… --", "-- No entries --", "-- Logs begin at … --".
            self._router.pattern = "syslog.journal_marker"
            return NOT_RELEVANT
        raw = text if self._keep_raw else None
        pos = 0
        if text[0] == "<":
            end = text.find(">", 1, 5)
            if end < 2 or not text[1:end].isdigit():
                return NO_MATCH
            pos = end + 1
            if text.startswith("1 ", pos):
                return self._parse_rfc5424(text, pos + 2, line_no, raw)
        timestamp: float | None
        m = _TRADITIONAL_RE.match(text, pos)
        if m is not None:
            timestamp = self._stamps.traditional_parts(m)
        else:
            m = _ISO_RE.match(text, pos)
            if m is None:
                return NO_MATCH
            timestamp = self._stamps.iso(f"{m.group(1)}T{m.group(2)}", m.group(3), m.group(4))
        if timestamp is None:
            return BAD_TIMESTAMP
        rest = text[m.end() :]
        hostname: str | None = None
        # fail2ban's "<auth.info>" between the stamp and the host.
        if rest.startswith("<"):
            end = rest.find("> ")
            if end > 0 and "." in rest[1:end]:
                rest = rest[end + 2 :]
        token, rest = _split_token(rest)
        tag = _TAG_RE.match(token) if _looks_like_tag(token) else None
        if tag is None:
            hostname = token or None
            if rest.startswith("@vserver_"):
                rest = _split_token(rest)[1]
            token, after = _split_token(rest)
            tag = _TAG_RE.match(token) if _looks_like_tag(token) else None
            if tag is None:
                return self._untagged(rest, Header(timestamp, hostname, "", None, line_no, raw))
            rest = after
        program, pid = tag.group(1), tag.group(2)
        return self._router.route(
            rest,
            Header(timestamp, hostname, program, None if pid is None else int(pid), line_no, raw),
        )

    def _untagged(self, message: str, h: Header) -> Event | Skip:
        """A line with a stamp and no program tag: BSD's repeat notice, or PAM/netfilter."""
        m = _LAST_REPEATED_RE.match(message)
        if m is not None:
            self._router.pattern = "syslog.last_message_repeated"
            previous = self._previous
            if isinstance(previous, Event):
                return _copy(previous, int(m.group(1)), h.timestamp, h.line, h.raw)
            return NOT_RELEVANT
        if message.startswith(_PAM_PREFIXES) or "IN=" in message:
            return self._router.route(message, h)
        return NO_MATCH

    def _parse_rfc5424(
        self, text: str, pos: int, line_no: int | None, raw: str | None
    ) -> Event | Skip:
        """``<PRI>1 STAMP HOST APP PROCID MSGID SD MSG`` (``-`` for any absent field)."""
        fields = text[pos:].split(" ", 5)
        if len(fields) < 5:
            return NO_MATCH
        stamp, host, app, procid, _msgid = fields[:5]
        rest = fields[5] if len(fields) > 5 else ""
        timestamp: float | None = None
        if stamp != "-":
            m = _ISO_RE.fullmatch(stamp)
            if m is None:
                return BAD_TIMESTAMP
            timestamp = self._stamps.iso(f"{m.group(1)}T{m.group(2)}", m.group(3), m.group(4))
            if timestamp is None:
                return BAD_TIMESTAMP
        message = _after_structured_data(rest)
        if message is None:
            return NO_MATCH
        if message.startswith("\ufeff"):
            message = message[1:]
        pid = int(procid) if procid.isdigit() and procid.isascii() and len(procid) <= 10 else None
        return self._router.route(
            message,
            Header(
                timestamp,
                None if host == "-" else host,
                "" if app == "-" else app,
                pid,
                line_no,
                raw,
            ),
        )


def _split_token(text: str) -> tuple[str, str]:
    """The first space-separated token and what follows its space."""
    space = text.find(" ")
    if space < 0:
        return text, ""
    return text[:space], text[space + 1 :]


def _looks_like_tag(token: str) -> bool:
    """``sshd[42]:``, ``sshd:``, ``[sshd]``, ``sshd[42]``: a program, not a host name."""
    return token.endswith((":", "]")) or token.startswith("[")


def _after_structured_data(rest: str) -> str | None:
    """The MSG after RFC 5424 STRUCTURED-DATA (``-`` or ``[id k="v" …]…``), or None."""
    if not rest or rest == "-":
        return ""
    if rest.startswith("- "):
        return rest[2:]
    if not rest.startswith("["):
        return None
    i, n = 0, len(rest)
    while i < n and rest[i] == "[":
        i += 1
        quoted = False
        while i < n:
            c = rest[i]
            if quoted:
                if c == "\\":
                    i += 1
                elif c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c == "]":
                break
            i += 1
        if i >= n:
            return None
        i += 1
    if i == n:
        return ""
    return rest[i + 1 :] if rest[i] == " " else None


__all__ = [
    "FRAME_PATTERNS",
    "OTHER_PROGRAM",
    "PATTERNS",
    "ProgramRouter",
    "Stamps",
    "SyslogParser",
    "parse_program_message",
    "zone_of",
]
