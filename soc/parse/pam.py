"""Linux-PAM messages, whatever program logged them (sshd, su, sudo, vsftpd, …).

``pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=
rhost=192.0.2.1  user=root`` is an ``auth_failure`` (dataset ``pam``); so is the same
line from any other module (``pam_sss``, ``pam_ldap``), the pre-1.0 forms ``(pam_unix)
authentication failure; …`` and ``pam_unix: …``, and the really old one where the
module sits in the syslog tag (``pop(pam_unix)[4920]: authentication failure; …``).
``PAM 2 more authentication failures; …`` is one event with ``count`` 2: pam_unix logs
the first failure of a conversation on its own line and sums up the rest.

The fields come in a fixed order (``logname uid euid tty ruser rhost [user]``), and
``ruser`` and ``user`` are whatever the client claimed. ``rhost`` is one token, so the
address is the first ``rhost=`` whose remainder is just `` user=…``: an injected
``rhost=`` inside ``ruser`` does not win. ``user.name`` is ``user=`` when present, else
``ruser``. An empty or missing ``rhost`` (a local ``su`` or ``sudo``) gives an event
without a source.

When sshd runs PAM these events duplicate the sshd ``Failed password`` lines of the
same attempts; the dataset tells them apart, and which to count is the detector's
call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from soc.events import AUTH_FAILURE, FAILURE, Event
from soc.parse.address import AddressMemo
from soc.parse.base import NO_MATCH, NOT_RELEVANT, Builder, Header, Row, Skip

DATASET: Final = "pam"
ACTION: Final = "pam_auth"

PATTERNS: Final[tuple[str, ...]] = (
    "pam.auth_failure",
    "pam.more_failures",
    "pam.check_pass",
    "pam.session",
    "pam.other",
)

_S: Final = re.DOTALL


# "[pam_mod(service:type): ]authentication failure; <fields>" in its historic spellings.
_FAILURE_RE: Final = re.compile(
    r"(?:\(?(?P<module>pam_[\w-]++)(?:\((?P<context>[^()\s]*+)\))?\)?:? +)?"
    r"authentication failure; *(?P<fields>.*)\Z",
    _S,
)
_MORE_RE: Final = re.compile(
    r"PAM (?P<count>[1-9][0-9]{0,8}) more authentication failures?; *(?P<fields>.*)\Z", _S
)
_FIELDS_RE: Final = re.compile(
    r"(?:logname=\S* +)?(?:uid=\S* +)?(?:euid=\S* +)?(?:tty=\S* +)?"
    r"ruser=(.*?) +rhost=(\S*)(?: +user=(.*?))?(?: \[preauth\])?\s*\Z",
    _S,
)
_MODULE_LINE_RE: Final = re.compile(r"\(?pam_[\w-]+(?:\([^()\s]*\))?\)?:? ")
# The two commonest PAM lines of a brute force that are no failure (``_other`` reads
# them the same way; these spare it the work).
_CHECK_PASS_RE: Final = re.compile(
    r"\(?pam_[\w-]+(?:\([^()\s]*\))?\)?:? check pass; user unknown\Z"
)
_IGNORING_RE: Final = re.compile(r"PAM service\([^()\s]*\) ignoring max retries; [0-9]+ > [0-9]+\Z")

#: PAM's message families: (the message start sshd hands to PAM, the expression, the
#: builder's method name), tried in order; a message none reads goes to ``_other``.
ROWS: Final[tuple[Row, ...]] = (
    Row("pam_", _FAILURE_RE, "_failed"),
    Row("PAM ", _MORE_RE, "_more"),
    Row("pam_", _CHECK_PASS_RE, "_check_pass"),
    Row("PAM ", _IGNORING_RE, "_ignoring"),
)


class PamMessages:
    """Parses PAM messages; ``pattern`` names what the last message matched."""

    __slots__ = ("_addresses", "_rows", "pattern")

    def __init__(self, addresses: AddressMemo | None = None) -> None:
        self._addresses = addresses if addresses is not None else AddressMemo()
        self.pattern: str | None = None
        self._rows: list[tuple[Callable[[str], re.Match[str] | None], Builder]] = [
            (regex.match, getattr(self, build)) for _, regex, build, _ in ROWS
        ]

    def parse(self, message: str, h: Header) -> Event | Skip:
        """Parse one PAM message logged by the header's program."""
        for match, build in self._rows:
            m = match(message)
            if m is not None:
                return build(m, h)
        return self._other(message)

    def lanes(self) -> list[tuple[str, re.Pattern[str], Builder]]:
        """The rows as the framing reads them (see ``SshdMessages.lanes``)."""
        return [(start, regex, getattr(self, build)) for start, regex, build, _ in ROWS]

    def _check_pass(self, m: re.Match[str], h: Header) -> Skip:
        self.pattern = "pam.check_pass"
        return NOT_RELEVANT

    def _ignoring(self, m: re.Match[str], h: Header) -> Skip:
        self.pattern = "pam.other"
        return NOT_RELEVANT

    def _failed(self, m: re.Match[str], h: Header) -> Event | Skip:
        module, context, fields = m.group("module", "context", "fields")
        if module is None:
            # "pop(pam_unix)[4920]: authentication failure; …": the module is in the tag.
            program = h.program
            start = program.find("(pam_")
            if start < 0:
                self.pattern = None
                return NO_MATCH
            module = program[start + 1 : program.find(")", start)]
        return self._fields(module, context, fields, 1, h)

    def _more(self, m: re.Match[str], h: Header) -> Event:
        return self._fields(None, None, m.group("fields"), int(m.group("count")), h)

    def _fields(
        self, module: str | None, context: str | None, fields: str, count: int, h: Header
    ) -> Event:
        f = _FIELDS_RE.match(fields)
        if f is not None:
            ruser, rhost, user = f.group(1, 2, 3)
        else:
            # Fields we cannot split still say who failed, if anyone.
            ruser, rhost = "", ""
            at = fields.rfind("user=")
            user = fields[at + 5 :].strip() if at == 0 or fields[at - 1 : at] == " " else None
        return self._failure(module, context, ruser, rhost, user, count, h)

    def _failure(
        self,
        module: str | None,
        context: str | None,
        ruser: str,
        rhost: str,
        user: str | None,
        count: int,
        h: Header,
    ) -> Event:
        if module is None:
            self.pattern = "pam.more_failures"
            reason = "more PAM authentication failures"
        else:
            self.pattern = "pam.auth_failure"
            reason = _failure_reason(module, context)
        if not user:
            user = ruser or None
        if rhost:
            ip, name = self._addresses.memo.get(rhost) or self._addresses.split(rhost)
        else:
            ip = name = None
        timestamp, hostname, program, pid, line_no, raw = h
        return Event(
            timestamp,
            AUTH_FAILURE,
            FAILURE,
            ACTION,
            ip,
            name,
            None,
            user,
            hostname,
            program,
            pid,
            count,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            reason,
            DATASET,
            line_no,
            raw,
        )

    def _other(self, message: str) -> Skip:
        """PAM lines that are understood but are not failures."""
        if _MODULE_LINE_RE.match(message) is None and not message.startswith("PAM "):
            self.pattern = None
            return NO_MATCH
        if "session opened" in message or "session closed" in message:
            self.pattern = "pam.session"
        elif "check pass; user unknown" in message:
            self.pattern = "pam.check_pass"
        else:
            self.pattern = "pam.other"
        return NOT_RELEVANT


def _failure_reason(module: str, context: str | None) -> str:
    """``pam_unix authentication failure (sshd:auth)``: the module, and its context if any."""
    reason = f"{module} authentication failure"
    return f"{reason} ({context})" if context else reason


__all__ = ["ACTION", "DATASET", "PATTERNS", "PamMessages"]
