"""OpenSSH ``sshd`` / ``sshd-session`` messages (the text after the syslog tag).

(Why this file is long: every sshd message family is here, twice: the general
handlers and the fast lane that restates the commonest shapes inline for speed. One
table-driven parser per format is issue 17's work; until then the two must be read
side by side, which one file makes possible.)

Every failure family fail2ban's ``sshd`` filter knows in its normal mode is an event
(our own expressions, written from OpenSSH's log calls), and so are the pre-auth
families of its ``ddos`` and ``extra`` modes, as kind ``preauth``:

=====================================  =================  ================================
message                                kind               outcome
=====================================  =================  ================================
Failed <method> for [invalid user] U   auth_failure /     failure
                                       invalid_user
Accepted <method> for U                auth_success       success
Invalid user U from H                  invalid_user       failure
PAM: Authentication failure for U      auth_failure       failure
User not known to the underlying …     invalid_user       failure
ROOT LOGIN REFUSED, User U from H not  access_denied      failure
allowed because …, account is locked,
refused connect (tcp wrappers),
change of username not allowed
maximum authentication attempts,       auth_failure       failure
Too many authentication failures (old
format), Received disconnect 3: Auth
fail
no identification string, bad          preauth            failure
protocol version, no matching
cipher/kex/mac, no authentication
methods, timeout before authentication,
MaxStartups / penalty drops, …
connection closed / reset /            preauth            unknown (the client left)
disconnected during pre-auth
=====================================  =================  ================================

Lines that are understood but are no security event (``Server listening``,
``Postponed publickey``, a disconnect after a successful session, …) give the shared
``NOT_RELEVANT`` skip; anything else from sshd is ``NO_MATCH``.

Attacker-chosen user names are logged raw by OpenSSH (spaces, ``from``, ``port`` and
all), so where the address is taken from matters:

* after ``Invalid user``, ``Failed … for invalid user`` and ``Connection closed by
  invalid user`` the real address is the *last* ``from H [port N]`` (sshd appends
  it after the name, and writes no attacker text after it: for an invalid user it
  logs no auth info);
* after a valid user name, which is a system account and so has no spaces, the
  first ``from H`` is the real one, and what follows ``ssh2:`` is auth info (key
  fingerprint, hostbased client user), never the address.

The user name comes back verbatim. Per connection (sshd PID) the parser remembers
the client address, so the few failure lines that carry no address (``Disconnecting:
Too many authentication failures``, ``account is locked``, kex errors) get the
address of their connection; when it is not known yet the failure waits for the
connection's closing line (``awaiting_address``) and is reported there. A success
forgets the connection; an ``Accepted`` line is never a failure.

Key offers are not guesses: an ssh-agent offers its keys one by one and sshd logs
``Failed publickey`` for each key before the one it accepts. Those lines stay
``auth_failure`` events (ECS truth) but count as no attempt
(:func:`soc.events.is_key_offer`). A connection that only offered keys for a valid
user and ends without a success is one failed attempt, reported on the line that
ends it (``Connection closed by authenticating user …``, ``Received disconnect``,
``maximum authentication attempts exceeded``) with reason ``keys rejected`` (as
fail2ban's stateful filter counts it at ``Too many authentication failures``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

from soc.events import (
    ACCESS_DENIED,
    AUTH_FAILURE,
    AUTH_SUCCESS,
    FAILURE,
    INVALID_USER,
    PREAUTH,
    SUCCESS,
    UNKNOWN,
    Event,
)
from soc.parse.address import AddressMemo
from soc.parse.base import NO_MATCH, NOT_RELEVANT, Skip

DATASET: Final = "sshd"
ACTION_LOGIN: Final = "ssh_login"
ACTION_CONNECTION: Final = "ssh_connection"

#: A failure line without an address, waiting for its connection's address.
AWAITING_ADDRESS: Final = Skip("awaiting_address", True)

#: Connections remembered at once (sshd PIDs); the oldest is forgotten beyond this.
MAX_CONNECTIONS: Final = 8192

PATTERNS: Final[tuple[str, ...]] = (
    # failures and successes
    "sshd.failed_password",
    "sshd.failed_publickey",
    "sshd.failed_keyboard_interactive",
    "sshd.failed_hostbased",
    "sshd.failed_other",
    "sshd.accepted",
    "sshd.invalid_user",
    "sshd.pam_auth_failure",
    "sshd.pam_user_unknown",
    "sshd.root_login_refused",
    "sshd.user_not_allowed",
    "sshd.account_locked",
    "sshd.refused_connect",
    "sshd.auth_fail_disconnect",
    "sshd.max_auth_attempts",
    "sshd.too_many_failures",
    "sshd.change_of_username",
    # pre-auth (fail2ban's ddos / extra modes)
    "sshd.no_identification",
    "sshd.bad_protocol",
    "sshd.kex_identification",
    "sshd.banner_invalid",
    "sshd.dispatch_fatal",
    "sshd.timeout_preauth",
    "sshd.read_reset_preauth",
    "sshd.negotiation_failed",
    "sshd.no_auth_methods",
    "sshd.startups_drop",
    "sshd.closed_preauth",
    "sshd.disconnect_preauth",
    # understood, not security events
    "sshd.connection_from",
    "sshd.connection_closed",
    "sshd.disconnected",
    "sshd.too_many_failures_disconnect",
    "sshd.postponed",
    "sshd.accepted_key",
    "sshd.input_userauth_invalid",
    "sshd.reverse_mapping",
    "sshd.session",
    "sshd.listening",
    "sshd.daemon",
    "sshd.audit",
)

_S: Final = re.DOTALL

#: The message shapes of nearly every sshd line of a brute force, by the first four
#: characters of the message: ``SyslogParser`` puts each after its framing expression
#: (which has :data:`FRAME_GROUPS` groups) to read a line in one match, the "fast lane",
#: and hands the match's ``groups()`` to the builder of the same key
#: (``SshdMessages.fast_builders``). What an expression accepts is a subset of what the
#: general path accepts, giving the same event: either a shape of the general
#: expressions below, built the same way, or a whole message of one first word, handed
#: to that word's handler. Anything else takes the general path.
FAST_MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Fail": r"Failed (\S+) for (?P<fa_inv>invalid user )?(\S*) from (\S+)"
        r" port ([0-9]{1,5}) ssh2(?(fa_inv)\Z|(?:\Z|: ))",
        "Inva": r"Invalid user (\S*) from (\S+) port ([0-9]{1,5})\Z",
        "Acce": r"Accepted (\S+) for (?!invalid user )(\S+) from (\S+) port ([0-9]{1,5}) ssh2"
        r"(?:\Z|: )",
        # The address group is None for the last alternative, "Disconnecting … user".
        **dict.fromkeys(
            ("Conn", "Disc"),
            r"(?:(?:Connection (?:closed|reset) by|Disconnected from)"
            r"(?: (invalid|authenticating) user (\S*))? ([^\s\[]\S*) port ([0-9]{1,5})"
            r"( \[preauth\])?"
            r"|Disconnecting (?:invalid|authenticating) user \S* \S+ port [0-9]{1,5}:"
            r" Too many authentication failures \[preauth\])\Z",
        ),
        "Rece": r"Received disconnect from (\S+) port ([0-9]{1,5}):11: [^\[\]]*"
        r"( \[preauth\])?\Z",
        # The last group is the message after "error: " for "kex_exchange_identification:".
        **dict.fromkeys(
            ("erro", "maxi"),
            r"(?:(?:error: )?maximum authentication attempts exceeded for (invalid user )?(\S*)"
            r" from (\S+) port ([0-9]{1,5}) ssh2 \[preauth\]"
            r"|error: (kex_exchange_identification:(?: .*)?))\Z",
        ),
        "Unab": r"(Unable(?: .*)?)\Z",
        "bann": r"(banner(?: .*)?)\Z",
    }
)
#: Groups of the framing before a fast message's: the traditional stamp; the RFC 3339
#: stamp, its fraction and offset; host, program, PID.
FRAME_GROUPS: Final = 7
# The fast lane builds an event as object.__new__(Event) and a plain call of
# Event.__init__: the very object Event(...) makes, without type.__call__'s detour
# through C (which costs a tenth of a line). That holds while Event has no __new__.
if Event.__new__ is not object.__new__:  # pragma: no cover
    raise ImportError("Event defines __new__: the fast lane must call Event(...)")

# "Failed <method> for <valid user> from <host> [port N] [sshN][: auth info]".
_FAILED_VALID_RE: Final = re.compile(
    r"(Failed|Accepted) (\S+) for (?!invalid user )(\S+) from (\S+)(?: port (\d+))?(?: ssh\d*)?"
    r"(?:\Z|: )",
    _S,
)
# Any user (names with spaces): the last "from" whose remainder is what sshd appends.
_FAILED_ANY_RE: Final = re.compile(
    r"(Failed|Accepted) (\S+) for (invalid user )?(.*) from (\S+)(?: port (\d+))?"
    r"(?: ssh\d*)?(?::\s.*)?\Z",
    _S,
)
_INVALID_USER_RE: Final = re.compile(
    r"(?:[Ii]nvalid|[Ii]llegal) user (.*) from (\S+)(?: port (\d+))?(?: ssh\d)?(?: \[preauth\])?"
    r"\s*\Z",
    _S,
)
_NOT_ALLOWED_RE: Final = re.compile(
    r"User (.*) from (\S+) not allowed because (.+?)(?: \[preauth\])?\s*\Z", _S
)
_ACCOUNT_LOCKED_RE: Final = re.compile(
    r"User (.*) not allowed because account is locked(?: \[preauth\])?\s*\Z", _S
)
_NOT_KNOWN_RE: Final = re.compile(
    r"User not known to the underlying authentication module for (.*) from (\S+)"
    r"(?: port (\d+))?(?: \[preauth\])?\s*\Z",
    _S,
)
_PAM_ERROR_RE: Final = re.compile(
    r"(?:PAM: )?[Aa]uthentication (failure|error|failed) for (.*) from (\S+)(?: via \S+)?"
    r"(?: port (\d+))?(?: \[preauth\])?\s*\Z",
    _S,
)
_ROOT_REFUSED_RE: Final = re.compile(r"ROOT LOGIN REFUSED FROM (\S+?)(?: port (\d+))?(?: |\Z)")
_REFUSED_CONNECT_RE: Final = re.compile(r"refused connect from \S* \((\S+)\)")
_RECEIVED_DISCONNECT_RE: Final = re.compile(
    r"Received disconnect from (\S+)(?: port (\d+))?:\s*(\d+): ?(.*?)(?: \[preauth\])?\s*\Z", _S
)
_MAX_ATTEMPTS_RE: Final = re.compile(
    r"maximum authentication attempts exceeded for (invalid user )?(.*) from (\S+)"
    r"(?: port (\d+))?(?: ssh\d*)?(?: \[preauth\])?\s*\Z",
    _S,
)
_TOO_MANY_RE: Final = re.compile(
    r"Disconnecting: Too many authentication failures(?: for (.*?))?(?: \[preauth\])?\s*\Z", _S
)
_DISCONNECTING_USER_RE: Final = re.compile(
    r"Disconnecting (?:from )?(invalid|authenticating) user (.*?) (\S+) port (\d+): (.*)\Z", _S
)
_CLOSED_RE: Final = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from)"
    r"(?: (invalid|authenticating) user (.*?))? ([^\s\[]\S*?)(?: port (\d+))?( \[preauth\])?\s*\Z",
    _S,
)
_CONNECTION_FROM_RE: Final = re.compile(r"Connection from (\S+)(?: port (\d+))?(?: |\Z)")
_NO_IDENT_RE: Final = re.compile(
    r"Did not receive identification string from (\S+)(?: port (\d+))?\s*\Z"
)
_BAD_PROTOCOL_RE: Final = re.compile(
    r"Bad protocol version identification '.*' from (\S+)(?: port (\d+))?\s*\Z", _S
)
_BANNER_RE: Final = re.compile(
    r"banner exchange: Connection from (\S+)(?: port (\d+))?: (.*)\Z", _S
)
_DISPATCH_FATAL_RE: Final = re.compile(
    r"ssh_dispatch_run_fatal: Connection from (?:(?:invalid|authenticating) user .*? )?(\S+)"
    r"(?: port (\d+))?: (.*?)(?: \[preauth\])?\s*\Z",
    _S,
)
_TIMEOUT_RE: Final = re.compile(
    r"Timeout before authentication for (?:connection from )?(\S+?)(?: port (\d+))?(?: |,|\Z)"
)
_NEGOTIATE_RE: Final = re.compile(
    r"Unable to negotiate with (\S+)(?: port (\d+))?: (no matching .*? found)", _S
)
_DROP_RE: Final = re.compile(
    r"drop connection #\d+ from \[(.*)\]:(\d+) on \[.*\]:\d+ (past MaxStartups|penalty: .*)\Z", _S
)
_SSH_AUDIT_RE: Final = re.compile(r"SSH: Server;Ltype: \w+;Remote: (\S+)-\d+;")
_KEX_FAILURE_CAUSES: Final = (
    "client sent invalid protocol identifier",
    "Client sent invalid protocol identifier",
    "Connection closed by remote host",
    "connection closed by remote host",
    "Connection reset by peer",
    "connection reset by peer",
)
_DAEMON_WORDS: Final = frozenset(
    (
        "Exiting",
        "Bind",
        "Could",
        "rexec",
        "Cannot",
        "beginning",
        "exited",
        "Missing",
        "srclimit_penalise:",
        "Set",
        "Deprecated",
        "sshd",
        "Stopping",
    )
)
_SESSION_WORDS: Final = frozenset(
    (
        "Starting",
        "Close",
        "Closing",
        "Transferred:",
        "subsystem",
        "session",
        "Timeout,",
        "Changed",
    )
)

_METHOD_PATTERN: Final = {
    "password": "sshd.failed_password",
    "publickey": "sshd.failed_publickey",
    "keyboard-interactive": "sshd.failed_keyboard_interactive",
    "keyboard-interactive/pam": "sshd.failed_keyboard_interactive",
    "hostbased": "sshd.failed_hostbased",
}

_REASONS: Final = {method: f"failed {method}" for method in _METHOD_PATTERN}
#: Reason of the failure a connection that only offered keys, and never got in, stands for.
KEYS_REJECTED: Final = "keys rejected"
_CLOSED_REASONS: Final = {
    None: "closed before authentication",
    "invalid": "closed before authentication (invalid user)",
    "authenticating": "closed before authentication (authenticating user)",
}
_INVALID_REASONS: Final = {
    method: f"failed {method} for invalid user" for method in _METHOD_PATTERN
}

#: A fast-lane match's ``groups()``: :data:`FRAME_GROUPS` of the framing, then the message's.
Groups = tuple[Any, ...]
#: Builds the event of one fast message shape: (groups, timestamp, line number, raw).
FastBuilder = Callable[[Groups, float | None, int | None, str | None], Event | Skip]


Handler = Callable[
    [str, float | None, str | None, str, int | None, int | None, str | None], Event | Skip
]


_V = TypeVar("_V")


class _Pending:
    """A failure seen without an address, waiting for its connection's address."""

    __slots__ = ("action", "kind", "outcome", "pattern", "reason", "user")

    def __init__(
        self, pattern: str, kind: str, outcome: str, action: str, user: str | None, reason: str
    ) -> None:
        self.pattern = pattern
        self.kind = kind
        self.outcome = outcome
        self.action = action
        self.user = user
        self.reason = reason


