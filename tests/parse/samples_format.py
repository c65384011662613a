"""Annotated sample logs, fail2ban style: the file format, a loader and a checker.

A sample file (``tests/samples/<name>.log``) is a log of one registered format with
comment lines that say what each log line must give::

    # format: syslog            the registered format (required)
    # timezone: UTC             ParseConfig.timezone (default UTC, for determinism)
    # year: 2025                ParseConfig.year (default: none, inferred)
    # reference: 2026-01-01T00:00:00Z
                                reference time for year inference (default as shown)

    # expect: {"pattern": "sshd.failed_password", "event": {"soc.kind": "auth_failure",
    #          "source.ip": "192.0.2.1", "user.name": "root", "@timestamp": "2025-…"}}
    Nov 21 23:14:28 host sshd[42]: Failed password for root from 192.0.2.1 port 22 ssh2

An ``# expect:`` (one line of JSON) describes the next log line; other comments and
blank lines may sit in between. ``pattern`` is what ``parser.which(line)`` must return
(``null``: not understood); ``event`` is ``null`` when the line must give no event,
else a map of dotted paths into ``Event.to_ecs()`` to the values they must have (only
the listed keys are checked; a few short names are accepted, see :data:`ALIASES`);
an optional ``skip`` names the ``Skip.reason`` a line without event must give. A
log line with no ``# expect:`` above it must give no event.

The lines of one file go, in order, through ONE parser, so a file can test state
(the year of year-less stamps, sshd connections).
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from soc.events import Event
from soc.parse import make_parser
from soc.parse.base import ParseConfig

SAMPLES_DIR: Final = Path(__file__).resolve().parent.parent / "samples"
DEFAULT_REFERENCE: Final = "2026-01-01T00:00:00Z"

#: Short names accepted in ``event`` maps, for the ECS paths they stand for.
ALIASES: Final = {
    "kind": "soc.kind",
    "count": "soc.count",
    "outcome": "event.outcome",
    "action": "event.action",
    "reason": "event.reason",
    "dataset": "event.dataset",
    "category": "event.category",
}

_DIRECTIVE_RE: Final = re.compile(r"#\s*(format|timezone|year|reference)\s*:\s*(.*?)\s*\Z")
_EXPECT_PREFIX: Final = "# expect:"
_MISSING: Final = object()


class SampleError(Exception):
    """A sample file that does not follow the format."""


@dataclass(frozen=True)
class Expectation:
    """What one log line must give."""

    pattern: str | None
    event: dict[str, Any] | None
    skip: str | None
    line: int


@dataclass(frozen=True)
class SampleLine:
    """One log line of a sample, with its expectation (None: must give no event)."""

    number: int
    text: str
    expect: Expectation | None


@dataclass
class Sample:
    """A parsed sample file."""

    path: Path
    format: str
    timezone: str = "UTC"
    year: int | None = None
    reference: str = DEFAULT_REFERENCE
    lines: list[SampleLine] = field(default_factory=list)

    @property
    def reference_time(self) -> float:
        return iso_epoch(self.reference)

    def config(self) -> ParseConfig:
        return ParseConfig(format=self.format, timezone=self.timezone, year=self.year)

    @property
    def patterns(self) -> set[str]:
        """Every pattern this sample annotates."""
        return {
            line.expect.pattern
            for line in self.lines
            if line.expect is not None and line.expect.pattern is not None
        }


def iso_epoch(text: str) -> float:
    """``2026-01-01T00:00:00Z`` to epoch seconds (UTC only: samples are explicit)."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z", text)
    if m is None:
        raise SampleError(f"reference must look like {DEFAULT_REFERENCE}, not {text!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups())
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))


def sample_files(root: Path = SAMPLES_DIR) -> list[Path]:
    """Every sample file, sorted."""
    return sorted(root.glob("*.log"))


