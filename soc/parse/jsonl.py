"""JSON-lines logs: ECS documents (Filebeat, Elastic Agent), Wazuh alerts, journalctl -o json.

Each line is one JSON object. A line that is not JSON is ``bad_json``; JSON that is
not an object, or an object that is not a document of the format (no ``@timestamp``
for ECS, no ``rule`` or ``full_log`` for Wazuh, no ``MESSAGE`` or realtime stamp for
the journal), is ``no_match``: the source is probably configured with the wrong
format. A document of the format that carries nothing security relevant is
recognised and skipped as ``not_security_relevant``.

Where a document carries the original log message and no verdict of its own, the
message is parsed by the same code as the plain-text line (``parse_program_message``
for syslog programs, the web parsers for access and error lines), so a line gives the
same event whether it arrives as text, through Filebeat, through Wazuh or through the
journal.

ECS documents with a structured verdict are mapped field by field. Our kind comes
from ``soc.kind`` when the document is one of ours (``Event.to_ecs`` round-trips),
else from ECS:

==========================================  ===========================================
ECS                                         kind
==========================================  ===========================================
``event.kind`` alert or signal              ``alert``
category authentication, outcome success    ``auth_success``
category authentication, outcome failure    ``web_auth_failure`` with http/url fields,
                                            ``invalid_user`` for Filebeat's
                                            ``system.auth.ssh.event: Invalid``,
                                            else ``auth_failure``
category web, or an http status             ``web_request`` (401/407 with a user:
                                            ``web_auth_failure``); outcome from the
                                            status when ECS gives none
category network, type denied               ``firewall_drop``
category intrusion_detection                ``alert``
anything else                               skipped, not security relevant
==========================================  ===========================================

Wazuh alerts whose ``full_log`` a parser of ours reads give what that parser gives
(an event, or a skip: our verdict on a line we know wins over the rule's level);
syslog lines take Wazuh's timestamp, web lines keep their own. An alert on a line
from a program we do not parse, or one we can not read, becomes an ``alert`` event:
``event.action`` is ``wazuh_rule_<id>``, ``event.reason`` the rule description, the
source from ``data.srcip``, the user from ``data.srcuser`` (else ``data.dstuser``),
and the outcome ``failure``/``success`` when the rule's groups say authentication
failed/succeeded, else ``unknown``. Likewise an ECS document whose message comes from
a program we do not parse is mapped from its fields.

Each parser keeps its own program router, so sshd's per-connection memory works
within one JSON source as it does within a syslog file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, Final

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
from soc.parse.address import split_address
from soc.parse.base import (
    BAD_JSON,
    BAD_TIMESTAMP,
    BLANK,
    NO_MATCH,
    NOT_RELEVANT,
    Header,
    LineParser,
    ParseConfig,
    Skip,
)
from soc.parse.syslog import OTHER_PROGRAM, ProgramRouter, parse_program_message, zone_of
from soc.parse.web import WebAccessParser, WebErrorParser, split_request

_OUTCOMES: Final = frozenset((FAILURE, SUCCESS, UNKNOWN))
_DEFAULT_ACTION: Final = {
    AUTH_FAILURE: "authentication",
    INVALID_USER: "authentication",
    AUTH_SUCCESS: "authentication",
    WEB_REQUEST: "http_request",
    WEB_AUTH_FAILURE: "http_authentication",
    FIREWALL_DROP: "firewall_drop",
    ALERT: "alert",
}
_WAZUH_FAILURE_GROUPS: Final = frozenset(
    (
        "authentication_failed",
        "authentication_failures",
        "invalid_login",
        "win_authentication_failed",
    )
)
_WAZUH_SUCCESS_GROUPS: Final = frozenset(("authentication_success",))
_WAZUH_ACCESS_DECODERS: Final = frozenset(("web-accesslog", "nginx-accesslog", "apache-accesslog"))
_WAZUH_ERROR_DECODERS: Final = frozenset(("nginx-errorlog", "apache-errorlog"))
_TRANSPORTS: Final = frozenset(("tcp", "udp", "icmp", "ipv6-icmp", "sctp"))


def field(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted ECS path, whether the document nests it or flattens it.

    ``field(doc, "source.ip")`` finds ``{"source": {"ip": …}}``, ``{"source.ip": …}``
    and any mix of the two; None when absent.
    """
    value = doc.get(path)
    if value is not None:
        return value
    head, sep, tail = path.partition(".")
    while sep:
        sub = doc.get(head)
        if isinstance(sub, dict):
            value = field(sub, tail)
            if value is not None:
                return value
        step, sep, tail = tail.partition(".")
        head = f"{head}.{step}"
    return None


#: 9999-12-31T23:59:59Z: the last second a datetime and an ECS ``@timestamp`` can hold.
_LAST_EPOCH_SECOND = 253_402_300_799.0


