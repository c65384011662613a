"""What the pipeline makes of a log, as plain data: the differential test's subject.

For one log (its lines and format): every line's event or skip, every window the
windower hands over and every incident the detector reports, in canonical JSON.
``python -m tests.differential.record`` writes them for every case of
:func:`cases` to ``reference/``; ``test_differential.py`` recomputes them and
requires the same. They were recorded from the per-line parser and the pandas
windower and detector as they stood before the columnar rewrite, so that the
rewrite proves its answers unchanged.

Cases: every sample log (``data/samples``, full records), the parser test logs
(``tests/samples``, full records), generated logs (``soc.samples``' large
variants: records as digests, to keep the repository small) and fail2ban's
annotated corpora (``../shared/corpora``: digests only, never their content,
which must not be copied into the repository).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from soc.detect import DetectConfig, Detector
from soc.detect.state import detect_batch
from soc.events import Event, Incident, WindowStats
from soc.parse import ParseConfig, make_parser, parse_batch
from soc.parse.base import Skip
from soc.samples import iter_sample_lines, select_files
from soc.window import WindowConfig, Windower
from soc.window.state import window_batch

REPO: Final = Path(__file__).resolve().parents[2]
REFERENCE: Final = Path(__file__).resolve().parent / "reference"
CORPORA: Final = REPO.parent / "shared" / "corpora" / "fail2ban"
#: Year-less timestamps are dated relative to this (2025-12-31 UTC), in year 2025.
REFERENCE_TIME: Final = 1_767_139_200.0
#: Events per batch through the windower and the detector (as the engine's batches).
BATCH: Final = 5_000
#: Lines per batch through the staged parser: small and prime, so that connections
#: and repeats are cut everywhere.
PARSE_BATCH: Final = 7
GENERATED_LINES: Final = 10_000
GENERATED: Final = ("auth.log", "ufw.log", "nginx-access.log", "journal.json")
#: The parser test logs and the fail2ban corpora, with the format each is read as.
PARSER_LOGS: Final = {
    "ecs.log": "ecs_json",
    "firewall.log": "syslog",
    "journal.log": "journal_json",
    "pam.log": "syslog",
    "sshd.log": "syslog",
    "sshd_connections.log": "syslog",
}
FAIL2BAN: Final = {
    "sshd": "syslog",
    "pam-generic": "syslog",
    "nginx-http-auth": "web_error",
    "apache-auth": "web_error",
    "nginx-botsearch": "web_access",
    "apache-botsearch": "web_error",
}


@dataclass(frozen=True)
class Case:
    """One log to compare: where its lines come from, its format, how it is recorded."""

    name: str
    format: str
    digests: bool  # records as digests only (large, or not ours to copy)
    path: Path | None = None  # a file, else generated
    sample: str = ""  # the soc.samples file generated

    def lines(self) -> list[str]:
        if self.path is not None:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
            return text.splitlines()
        return list(iter_sample_lines(self.sample, lines=GENERATED_LINES, seed=11))


def cases(*, corpora: bool = True) -> Iterator[Case]:
    """Every case; the fail2ban corpora only when ``corpora`` (and present)."""
    for sample in select_files():
        yield Case(
            f"samples-{sample.name}", sample.format, False, REPO / "data" / "samples" / sample.name
        )
    for name, fmt in PARSER_LOGS.items():
        yield Case(f"parser-{name}", fmt, False, REPO / "tests" / "samples" / name)
    for name in GENERATED:
        fmt = next(s.format for s in select_files() if s.name == name)
        yield Case(f"generated-{name}", fmt, True, sample=name)
    if corpora:
        for name, fmt in FAIL2BAN.items():
            yield Case(f"fail2ban-{name}", fmt, True, CORPORA / name)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:8]


def _event(result: Event | Skip) -> Any:
    if isinstance(result, Skip):
        return ["skip", result.reason, result.recognized]
    return {name: getattr(result, name) for name in Event.__slots__}


def _window(window: WindowStats) -> dict[str, Any]:
    return dataclasses.asdict(window)


def _incident(incident: Incident) -> dict[str, Any]:
    return dataclasses.asdict(incident)


def _through_json(state: dict[str, Any]) -> Any:
    return json.loads(json.dumps(state))


def outputs(case: Case, *, staged: bool = False) -> dict[str, Any]:
    """The case's records: per line, per window handed over, per incident (final state).

    ``staged``: through the stages' pure functions (``parse_batch``, ``window_batch``,
    ``detect_batch``) instead of long-lived objects, every batch starting from the
    state the previous one returned, round-tripped through JSON as a distributed
    engine would ship it. (Lines go in batches of :data:`PARSE_BATCH`.)
    """
    lines = case.lines()
    config = ParseConfig(format=case.format, timezone="UTC", year=2025, keep_raw=True)
    results: list[Event | Skip] = []
    if staged:
        parsed: Any = None
        for start in range(0, len(lines), PARSE_BATCH):
            out, state = parse_batch(
                config,
                case.format,
                REFERENCE_TIME,
                lines[start : start + PARSE_BATCH],
                parsed,
                first_line=start + 1,
            )
            results.extend(out)
            parsed = _through_json(state)
    else:
        parser = make_parser(config, reference_time=REFERENCE_TIME, sample=lines[:50])
        results = [parser.parse(text, number) for number, text in enumerate(lines, 1)]
    events = [r for r in results if isinstance(r, Event)]
    windows: list[WindowStats] = []
    final: dict[str, Incident] = {}
    if staged:
        windowed: Any = None
        detected: Any = None
        starts = list(range(0, len(events), BATCH)) or [0]
        for start in starts:
            batch: Sequence[Event] = events[start : start + BATCH]
            last = start == starts[-1]
            closed, state = window_batch(WindowConfig(), batch, windowed, flush=last)
            windows.extend(closed)
            windowed = _through_json(state)
            found, state = detect_batch(DetectConfig(), batch, detected, flush=last)
            for incident in found:
                final[incident.detector_key] = incident
            detected = _through_json(state)
    else:
        windower = Windower(WindowConfig())
        detector = Detector(DetectConfig(), host_addresses=())
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            windows.extend(windower.add(batch))
            for incident in detector.process(batch):
                final[incident.detector_key] = incident
        windows.extend(windower.flush())
        for incident in detector.flush():
            final[incident.detector_key] = incident
    records = {
        "lines": [_event(r) for r in results],
        "windows": [_window(w) for w in windows],
        "incidents": [_incident(i) for _, i in sorted(final.items())],
    }
    if case.digests:
        records = {part: [_digest(r) for r in rows] for part, rows in records.items()}
    return {"case": case.name, "format": case.format, "digests": case.digests, **records}


def reference_path(case: Case) -> Path:
    """Where the case's reference is recorded (canonical JSON, gzip)."""
    return REFERENCE / f"{case.name}.json.gz"


def load_reference(case: Case) -> dict[str, Any]:
    """The case's recorded records."""
    recorded: dict[str, Any] = json.loads(gzip.decompress(reference_path(case).read_bytes()))
    return recorded


def canonical(value: Any) -> str:
    """The canonical JSON text records are compared (and stored) as."""
    return _canonical(value)