def load_sample(path: Path) -> Sample:
    """Read a sample file; :class:`SampleError` if it breaks the format."""
    directives: dict[str, str] = {}
    lines: list[SampleLine] = []
    pending: Expectation | None = None
    with path.open(encoding="utf-8", newline="\n") as f:
        for number, line in enumerate(f, 1):
            text = line.removesuffix("\n")
            where = f"{path.name}:{number}"
            directive = _DIRECTIVE_RE.fullmatch(text)
            if directive is not None:
                directives[directive.group(1)] = directive.group(2)
                continue
            if text.startswith(_EXPECT_PREFIX):
                if pending is not None:
                    raise SampleError(f"{where}: two expectations for one line")
                pending = _expectation(text[len(_EXPECT_PREFIX) :], number, where)
                continue
            if not text.strip() or text.startswith("#"):
                continue
            lines.append(SampleLine(number, text, pending))
            pending = None
    if pending is not None:
        raise SampleError(f"{path.name}: an expectation at line {pending.line} has no line")
    if "format" not in directives:
        raise SampleError(f"{path.name}: no '# format:' directive")
    year = directives.get("year")
    return Sample(
        path=path,
        format=directives["format"],
        timezone=directives.get("timezone", "UTC"),
        year=int(year) if year else None,
        reference=directives.get("reference", DEFAULT_REFERENCE),
        lines=lines,
    )


def _expectation(text: str, number: int, where: str) -> Expectation:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SampleError(f"{where}: expectation is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not set(doc) <= {"pattern", "event", "skip"}:
        raise SampleError(f"{where}: expectation keys are pattern, event, skip")
    if "pattern" not in doc or "event" not in doc:
        raise SampleError(f"{where}: expectation needs both 'pattern' and 'event'")
    event = doc["event"]
    if event is not None and not isinstance(event, dict):
        raise SampleError(f"{where}: 'event' is an object or null")
    if event is not None and "skip" in doc:
        raise SampleError(f"{where}: 'skip' only goes with \"event\": null")
    return Expectation(doc["pattern"], event, doc.get("skip"), number)


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in a nested document, or a missing marker."""
    path = ALIASES.get(path, path)
    if path in doc:
        return doc[path]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def check_sample(sample: Sample) -> list[str]:
    """Run a sample through one parser of its format; every disagreement, described."""
    parser = make_parser(sample.config(), reference_time=sample.reference_time)
    problems: list[str] = []
    for line in sample.lines:
        where = f"{sample.path.name}:{line.number}"
        result = parser.parse(line.text, line.number)
        expect = line.expect
        if expect is None:
            if isinstance(result, Event):
                problems.append(f"{where}: unannotated line gave an event: {result!r}")
            continue
        found = parser.which(line.text)
        if found != expect.pattern:
            problems.append(f"{where}: pattern {found!r}, expected {expect.pattern!r}")
        if expect.event is None:
            if isinstance(result, Event):
                problems.append(f"{where}: expected no event, got {result!r}")
            elif expect.skip is not None and result.reason != expect.skip:
                problems.append(f"{where}: skip {result.reason!r}, expected {expect.skip!r}")
            elif expect.pattern is not None and not result.recognized:
                problems.append(f"{where}: pattern named but the line was not understood")
            continue
        if not isinstance(result, Event):
            problems.append(f"{where}: expected an event, got {result!r}")
            continue
        doc = result.to_ecs()
        for key, want in expect.event.items():
            got = lookup(doc, key)
            if got is _MISSING:
                problems.append(f"{where}: {key} missing (expected {want!r})")
            elif got != want:
                problems.append(f"{where}: {key} = {got!r}, expected {want!r}")
    return problems


__all__ = [
    "ALIASES",
    "DEFAULT_REFERENCE",
    "SAMPLES_DIR",
    "Expectation",
    "Sample",
    "SampleError",
    "SampleLine",
    "check_sample",
    "iso_epoch",
    "load_sample",
    "lookup",
    "sample_files",
]
