"""Web server logs: access lines (combined, common, vhost) and nginx / Apache error lines.

(Why this file is long: two families of formats, access and error, each in nginx's
and Apache's versions, share the address, stamp and request-line readers here.)

What "failure" means for web logs (ECS ``event.outcome``, as Filebeat's nginx and
apache modules set it):

* Every access-log line is a ``web_request``. Its outcome is ``failure`` when the
  status is 400 or above, ``success`` below 400, ``unknown`` when none was logged. A
  probe for a page that does not exist (404) is a failed request, not an attack by
  itself: the detector decides what a scan is.
* A 401 or 407 whose request carried a user name is a ``web_auth_failure``:
  credentials were offered and refused. A 401 without a user name is the server's
  challenge (every browser gets one before it sends credentials) and stays a failed
  ``web_request``.
* Error-log lines: refused credentials (unknown user, wrong password, bad digest,
  wrong scheme, PAM refusal) are ``web_auth_failure``; an authenticated user refused
  by authorization rules is ``access_denied``; a request refused by configuration
  (``client denied by server configuration``, ``access forbidden by rule``), a missing
  file or script, a refused directory listing, a rate limit, a malformed request, an
  SNI mismatch or a failed TLS handshake is a failed ``web_request``. nginx's ``no
  user/password was provided`` is the challenge again: skipped as ``auth_challenge``.
  Any other error line (upstream trouble, server start) is recognised and skipped as
  not security relevant.

``url.path`` is the request path without its query string. Apache error lines about
missing files and denials only log the file-system path Apache looked for
(``/var/www/pma``); that path is used. An access log does not say whether nginx or
Apache wrote it, so its dataset is ``web.access``; error lines say, so theirs are
``nginx.error`` and ``apache.error``.

nginx writes user names, request lines and referrers into its error lines without
escaping them, so a hostile client can make a line ambiguous. The client address is
taken from the last ``, client: …`` whose remainder is exactly what nginx appends,
which is right unless the referrer itself forges that remainder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Final

from soc.events import (
    ACCESS_DENIED,
    FAILURE,
    SUCCESS,
    UNKNOWN,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    Event,
)
from soc.parse.address import AddressMemo, split_address
from soc.parse.base import (
    BAD_TIMESTAMP,
    BLANK,
    NO_MATCH,
    NOT_RELEVANT,
    Header,
    LineParser,
    ParseConfig,
    Skip,
    recognized_name,
)

#: nginx's basic-auth challenge: nothing was tried, so it is not a failure.
AUTH_CHALLENGE: Final = Skip("auth_challenge", True)

_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

_ACTION_REQUEST: Final = "http_request"
_ACTION_AUTHN: Final = "http_authentication"
_ACTION_AUTHZ: Final = "http_authorization"
_ACTION_TLS: Final = "tls_handshake"

# Quoted fields use the unrolled-loop form so that a 64 KiB field is one linear pass.
_Q: Final = r'[^"\\]*(?:\\.[^"\\]*)*'
# Everything before the time is "[vhost[:port]] client ident user"; names with "[" are
# refused so that a user name can not smuggle in a second, forged time and request.
_ACCESS_RE: Final = re.compile(
    r"(?P<prefix>[^\[]+) \[(?P<time>\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d(?: ?[+-]\d{4})?)\] "
    rf'"(?P<request>{_Q})" (?P<status>\d{{3}}|-) (?P<bytes>\d+|-)'
    rf'(?: "(?P<referrer>{_Q})" "(?P<agent>{_Q})")?'
)
# nginx's default is to escape quotes; a server logging them raw gets a lenient reading.
_ACCESS_LENIENT_RE: Final = re.compile(
    r"(?P<prefix>[^\[]+) \[(?P<time>\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d(?: ?[+-]\d{4})?)\] "
    r'"(?P<request>.*?)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>.*?)" "(?P<agent>.*)")?'
)
_METHOD_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")

_NGINX_RE: Final = re.compile(
    r"(?:(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) )?\[(?P<level>[a-z]+)\] "
    r"(?P<pid>\d+)#\d+: (?:\*\d+ )?"
)
# What nginx appends after the message, exactly; anchored at the end of the line.
_NGINX_TAIL_RE: Final = re.compile(
    r", client: (?P<client>[^\s,]+), server: [^\s,]*"
    r'(?:, request: "(?P<request>[^"]*)")?'
    r'(?:, subrequest: "[^"]*")?'
    r'(?:, upstream: "[^"]*")?'
    r'(?:, host: "[^"]*")?'
    r'(?:, referrer: "[^"]*")?'
    r"\s*\Z"
)
_NGINX_CLIENT_RE: Final = re.compile(r", client: (?P<client>[^\s,]+)(?:, server: [^\s,]*)?")
_NGINX_REQUEST_RE: Final = re.compile(r', request: "(?P<request>[^"]*)"')
_NGINX_MAX_CANDIDATES: Final = 16

_APACHE_RE: Final = re.compile(
    r"(?:\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] )?"
    r"\[(?:(?P<module>[^\s:\]]*):)?(?P<level>[a-z]+\d?)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid \d+)?\])?"
    r"(?: \(-?\d+\)[^:\[\]]*:)?"
    r"(?: \[(?:client|remote) (?P<client>\[[0-9A-Fa-f:.]+\](?::\d+)?|[^\]\s]+)\])?"
    r" (?:AH\d{5}: )?"
)

# What a message pattern means for the event.
_KIND_AUTH: Final = 1
_KIND_AUTHZ: Final = 2
_KIND_REQUEST: Final = 3
_KIND_TLS: Final = 4
_KIND_CHALLENGE: Final = 5

# (pattern name, regex over the whole message, meaning, fixed reason); first match wins.
_NGINX_MESSAGES: Final[tuple[tuple[str, re.Pattern[str], int, str | None], ...]] = (
    (
        "nginx.auth_user_not_found",
        re.compile(r'user "(?P<user>.*)":? was not found in "[^"]*"'),
        _KIND_AUTH,
        "user not found",
    ),
    (
        "nginx.auth_password_mismatch",
        re.compile(r'user "(?P<user>.*)":? password mismatch'),
        _KIND_AUTH,
        "password mismatch",
    ),
    (
        "nginx.auth_pam_failure",
        re.compile(r"PAM: user '(?P<user>.*)' - not authenticated: (?P<why>.*)"),
        _KIND_AUTH,
        None,
    ),
    (
        "nginx.auth_no_credentials",
        re.compile(r"no user/password was provided for basic authentication"),
        _KIND_CHALLENGE,
        None,
    ),
    (
        "nginx.file_not_found",
        re.compile(
            r'(?:open\(\) )?"(?P<path>[^"]*)" (?:failed|is not found) \((?:2|20): (?P<why>[^)]*)\)'
        ),
        _KIND_REQUEST,
        None,
    ),
    (
        "nginx.directory_index_forbidden",
        re.compile(r'directory index of "(?P<path>[^"]*)" is forbidden'),
        _KIND_REQUEST,
        "directory index is forbidden",
    ),
    (
        "nginx.access_forbidden",
        re.compile(r"access forbidden by rule"),
        _KIND_REQUEST,
        "access forbidden by rule",
    ),
    (
        "nginx.limit_req",
        re.compile(r'limiting (?:requests|connections)(?:, excess: [\d.]+)? by zone "[^"]*"'),
        _KIND_REQUEST,
        None,
    ),
    (
        "nginx.bad_request",
        re.compile(r"client sent (?P<why>.*?)(?: while .*)?"),
        _KIND_REQUEST,
        None,
    ),
    (
        "nginx.tls_failure",
        re.compile(
            r"(?:SSL_\w+\(\) failed \((?P<why>.*)\)|peer closed connection in SSL handshake)"
            r"(?: while .*)?"
        ),
        _KIND_TLS,
        None,
    ),
)

_APACHE_MESSAGES: Final[tuple[tuple[str, re.Pattern[str], int, str | None], ...]] = (
    (
        "apache.auth_digest_user_not_found",
        re.compile(
            r"(?:Digest: )?user `(?P<user>.*?)' in realm `[^']*' not found(?:: (?P<path>.*))?"
        ),
        _KIND_AUTH,
        "user not found",
    ),
    (
        "apache.auth_user_not_found",
        re.compile(r"user (?!`)(?P<user>.*?) not found(?:: (?P<path>.*))?"),
        _KIND_AUTH,
        "user not found",
    ),
    (
        "apache.auth_password_mismatch",
        re.compile(r'user (?P<user>[^:]*): authentication failure for "(?P<path>.*)": (?P<why>.*)'),
        _KIND_AUTH,
        None,
    ),
    (
        "apache.auth_digest_password_mismatch",
        re.compile(r"(?:Digest: )?user (?P<user>.*?): password mismatch(?:: (?P<path>.*))?"),
        _KIND_AUTH,
        "password mismatch",
    ),
    (
        "apache.auth_wrong_scheme",
        re.compile(r"client used wrong authentication scheme(?:: (?P<path>.*))?"),
        _KIND_AUTH,
        "wrong authentication scheme",
    ),
    (
        # Forged or broken digest credentials. A nonce whose hash does not match is
        # left out on purpose: a server restart makes honest clients send those.
        "apache.auth_digest_invalid",
        re.compile(
            r"(?:Digest: )?(?P<why>(?:invalid nonce .* received - "
            r"(?:length is not|user attempted time travel)"
            r"|realm mismatch - got `.*' but expected"
            r"|unknown algorithm `.*' received"
            r"|invalid qop `.*' received).*)"
        ),
        _KIND_AUTH,
        None,
    ),
    (
        "apache.authz_failure",
        re.compile(r'user (?P<user>[^:]*): authorization failure for "(?P<path>.*)":.*'),
        _KIND_AUTHZ,
        "authorization failure",
    ),
    (
        "apache.authz_owner_failure",
        re.compile(
            r"Authorization of user (?P<user>\S*) to access (?P<path>.*?) failed,"
            r" reason: (?P<why>.*)"
        ),
        _KIND_AUTHZ,
        None,
    ),
    (
        "apache.client_denied",
        re.compile(r"client denied by server configuration(?:: (?P<path>.*))?"),
        _KIND_REQUEST,
        "client denied by server configuration",
    ),
    (
        "apache.file_not_found",
        re.compile(r"File does not exist: (?P<path>.*)"),
        _KIND_REQUEST,
        "file does not exist",
    ),
    (
        "apache.script_not_found",
        re.compile(
            r"(?:script not found or unable to stat: (?P<path>.*)"
            r"|script '(?P<path2>.*)' not found or unable to stat)"
        ),
        _KIND_REQUEST,
        "script not found",
    ),
    (
        "apache.directory_index_forbidden",
        re.compile(r"Cannot serve directory (?P<path>.*?): No matching DirectoryIndex.*"),
        _KIND_REQUEST,
        "directory index is forbidden",
    ),
    (
        "apache.bad_request",
        re.compile(r"(?P<why>(?:Invalid URI in request|request failed: ).*)"),
        _KIND_REQUEST,
        None,
    ),
    (
        "apache.sni_mismatch",
        re.compile(
            r"(?P<why>(?:No hostname was provided via SNI for a name based virtual host"
            r"|Hostname \S+ provided via SNI, but no hostname provided in HTTP request"
            r"|Hostname \S+ provided via SNI and hostname \S+ provided via HTTP"
            r" (?:are different|have no compatible SSL setup)).*)"
        ),
        _KIND_REQUEST,
        None,
    ),
)


def _zone(name: str) -> tzinfo | None:
    # soc.parse.syslog routes web servers' syslog messages here, so it imports this
    # module; importing it back at the top would be circular.
    from soc.parse.syslog import zone_of

    return zone_of(name)


def split_request(request: str) -> tuple[str | None, str | None]:
    """``(method, path)`` of an HTTP request line; ``(None, None)`` when it is not one."""
    parts = request.split(" ")
    if len(parts) < 2 or _METHOD_RE.fullmatch(parts[0]) is None:
        return None, None
    target = " ".join(parts[1:-1]) if len(parts) > 2 else parts[1]
    if len(parts) > 2 and not parts[-1].startswith("HTTP/"):
        target = " ".join(parts[1:])
    return parts[0], _path_of(parts[0], target)


def _path_of(method: str, target: str) -> str | None:
    if method == "CONNECT" or target == "*" or not target:
        return None
    if target[0] != "/":
        scheme_end = target.find("://")
        if scheme_end > 0:
            slash = target.find("/", scheme_end + 3)
            target = target[slash:] if slash >= 0 else "/"
    query = target.find("?")
    return target[:query] if query >= 0 else target


def _epoch(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    micro: int,
    zone: tzinfo | None,
) -> float:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone).timestamp()


def _access_epoch(stamp: str, zone: tzinfo | None) -> float | None:
    """``20/Jan/2015:19:53:28 +0100`` in seconds since the epoch; None if invalid."""
    month = _MONTHS.get(stamp[3:6])
    if month is None:
        return None
    try:
        seconds = _epoch(
            int(stamp[7:11]),
            month,
            int(stamp[0:2]),
            int(stamp[12:14]),
            int(stamp[15:17]),
            int(stamp[18:20]),
            0,
            UTC if len(stamp) > 20 else zone,
        )
    except (ValueError, OverflowError, OSError):
        return None
    if len(stamp) > 20:
        offset = stamp[-5:]
        delta = int(offset[1:3]) * 3600 + int(offset[3:5]) * 60
        seconds -= delta if offset[0] == "+" else -delta
    return seconds


def _nginx_epoch(stamp: str, zone: tzinfo | None) -> float | None:
    """``2024/01/02 03:04:05`` (local time) in seconds since the epoch; None if invalid."""
    try:
        return _epoch(
            int(stamp[0:4]),
            int(stamp[5:7]),
            int(stamp[8:10]),
            int(stamp[11:13]),
            int(stamp[14:16]),
            int(stamp[17:19]),
            0,
            zone,
        )
    except (ValueError, OverflowError, OSError):
        return None


def _apache_epoch(stamp: str, zone: tzinfo | None) -> float | None:
    """``Sat Jul 20 21:34:49.453232 2013`` (local time) in seconds; None if invalid."""
    month = _MONTHS.get(stamp[4:7])
    if month is None:
        return None
    clock, _, year = stamp[11:].partition(" ")
    whole, _, fraction = clock.partition(".")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return _epoch(
            int(year),
            month,
            int(stamp[8:10]),
            int(whole[0:2]),
            int(whole[3:5]),
            int(whole[6:8]),
            micro,
            zone,
        )
    except (ValueError, OverflowError, OSError):
        return None


class _StampCache:
    """Consecutive access lines mostly share their second: parse it once."""

    __slots__ = ("_epoch", "_stamp", "_zone")

    def __init__(self, zone: tzinfo | None) -> None:
        self._zone = zone
        self._stamp = ""
        self._epoch = 0.0

    def epoch(self, stamp: str) -> float | None:
        if stamp != self._stamp:
            seconds = _access_epoch(stamp, self._zone)
            if seconds is None:
                return None
            self._stamp, self._epoch = stamp, seconds
        return self._epoch


class WebAccessParser(LineParser):
    """Parses access-log lines in the combined, common and vhost_* formats (nginx, Apache)."""

    name = "web_access"
    patterns: tuple[str, ...] = (
        "web.access_combined",
        "web.access_common",
        "web.access_vhost_combined",
        "web.access_vhost_common",
    )

    def __init__(self, config: ParseConfig, reference_time: float) -> None:
        self.config = config
        self.reference_time = reference_time
        self._zone = _zone(config.timezone)
        self._addresses = AddressMemo()
        self._stamps = _StampCache(self._zone)

    def _parse(self, text: str, line_no: int | None) -> tuple[str | None, Event | Skip]:
        if not text or text.isspace():
            return None, BLANK
        return parse_access(
            text,
            self._stamps,
            self._addresses.split,
            line_no=line_no,
            raw=text if self.config.keep_raw else None,
        )


def parse_access(
    text: str,
    stamps: _StampCache,
    split: Callable[[str], tuple[str | None, str | None]] = split_address,
    *,
    hostname: str | None = None,
    process_name: str | None = None,
    pid: int | None = None,
    line_no: int | None = None,
    raw: str | None = None,
) -> tuple[str | None, Event | Skip]:
    """Parse an access line; returns (pattern name, result). The line's own time is used."""
    m = _ACCESS_RE.match(text) or _ACCESS_LENIENT_RE.match(text)
    if m is None:
        return None, NO_MATCH
    prefix = m["prefix"].split(" ")
    if len(prefix) < 3:
        return None, NO_MATCH
    # "vhost client ident user" vs "client ident user": ident is almost always "-".
    vhost = len(prefix) >= 4 and prefix[1] != "-" and prefix[2] == "-"
    client = prefix[1] if vhost else prefix[0]
    user_token = " ".join(prefix[3:] if vhost else prefix[2:])
    timestamp = stamps.epoch(m["time"])
    if timestamp is None:
        return None, BAD_TIMESTAMP
    source_ip, source_address = split(client)
    user = None if user_token in ("-", "", '""') else user_token
    request = m["request"]
    method, path = split_request(request)
    reason = None
    if method is None:
        reason = "no request line" if request in ("-", "") else "malformed request line"
    status_text = m["status"]
    status = None if status_text == "-" else int(status_text)
    outcome = UNKNOWN if status is None else FAILURE if status >= 400 else SUCCESS
    kind, action = WEB_REQUEST, _ACTION_REQUEST
    if status in (401, 407) and user is not None:
        kind, action = WEB_AUTH_FAILURE, _ACTION_AUTHN
    agent = m["agent"]
    combined = agent is not None
    if vhost:
        pattern = "web.access_vhost_combined" if combined else "web.access_vhost_common"
    else:
        pattern = "web.access_combined" if combined else "web.access_common"
    return pattern, Event(
        timestamp,
        kind,
        outcome,
        action,
        source_ip=source_ip,
        source_address=source_address,
        user=user,
        hostname=hostname,
        process_name=process_name,
        pid=pid,
        http_method=method,
        url_path=path,
        http_status=status,
        user_agent=None if agent in (None, "-", "") else agent,
        reason=reason,
        dataset="web.access",
        line=line_no,
        raw=raw,
    )


