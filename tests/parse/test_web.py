"""Web access and error lines: fields, failure semantics, hostile input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.errors import ParseError
from soc.events import (
    ACCESS_DENIED,
    FAILURE,
    KINDS,
    SUCCESS,
    UNKNOWN,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    Event,
)
from soc.parse import detect_format, make_parser
from soc.parse.base import BAD_TIMESTAMP, BLANK, NO_MATCH, NOT_RELEVANT, ParseConfig, Skip
from soc.parse.web import (
    AUTH_CHALLENGE,
    WebAccessParser,
    WebErrorParser,
    parse_apache_error,
    parse_nginx_error,
    split_request,
)

UTC_CONFIG = ParseConfig(format="web_access", timezone="UTC")
COMBINED = (
    '203.0.113.7 - - [20/Jan/2015:19:53:28 +0100] "GET /wp-login.php?x=1 HTTP/1.1" 404 162 '
    '"http://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"'
)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def access() -> WebAccessParser:
    return WebAccessParser(UTC_CONFIG, epoch("2024-01-01T00:00:00"))


@pytest.fixture
def error() -> WebErrorParser:
    return WebErrorParser(ParseConfig(format="web_error", timezone="UTC"), 0.0)


def event(result: Event | Skip) -> Event:
    assert isinstance(result, Event), result
    return result


def test_combined_line_gives_every_field(access: WebAccessParser) -> None:
    e = event(access.parse(COMBINED, 7))
    assert (e.kind, e.outcome, e.action, e.dataset) == (
        WEB_REQUEST,
        FAILURE,
        "http_request",
        "web.access",
    )
    assert e.source_ip == "203.0.113.7"
    assert e.http_method == "GET"
    assert e.url_path == "/wp-login.php"
    assert e.http_status == 404
    assert e.user_agent == "Mozilla/5.0 (X11; Linux x86_64)"
    assert e.user is None
    assert e.timestamp == epoch("2015-01-20T18:53:28")  # +0100 applied
    assert e.line == 7
    assert e.raw == COMBINED
    assert access.which(COMBINED) == "web.access_combined"


@pytest.mark.parametrize(
    ("line", "pattern", "ip", "user"),
    [
        (
            '198.51.100.2 - alice [01/Feb/2024:10:00:00 +0000] "POST /login HTTP/1.0" 200 5',
            "web.access_common",
            "198.51.100.2",
            "alice",
        ),
        (
            'www.example.com:443 198.51.100.3 - - [01/Feb/2024:10:00:00 +0000] "GET / HTTP/1.1" '
            '200 512 "-" "curl/8.0"',
            "web.access_vhost_combined",
            "198.51.100.3",
            None,
        ),
        (
            "example.org 198.51.100.4 - bob smith [01/Feb/2024:10:00:00 +0000] "
            '"GET / HTTP/1.1" 200 1',
            "web.access_vhost_common",
            "198.51.100.4",
            "bob smith",
        ),
        (
            '2001:db8::1 - - [01/Feb/2024:10:00:00 +0000] "GET / HTTP/2.0" 200 1 "-" "x"',
            "web.access_combined",
            "2001:db8::1",
            None,
        ),
    ],
)
def test_access_variants(
    access: WebAccessParser, line: str, pattern: str, ip: str, user: str | None
) -> None:
    e = event(access.parse(line))
    assert access.which(line) == pattern
    assert (e.source_ip, e.user, e.outcome) == (ip, user, SUCCESS)


def test_ipv4_mapped_client_is_unmapped_and_names_are_not_resolved(access: WebAccessParser) -> None:
    mapped = '::ffff:192.0.2.9 - - [01/Feb/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
    assert event(access.parse(mapped)).source_ip == "192.0.2.9"
    named = 'crawler.example.net - - [01/Feb/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
    e = event(access.parse(named))
    assert (e.source_ip, e.source_address, e.key_address) == (
        None,
        "crawler.example.net",
        "crawler.example.net",
    )


@pytest.mark.parametrize(
    ("request_field", "status", "reason"),
    [
        (r"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "400", "malformed request line"),
        ("-", "400", "no request line"),
        ("", "408", "no request line"),
        ("GARBAGE", "400", "malformed request line"),
    ],
)
def test_malformed_request_lines_are_failed_requests(
    access: WebAccessParser, request_field: str, status: str, reason: str
) -> None:
    line = f'192.0.2.50 - - [01/Feb/2024:10:00:00 +0000] "{request_field}" {status} 0 "-" "-"'
    e = event(access.parse(line))
    assert (e.kind, e.outcome, e.http_method, e.url_path, e.reason) == (
        WEB_REQUEST,
        FAILURE,
        None,
        None,
        reason,
    )
    assert e.http_status == int(status)


@pytest.mark.parametrize(
    ("status", "user", "kind", "outcome"),
    [
        ("200", "-", WEB_REQUEST, SUCCESS),
        ("304", "-", WEB_REQUEST, SUCCESS),
        ("401", "-", WEB_REQUEST, FAILURE),  # the challenge: no credentials offered
        ("401", "admin", WEB_AUTH_FAILURE, FAILURE),
        ("407", "admin", WEB_AUTH_FAILURE, FAILURE),
        ("403", "admin", WEB_REQUEST, FAILURE),
        ("404", "-", WEB_REQUEST, FAILURE),
        ("500", "-", WEB_REQUEST, FAILURE),
        ("-", "-", WEB_REQUEST, UNKNOWN),
    ],
)
def test_failure_semantics(
    access: WebAccessParser, status: str, user: str, kind: str, outcome: str
) -> None:
    line = f'192.0.2.1 - {user} [01/Feb/2024:10:00:00 +0000] "GET /admin HTTP/1.1" {status} 0'
    e = event(access.parse(line))
    assert (e.kind, e.outcome) == (kind, outcome)
    assert e.action == ("http_authentication" if kind == WEB_AUTH_FAILURE else "http_request")


def test_escaped_quotes_stay_inside_their_field(access: WebAccessParser) -> None:
    apache = (
        '192.0.2.1 - - [01/Feb/2024:10:00:00 +0000] "GET /a\\"b HTTP/1.1" 404 0 "-" '
        '"evil \\"agent\\" 1.0"'
    )
    e = event(access.parse(apache))
    assert (e.url_path, e.user_agent) == ('/a\\"b', 'evil \\"agent\\" 1.0')
    nginx = '192.0.2.1 - - [01/Feb/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "a\\x22b"'
    assert event(access.parse(nginx)).user_agent == "a\\x22b"


def test_unescaped_quotes_are_read_leniently(access: WebAccessParser) -> None:
    line = '192.0.2.1 - - [01/Feb/2024:10:00:00 +0000] "GET /"x" HTTP/1.1" 404 0 "-" "ua "q""'
    e = event(access.parse(line))
    assert (e.url_path, e.http_status, e.user_agent) == ('/"x"', 404, 'ua "q"')


@pytest.mark.parametrize(
    ("target", "method", "path"),
    [
        ("GET /a/b?c=d HTTP/1.1", "GET", "/a/b"),
        ("GET http://proxy.test/x?y HTTP/1.1", "GET", "/x"),
        ("GET http://proxy.test HTTP/1.1", "GET", "/"),
        ("CONNECT example.com:443 HTTP/1.1", "CONNECT", None),
        ("OPTIONS * HTTP/1.1", "OPTIONS", None),
        ("GET /old", "GET", "/old"),  # HTTP/0.9
        ("GET /with space HTTP/1.1", "GET", "/with space"),
        ("\\x16\\x03", None, None),
        ("-", None, None),
    ],
)
def test_split_request(target: str, method: str | None, path: str | None) -> None:
    assert split_request(target) == (method, path)


def test_time_without_offset_uses_the_configured_zone() -> None:
    parser = WebAccessParser(ParseConfig(timezone="Europe/Berlin"), 0.0)
    line = '192.0.2.1 - - [01/Jul/2024:12:00:00] "GET / HTTP/1.1" 200 1'
    assert event(parser.parse(line)).timestamp == epoch("2024-07-01T10:00:00")


def test_bad_input_gives_counted_skips(access: WebAccessParser) -> None:
    bad_day = '192.0.2.1 - - [32/Jan/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1'
    bad_month = '192.0.2.1 - - [01/Foo/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1'
    assert access.parse(bad_day) is BAD_TIMESTAMP
    assert access.parse(bad_month) is BAD_TIMESTAMP
    assert access.parse("") is BLANK
    assert access.parse("   ") is BLANK
    assert access.parse("hello world") is NO_MATCH
    assert access.parse(COMBINED[:40]) is NO_MATCH
    assert access.which("hello world") is None


def test_keep_raw_false_drops_the_line() -> None:
    parser = WebAccessParser(ParseConfig(timezone="UTC", keep_raw=False), 0.0)
    assert event(parser.parse(COMBINED)).raw is None


def test_repeated_second_reuses_the_parsed_time(access: WebAccessParser) -> None:
    first = event(access.parse(COMBINED))
    second = event(access.parse(COMBINED.replace("203.0.113.7", "203.0.113.8")))
    assert first.timestamp == second.timestamp == epoch("2015-01-20T18:53:28")
    other = COMBINED.replace("19:53:28", "19:53:29")
    assert event(access.parse(other)).timestamp == epoch("2015-01-20T18:53:29")


def test_unknown_zone_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="Mars/Olympus"):
        WebAccessParser(ParseConfig(timezone="Mars/Olympus"), 0.0)


# --- error logs -----------------------------------------------------------------------

NGINX_MISMATCH = (
    '2024/01/02 03:04:05 [error] 123#0: *45 user "bob": password mismatch, client: 192.0.2.4, '
    'server: x, request: "GET /private/?q=1 HTTP/1.1", host: "x"'
)


def test_nginx_password_mismatch(error: WebErrorParser) -> None:
    e = event(error.parse(NGINX_MISMATCH, 3))
    assert (e.kind, e.outcome, e.action, e.dataset) == (
        WEB_AUTH_FAILURE,
        FAILURE,
        "http_authentication",
        "nginx.error",
    )
    assert (e.source_ip, e.user, e.http_method, e.url_path) == (
        "192.0.2.4",
        "bob",
        "GET",
        "/private/",
    )
    assert (e.process_name, e.pid, e.reason, e.line) == ("nginx", 123, "password mismatch", 3)
    assert e.timestamp == epoch("2024-01-02T03:04:05")


def test_nginx_user_name_can_not_forge_the_client(error: WebErrorParser) -> None:
    forged = 'evil", client: 6.6.6.6, server: y, request: "GET / HTTP/1.1", host: "h'
    line = (
        f'2024/01/02 03:04:05 [error] 1#0: *1 user "{forged}" was not found in "/etc/htpasswd", '
        'client: 192.0.2.5, server: x, request: "GET / HTTP/1.1", host: "x"'
    )
    e = event(error.parse(line))
    assert (e.source_ip, e.user) == ("192.0.2.5", forged)


def test_nginx_challenge_and_other_lines_are_recognised_skips(error: WebErrorParser) -> None:
    challenge = (
        "2024/01/02 03:04:05 [error] 1#0: *1 no user/password was provided for basic "
        'authentication, client: 192.0.2.6, server: x, request: "GET / HTTP/1.1", host: "x"'
    )
    assert error.parse(challenge) is AUTH_CHALLENGE
    assert error.which(challenge) == "nginx.auth_no_credentials"
    upstream = (
        "2024/01/02 03:04:05 [error] 1#1: *9 connect() failed (111: Connection refused) while "
        'connecting to upstream, client: 192.0.2.6, server: x, request: "GET / HTTP/1.1", '
        'upstream: "http://127.0.0.1:3000/", host: "x"'
    )
    assert error.parse(upstream) is NOT_RELEVANT
    assert error.parse("2024/01/02 03:04:05 [notice] 1#1: signal process started") is NOT_RELEVANT
    assert error.parse("2024/13/02 03:04:05 [error] 1#1: *1 whatever") is BAD_TIMESTAMP


def test_nginx_probe_takes_the_url_from_the_request(error: WebErrorParser) -> None:
    line = (
        '2024/01/02 03:04:05 [error] 7#0: *8 open() "/usr/share/nginx/html/phpmyadmin" failed '
        "(2: No such file or directory), client: 2001:db8::7, server: localhost, "
        'request: "GET /phpmyadmin HTTP/1.1", host: "example.com"'
    )
    e = event(error.parse(line))
    assert (e.kind, e.outcome, e.url_path, e.source_ip, e.reason) == (
        WEB_REQUEST,
        FAILURE,
        "/phpmyadmin",
        "2001:db8::7",
        "No such file or directory",
    )


def test_apache_24_auth_failure_with_port(error: WebErrorParser) -> None:
    line = (
        "[Sat Jul 20 21:39:11.978080 2013] [auth_basic:error] [pid 17512:tid 140123053950720] "
        "[client 127.0.0.1:51390] AH01617: user username: authentication failure for "
        '"/basic/file": Password Mismatch, referer: http://example.com/'
    )
    e = event(error.parse(line))
    assert (e.kind, e.user, e.source_ip, e.source_port, e.url_path, e.pid) == (
        WEB_AUTH_FAILURE,
        "username",
        "127.0.0.1",
        51390,
        "/basic/file",
        17512,
    )
    assert e.reason == "Password Mismatch"
    assert e.timestamp == epoch("2013-07-20T21:39:11.978080")


def test_apache_ipv6_clients(error: WebErrorParser) -> None:
    v24 = (
        "[Sat Jul 20 22:11:44.147674 2013] [authz_owner:error] [pid 1:tid 2] "
        "[client [2001:db8::1]:51548] AH01637: Authorization of user u to access /x failed, "
        "reason: file owner dan does not match"
    )
    e = event(error.parse(v24))
    assert (e.kind, e.source_ip, e.source_port, e.user) == (
        ACCESS_DENIED,
        "2001:db8::1",
        51548,
        "u",
    )
    v22 = "[Thu Jul 11 01:21:44 2013] [error] [client 2001:db8::2] user t not found: /"
    e = event(error.parse(v22))
    assert (e.source_ip, e.source_port) == ("2001:db8::2", None)
    # Without brackets a trailing group that can not be IPv6 (> ffff) is the port.
    bare = "[Thu Jul 11 01:21:44 2013] [error] [client 2001:db8::3:40000] user t not found: /"
    e = event(error.parse(bare))
    assert (e.source_ip, e.source_port) == ("2001:db8::3", 40000)


def test_apache_dos_vector_keeps_the_real_client(error: WebErrorParser) -> None:
    line = (
        "[Sat Jun 01 02:17:42 2013] [error] [client 192.168.33.1] File does not exist: "
        "/srv/http/site/[client 192.168.0.1] user root not found"
    )
    e = event(error.parse(line))
    assert (e.kind, e.source_ip) == (WEB_REQUEST, "192.168.33.1")
    assert error.which(line) == "apache.file_not_found"


def test_apache_lines_without_client_or_time(error: WebErrorParser) -> None:
    start = (
        "[Wed Oct 11 14:32:52.123456 2023] [mpm_prefork:notice] [pid 1] AH00163: "
        "Apache/2.4.57 configured -- resuming normal operations"
    )
    assert error.parse(start) is NOT_RELEVANT
    assert error.parse("[Wed Foo 11 14:32:52 2023] [error] [client 1.2.3.4] x") is BAD_TIMESTAMP
    syslog_message = (
        "[authz_core:error] [pid 22034] [client 192.0.2.1:58585] AH01630: client denied by "
        "server configuration: /home/www/"
    )
    assert error.parse(syslog_message) is NO_MATCH  # no time: only valid behind syslog framing
    name, result = parse_apache_error(syslog_message, 1000.0, UTC, process_name="httpd")
    e = event(result)
    assert (name, e.timestamp, e.source_ip, e.process_name) == (
        "apache.client_denied",
        1000.0,
        "192.0.2.1",
        "httpd",
    )


def test_nginx_message_behind_syslog_uses_the_given_time() -> None:
    name, result = parse_nginx_error(NGINX_MISMATCH, 42.0, UTC, hostname="web1")
    e = event(result)
    assert (name, e.timestamp, e.hostname) == ("nginx.auth_password_mismatch", 42.0, "web1")


# --- hostile input --------------------------------------------------------------------

BIG = 64 * 1024


@pytest.mark.parametrize(
    "line",
    [
        '1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET /' + "a" * BIG + ' HTTP/1.1" 404 47 "-" "-"',
        '1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 404 47 "-" "'
        + 'Mozilla \\" ' * (BIG // 11)
        + '"',
        '1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 404 47 "-" "'
        + '\\"" ' * (BIG // 4),
        '1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET /'
        + '" 200 ' * (BIG // 6)
        + ' HTTP/1.1" 404 4',
        '1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "GET ' + "/ " * (BIG // 2) + 'HTTP/1.1" 404 47',
        "1.2.3.4 - " + "a " * (BIG // 2) + '[20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 404 47',
        "1.2.3.4 - " + "a [" * (BIG // 3),
        '1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] "' + '\\x16"' * (BIG // 5) + " 400 0",
    ],
    ids=["path", "agent", "agent-open", "quotes", "spaces", "user", "brackets", "tls"],
)
@pytest.mark.timeout(10)  # a hang guard against catastrophic backtracking, not a speed target
def test_hostile_access_lines_do_not_backtrack(access: WebAccessParser, line: str) -> None:
    result = access.parse(line)
    assert isinstance(result, Event | Skip)


@pytest.mark.parametrize(
    "line",
    [
        '2012/04/09 11:53:29 [error] 2865#0: *1 user "'
        + '", client: 1.2.3.4, server: x' * (BIG // 30)
        + '" was not found in "/x", client: 192.0.2.10, server: s, request: "GET / HTTP/1.1"',
        '2012/04/09 11:53:29 [error] 2865#0: *1 user "' + '" was not found in "' * (BIG // 20),
        "2020/11/25 14:42:16 [crit] 7#7: *2 SSL_do_handshake() failed (" + ") while " * (BIG // 8),
        "2020/11/25 14:42:16 [info] 1#1: *1 client sent " + " while " * (BIG // 7),
        "2020/11/25 14:42:16 [error] 1#1: *1 x"
        + ", client: 1.2.3.4, server: s, host: " * (BIG // 35),
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] user "
        + " not found" * (BIG // 10)
        + "x",
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] user " + "a not found: " * (BIG // 13),
        '[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] user x: authentication failure for "'
        + '": ' * (BIG // 3),
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] Digest: user `"
        + "' in realm `" * (BIG // 12),
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] Authorization of user x to access "
        + " to access " * (BIG // 11),
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] Digest: invalid nonce "
        + " received - " * (BIG // 12),
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] Digest: realm mismatch - got `"
        + "' but expected" * (BIG // 14),
        "[Thu Jul 11 01:21:43 2013] [error] [client 1.2.3.4] script '"
        + "' not found" * (BIG // 11),
    ],
)
@pytest.mark.timeout(10)  # a hang guard against catastrophic backtracking, not a speed target
def test_hostile_error_lines_do_not_backtrack(error: WebErrorParser, line: str) -> None:
    result = error.parse(line)
    assert isinstance(result, Event | Skip)


# --- format detection and syslog delivery ---------------------------------------------

APACHE_24 = (
    "[Sat Jul 20 21:40:33.803528 2013] [auth_basic:error] [pid 17540:tid 140123095914240] "
    "[client 127.0.0.1:51395] AH01618: user wrongusername not found: /basic/file"
)


def test_auto_detection_tells_access_from_error_logs() -> None:
    vhost = "www.example.com:443 " + COMBINED
    assert detect_format([COMBINED, vhost, COMBINED]) == "web_access"
    assert detect_format([NGINX_MISMATCH, APACHE_24, ""]) == "web_error"
    parser = make_parser(ParseConfig(format="auto"), reference_time=0.0, sample=[APACHE_24])
    assert isinstance(parser, WebErrorParser)
    assert event(parser.parse(APACHE_24)).user == "wrongusername"


@pytest.mark.parametrize(
    ("line", "kind", "ip", "program"),
    [
        (
            "Feb 15 16:23:00 srv httpd[22034]: [authz_core:error] [pid 22034] "
            "[client 192.0.2.1:58585] AH01630: client denied by server configuration: /home/www/",
            WEB_REQUEST,
            "192.0.2.1",
            "httpd",
        ),
        (
            "Feb 15 16:23:40 srv httpd/backend1[22034]: [authz_core:error] [pid 22036] "
            "[client 192.0.2.2:59392] AH01630: client denied by server configuration: /x/",
            WEB_REQUEST,
            "192.0.2.2",
            "httpd/backend1",
        ),
        (
            'Feb 15 16:24:00 srv nginx: [error] 9#9: *3 user "bob": password mismatch, '
            'client: 192.0.2.3, server: s, request: "GET / HTTP/1.1", host: "s"',
            WEB_AUTH_FAILURE,
            "192.0.2.3",
            "nginx",
        ),
        (
            "Feb 15 16:25:00 srv nginx[9]: srv nginx: 2005/02/15 16:25:00 [error] 9#9: *3 PAM: "
            "user 'x' - not authenticated: Authentication failure, client: 192.0.2.4, server: s",
            WEB_AUTH_FAILURE,
            "192.0.2.4",
            "nginx",
        ),
        (
            'Feb 15 16:26:00 srv nginx: 192.0.2.5 - - [15/Feb/2005:16:26:00 +0000] "GET /.git/ '
            'HTTP/1.1" 404 0 "-" "-"',
            WEB_REQUEST,
            "192.0.2.5",
            "nginx",
        ),
    ],
)
def test_web_servers_logging_through_syslog(line: str, kind: str, ip: str, program: str) -> None:
    parser = make_parser(
        ParseConfig(format="syslog", timezone="UTC", year=2005), reference_time=0.0
    )
    e = event(parser.parse(line, 1))
    assert (e.kind, e.outcome, e.source_ip, e.process_name) == (kind, FAILURE, ip, program)
    assert e.timestamp is not None
    assert datetime.fromtimestamp(e.timestamp, UTC).strftime("%m-%d") == "02-15"
    assert e.raw == line


# --- mutation fuzzing -------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _sample_lines(pattern: str) -> list[str]:
    return [
        line
        for path in sorted(SAMPLES.glob(pattern))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]


WEB_LINES = _sample_lines("web_*.log")
FUZZ_TEXT = st.text(alphabet=st.sampled_from('"\\[] :,/-.0123456789aAz\x16\u00e9'), max_size=12)


def _check(result: Event | Skip) -> None:
    assert isinstance(result, Event | Skip)
    if isinstance(result, Event):
        assert result.kind in KINDS
        assert result.timestamp is None or isinstance(result.timestamp, float)
        assert result.source_port is None or 0 <= result.source_port <= 65535
        result.to_ecs()


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0),
    position=st.integers(min_value=0),
    cut=st.integers(min_value=0, max_value=8),
    insert=FUZZ_TEXT,
)
def test_mutated_web_lines_never_raise(index: int, position: int, cut: int, insert: str) -> None:
    assert WEB_LINES
    line = WEB_LINES[index % len(WEB_LINES)]
    at = position % (len(line) + 1)
    mutated = line[:at] + insert + line[at + cut :]
    _check(WebAccessParser(UTC_CONFIG, 0.0).parse(mutated))
    _check(WebErrorParser(UTC_CONFIG, 0.0).parse(mutated))
