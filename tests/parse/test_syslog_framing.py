"""Registry, detection, files, stamps and the program dispatch of the syslog parser."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.errors import ParseError
from soc.events import AUTH_FAILURE, FIREWALL_DROP, INVALID_USER, PREAUTH, Event, Line
from soc.parse import (
    FORMATS,
    detect_format,
    iter_parse_file,
    make_parser,
    parse_file_stats,
    parser_class,
)
from soc.parse.base import (
    BAD_TIMESTAMP,
    BLANK,
    NO_MATCH,
    Header,
    ParseConfig,
    ParseStats,
    Skip,
    parse_lines,
)
from soc.parse.syslog import (
    OTHER_PROGRAM,
    ProgramRouter,
    Stamps,
    SyslogParser,
    parse_program_message,
    zone_of,
)

UTC_SYSLOG = ParseConfig(format="syslog", timezone="UTC")
REFERENCE = 1763766868.0  # 2025-11-21T23:14:28Z
FAILED = "Nov 21 23:14:28 host sshd[42]: Failed password for root from 192.0.2.1 port 22 ssh2"


# --- registry ----------------------------------------------------------------------


def test_registry_names_module_and_class() -> None:
    for name, spec in FORMATS.items():
        module, _, cls = spec.partition(":")
        assert module.startswith("soc.parse.") and cls, name
    assert FORMATS["syslog"] == "soc.parse.syslog:SyslogParser"
    for name in ("web_access", "web_error", "ecs_json", "wazuh_json", "journal_json"):
        assert name in FORMATS


def test_every_registered_class_has_the_parser_interface() -> None:
    for name in FORMATS:
        parser = parser_class(name)(ParseConfig(format=name), REFERENCE)
        assert parser.name == name
        assert isinstance(parser.patterns, tuple)
        assert isinstance(parser.parse("", 1), Skip)
        assert parser.which("") is None


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ParseError, match="unknown format 'nope'"):
        make_parser(ParseConfig(format="nope"), reference_time=REFERENCE)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ParseError, match="unknown time zone"):
        SyslogParser(ParseConfig(timezone="Mars/Olympus"), REFERENCE)
    assert zone_of("local") is None
    assert zone_of("+05:30") is not None


# --- detection ---------------------------------------------------------------------

DETECTION_SAMPLES = {
    "syslog": [
        FAILED,
        "2025-11-21T23:14:28.1+01:00 host sshd[1]: x",
        "<38>1 2025-11-21T23:14:28Z h a",
    ],
    "web_access": [
        '203.0.113.7 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 404 162 "-" "curl/8"',
        'example.com 203.0.113.7 - bob [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 200 1',
    ],
    "web_error": [
        "2015/01/20 19:53:28 [error] 1201#1201: *9 open() failed, client: 203.0.113.7",
        "[Tue Jan 20 19:53:28.123456 2015] [core:error] [pid 42] [client 203.0.113.7:5] x",
    ],
    "journal_json": ['{"__REALTIME_TIMESTAMP": "1", "MESSAGE": "x", "_PID": "1"}'],
    "wazuh_json": ['{"rule": {"id": "5710"}, "agent": {"id": "001"}, "full_log": "x"}'],
    "ecs_json": ['{"@timestamp": "2025-11-21T23:14:28Z", "event": {"kind": "event"}}'],
}


@pytest.mark.parametrize("name", sorted(DETECTION_SAMPLES))
def test_detect_format(name: str) -> None:
    assert detect_format(DETECTION_SAMPLES[name]) == name


def test_detect_format_majority_and_default() -> None:
    mixed = [*DETECTION_SAMPLES["web_access"], FAILED, FAILED, FAILED, "garbage", ""]
    assert detect_format(mixed) == "syslog"
    assert detect_format([]) == "syslog"
    assert detect_format(["garbage", "{not json"]) == "syslog"


def test_make_parser_auto_uses_the_sample() -> None:
    parser = make_parser(
        ParseConfig(format="auto"), reference_time=REFERENCE, sample=DETECTION_SAMPLES["web_error"]
    )
    assert parser.name == "web_error"


# --- files -------------------------------------------------------------------------


def _write(path: Path, data: bytes, mtime: float = REFERENCE) -> Path:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def test_iter_parse_file_numbers_lines_and_decodes_like_sources(tmp_path: Path) -> None:
    data = (
        FAILED.encode()
        + b"\r\n"  # CRLF
        + b"\n"  # blank
        + b"Nov 21 23:14:29 host sshd[42]: Invalid user r\xf6ot from 192.0.2.2 port 22\n"
        + b"Nov 21 23:14:30 host sshd[42]: Invalid user "
        + b"x" * 70000
        + b" from 192.0.2.3\n"
        + b"garbage"  # no final newline
    )
    path = _write(tmp_path / "auth.log", data)
    results = list(iter_parse_file(path, UTC_SYSLOG))
    assert [n for n, _ in results] == [1, 2, 3, 4, 5]
    first, blank, bad_utf8, huge, garbage = (r for _, r in results)
    assert isinstance(first, Event) and first.kind == AUTH_FAILURE and first.line == 1
    assert first.raw == FAILED  # the CR is gone
    assert blank is BLANK
    assert isinstance(bad_utf8, Event) and bad_utf8.user == "r\ufffdot" and bad_utf8.line == 3
    # Cut at 64 KiB like every source: the address at the end is lost, the line is kept.
    assert isinstance(huge, Skip)
    assert garbage is NO_MATCH


def test_reference_time_is_the_file_mtime(tmp_path: Path) -> None:
    # A file last written in early January: its December lines are last year's.
    january = 1767600000.0  # 2026-01-05T08:00:00Z
    path = _write(
        tmp_path / "auth.log",
        b"Dec 31 23:59:59 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
        b"Jan  2 00:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n",
        mtime=january,
    )
    stamps = [r.timestamp for _, r in iter_parse_file(path, UTC_SYSLOG) if isinstance(r, Event)]
    assert stamps == [1767225599.0, 1767312000.0]


def test_gzip_files_are_read_by_content(tmp_path: Path) -> None:
    plain = (FAILED + "\n").encode() * 3
    gz = _write(tmp_path / "auth.log.1", gzip.compress(plain))  # no .gz suffix on purpose
    assert [r.kind for _, r in iter_parse_file(gz, UTC_SYSLOG) if isinstance(r, Event)] == [
        AUTH_FAILURE
    ] * 3


def test_parse_file_stats_counts_everything(tmp_path: Path) -> None:
    lines = [
        FAILED,
        "Nov 21 23:14:28 host sshd[42]: Invalid user a from 192.0.2.1 port 22",
        "Nov 21 23:14:28 host sshd[42]: Server listening on 0.0.0.0 port 22.",
        "Nov 21 23:14:28 host CRON[7]: (root) CMD (true)",
        "Nov 21 23:14:28 host sshd[42]: Frobnicated",
        "Feb 30 23:14:28 host sshd[42]: Server listening on 0.0.0.0 port 22.",
        "Nov 21 23:14:28 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.1 DST=10.0.0.1 "
        "LEN=60 PROTO=TCP SPT=1 DPT=22",
        "",
    ]
    path = _write(tmp_path / "auth.log", ("\n".join(lines) + "\n").encode())
    stats = parse_file_stats(path, ParseConfig(format="auto", timezone="UTC"))
    assert stats.as_dict() == {
        "lines": 8,
        "events": 3,
        "by_kind": {"auth_failure": 1, "firewall_drop": 1, "invalid_user": 1},
        "ignored": 3,
        "unparsed": 2,
        "unparsed_by_reason": {"bad_timestamp": 1, "no_match": 1},
    }
    assert stats.ignored == {"not_security_relevant": 1, "other_program": 1, "blank": 1}
    # The streaming iterator and the counting loop agree line for line.
    kinds = [
        r.kind if isinstance(r, Event) else r.reason for _, r in iter_parse_file(path, UTC_SYSLOG)
    ]
    assert kinds.count("auth_failure") == 1 and len(kinds) == 8


SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


@pytest.mark.parametrize(
    "path", sorted(p for p in SAMPLES.iterdir() if p.suffix in (".log", ".json", ".ndjson"))
)
def test_parse_lines_is_the_per_line_parse_counted(path: Path) -> None:
    # The batch loop gives each sample's events in order, and counts every line as
    # a line-by-line reading does (here, the per-line accounting it replaced).
    texts = path.read_text(encoding="utf-8").splitlines()
    lines = [Line(text, "s", str(path), n) for n, text in enumerate(texts, 1)]
    one = make_parser(ParseConfig(timezone="UTC"), reference_time=REFERENCE, sample=texts[:50])
    results = [one.parse(text, n) for n, text in enumerate(texts, 1)]
    expected = ParseStats(lines=len(results))
    for r in results:
        if isinstance(r, Event):
            expected.events += 1
            expected.by_kind[r.kind] += 1
        else:
            (expected.ignored if r.recognized else expected.unparsed)[r.reason] += 1
    batch = make_parser(ParseConfig(timezone="UTC"), reference_time=REFERENCE, sample=texts[:50])
    stats = ParseStats()
    halves = (lines[: len(lines) // 2], lines[len(lines) // 2 :])
    events = [e for half in halves for e in parse_lines(batch.parse, half, stats)]
    assert events == [r for r in results if isinstance(r, Event)]
    assert stats == expected
    assert stats.lines == len(texts) and stats.events >= 1


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read"):
        parse_file_stats(tmp_path / "absent.log", UTC_SYSLOG)


def test_keep_raw_off(tmp_path: Path) -> None:
    parser = SyslogParser(ParseConfig(timezone="UTC", keep_raw=False), REFERENCE)
    event = parser.parse(FAILED, 3)
    assert isinstance(event, Event) and event.raw is None and event.line == 3


# --- stamps ------------------------------------------------------------------------


def test_year_is_fixed_by_config() -> None:
    parser = SyslogParser(ParseConfig(timezone="UTC", year=2019), REFERENCE)
    event = parser.parse(FAILED)
    assert isinstance(event, Event) and event.timestamp == 1574378068.0  # 2019-11-21T23:14:28Z


def test_local_zone_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        parser = SyslogParser(ParseConfig(timezone="local", year=2025), REFERENCE)
        event = parser.parse(FAILED)
        assert (
            isinstance(event, Event) and event.timestamp == 1763784868.0
        )  # 23:14:28 EST is 04:14:28Z
    finally:
        monkeypatch.undo()
        time.tzset()


def test_stamp_memo_agrees_with_a_fresh_computation() -> None:
    stamps = Stamps(zone_of("Europe/Berlin"), None, 1751328000.0)  # 2025-07-01
    seen = {}
    for text in ("Jun 30 23:59:59", "Jun 30 23:00:00", "Mar 30 02:30:00", "Oct 26 02:30:00"):
        seen[text] = stamps.traditional(text)
        fresh = Stamps(zone_of("Europe/Berlin"), None, stamps.reference)
        assert fresh.traditional(text) == seen[text]
    assert stamps.traditional("Jun 30 23:59:61") is None
    assert stamps.traditional("Foo 30 23:59:59") is None


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    year=st.sampled_from([None, 2016, 2025]),
    month=st.sampled_from(["Jan", "Feb", "Mar", "Oct", "Nov", "Dec", "Foo"]),
    day=st.integers(1, 31),
    hour=st.integers(0, 24),
    minute=st.integers(0, 60),
    seconds=st.lists(st.integers(0, 61), min_size=1, max_size=6),
)
def test_seconds_of_one_minute_agree_with_fresh_computations(
    zone: str, year: int | None, month: str, day: int, hour: int, minute: int, seconds: list[int]
) -> None:
    # After the first, each second comes from the memo of its minute (and hour).
    stamps = Stamps(zone_of(zone), year, REFERENCE)
    for second in seconds:
        text = f"{month} {day:2d} {hour:02d}:{minute:02d}:{second:02d}"
        fresh = Stamps(zone_of(zone), year, stamps.reference)
        assert stamps.traditional(text) == fresh.traditional(text), text
        assert stamps.reference == fresh.reference, text


def test_leap_second_is_clamped() -> None:
    parser = SyslogParser(ParseConfig(timezone="UTC", year=2016), REFERENCE)
    event = parser.parse(FAILED.replace("Nov 21 23:14:28", "Dec 31 23:59:60"))
    assert isinstance(event, Event) and event.timestamp == 1483228799.0


def test_bad_iso_date() -> None:
    parser = SyslogParser(ParseConfig(timezone="UTC"), REFERENCE)
    line = "2025-02-30T10:00:00Z host sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2"
    assert parser.parse(line) is BAD_TIMESTAMP


# --- dispatch by program -----------------------------------------------------------


def test_parse_program_message_without_state() -> None:
    event = parse_program_message(
        "Invalid user admin from 192.0.2.9 port 22", Header(1.5, "h", "sshd", 42, 3, "raw")
    )
    assert isinstance(event, Event)
    assert (event.kind, event.user, event.source_ip, event.pid) == (
        INVALID_USER,
        "admin",
        "192.0.2.9",
        42,
    )
    assert (event.timestamp, event.hostname, event.line, event.raw) == (1.5, "h", 3, "raw")
    kernel = parse_program_message(
        "[UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.1 DST=10.0.0.1 LEN=1 PROTO=UDP SPT=53 DPT=53",
        Header(None, None, "kernel", None, None, None),
    )
    assert isinstance(kernel, Event) and kernel.kind == FIREWALL_DROP and kernel.transport == "udp"
    cron = Header(None, None, "cron", 1, None, None)
    assert parse_program_message("(root) CMD (true)", cron) is OTHER_PROGRAM
    # Without a router, a failure that names no address cannot be completed.
    waiting = parse_program_message(
        "Disconnecting: Too many authentication failures [preauth]",
        Header(None, None, "sshd", 7, 1, None),
    )
    assert isinstance(waiting, Skip) and waiting.recognized


def test_parse_program_message_with_a_router_keeps_connections() -> None:
    router = ProgramRouter()
    parse_program_message(
        "Connection from 192.0.2.7 port 5 on 10.0.0.1 port 22",
        Header(None, "h", "sshd", 7, 1, None),
        router=router,
    )
    event = parse_program_message(
        "Disconnecting: Too many authentication failures [preauth]",
        Header(None, "h", "sshd", 7, 2, None),
        router=router,
    )
    assert isinstance(event, Event) and event.source_ip == "192.0.2.7"


def test_pam_from_any_program_and_ssh_preauth_kinds() -> None:
    parser = SyslogParser(UTC_SYSLOG, REFERENCE)
    pam = parser.parse(
        "Nov 21 23:14:28 h login[9]: pam_unix(login:auth): authentication failure; logname= "
        "uid=0 euid=0 tty=tty1 ruser= rhost=  user=alice"
    )
    assert isinstance(pam, Event) and pam.dataset == "pam" and pam.user == "alice"
    assert pam.source_ip is None and pam.source_address is None
    pre = parser.parse(
        "Nov 21 23:14:28 h sshd[1]: Did not receive identification string from 192.0.2.1"
    )
    assert isinstance(pre, Event) and pre.kind == PREAUTH and pre.outcome == "failure"