class WebErrorParser(LineParser):
    """Parses nginx and Apache (2.2 and 2.4) error-log lines; either may appear."""

    name = "web_error"
    patterns: tuple[str, ...] = (
        *(p[0] for p in _NGINX_MESSAGES),
        "nginx.error_other",
        *(p[0] for p in _APACHE_MESSAGES),
        "apache.error_other",
    )

    def __init__(self, config: ParseConfig, reference_time: float) -> None:
        self.config = config
        self.reference_time = reference_time
        self._zone = _zone(config.timezone)
        self._split = AddressMemo().split

    def _parse(self, text: str, line_no: int | None) -> tuple[str | None, Event | Skip]:
        if not text or text.isspace():
            return None, BLANK
        raw = text if self.config.keep_raw else None
        first = text[0]
        if first.isdigit():
            return parse_nginx_error(text, None, self._zone, self._split, line_no=line_no, raw=raw)
        if first == "[":
            return parse_apache_error(text, None, self._zone, self._split, line_no=line_no, raw=raw)
        return None, NO_MATCH


def parse_nginx_error(
    text: str,
    timestamp: float | None,
    zone: tzinfo | None,
    split: Callable[[str], tuple[str | None, str | None]] = split_address,
    *,
    hostname: str | None = None,
    line_no: int | None = None,
    raw: str | None = None,
) -> tuple[str | None, Event | Skip]:
    """Parse an nginx error line; returns (pattern name, result).

    ``timestamp``, when given (the syslog or journal time of the line), is used
    instead of the line's own local-time stamp.
    """
    m = _NGINX_RE.match(text)
    if m is None:
        return None, NO_MATCH
    if timestamp is None:
        if m["time"] is None:
            return None, NO_MATCH
        timestamp = _nginx_epoch(m["time"], zone)
        if timestamp is None:
            return None, BAD_TIMESTAMP
    rest_start = m.end()
    client, request, message_end = _nginx_context(text, rest_start)
    message = text[rest_start:message_end]
    for name, regex, meaning, fixed_reason in _NGINX_MESSAGES:
        mm = regex.fullmatch(message)
        if mm is None:
            continue
        if meaning == _KIND_CHALLENGE:
            return name, AUTH_CHALLENGE
        if client is None:
            return "nginx.error_other", NOT_RELEVANT
        groups = mm.groupdict()
        method, path = split_request(request) if request else (None, None)
        if path is None and groups.get("path"):
            path = groups["path"]
        return name, _error_event(
            meaning,
            timestamp,
            client,
            user=groups.get("user") or None,
            method=method,
            path=path,
            reason=fixed_reason or groups.get("why") or message,
            dataset="nginx.error",
            split=split,
            process_name="nginx",
            pid=int(m["pid"]),
            hostname=hostname,
            line_no=line_no,
            raw=raw,
        )
    return "nginx.error_other", NOT_RELEVANT