def iso_epoch(value: Any, zone: tzinfo | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 string or an epoch number; None if invalid.

    A string without an offset is read in ``zone`` (None: this machine's zone); a
    number above 1e11 is taken as milliseconds.
    """
    try:
        if isinstance(value, str):
            stamp = datetime.fromisoformat(value)
            if stamp.tzinfo is None and zone is not None:
                stamp = stamp.replace(tzinfo=zone)
            return stamp.timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
            if not math.isfinite(seconds) or seconds < 0:
                return None
            seconds = seconds / 1000.0 if seconds > 1e11 else seconds
            # Past 9999-12-31 no ISO 8601 timestamp (nor datetime) can say it.
            return seconds if seconds <= _LAST_EPOCH_SECOND else None
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _understood(result: Event | Skip) -> bool:
    """True when one of our parsers read the message (a program we do not parse is not)."""
    return isinstance(result, Event) or (result.recognized and result is not OTHER_PROGRAM)


def _load(text: str) -> dict[str, Any] | Skip:
    """The JSON object on a line, or the Skip that says why there is none."""
    if not text or text.isspace():
        return BLANK
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return BAD_JSON
    return doc if isinstance(doc, dict) else NO_MATCH


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any, upper: int = 2**31 - 1) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and 0 <= value <= upper:
        return value
    return None


def _strings(value: Any) -> tuple[str, ...]:
    """An ECS keyword-or-array field as a tuple of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


class _RoutedLines(LineParser):
    """A JSON parser whose documents may embed syslog messages (read by a ``ProgramRouter``)."""

    _router: ProgramRouter

    def state(self) -> dict[str, Any]:
        """The embedded syslog messages' per-connection memory (see ``ProgramRouter``)."""
        return {"router": self._router.state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self._router.restore(state["router"])


class EcsJsonParser(_RoutedLines):
    """Parses ECS JSON documents, one per line (Filebeat, Elastic Agent, ``Event.to_ecs``)."""

    name = "ecs_json"
    patterns: tuple[str, ...] = ("ecs.message", "ecs.event", "ecs.other")

    def __init__(self, config: ParseConfig, reference_time: float) -> None:
        self.config = config
        self.reference_time = reference_time
        self._zone = zone_of(config.timezone)
        self._access = WebAccessParser(config, reference_time)
        self._error = WebErrorParser(config, reference_time)
        self._router = ProgramRouter()

    def _parse(self, text: str, line_no: int | None) -> tuple[str | None, Event | Skip]:
        doc = _load(text)
        if isinstance(doc, Skip):
            return None, doc
        stamp = doc.get("@timestamp")
        if stamp is None:
            return None, NO_MATCH
        timestamp = iso_epoch(stamp, self._zone)
        if timestamp is None:
            return None, BAD_TIMESTAMP
        raw = text if self.config.keep_raw else None
        outcome = _str(field(doc, "event.outcome"))
        own_kind = _str(field(doc, "soc.kind"))
        message = _str(doc.get("message"))
        from_message: Event | Skip | None = None
        if message is not None and outcome is None and own_kind is None:
            from_message = self._from_message(doc, message, timestamp, line_no, raw)
            if _understood(from_message):
                return "ecs.message", from_message
        mapped = self._from_fields(doc, timestamp, outcome, own_kind, line_no, raw)
        if isinstance(mapped, Event):
            return "ecs.event", mapped
        # A message no parser could read is a gap worth seeing: it stays unparsed.
        return "ecs.other", mapped if from_message is None else from_message

    def _from_message(
        self,
        doc: dict[str, Any],
        message: str,
        timestamp: float,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        dataset = _str(field(doc, "event.dataset"))
        if dataset is not None and dataset.endswith((".access", ".error")):
            parser = self._access if dataset.endswith(".access") else self._error
            result = parser.parse(message, line_no)
            if isinstance(result, Event):
                result.dataset = dataset
                result.raw = raw
            return result
        program = _str(field(doc, "process.name")) or _str(field(doc, "log.syslog.appname"))
        if program is None:
            return NO_MATCH
        pid = _int(field(doc, "process.pid")) or _int(field(doc, "log.syslog.procid"))
        hostname = _str(field(doc, "host.hostname")) or _str(field(doc, "host.name"))
        return parse_program_message(
            message,
            Header(timestamp, hostname, program, pid, line_no, raw),
            router=self._router,
        )

    def _from_fields(
        self,
        doc: dict[str, Any],
        timestamp: float,
        outcome: str | None,
        own_kind: str | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        if outcome not in _OUTCOMES:
            outcome = None
        categories = _strings(field(doc, "event.category"))
        user = _str(field(doc, "user.name"))
        method = _str(field(doc, "http.request.method"))
        status = _int(field(doc, "http.response.status_code"), 999)
        path = _str(field(doc, "url.path"))
        if path is None:
            original = _str(field(doc, "url.original"))
            if original is not None:
                path = split_request(f"GET {original}")[1]
        webby = method is not None or status is not None or path is not None
        kind: str | None
        if own_kind in KINDS:
            kind = own_kind
        elif _str(field(doc, "event.kind")) in ("alert", "signal"):
            kind = ALERT
        elif "authentication" in categories:
            if outcome == SUCCESS:
                kind = AUTH_SUCCESS
            elif outcome == FAILURE:
                if webby or "web" in categories:
                    kind = WEB_AUTH_FAILURE
                elif _str(field(doc, "system.auth.ssh.event")) == "Invalid":
                    kind = INVALID_USER
                else:
                    kind = AUTH_FAILURE
            else:
                kind = None
        elif "web" in categories or status is not None:
            kind = WEB_REQUEST
            if outcome is None and status is not None:
                outcome = FAILURE if status >= 400 else SUCCESS
            if status in (401, 407) and user is not None:
                kind = WEB_AUTH_FAILURE
        elif "network" in categories and "denied" in _strings(field(doc, "event.type")):
            kind = FIREWALL_DROP
            outcome = outcome or FAILURE
        elif "intrusion_detection" in categories:
            kind = ALERT
        else:
            kind = None
        if kind is None:
            return NOT_RELEVANT
        source_ip, source_address = split_address(_str(field(doc, "source.ip")) or "")
        if source_address is None:
            source_address = _str(field(doc, "source.address"))
            if source_ip is None and source_address is not None:
                source_ip, source_address = split_address(source_address)
        destination_ip = split_address(_str(field(doc, "destination.ip")) or "")[0]
        count = _int(field(doc, "soc.count")) or 1
        transport = _str(field(doc, "network.transport"))
        return Event(
            timestamp,
            kind,
            outcome or UNKNOWN,
            _str(field(doc, "event.action")) or _DEFAULT_ACTION.get(kind, kind),
            source_ip=source_ip,
            source_address=source_address,
            source_port=_int(field(doc, "source.port"), 65535),
            user=user,
            hostname=_str(field(doc, "host.hostname")) or _str(field(doc, "host.name")),
            process_name=_str(field(doc, "process.name")),
            pid=_int(field(doc, "process.pid")),
            count=count,
            destination_ip=destination_ip,
            destination_port=_int(field(doc, "destination.port"), 65535),
            transport=transport,
            http_method=method,
            url_path=path,
            http_status=status,
            user_agent=_str(field(doc, "user_agent.original")),
            reason=_str(field(doc, "event.reason")),
            dataset=_str(field(doc, "event.dataset")),
            line=line_no,
            raw=raw,
        )


def _after_program(full_log: str, program: str) -> tuple[int | None, str]:
    """(pid, message) after ``program[pid]: `` in a syslog line; the whole line if absent."""
    start = full_log.find(program)
    while start >= 0:
        end = start + len(program)
        if start == 0 or full_log[start - 1] == " ":
            if full_log.startswith(": ", end):
                return None, full_log[end + 2 :]
            if full_log.startswith("[", end):
                close = full_log.find("]: ", end)
                pid_text = full_log[end + 1 : close]
                if close > 0 and pid_text.isdigit() and len(pid_text) <= 10:
                    return int(pid_text), full_log[close + 3 :]
        start = full_log.find(program, start + 1)
    return None, full_log


class WazuhJsonParser(_RoutedLines):
    """Parses Wazuh ``alerts.json`` lines (and ``archives.json`` events with a full_log)."""

    name = "wazuh_json"
    patterns: tuple[str, ...] = ("wazuh.full_log", "wazuh.alert")

    def __init__(self, config: ParseConfig, reference_time: float) -> None:
        self.config = config
        self.reference_time = reference_time
        self._zone = zone_of(config.timezone)
        self._access = WebAccessParser(config, reference_time)
        self._error = WebErrorParser(config, reference_time)
        self._router = ProgramRouter()

    def _parse(self, text: str, line_no: int | None) -> tuple[str | None, Event | Skip]:
        doc = _load(text)
        if isinstance(doc, Skip):
            return None, doc
        rule = doc.get("rule")
        full_log = _str(doc.get("full_log"))
        if not isinstance(rule, dict) and full_log is None:
            return None, NO_MATCH
        stamp = doc.get("timestamp")
        if stamp is None:
            return None, NO_MATCH
        timestamp = iso_epoch(stamp, self._zone)
        if timestamp is None:
            return None, BAD_TIMESTAMP
        raw = text if self.config.keep_raw else None
        program = _str(field(doc, "predecoder.program_name"))
        hostname = _str(field(doc, "predecoder.hostname")) or _str(field(doc, "agent.name"))
        if full_log is not None:
            result = self._from_full_log(doc, full_log, program, timestamp, hostname, line_no, raw)
            # An archived event (no rule) is only what its line says.
            if _understood(result) or not isinstance(rule, dict):
                return "wazuh.full_log", result
        if not isinstance(rule, dict):
            return None, NO_MATCH
        return "wazuh.alert", self._alert(doc, rule, program, timestamp, hostname, line_no, raw)

    def _from_full_log(
        self,
        doc: dict[str, Any],
        full_log: str,
        program: str | None,
        timestamp: float,
        hostname: str | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        decoder = _str(field(doc, "decoder.name"))
        if decoder in _WAZUH_ACCESS_DECODERS or decoder in _WAZUH_ERROR_DECODERS:
            parser = self._access if decoder in _WAZUH_ACCESS_DECODERS else self._error
            result = parser.parse(full_log, line_no)
            if isinstance(result, Event):
                result.raw = raw
            return result
        if program is None:
            return NO_MATCH
        pid, message = _after_program(full_log, program)
        return parse_program_message(
            message,
            Header(timestamp, hostname, program, pid, line_no, raw),
            router=self._router,
        )

    def _alert(
        self,
        doc: dict[str, Any],
        rule: dict[str, Any],
        program: str | None,
        timestamp: float,
        hostname: str | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        groups = frozenset(_strings(rule.get("groups")))
        if groups & _WAZUH_FAILURE_GROUPS:
            outcome = FAILURE
        elif groups & _WAZUH_SUCCESS_GROUPS:
            outcome = SUCCESS
        else:
            outcome = UNKNOWN
        source_ip, source_address = split_address(_str(field(doc, "data.srcip")) or "")
        user = _str(field(doc, "data.srcuser")) or _str(field(doc, "data.dstuser"))
        protocol = _str(field(doc, "data.protocol"))
        url = _str(field(doc, "data.url"))
        return Event(
            timestamp,
            ALERT,
            outcome,
            f"wazuh_rule_{_str(rule.get('id')) or 'unknown'}",
            source_ip=source_ip,
            source_address=source_address,
            source_port=_int(field(doc, "data.srcport"), 65535),
            user=user,
            hostname=hostname,
            process_name=program,
            destination_ip=split_address(_str(field(doc, "data.dstip")) or "")[0],
            destination_port=_int(field(doc, "data.dstport"), 65535),
            transport=protocol.lower() if protocol and protocol.lower() in _TRANSPORTS else None,
            url_path=split_request(f"GET {url}")[1] if url else None,
            reason=_str(rule.get("description")),
            dataset="wazuh.alerts",
            line=line_no,
            raw=raw,
        )


def _journal_text(value: Any) -> str | None:
    """A journal field as text: a string, a list of byte values, or the first of several."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value):
            return bytes(value).decode("utf-8", errors="replace")
        # A field the entry carries more than once is a list of its values.
        return _journal_text(value[0])
    return None


class JournalJsonParser(_RoutedLines):
    """Parses ``journalctl -o json`` lines through the syslog program parsers."""

    name = "journal_json"
    patterns: tuple[str, ...] = ("journal.message", "journal.other")

    def __init__(self, config: ParseConfig, reference_time: float) -> None:
        self.config = config
        self.reference_time = reference_time
        self._router = ProgramRouter()

    def _parse(self, text: str, line_no: int | None) -> tuple[str | None, Event | Skip]:
        doc = _load(text)
        if isinstance(doc, Skip):
            return None, doc
        # The time the program logged, else the time journald received it (µs).
        stamp = _journal_text(doc.get("_SOURCE_REALTIME_TIMESTAMP")) or _journal_text(
            doc.get("__REALTIME_TIMESTAMP")
        )
        if "MESSAGE" not in doc and stamp is None:
            return None, NO_MATCH
        if stamp is None or not stamp.isdigit() or len(stamp) > 19:
            return None, BAD_TIMESTAMP
        message = _journal_text(doc.get("MESSAGE"))
        program = _journal_text(doc.get("SYSLOG_IDENTIFIER")) or _journal_text(doc.get("_COMM"))
        if message is None or program is None:
            return "journal.other", NOT_RELEVANT
        pid_text = _journal_text(doc.get("_PID")) or _journal_text(doc.get("SYSLOG_PID"))
        pid = int(pid_text) if pid_text and pid_text.isdigit() and len(pid_text) <= 10 else None
        raw = text if self.config.keep_raw else None
        h = Header(
            int(stamp) / 1_000_000, _journal_text(doc.get("_HOSTNAME")), program, pid, line_no, raw
        )
        result = parse_program_message(message, h, router=self._router)
        return "journal.message", result


__all__ = ["EcsJsonParser", "JournalJsonParser", "WazuhJsonParser", "field", "iso_epoch"]
