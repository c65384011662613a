"""JSON-lines formats: ECS documents, Wazuh alerts, journalctl -o json records."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from soc.events import (
    ALERT,
    AUTH_FAILURE,
    AUTH_SUCCESS,
    FAILURE,
    FIREWALL_DROP,
    INVALID_USER,
    KINDS,
    SUCCESS,
    UNKNOWN,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    Event,
)
from soc.parse import detect_format, make_parser
from soc.parse.base import (
    BAD_JSON,
    BAD_TIMESTAMP,
    BLANK,
    NO_MATCH,
    NOT_RELEVANT,
    ParseConfig,
    Skip,
)
from soc.parse.jsonl import (
    EcsJsonParser,
    JournalJsonParser,
    WazuhJsonParser,
    field,
    iso_epoch,
)

CONFIG = ParseConfig(timezone="UTC")
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def event(result: Event | Skip) -> Event:
    assert isinstance(result, Event), result
    return result


@pytest.fixture
def ecs() -> EcsJsonParser:
    return EcsJsonParser(CONFIG, T0)


@pytest.fixture
def wazuh() -> WazuhJsonParser:
    return WazuhJsonParser(CONFIG, T0)


@pytest.fixture
def journal() -> JournalJsonParser:
    return JournalJsonParser(CONFIG, T0)


# --- helpers --------------------------------------------------------------------------


def test_field_reads_nested_flattened_and_mixed_paths() -> None:
    doc = {"source": {"ip": "1.2.3.4"}, "user.name": "bob", "log": {"syslog.appname": "sshd"}}
    assert field(doc, "source.ip") == "1.2.3.4"
    assert field(doc, "user.name") == "bob"
    assert field(doc, "log.syslog.appname") == "sshd"
    assert field(doc, "source.port") is None
    assert field({"source": "1.2.3.4"}, "source.ip") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", T0),
        ("2024-01-02T03:04:05.250Z", T0 + 0.25),
        ("2024-01-02T03:04:05.123456789Z", T0 + 0.123456),
        ("2024-01-02T04:04:05+01:00", T0),
        ("2024-01-02T03:04:05.000+0000", T0),
        ("2024-01-02T03:04:05", T0),  # no offset: the configured zone (UTC here)
        (T0, T0),
        (T0 * 1000, T0),
        ("yesterday", None),
        ("2024-13-02T03:04:05Z", None),
        (float("nan"), None),
        (-5, None),
        (True, None),
        (None, None),
        ({"x": 1}, None),
    ],
)
def test_iso_epoch(value: Any, expected: float | None) -> None:
    result = iso_epoch(value, UTC)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-6)


# --- ECS ------------------------------------------------------------------------------


def test_ecs_structured_authentication_failure(ecs: EcsJsonParser) -> None:
    doc = {
        "@timestamp": "2024-01-02T03:04:05.000Z",
        "event": {
            "category": ["authentication"],
            "outcome": "failure",
            "action": "ssh_login",
            "dataset": "system.auth",
        },
        "source": {"ip": "::ffff:203.0.113.9", "port": 50022},
        "user": {"name": "root"},
        "host": {"hostname": "web1"},
        "process": {"name": "sshd", "pid": 4242},
        "message": "Failed password for root from 203.0.113.9 port 50022 ssh2",
    }
    e = event(ecs.parse(dumps(doc), 12))
    assert (e.kind, e.outcome, e.action, e.dataset) == (
        AUTH_FAILURE,
        FAILURE,
        "ssh_login",
        "system.auth",
    )
    assert (e.source_ip, e.source_port, e.user, e.hostname) == (
        "203.0.113.9",
        50022,
        "root",
        "web1",
    )
    assert (e.process_name, e.pid, e.timestamp, e.line) == ("sshd", 4242, T0, 12)
    assert ecs.which(dumps(doc)) == "ecs.event"


def test_ecs_filebeat_invalid_user_and_success(ecs: EcsJsonParser) -> None:
    base = {"@timestamp": "2024-01-02T03:04:05Z", "source.ip": "198.51.100.1"}
    invalid = {
        **base,
        "event.category": "authentication",
        "event.outcome": "failure",
        "system": {"auth": {"ssh": {"event": "Invalid"}}},
        "user.name": "oracle",
    }
    assert event(ecs.parse(dumps(invalid))).kind == INVALID_USER
    accepted = {**base, "event.category": ["authentication"], "event.outcome": "success"}
    e = event(ecs.parse(dumps(accepted)))
    assert (e.kind, e.outcome, e.action) == (AUTH_SUCCESS, SUCCESS, "authentication")
    started = {**base, "event.category": ["authentication"], "event.type": ["start"]}
    assert ecs.parse(dumps(started)) is NOT_RELEVANT


def test_ecs_message_without_outcome_goes_through_the_syslog_programs(ecs: EcsJsonParser) -> None:
    doc = {
        "@timestamp": "2024-01-02T03:04:05Z",
        "log": {"syslog": {"appname": "sshd", "procid": "777", "hostname": "h"}},
        "host": {"name": "web2"},
        "message": "Failed password for invalid user admin from 192.0.2.77 port 4000 ssh2",
    }
    e = event(ecs.parse(dumps(doc), 3))
    assert (e.kind, e.outcome, e.source_ip, e.user) == (
        INVALID_USER,
        FAILURE,
        "192.0.2.77",
        "admin",
    )
    assert (e.timestamp, e.hostname, e.pid, e.line) == (T0, "web2", 777, 3)
    assert ecs.which(dumps(doc)) == "ecs.message"
    listening = {**doc, "message": "Server listening on 0.0.0.0 port 22."}
    assert ecs.parse(dumps(listening)) is NOT_RELEVANT


def test_ecs_unreadable_message_stays_unparsed(ecs: EcsJsonParser) -> None:
    doc = {"@timestamp": "2024-01-02T03:04:05Z", "process.name": "sshd", "message": "gibberish"}
    assert ecs.parse(dumps(doc)) is NO_MATCH
    assert ecs.which(dumps(doc)) is None
    no_program = {"@timestamp": "2024-01-02T03:04:05Z", "message": "hello"}
    assert ecs.parse(dumps(no_program)) is NO_MATCH


def test_ecs_web_access_message_and_fields(ecs: EcsJsonParser) -> None:
    line = '192.0.2.8 - - [02/Jan/2024:03:04:05 +0000] "GET /.env HTTP/1.1" 404 0 "-" "zgrab"'
    doc = {
        "@timestamp": "2024-01-02T03:04:06Z",
        "event": {"dataset": "nginx.access"},
        "message": line,
    }
    e = event(ecs.parse(dumps(doc)))
    assert (e.kind, e.outcome, e.url_path, e.dataset, e.timestamp) == (
        WEB_REQUEST,
        FAILURE,
        "/.env",
        "nginx.access",
        T0,
    )
    structured = {
        "@timestamp": "2024-01-02T03:04:05Z",
        "event": {"category": "web"},
        "source": {"address": "192.0.2.9"},
        "http": {"request": {"method": "POST"}, "response": {"status_code": 401}},
        "url": {"original": "/admin?x=1"},
        "user": {"name": "admin"},
        "user_agent": {"original": "hydra"},
    }
    e = event(ecs.parse(dumps(structured)))
    assert (e.kind, e.outcome, e.source_ip, e.http_method, e.url_path, e.user_agent) == (
        WEB_AUTH_FAILURE,
        FAILURE,
        "192.0.2.9",
        "POST",
        "/admin",
        "hydra",
    )
    ok = {**structured, "user": {}, "http": {"response": {"status_code": 200}}}
    e = event(ecs.parse(dumps(ok)))
    assert (e.kind, e.outcome, e.http_status) == (WEB_REQUEST, SUCCESS, 200)


def test_ecs_firewall_alert_and_irrelevant(ecs: EcsJsonParser) -> None:
    base = {"@timestamp": "2024-01-02T03:04:05Z", "source": {"ip": "192.0.2.10"}}
    drop = {
        **base,
        "event": {"category": ["network"], "type": ["connection", "denied"]},
        "destination": {"ip": "10.0.0.1", "port": 23},
        "network": {"transport": "tcp"},
    }
    e = event(ecs.parse(dumps(drop)))
    assert (e.kind, e.outcome, e.destination_ip, e.destination_port, e.transport) == (
        FIREWALL_DROP,
        FAILURE,
        "10.0.0.1",
        23,
        "tcp",
    )
    alert = {**base, "event": {"kind": "alert", "reason": "Suricata ET SCAN"}}
    e = event(ecs.parse(dumps(alert)))
    assert (e.kind, e.outcome, e.reason) == (ALERT, UNKNOWN, "Suricata ET SCAN")
    ids = {**base, "event": {"category": "intrusion_detection", "outcome": "success"}}
    assert event(ecs.parse(dumps(ids))).kind == ALERT
    process = {**base, "event": {"category": ["process"], "outcome": "success"}}
    assert ecs.parse(dumps(process)) is NOT_RELEVANT
    assert ecs.which(dumps(process)) == "ecs.other"


def test_ecs_round_trip_of_our_own_events(ecs: EcsJsonParser) -> None:
    original = Event(
        T0 + 0.5,
        INVALID_USER,
        FAILURE,
        "ssh_login",
        source_ip="2001:db8::5",
        source_port=2222,
        user="bad user",
        hostname="bastion",
        process_name="sshd",
        pid=99,
        count=3,
        reason="invalid user",
        dataset="sshd",
    )
    back = event(ecs.parse(json.dumps(original.to_ecs()), 5))
    back.raw = None
    back.line = None
    assert back == original
    web = Event(
        T0,
        WEB_REQUEST,
        FAILURE,
        "http_request",
        source_address="scanner.example",
        http_method="GET",
        url_path="/wp-login.php",
        http_status=404,
        user_agent="curl",
        dataset="web.access",
        destination_ip="10.1.1.1",
        destination_port=80,
        transport="tcp",
    )
    back = event(ecs.parse(json.dumps(web.to_ecs())))
    back.raw = None
    assert back == web


@pytest.mark.parametrize(
    ("text", "skip"),
    [
        ("", BLANK),
        ("{not json", BAD_JSON),
        ('{"@timestamp": "2024-01-02T03:04:05Z"', BAD_JSON),
        ("[" * 100_000 + "]" * 100_000, BAD_JSON),
        ('{"n": ' + "9" * 5000 + "}", BAD_JSON),
        ("[1, 2]", NO_MATCH),
        ('"a string"', NO_MATCH),
        ("{}", NO_MATCH),
        ('{"message": "no timestamp"}', NO_MATCH),
        ('{"@timestamp": "not a time", "message": "x"}', BAD_TIMESTAMP),
    ],
)
def test_ecs_bad_lines(ecs: EcsJsonParser, text: str, skip: Skip) -> None:
    assert ecs.parse(text) is skip


def test_ecs_wrong_types_never_raise(ecs: EcsJsonParser) -> None:
    doc = {
        "@timestamp": "2024-01-02T03:04:05Z",
        "event": {"category": "authentication", "outcome": "failure", "action": ["x"]},
        "source": {"ip": 12345, "port": "huge", "address": ["a"]},
        "user": {"name": {"first": "x"}},
        "process": {"pid": True},
        "http": {"response": {"status_code": 10**12}},
        "soc": {"kind": "nonsense", "count": -4},
    }
    e = event(ecs.parse(dumps(doc)))
    assert (e.kind, e.source_ip, e.source_address, e.source_port, e.user, e.pid) == (
        AUTH_FAILURE,
        None,
        "12345",
        None,
        None,
        None,
    )
    assert (e.action, e.count, e.http_status) == ("authentication", 1, None)
    bad_ip = {**doc, "source": {"ip": "not-an-ip"}}
    assert event(ecs.parse(dumps(bad_ip))).source_address == "not-an-ip"


# --- Wazuh ----------------------------------------------------------------------------

WAZUH_SSHD = {
    "timestamp": "2024-01-02T03:04:05.000+0000",
    "rule": {
        "level": 5,
        "description": "sshd: authentication failed.",
        "id": "5760",
        "groups": ["syslog", "sshd", "authentication_failed"],
        "mitre": {"id": ["T1110.001"], "tactic": ["Credential Access"]},
    },
    "agent": {"id": "001", "name": "web1", "ip": "10.0.0.5"},
    "manager": {"name": "wazuh"},
    "id": "1704164645.1234",
    "full_log": (
        "Jan  2 03:04:05 web1 sshd[1234]: Failed password for root from 203.0.113.5 port 50000 ssh2"
    ),
    "predecoder": {"program_name": "sshd", "timestamp": "Jan  2 03:04:05", "hostname": "web1"},
    "decoder": {"parent": "sshd", "name": "sshd"},
    "data": {"srcip": "203.0.113.5", "srcport": "50000", "dstuser": "root"},
    "location": "/var/log/auth.log",
}


def test_wazuh_sshd_alert_is_parsed_from_full_log(wazuh: WazuhJsonParser) -> None:
    e = event(wazuh.parse(dumps(WAZUH_SSHD), 9))
    assert (e.kind, e.outcome, e.source_ip, e.source_port, e.user) == (
        AUTH_FAILURE,
        FAILURE,
        "203.0.113.5",
        50000,
        "root",
    )
    assert (e.timestamp, e.hostname, e.pid, e.line) == (T0, "web1", 1234, 9)
    assert wazuh.which(dumps(WAZUH_SSHD)) == "wazuh.full_log"


def test_wazuh_other_alerts_become_alert_events(wazuh: WazuhJsonParser) -> None:
    windows = {
        "timestamp": "2024-01-02T03:04:05.000+0000",
        "rule": {
            "level": 5,
            "description": "Logon Failure - Unknown user or bad password.",
            "id": "60122",
            "groups": ["windows", "authentication_failed"],
        },
        "agent": {"name": "dc1"},
        "data": {"srcip": "198.51.100.20", "srcuser": "Administrator", "dstuser": "DC1$"},
        "decoder": {"name": "windows_eventchannel"},
    }
    e = event(wazuh.parse(dumps(windows)))
    assert (e.kind, e.outcome, e.action, e.dataset) == (
        ALERT,
        FAILURE,
        "wazuh_rule_60122",
        "wazuh.alerts",
    )
    assert (e.source_ip, e.user, e.hostname, e.reason) == (
        "198.51.100.20",
        "Administrator",
        "dc1",
        "Logon Failure - Unknown user or bad password.",
    )
    assert wazuh.which(dumps(windows)) == "wazuh.alert"
    sudo = {
        **WAZUH_SSHD,
        "rule": {"level": 3, "description": "Successful sudo to ROOT executed.", "id": 5402},
        "full_log": "Jan  2 03:04:05 web1 sudo:    alice : TTY=pts/0 ; COMMAND=/bin/ls",
        "predecoder": {"program_name": "sudo", "hostname": "web1"},
        "data": {"srcuser": "alice", "dstuser": "root"},
    }
    e = event(wazuh.parse(dumps(sudo)))
    assert (e.kind, e.outcome, e.action, e.user, e.process_name) == (
        ALERT,
        UNKNOWN,
        "wazuh_rule_5402",
        "alice",
        "sudo",
    )


def test_wazuh_web_access_alert(wazuh: WazuhJsonParser) -> None:
    line = '203.0.113.30 - - [02/Jan/2024:03:04:05 +0000] "GET /phpmyadmin/ HTTP/1.1" 404 9 "-" "x"'
    doc = {
        "timestamp": "2024-01-02T03:04:05.000+0000",
        "rule": {"level": 5, "description": "Web server 400 error code.", "id": "31101"},
        "full_log": line,
        "decoder": {"name": "web-accesslog"},
        "data": {"srcip": "203.0.113.30", "url": "/phpmyadmin/", "id": "404"},
    }
    e = event(wazuh.parse(dumps(doc)))
    assert (e.kind, e.outcome, e.url_path, e.source_ip) == (
        WEB_REQUEST,
        FAILURE,
        "/phpmyadmin/",
        "203.0.113.30",
    )


@pytest.mark.parametrize(
    ("doc", "skip"),
    [
        ({"agent": {"name": "x"}}, NO_MATCH),
        ({"rule": {"id": "1"}}, NO_MATCH),
        ({"rule": {"id": "1"}, "timestamp": "garbage"}, BAD_TIMESTAMP),
    ],
)
def test_wazuh_bad_documents(wazuh: WazuhJsonParser, doc: dict[str, Any], skip: Skip) -> None:
    assert wazuh.parse(dumps(doc)) is skip
    assert wazuh.parse("{oops") is BAD_JSON


# --- journal --------------------------------------------------------------------------

JOURNAL_SSHD = {
    "__CURSOR": "s=abc;i=1",
    "__REALTIME_TIMESTAMP": str(int(T0 * 1_000_000) + 123456),
    "__MONOTONIC_TIMESTAMP": "12345",
    "_BOOT_ID": "b",
    "_HOSTNAME": "web1",
    "SYSLOG_IDENTIFIER": "sshd",
    "_COMM": "sshd",
    "_PID": "321",
    "SYSLOG_FACILITY": "10",
    "PRIORITY": "6",
    "MESSAGE": "Failed password for root from 203.0.113.44 port 40000 ssh2",
}


def test_journal_sshd_record(journal: JournalJsonParser) -> None:
    e = event(journal.parse(dumps(JOURNAL_SSHD), 4))
    assert (e.kind, e.source_ip, e.user, e.hostname, e.pid, e.line) == (
        AUTH_FAILURE,
        "203.0.113.44",
        "root",
        "web1",
        321,
        4,
    )
    assert e.timestamp == pytest.approx(T0 + 0.123456)
    assert journal.which(dumps(JOURNAL_SSHD)) == "journal.message"


def test_journal_prefers_the_source_time(journal: JournalJsonParser) -> None:
    doc = {**JOURNAL_SSHD, "_SOURCE_REALTIME_TIMESTAMP": str(int(T0 * 1_000_000) - 5_000_000)}
    assert event(journal.parse(dumps(doc))).timestamp == pytest.approx(T0 - 5)


def test_journal_message_as_bytes(journal: JournalJsonParser) -> None:
    text = "Invalid user b\xe4d from 203.0.113.45 port 1".encode("latin-1")
    doc = {**JOURNAL_SSHD, "MESSAGE": list(text)}
    e = event(journal.parse(dumps(doc)))
    assert (e.kind, e.source_ip, e.user) == (INVALID_USER, "203.0.113.45", "b\ufffdd")
    several = {**JOURNAL_SSHD, "MESSAGE": [JOURNAL_SSHD["MESSAGE"], "second value"]}
    assert event(journal.parse(dumps(several))).source_ip == "203.0.113.44"


def test_journal_nginx_error_goes_to_the_web_parser(journal: JournalJsonParser) -> None:
    doc = {
        **JOURNAL_SSHD,
        "SYSLOG_IDENTIFIER": "nginx",
        "_COMM": "nginx",
        "MESSAGE": (
            '2024/01/02 03:04:05 [error] 9#9: *1 user "admin" was not found in '
            '"/etc/nginx/.htpasswd", client: 203.0.113.50, server: x, '
            'request: "GET / HTTP/1.1", host: "x"'
        ),
    }
    e = event(journal.parse(dumps(doc)))
    assert (e.kind, e.source_ip, e.user, e.dataset, e.process_name, e.pid) == (
        WEB_AUTH_FAILURE,
        "203.0.113.50",
        "admin",
        "nginx.error",
        "nginx",
        321,
    )


@pytest.mark.parametrize(
    ("doc", "skip"),
    [
        ({**JOURNAL_SSHD, "MESSAGE": None}, NOT_RELEVANT),  # > 4096 bytes without --all
        ({k: v for k, v in JOURNAL_SSHD.items() if k != "MESSAGE"}, NOT_RELEVANT),
        ({"hello": "world"}, NO_MATCH),
        ({**JOURNAL_SSHD, "__REALTIME_TIMESTAMP": "soon"}, BAD_TIMESTAMP),
        ({"MESSAGE": "no time"}, BAD_TIMESTAMP),
    ],
)
def test_journal_bad_records(journal: JournalJsonParser, doc: dict[str, Any], skip: Skip) -> None:
    assert journal.parse(dumps(doc)) is skip


@pytest.mark.timeout(10)  # a hang guard, not a speed target
def test_huge_json_line_parses(ecs: EcsJsonParser, journal: JournalJsonParser) -> None:
    agent = "A" * 64 * 1024
    doc = {
        "@timestamp": "2024-01-02T03:04:05Z",
        "event": {"dataset": "nginx.access"},
        "message": (
            f'192.0.2.1 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 1 "-" "{agent}"'
        ),
    }
    assert event(ecs.parse(dumps(doc))).user_agent == agent
    record = {**JOURNAL_SSHD, "MESSAGE": list(b"x" * 64 * 1024)}
    assert isinstance(journal.parse(dumps(record)), Skip | Event)


def test_auto_detection_of_json_formats() -> None:
    filebeat = {
        "@timestamp": "2024-01-02T03:04:05Z",
        "agent": {"type": "filebeat"},
        "rule": {"name": "allow-ssh"},
        "event": {"category": ["network"], "type": ["denied"]},
    }
    assert detect_format([dumps(filebeat)]) == "ecs_json"
    assert detect_format([dumps(WAZUH_SSHD)] * 2) == "wazuh_json"
    assert detect_format([dumps(JOURNAL_SSHD), "{broken"]) == "journal_json"
    parser = make_parser(
        ParseConfig(format="auto", timezone="UTC"), reference_time=T0, sample=[dumps(filebeat)]
    )
    assert isinstance(parser, EcsJsonParser)
    assert event(parser.parse(dumps(filebeat))).kind == FIREWALL_DROP


def test_sshd_state_is_kept_per_source(journal: JournalJsonParser) -> None:
    """A failure line without an address gets its connection's address (same sshd PID)."""
    first = {
        **JOURNAL_SSHD,
        "MESSAGE": "Connection from 203.0.113.60 port 5000 on 10.0.0.1 port 22",
    }
    journal.parse(dumps(first))
    too_many = {
        **JOURNAL_SSHD,
        "MESSAGE": "Disconnecting: Too many authentication failures for root [preauth]",
    }
    e = event(journal.parse(dumps(too_many)))
    assert (e.source_ip, e.outcome) == ("203.0.113.60", FAILURE)