def _nginx_context(text: str, start: int) -> tuple[str | None, str | None, int]:
    """(client, request line, end of the message) of an nginx error line."""
    end = len(text)
    for _ in range(_NGINX_MAX_CANDIDATES):
        pos = text.rfind(", client: ", start, end)
        if pos < 0:
            break
        tail = _NGINX_TAIL_RE.match(text, pos)
        if tail is not None:
            return tail["client"], tail["request"], pos
        end = pos
    lenient = _NGINX_CLIENT_RE.search(text, start)
    if lenient is None:
        return None, None, len(text)
    request = _NGINX_REQUEST_RE.search(text, lenient.end())
    return lenient["client"], request["request"] if request else None, lenient.start()


def parse_apache_error(
    text: str,
    timestamp: float | None,
    zone: tzinfo | None,
    split: Callable[[str], tuple[str | None, str | None]] = split_address,
    *,
    hostname: str | None = None,
    process_name: str | None = None,
    line_no: int | None = None,
    raw: str | None = None,
) -> tuple[str | None, Event | Skip]:
    """Parse an Apache error line, with or without its leading ``[time]``.

    Without one (Apache logging to syslog) ``timestamp`` must be given; with one,
    a given ``timestamp`` wins over it. Returns (pattern name, result).
    """
    m = _APACHE_RE.match(text)
    if m is None:
        return None, NO_MATCH
    stamp = m["time"]
    if timestamp is None:
        if stamp is None:
            return None, NO_MATCH
        timestamp = _apache_epoch(stamp, zone)
        if timestamp is None:
            return None, BAD_TIMESTAMP
    client = m["client"]
    if client is None:
        return "apache.error_other", NOT_RELEVANT
    message = text[m.end() :]
    referer = message.find(", referer: ")
    if referer >= 0:
        message = message[:referer]
    for name, regex, meaning, fixed_reason in _APACHE_MESSAGES:
        mm = regex.fullmatch(message)
        if mm is None:
            continue
        groups = mm.groupdict()
        user = groups.get("user")
        return name, _error_event(
            meaning,
            timestamp,
            client,
            user=user or None,
            method=None,
            path=groups.get("path") or groups.get("path2"),
            reason=fixed_reason or (groups.get("why") or message).strip(),
            dataset="apache.error",
            split=split,
            process_name=process_name,
            pid=int(m["pid"]) if m["pid"] else None,
            hostname=hostname,
            line_no=line_no,
            raw=raw,
        )
    return "apache.error_other", NOT_RELEVANT