def _trim(table: dict[int, _V]) -> None:
    """Forget the older half of a full per-connection table."""
    keep = list(table.items())[len(table) // 2 :]
    table.clear()
    table.update(keep)


#: hostname, address, port of a connection (keyed by sshd PID).
_Seen = tuple[str | None, str, str | None]
#: hostname and the failure waiting for that connection's address.
_Waiting = tuple[str | None, _Pending]

Fallback = Callable[
    [str, float | None, str | None, str, int | None, int | None, str | None],
    Event | Skip | None,
]


class SshdMessages:
    """Parses sshd messages for one log source, remembering each connection's address.

    ``parse`` takes the message and what the framing found; ``pattern`` is the name
    of the pattern the last message matched (None when nothing did).
    """

    __slots__ = (
        "_addresses",
        "_fallback",
        "_handlers",
        "_memo",
        "_offered",
        "_seen",
        "_stateful",
        "_waiting",
        "pattern",
    )

    def __init__(
        self,
        addresses: AddressMemo | None = None,
        *,
        stateful: bool = True,
        fallback: Fallback | None = None,
    ) -> None:
        self._addresses = addresses if addresses is not None else AddressMemo()
        self._memo = self._addresses.memo
        self._stateful = stateful
        self._fallback = fallback
        # Per connection (sshd PID): its address, and a failure waiting for it.
        self._seen: dict[int, _Seen] = {}
        self._waiting: dict[int, _Waiting] = {}
        # Connections whose only failures so far are key offers: hostname and user.
        self._offered: dict[int, tuple[str | None, str | None]] = {}
        self.pattern: str | None = None
        invalid = self._invalid_user
        self._handlers: dict[str, Handler] = {
            "error:": self._prefixed,
            "fatal:": self._prefixed,
            "Failed": self._failed,
            "Accepted": self._accepted,
            "Invalid": invalid,
            "invalid": invalid,
            "Illegal": invalid,
            "illegal": invalid,
            "User": self._user,
            "ROOT": self._root_refused,
            "refused": self._refused_connect,
            "Received": self._received,
            "Connection": self._connection,
            "Disconnected": self._closed,
            "Disconnecting:": self._too_many,
            "Disconnecting": self._disconnecting,
            "maximum": self._max_attempts,
            "PAM:": self._pam_error,
            "Authentication": self._pam_error,
            "authentication": self._pam_error,
            "Did": self._no_identification,
            "Bad": self._bad_protocol,
            "banner": self._banner,
            "ssh_dispatch_run_fatal:": self._dispatch_fatal,
            "Timeout": self._timeout,
            "Read": self._read_reset,
            "Unable": self._unable,
            "no": self._no_matching,
            "kex_exchange_identification:": self._kex,
            "drop": self._drop,
            "SSH:": self._audit,
            "Server": self._server,
            "Postponed": self._postponed,
            "Partial": self._postponed,
            "input_userauth_request:": self._input_userauth,
            "Address": self._reverse_mapping,
            "reverse": self._reverse_mapping,
            "Nasty": self._reverse_mapping,
        }

    # --- entry point ----------------------------------------------------------------

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
        """Parse one sshd message (``error: ``/``fatal: `` prefixes allowed)."""
        space = message.find(" ")
        handler = self._handlers.get(message if space < 0 else message[:space])
        if handler is not None:
            return handler(message, timestamp, hostname, program, pid, line_no, raw)
        return self._unknown_word(message, timestamp, hostname, program, pid, line_no, raw)

    def _unknown_word(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        space = message.find(" ")
        word = message if space < 0 else message[:space]
        if word in _DAEMON_WORDS:
            self.pattern = "sshd.daemon"
            return NOT_RELEVANT
        if word in _SESSION_WORDS:
            self.pattern = "sshd.session"
            return NOT_RELEVANT
        if self._fallback is not None:
            # PAM lines, "message repeated", Solaris "[ID …]": the router's business.
            result = self._fallback(message, timestamp, hostname, program, pid, line_no, raw)
            if result is not None:
                return result
        self.pattern = None
        return NO_MATCH

    def _prefixed(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        """``error: …`` and ``fatal: …``: the same messages, louder."""
        message = message[7:]
        space = message.find(" ")
        handler = self._handlers.get(message if space < 0 else message[:space])
        if handler is None or handler == self._prefixed:
            return self._unknown_word(message, timestamp, hostname, program, pid, line_no, raw)
        return handler(message, timestamp, hostname, program, pid, line_no, raw)

    # --- building events ------------------------------------------------------------

    def _event(
        self,
        kind: str,
        outcome: str,
        action: str,
        address: str | None,
        port: str | None,
        user: str | None,
        reason: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        if address is None:
            ip = name = None
        else:
            ip, name = self._memo.get(address) or self._addresses.split(address)
        # A TCP port, or None when absent or out of range.
        number = None if port is None or len(port) > 5 else int(port)
        return Event(
            timestamp,
            kind,
            outcome,
            action,
            ip,
            name,
            number if number is None or number <= 65535 else None,
            user,
            hostname,
            program,
            pid,
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

    # --- per-connection state -------------------------------------------------------

    def _remember(
        self, hostname: str | None, pid: int | None, address: str, port: str | None
    ) -> None:
        """Record the address of the connection ``pid`` serves."""
        if pid is not None and self._stateful:
            seen = self._seen
            seen[pid] = (hostname, address, port)
            if len(seen) > MAX_CONNECTIONS:
                _trim(seen)

    def _forget(self, hostname: str | None, pid: int | None) -> _Pending | None:
        """End the connection ``pid``: return the failure still waiting for it, if any."""
        if pid is None or not self._stateful:
            return None
        self._seen.pop(pid, None)
        if self._offered:
            self._offered.pop(pid, None)
        return self._forget_waiting(hostname, pid) if self._waiting else None

    def _note_failure(self, hostname: str | None, pid: int, method: str, user: str | None) -> None:
        """Track whether connection ``pid`` has offered keys only (see the module doc)."""
        offered = self._offered
        if method == "publickey":
            if pid not in offered:
                offered[pid] = (hostname, user)
                if len(offered) > MAX_CONNECTIONS:
                    _trim(offered)
        elif offered:
            offered.pop(pid, None)

    def _keys_rejected(
        self,
        hostname: str | None,
        pid: int | None,
        address: str,
        port: str | None,
        user: str | None,
        timestamp: float | None,
        program: str,
        line_no: int | None,
        raw: str | None,
    ) -> Event | None:
        """The failed attempt of a connection that offered only keys, ended by this line."""
        if pid is None or not self._offered:
            return None
        offered = self._offered.pop(pid, None)
        if offered is None or offered[0] != hostname:
            return None
        return self._event(
            AUTH_FAILURE,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            user if user is not None else offered[1],
            KEYS_REJECTED,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _forget_waiting(self, hostname: str | None, pid: int) -> _Pending | None:
        waiting = self._waiting.pop(pid, None)
        if waiting is None or waiting[0] != hostname:
            return None
        return waiting[1]

    def _without_address(
        self,
        pattern: str,
        kind: str,
        outcome: str,
        action: str,
        user: str | None,
        reason: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        """A failure line that names no address: use the connection's, or wait for it."""
        self.pattern = pattern
        if pid is None or not self._stateful:
            return AWAITING_ADDRESS
        seen = self._seen.get(pid)
        if seen is not None and seen[0] == hostname:
            return self._event(
                kind,
                outcome,
                action,
                seen[1],
                seen[2],
                user,
                reason,
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        waiting = self._waiting
        waiting[pid] = (hostname, _Pending(pattern, kind, outcome, action, user, reason))
        if len(waiting) > MAX_CONNECTIONS:
            _trim(waiting)
        return AWAITING_ADDRESS

    def _settle(
        self,
        pending: _Pending | None,
        address: str,
        port: str | None,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | None:
        """The failure that waited for the address this line gives, if any."""
        if pending is None:
            return None
        return self._event(
            pending.kind,
            pending.outcome,
            pending.action,
            address,
            port,
            pending.user,
            pending.reason,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _preauth_failure(
        self,
        pattern: str,
        address: str,
        port: str | None,
        reason: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        """A protocol-level failure before authentication, with its address."""
        self.pattern = pattern
        if pid is not None and self._waiting:
            # This line counts the connection's failure: nothing is left waiting.
            self._waiting.pop(pid, None)
        return self._event(
            PREAUTH,
            FAILURE,
            ACTION_CONNECTION,
            address,
            port,
            None,
            reason,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    # --- handlers, one per first word -----------------------------------------------

    def _failed(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _FAILED_VALID_RE.match(message)
        if m is not None:
            method, user, address, port = m.group(2, 3, 4, 5)
            invalid = False
        else:
            m = _FAILED_ANY_RE.match(message)
            if m is None:
                self.pattern = None
                return NO_MATCH
            method, invalid_text, user, address, port = m.group(2, 3, 4, 5, 6)
            invalid = invalid_text is not None
        return self._failure(
            method, invalid, user, address, port, timestamp, hostname, program, pid, line_no, raw
        )

    def _failure(
        self,
        method: str,
        invalid: bool,
        user: str | None,
        address: str,
        port: str | None,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        """The event of a ``Failed <method>`` line (the hottest line: no helper calls)."""
        if invalid:
            kind = INVALID_USER
            reason = _INVALID_REASONS.get(method) or f"failed {method} for invalid user"
        else:
            kind = AUTH_FAILURE
            reason = _REASONS.get(method) or f"failed {method}"
        if user == "<invalid username>":
            # Solaris and macOS hide the name the client sent.
            kind, user = INVALID_USER, None
            reason = f"failed {method} for invalid user"
        self.pattern = _METHOD_PATTERN.get(method, "sshd.failed_other")
        if pid is not None and self._stateful:
            seen = self._seen
            seen[pid] = (hostname, address, port)
            if len(seen) > MAX_CONNECTIONS:
                _trim(seen)
            self._note_failure(hostname, pid, "" if kind == INVALID_USER else method, user)
        ip, name = self._memo.get(address) or self._addresses.split(address)
        return Event(
            timestamp,
            kind,
            FAILURE,
            ACTION_LOGIN,
            ip,
            name,
            None if port is None or len(port) > 5 or int(port) > 65535 else int(port),
            user,
            hostname,
            program,
            pid,
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

    # --- the fast lane --------------------------------------------------------------

    def fast_builders(self) -> dict[str, FastBuilder]:
        """The builder of each :data:`FAST_MESSAGES` shape, by the same key.

        A builder gets the line's match ``groups()`` (the framing's, then the
        message's) and builds the event the general handler would build, with the
        per-connection bookkeeping inlined and everything it needs bound to locals.
        """
        memo, split = self._memo, self._addresses.split
        seen, waiting, offered = self._seen, self._waiting, self._offered
        note, keys_rejected = self._note_failure, self._keys_rejected
        stateful = self._stateful
        reasons, invalid_reasons, method_patterns = _REASONS, _INVALID_REASONS, _METHOD_PATTERN
        closed_reasons = _CLOSED_REASONS
        new_event, init_event = object.__new__, Event.__init__  # see FRAME_GROUPS

        def failed(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event:
            # _failure's body again, minus a call: this is the line of a brute force.
            _, _, _, _, hostname, program, pid_text, method, invalid, user, address, port_text = g
            pid = int(pid_text)
            if invalid is None:
                kind = AUTH_FAILURE
                reason = reasons.get(method) or f"failed {method}"
            else:
                kind = INVALID_USER
                reason = invalid_reasons.get(method) or f"failed {method} for invalid user"
            self.pattern = method_patterns.get(method, "sshd.failed_other")
            if stateful:
                seen[pid] = (hostname, address, port_text)
                if len(seen) > MAX_CONNECTIONS:
                    _trim(seen)
                if method == "publickey" or offered:
                    note(hostname, pid, "" if invalid else method, user)
            ip, name = memo.get(address) or split(address)
            port = int(port_text)
            event = new_event(Event)
            init_event(
                event,
                timestamp,
                kind,
                FAILURE,
                ACTION_LOGIN,
                ip,
                name,
                port if port <= 65535 else None,
                user,
                hostname,
                program,
                pid,
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

        def invalid_user(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event:
            # _invalid, inlined.
            _, _, _, _, hostname, program, pid_text, user, address, port_text = g
            pid = int(pid_text)
            self.pattern = "sshd.invalid_user"
            if stateful:
                seen[pid] = (hostname, address, port_text)
                if len(seen) > MAX_CONNECTIONS:
                    _trim(seen)
            ip, name = memo.get(address) or split(address)
            port = int(port_text)
            event = new_event(Event)
            init_event(
                event,
                timestamp,
                INVALID_USER,
                FAILURE,
                ACTION_LOGIN,
                ip,
                name,
                port if port <= 65535 else None,
                user,
                hostname,
                program,
                pid,
                1,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "invalid user",
                DATASET,
                line_no,
                raw,
            )
            return event

        def accepted(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event:
            _, _, _, _, hostname, program, pid, method, user, address, port = g
            return self._success(
                method, user, address, port, timestamp, hostname, program, int(pid), line_no, raw
            )

        def closed(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            # _closing, inlined; and "Disconnecting … Too many authentication failures".
            _, _, _, _, hostname, program, pid_text, who, user, address, port_text, preauth = g
            if address is None:
                # sshd logged "maximum authentication attempts exceeded" just before.
                self.pattern = "sshd.too_many_failures_disconnect"
                return NOT_RELEVANT
            self.pattern = "sshd.connection_closed" if preauth is None else "sshd.closed_preauth"
            pid = int(pid_text)
            if stateful:
                # The connection ends: report what waited for its address.
                seen.pop(pid, None)
                if waiting:
                    settled = self._settle(
                        self._forget_waiting(hostname, pid),
                        address,
                        port_text,
                        timestamp,
                        hostname,
                        program,
                        pid,
                        line_no,
                        raw,
                    )
                    if settled is not None:
                        offered.pop(pid, None)
                        return settled
                if offered:
                    rejected = keys_rejected(
                        hostname, pid, address, port_text, user, timestamp, program, line_no, raw
                    )
                    if rejected is not None:
                        return rejected
            if preauth is None:
                return NOT_RELEVANT
            ip, name = memo.get(address) or split(address)
            port = int(port_text)
            event = new_event(Event)
            init_event(
                event,
                timestamp,
                PREAUTH,
                UNKNOWN,
                ACTION_CONNECTION,
                ip,
                name,
                port if port <= 65535 else None,
                user,
                hostname,
                program,
                pid,
                1,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                closed_reasons[who],
                DATASET,
                line_no,
                raw,
            )
            return event

        def received(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            # _disconnect, inlined.
            _, _, _, _, hostname, program, pid_text, address, port_text, preauth = g
            self.pattern = "sshd.disconnected" if preauth is None else "sshd.disconnect_preauth"
            pid = int(pid_text)
            if stateful:
                seen.pop(pid, None)
                if waiting:
                    settled = self._settle(
                        self._forget_waiting(hostname, pid),
                        address,
                        port_text,
                        timestamp,
                        hostname,
                        program,
                        pid,
                        line_no,
                        raw,
                    )
                    if settled is not None:
                        offered.pop(pid, None)
                        return settled
                if offered:
                    rejected = keys_rejected(
                        hostname, pid, address, port_text, None, timestamp, program, line_no, raw
                    )
                    if rejected is not None:
                        return rejected
            if preauth is None:
                return NOT_RELEVANT
            ip, name = memo.get(address) or split(address)
            port = int(port_text)
            event = new_event(Event)
            init_event(
                event,
                timestamp,
                PREAUTH,
                UNKNOWN,
                ACTION_CONNECTION,
                ip,
                name,
                port if port <= 65535 else None,
                None,
                hostname,
                program,
                pid,
                1,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "client disconnected before authentication",
                DATASET,
                line_no,
                raw,
            )
            return event

        def exceeded(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            # _exceeded, inlined; and "error: kex_exchange_identification: …".
            _, _, _, _, hostname, program, pid_text, invalid, user, address, port_text, kex = g
            pid = int(pid_text)
            if kex is not None:
                return self._kex(kex, timestamp, hostname, program, pid, line_no, raw)
            self.pattern = "sshd.max_auth_attempts"
            if stateful:
                seen[pid] = (hostname, address, port_text)
                if len(seen) > MAX_CONNECTIONS:
                    _trim(seen)
                if offered and invalid is None:
                    rejected = keys_rejected(
                        hostname, pid, address, port_text, user, timestamp, program, line_no, raw
                    )
                    if rejected is not None:
                        return rejected
            ip, name = memo.get(address) or split(address)
            port = int(port_text)
            event = new_event(Event)
            init_event(
                event,
                timestamp,
                AUTH_FAILURE if invalid is None else INVALID_USER,
                FAILURE,
                ACTION_LOGIN,
                ip,
                name,
                port if port <= 65535 else None,
                user,
                hostname,
                program,
                pid,
                1,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "maximum authentication attempts exceeded",
                DATASET,
                line_no,
                raw,
            )
            return event

        def unable(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            _, _, _, _, hostname, program, pid, message = g
            return self._unable(message, timestamp, hostname, program, int(pid), line_no, raw)

        def banner(
            g: Groups, timestamp: float | None, line_no: int | None, raw: str | None
        ) -> Event | Skip:
            _, _, _, _, hostname, program, pid, message = g
            return self._banner(message, timestamp, hostname, program, int(pid), line_no, raw)

        builders: dict[str, FastBuilder] = {
            "Fail": failed,
            "Inva": invalid_user,
            "Acce": accepted,
            "Conn": closed,
            "Disc": closed,
            "Rece": received,
            "erro": exceeded,
            "maxi": exceeded,
            "Unab": unable,
            "bann": banner,
        }
        return builders

    def _accepted(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _FAILED_VALID_RE.match(message)
        if m is not None:
            method, user, address, port = m.group(2, 3, 4, 5)
        else:
            m = _FAILED_ANY_RE.match(message)
            if m is None:
                if message.startswith(("Accepted key ", "Accepted certificate ")):
                    self.pattern = "sshd.accepted_key"
                    return NOT_RELEVANT
                self.pattern = None
                return NO_MATCH
            method, user, address, port = m.group(2, 4, 5, 6)
        return self._success(
            method, user, address, port, timestamp, hostname, program, pid, line_no, raw
        )

    def _success(
        self,
        method: str,
        user: str,
        address: str,
        port: str | None,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        self.pattern = "sshd.accepted"
        # A success ends whatever failure the connection had pending.
        self._forget(hostname, pid)
        return self._event(
            AUTH_SUCCESS,
            SUCCESS,
            ACTION_LOGIN,
            address,
            port,
            user,
            f"accepted {method}",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _invalid_user(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _INVALID_USER_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        user, address, port = m.group(1, 2, 3)
        return self._invalid(user, address, port, timestamp, hostname, program, pid, line_no, raw)

    def _invalid(
        self,
        user: str,
        address: str,
        port: str | None,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        self.pattern = "sshd.invalid_user"
        if pid is not None and self._stateful:
            seen = self._seen
            seen[pid] = (hostname, address, port)
            if len(seen) > MAX_CONNECTIONS:
                _trim(seen)
        return self._event(
            INVALID_USER,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            user,
            "invalid user",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _user(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _NOT_ALLOWED_RE.match(message)
        if m is not None:
            user, address, why = m.group(1, 2, 3)
            self.pattern = "sshd.user_not_allowed"
            self._remember(hostname, pid, address, None)
            return self._event(
                ACCESS_DENIED,
                FAILURE,
                ACTION_LOGIN,
                address,
                None,
                user,
                f"not allowed: {why}",
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        m = _ACCOUNT_LOCKED_RE.match(message)
        if m is not None:
            return self._without_address(
                "sshd.account_locked",
                ACCESS_DENIED,
                FAILURE,
                ACTION_LOGIN,
                m.group(1),
                "account is locked",
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        m = _NOT_KNOWN_RE.match(message)
        if m is not None:
            user, address, port = m.group(1, 2, 3)
            for prefix in ("illegal user ", "invalid user "):
                if user.startswith(prefix):
                    user = user[len(prefix) :]
                    break
            self.pattern = "sshd.pam_user_unknown"
            self._remember(hostname, pid, address, port)
            return self._event(
                INVALID_USER,
                FAILURE,
                ACTION_LOGIN,
                address,
                port,
                user,
                "user not known to PAM",
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        if message.startswith("User child is on pid "):
            self.pattern = "sshd.session"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH

    def _root_refused(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _ROOT_REFUSED_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        address, port = m.group(1, 2)
        self.pattern = "sshd.root_login_refused"
        return self._event(
            ACCESS_DENIED,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            "root",
            "root login refused",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _refused_connect(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _REFUSED_CONNECT_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        self.pattern = "sshd.refused_connect"
        return self._event(
            ACCESS_DENIED,
            FAILURE,
            ACTION_CONNECTION,
            m.group(1),
            None,
            None,
            "connection refused by tcp wrappers",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _received(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _RECEIVED_DISCONNECT_RE.match(message)
        if m is None:
            if message.startswith(("Received signal", "Received SIGHUP")):
                self.pattern = "sshd.daemon"
                return NOT_RELEVANT
            self.pattern = None
            return NO_MATCH
        address, port, code, text = m.group(1, 2, 3, 4)
        preauth = message.endswith("[preauth]")
        if code == "3" and text.endswith("Auth fail"):
            self.pattern = "sshd.auth_fail_disconnect"
            self._forget(hostname, pid)
            return self._event(
                AUTH_FAILURE,
                FAILURE,
                ACTION_LOGIN,
                address,
                port,
                None,
                "client gave up: auth fail",
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        if code == "14" and "authentication methods available" in text:
            return self._preauth_failure(
                "sshd.no_auth_methods",
                address,
                port,
                "no supported authentication methods",
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        return self._disconnect(
            address, port, preauth, timestamp, hostname, program, pid, line_no, raw
        )

    def _disconnect(
        self,
        address: str,
        port: str | None,
        preauth: bool,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        """``Received disconnect`` with an ordinary reason (11: Bye Bye, …)."""
        self.pattern = "sshd.disconnect_preauth" if preauth else "sshd.disconnected"
        rejected = self._keys_rejected(
            hostname, pid, address, port, None, timestamp, program, line_no, raw
        )
        settled = self._settle(
            self._forget(hostname, pid),
            address,
            port,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )
        if settled is not None:
            return settled
        if rejected is not None:
            return rejected
        if not preauth:
            return NOT_RELEVANT
        return self._event(
            PREAUTH,
            UNKNOWN,
            ACTION_CONNECTION,
            address,
            port,
            None,
            "client disconnected before authentication",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _connection(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        if message.startswith("Connection from "):
            m = _CONNECTION_FROM_RE.match(message)
            if m is None:
                self.pattern = None
                return NO_MATCH
            self.pattern = "sshd.connection_from"
            self._remember(hostname, pid, m.group(1), m.group(2))
            return NOT_RELEVANT
        return self._closed(message, timestamp, hostname, program, pid, line_no, raw)

    def _closed(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _CLOSED_RE.match(message)
        if m is None:
            if message.startswith("Disconnected from user ") or message.startswith(
                "Connection closed by remote host"
            ):
                self.pattern = "sshd.disconnected"
                return NOT_RELEVANT
            self.pattern = None
            return NO_MATCH
        user_kind, user, address, port, preauth = m.group(1, 2, 3, 4, 5)
        return self._closing(
            user_kind,
            user,
            address,
            port,
            preauth is not None,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _closing(
        self,
        user_kind: str | None,
        user: str | None,
        address: str,
        port: str | None,
        preauth: bool,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        """A connection closed, reset or disconnected by the client."""
        self.pattern = "sshd.closed_preauth" if preauth else "sshd.connection_closed"
        rejected = self._keys_rejected(
            hostname, pid, address, port, user, timestamp, program, line_no, raw
        )
        # The connection ends: report what waited for its address.
        settled = self._settle(
            self._forget(hostname, pid),
            address,
            port,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )
        if settled is not None:
            return settled
        if rejected is not None:
            return rejected
        if not preauth:
            return NOT_RELEVANT
        return self._event(
            PREAUTH,
            UNKNOWN,
            ACTION_CONNECTION,
            address,
            port,
            user,
            _CLOSED_REASONS[user_kind],
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _too_many(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _TOO_MANY_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        if pid is not None and self._offered:
            self._offered.pop(pid, None)  # this line is the connection's counted failure
        return self._without_address(
            "sshd.too_many_failures",
            AUTH_FAILURE,
            FAILURE,
            ACTION_LOGIN,
            m.group(1),
            "too many authentication failures",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _disconnecting(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _DISCONNECTING_USER_RE.match(message)
        if m is None:
            if message.startswith("Disconnecting user "):
                self.pattern = "sshd.disconnected"
                return NOT_RELEVANT
            self.pattern = None
            return NO_MATCH
        user_kind, user, address, port, text = m.group(1, 2, 3, 4, 5)
        if text.startswith("Change of username or service not allowed"):
            self.pattern = "sshd.change_of_username"
            self._remember(hostname, pid, address, port)
            return self._event(
                ACCESS_DENIED,
                FAILURE,
                ACTION_LOGIN,
                address,
                port,
                user,
                f"change of username not allowed ({user_kind} user)",
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        if text.startswith("Too many authentication failures"):
            # sshd logged "maximum authentication attempts exceeded" just before.
            self.pattern = "sshd.too_many_failures_disconnect"
            return NOT_RELEVANT
        self.pattern = "sshd.disconnected"
        return NOT_RELEVANT

    def _max_attempts(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _MAX_ATTEMPTS_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        invalid, user, address, port = m.group(1, 2, 3, 4)
        return self._exceeded(
            invalid is not None,
            user,
            address,
            port,
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _exceeded(
        self,
        invalid: bool,
        user: str,
        address: str,
        port: str | None,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event:
        self.pattern = "sshd.max_auth_attempts"
        self._remember(hostname, pid, address, port)
        if not invalid:
            rejected = self._keys_rejected(
                hostname, pid, address, port, user, timestamp, program, line_no, raw
            )
            if rejected is not None:
                return rejected
        return self._event(
            INVALID_USER if invalid else AUTH_FAILURE,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            user,
            "maximum authentication attempts exceeded",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _pam_error(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _PAM_ERROR_RE.match(message)
        if m is None:
            if message.startswith("PAM: User not known"):
                return self._user(message[5:], timestamp, hostname, program, pid, line_no, raw)
            self.pattern = None
            return NO_MATCH
        what, user, address, port = m.group(1, 2, 3, 4)
        self.pattern = "sshd.pam_auth_failure"
        self._remember(hostname, pid, address, port)
        return self._event(
            AUTH_FAILURE,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            user,
            f"PAM authentication {what}",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _no_identification(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _NO_IDENT_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        return self._preauth_failure(
            "sshd.no_identification",
            m.group(1),
            m.group(2),
            "did not receive identification string",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _bad_protocol(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _BAD_PROTOCOL_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        return self._preauth_failure(
            "sshd.bad_protocol",
            m.group(1),
            m.group(2),
            "bad protocol version identification",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _banner(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _BANNER_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        return self._preauth_failure(
            "sshd.banner_invalid",
            m.group(1),
            m.group(2),
            f"banner exchange: {m.group(3)}",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _dispatch_fatal(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _DISPATCH_FATAL_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        return self._preauth_failure(
            "sshd.dispatch_fatal",
            m.group(1),
            m.group(2),
            m.group(3),
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _timeout(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _TIMEOUT_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        return self._preauth_failure(
            "sshd.timeout_preauth",
            m.group(1),
            m.group(2),
            "timeout before authentication",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _read_reset(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        if not message.startswith("Read from socket failed: Connection reset by peer"):
            self.pattern = None
            return NO_MATCH
        if not message.endswith("[preauth]"):
            self.pattern = "sshd.disconnected"
            return NOT_RELEVANT
        return self._without_address(
            "sshd.read_reset_preauth",
            PREAUTH,
            FAILURE,
            ACTION_CONNECTION,
            None,
            "connection reset before authentication",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _unable(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _NEGOTIATE_RE.match(message)
        if m is not None:
            return self._preauth_failure(
                "sshd.negotiation_failed",
                m.group(1),
                m.group(2),
                m.group(3),
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        if message.startswith("Unable to negotiate a "):
            return self._without_address(
                "sshd.negotiation_failed",
                PREAUTH,
                FAILURE,
                ACTION_CONNECTION,
                None,
                "unable to negotiate " + message[22:].removesuffix(" [preauth]"),
                timestamp,
                hostname,
                program,
                pid,
                line_no,
                raw,
            )
        self.pattern = "sshd.daemon"
        return NOT_RELEVANT

    def _no_matching(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        if not message.startswith("no matching "):
            self.pattern = None
            return NO_MATCH
        end = message.find(" found")
        what = message[:end] if 0 < end <= 64 else "no matching algorithm"
        return self._without_address(
            "sshd.negotiation_failed",
            PREAUTH,
            FAILURE,
            ACTION_CONNECTION,
            None,
            f"{what} found",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _kex(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        cause = message[29:].removeprefix("read: ")
        if not cause.startswith(_KEX_FAILURE_CAUSES):
            # Other kex complaints (banner line too long, …) come with a line that counts.
            self.pattern = "sshd.kex_identification"
            return NOT_RELEVANT
        return self._without_address(
            "sshd.kex_identification",
            PREAUTH,
            FAILURE,
            ACTION_CONNECTION,
            None,
            f"kex identification: {cause.removesuffix(' [preauth]')}",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _drop(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _DROP_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        address, port, why = m.group(1, 2, 3)
        self.pattern = "sshd.startups_drop"
        # The listener's PID, not a connection's: no per-connection state here.
        return self._event(
            PREAUTH,
            FAILURE,
            ACTION_CONNECTION,
            address,
            port,
            None,
            f"connection dropped: {why}",
            timestamp,
            hostname,
            program,
            pid,
            line_no,
            raw,
        )

    def _audit(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        m = _SSH_AUDIT_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        self.pattern = "sshd.audit"
        self._remember(hostname, pid, m.group(1), None)
        return NOT_RELEVANT

    def _server(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        listening = message.startswith("Server listening on ")
        self.pattern = "sshd.listening" if listening else "sshd.daemon"
        return NOT_RELEVANT

    def _postponed(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        self.pattern = "sshd.postponed"
        return NOT_RELEVANT

    def _input_userauth(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        # The "Invalid user … from …" line before it already counted the attempt.
        self.pattern = "sshd.input_userauth_invalid"
        return NOT_RELEVANT

    def _reverse_mapping(
        self,
        message: str,
        timestamp: float | None,
        hostname: str | None,
        program: str,
        pid: int | None,
        line_no: int | None,
        raw: str | None,
    ) -> Event | Skip:
        if "POSSIBLE BREAK-IN ATTEMPT" in message or message.startswith("Nasty PTR record"):
            self.pattern = "sshd.reverse_mapping"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH


__all__ = [
    "ACTION_CONNECTION",
    "ACTION_LOGIN",
    "AWAITING_ADDRESS",
    "DATASET",
    "MAX_CONNECTIONS",
    "PATTERNS",
    "SshdMessages",
]