# --- documents with arbitrary values --------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of a nested document."""
    found: list[tuple[str, ...]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    return found


def _replace(doc: Any, path: tuple[str, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


ECS_TEMPLATE = {
    "@timestamp": "2024-01-02T03:04:05Z",
    "event": {"category": ["authentication"], "outcome": "failure", "dataset": "nginx.access"},
    "source": {"ip": "192.0.2.1", "port": 1},
    "user": {"name": "u"},
    "http": {"request": {"method": "GET"}, "response": {"status_code": 401}},
    "url": {"original": "/x"},
    "soc": {"kind": "auth_failure", "count": 2},
    "process": {"name": "sshd", "pid": 3},
    "log": {"syslog": {"appname": "sshd", "procid": "3"}},
    "message": "Failed password for root from 192.0.2.1 port 1 ssh2",
}


@settings(max_examples=int(os.environ.get("SOC_FUZZ_EXAMPLES", "150")), deadline=None)
@example(which=0, value=253402300800000.0, drop=False)  # year 10000 in milliseconds
@given(which=st.integers(min_value=0), value=JSON_VALUES, drop=st.booleans())
def test_documents_with_arbitrary_values_never_raise(which: int, value: Any, drop: bool) -> None:
    for parser, template in (
        (EcsJsonParser(CONFIG, T0), ECS_TEMPLATE),
        (WazuhJsonParser(CONFIG, T0), WAZUH_SSHD),
        (JournalJsonParser(CONFIG, T0), JOURNAL_SSHD),
    ):
        paths = _paths(template)
        path = paths[which % len(paths)]
        doc = _replace(template, path, value)
        if drop:
            doc = _replace(doc, path[:1], value) if len(path) > 1 else value
        result = parser.parse(json.dumps(doc), 1)
        assert isinstance(result, Event | Skip)
        if isinstance(result, Event):
            assert result.kind in KINDS
            assert result.user is None or isinstance(result.user, str)
            assert result.source_port is None or 0 <= result.source_port <= 65535
            json.dumps(result.to_ecs())