#: Program names under which web servers log to syslog or the journal.
WEB_PROGRAMS: Final = frozenset(("nginx", "httpd", "apache", "apache2"))
# nginx logging to syslog can repeat its tag inside the message ("host nginx: 2025/…").
_INNER_TAG_RE: Final = re.compile(r"\S+ (?:nginx|httpd|apache2?)(?:\[\d+\])?: (?=[\d\[])")


class WebMessages:
    """Web servers' messages that arrive through syslog or the journal.

    The syslog program router hands over the programs in ``WEB_PROGRAMS``. An nginx
    or Apache error message, or an access line (nginx ``access_log syslog:``), gives
    the same event as in its own file. ``timestamp`` is the syslog or journal time: it
    is used for error lines (whose own stamps carry no zone) and ignored for access
    lines (whose own stamps do). ``pattern`` names what the last message matched.
    """

    __slots__ = ("_split", "_stamps", "pattern")

    def __init__(self, addresses: AddressMemo | None = None) -> None:
        self._split = (addresses or AddressMemo()).split
        self._stamps = _StampCache(None)
        self.pattern: str | None = None

    def parse(self, message: str, h: Header) -> Event | Skip:
        """Parse one message the header's program logged."""
        timestamp, hostname, program, pid, line_no, raw = h
        tag = _INNER_TAG_RE.match(message)
        if tag is not None:
            message = message[tag.end() :]
        name: str | None
        result: Event | Skip
        first = message[:1]
        if (first.isdigit() or first == "[") and _NGINX_RE.match(message) is not None:
            name, result = parse_nginx_error(
                message, timestamp, None, self._split, hostname=hostname, line_no=line_no, raw=raw
            )
        elif first == "[":
            name, result = parse_apache_error(
                message, timestamp, None, self._split, hostname=hostname, line_no=line_no, raw=raw
            )
        elif first:
            name, result = parse_access(
                message, self._stamps, self._split, hostname=hostname, line_no=line_no, raw=raw
            )
        else:
            name, result = None, BLANK
        if isinstance(result, Event):
            result.process_name = program
            if pid is not None:
                result.pid = pid
        self.pattern = recognized_name(name, result)
        return result


