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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from soc.events import AUTH_FAILURE, FAILURE, Event
from soc.parse.address import AddressMemo
from soc.parse.base import NO_MATCH, NOT_RELEVANT, Skip
from soc.parse.sshd import FastBuilder, Groups

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

#: The sshd PAM lines of a brute force, for the fast lane (see ``sshd.FAST_MESSAGES``):
#: a subset of what the general expressions accept. The ``ruser`` group is None for
#: "check pass; user unknown", the count for "PAM service(…) ignoring max retries".
FAST_MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "pam_": r"(pam_[\w-]+\([^()\s]*\)): (?:authentication failure;"
        r" logname=\S* uid=\S* euid=\S* tty=\S* ruser=(\S*) rhost=(\S*)(?: +user=(\S*))?"
        r"|check pass; user unknown)\Z",
        "PAM ": r"PAM (?:([1-9][0-9]{0,8}) more authentication failures?;"
        r" logname=\S* uid=\S* euid=\S* tty=\S* ruser=(\S*) rhost=(\S*)(?: +user=(\S*))?"
        r"|service\([^()\s]*\) ignoring max retries; [0-9]+ > [0-9]+)\Z",
    }
)
#: Reasons remembered by module and context before the memo starts over.
_REASON_MEMO_SIZE: Final = 256


# "[pam_mod(service:type): ]authentication failure; <fields>" in its historic spellings.
_FAILURE_RE: Final = re.compile(
    r"(?:\(?(pam_[\w-]+)(?:\(([^()\s]*)\))?\)?:? +)?authentication failure; *(.*)\Z", _S
)
_MORE_RE: Final = re.compile(r"PAM ([1-9][0-9]{0,8}) more authentication failures?; *(.*)\Z", _S)
_FIELDS_RE: Final = re.compile(
    r"(?:logname=\S* +)?(?:uid=\S* +)?(?:euid=\S* +)?(?:tty=\S* +)?"
    r"ruser=(.*?) +rhost=(\S*)(?: +user=(.*?))?(?: \[preauth\])?\s*\Z",
    _S,
)
_MODULE_LINE_RE: Final = re.compile(r"\(?pam_[\w-]+(?:\([^()\s]*\))?\)?:? ")


class PamMessages:
    """Parses PAM messages; ``pattern`` names what the last message matched."""

    __slots__ = ("_addresses", "pattern")

    def __init__(self, addresses: AddressMemo | None = None) -> None:
        self._addresses = addresses if addresses is not None else AddressMemo()
        self.pattern: str | None = None

    def parse(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        """Parse one PAM message logged by ``program``."""
        m = _FAILURE_RE.match(message)
        if m is not None:
            module, context, fields = m.group(1, 2, 3)
            if module is None:
                # "pop(pam_unix)[4920]: authentication failure; …": the module is in the tag.
                start = program.find("(pam_")
                if start < 0:
                    self.pattern = None
                    return NO_MATCH
                module = program[start + 1 : program.find(")", start)]
            count = 1
        else:
            m = _MORE_RE.match(message)
            if m is None:
                return self._other(message)
            count = int(m.group(1))
            fields = m.group(2)
            module = context = None
        f = _FIELDS_RE.match(fields)
        if f is not None:
            ruser, rhost, user = f.group(1, 2, 3)
        else:
            # Fields we cannot split still say who failed, if anyone.
            ruser, rhost = "", ""
            at = fields.rfind("user=")
            user = fields[at + 5 :].strip() if at == 0 or fields[at - 1 : at] == " " else None
        return self._failure(
            module,
            context,
            ruser,
            rhost,
            user,
            count,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _failure(
        self,
        module: str | None,
        context: str | None,
        ruser: str,
        rhost: str,
        user: str | None,
        count: int,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
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

    def fast_builders(self) -> dict[str, FastBuilder]:
        """The builder of each :data:`FAST_MESSAGES` shape (see ``SshdMessages``).

        Each builds what ``parse`` would build, ``_failure`` inlined.
        """
        memo, split = self._addresses.memo, self._addresses.split
        # "pam_unix(sshd:auth)" to its failure's reason: formatted once per module.
        reasons: dict[str, str] = {}
        new_event, init_event = object.__new__, Event.__init__  # see sshd.FRAME_GROUPS

        def module(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            _, _, _, _, hostname, program, pid, head, ruser, rhost, user = g
            if ruser is None:
                self.pattern = "pam.check_pass"
                return NOT_RELEVANT
            reason = reasons.get(head)
            if reason is None:
                if len(reasons) >= _REASON_MEMO_SIZE:
                    reasons.clear()
                cut = head.index("(")
                reason = reasons[head] = _failure_reason(head[:cut], head[cut + 1 : -1])
            self.pattern = "pam.auth_failure"
            if not user:
                user = ruser or None
            if rhost:
                ip, name = memo.get(rhost) or split(rhost)
            else:
                ip = name = None
            event = new_event(Event)
            init_event(
                event,
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
                int(pid),
                1,
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
            return event

        def more(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            _, _, _, _, hostname, program, pid, count, ruser, rhost, user = g
            if count is None:
                self.pattern = "pam.other"
                return NOT_RELEVANT
            self.pattern = "pam.more_failures"
            if not user:
                user = ruser or None
            if rhost:
                ip, name = memo.get(rhost) or split(rhost)
            else:
                ip = name = None
            event = new_event(Event)
            init_event(
                event,
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
                int(pid),
                int(count),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "more PAM authentication failures",
                DATASET,
                line_no,
                raw,
            )
            return event

        return {"pam_": module, "PAM ": more}

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