def _apache_client(
    client: str, split: Callable[[str], tuple[str | None, str | None]]
) -> tuple[str | None, str | None, int | None]:
    """(ip, address, port) from Apache's ``1.2.3.4:5678``, ``[::1]:5678`` or ``::1``."""
    port: int | None = None
    if client.startswith("["):
        host, _, port_text = client[1:].partition("]")
        port_text = port_text.lstrip(":")
        port = int(port_text) if port_text.isdigit() else None
    elif client.count(":") == 1:
        host, _, port_text = client.partition(":")
        port = int(port_text) if port_text.isdigit() else None
    else:
        host = client
    ip, address = split(host)
    if ip is None and client.count(":") > 1 and not client.startswith("["):
        # Apache 2.4 can write an IPv6 peer without brackets but with its port.
        host, _, port_text = client.rpartition(":")
        ip, address = split(host)
        if ip is not None and port_text.isdigit():
            port = int(port_text)
        else:
            ip, address = None, client
    if port is not None and port > 65535:
        port = None
    return ip, address, port


def _error_event(
    meaning: int,
    timestamp: float,
    client: str,
    *,
    user: str | None,
    method: str | None,
    path: str | None,
    reason: str,
    dataset: str,
    split: Callable[[str], tuple[str | None, str | None]],
    process_name: str | None,
    pid: int | None,
    hostname: str | None,
    line_no: int | None,
    raw: str | None,
) -> Event:
    if dataset == "apache.error":
        source_ip, source_address, port = _apache_client(client, split)
    else:
        source_ip, source_address = split(client)
        port = None
    if meaning == _KIND_AUTH:
        kind, action = WEB_AUTH_FAILURE, _ACTION_AUTHN
    elif meaning == _KIND_AUTHZ:
        kind, action = ACCESS_DENIED, _ACTION_AUTHZ
    elif meaning == _KIND_TLS:
        kind, action = WEB_REQUEST, _ACTION_TLS
    else:
        kind, action = WEB_REQUEST, _ACTION_REQUEST
    return Event(
        timestamp,
        kind,
        FAILURE,
        action,
        source_ip=source_ip,
        source_address=source_address,
        source_port=port,
        user=user,
        hostname=hostname,
        process_name=process_name,
        pid=pid,
        http_method=method,
        url_path=path,
        reason=reason,
        dataset=dataset,
        line=line_no,
        raw=raw,
    )


__all__ = [
    "AUTH_CHALLENGE",
    "WEB_PROGRAMS",
    "WebAccessParser",
    "WebErrorParser",
    "WebMessages",
    "parse_access",
    "parse_apache_error",
    "parse_nginx_error",
    "split_request",
]
