"""OpenSSH ``sshd`` / ``sshd-session`` messages (the text after the syslog tag).

(Why this file is long: it is one table, every sshd message family OpenSSH logs with
its expression and builder (:data:`ROWS`, then the handlers of the words no single
expression reads), and the per-connection memory they share. Split, a family would
be read apart from the state it updates.)

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
from soc.parse.base import NO_MATCH, NOT_RELEVANT, Builder, Header, Row, Skip

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

# "Failed <method> for <valid user> from <host> [port N] [sshN][: auth info]".
_FAILED_VALID_RE: Final = re.compile(
    r"(Failed|Accepted) (?P<method>\S+) for (?!invalid user )(?P<user>\S+) from (?P<address>\S+)"
    r"(?: port (?P<port>\d+))?(?: ssh\d*)?(?:\Z|: )",
    _S,
)
# Any user (names with spaces): the last "from" whose remainder is what sshd appends.
_FAILED_ANY_RE: Final = re.compile(
    r"(Failed|Accepted) (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*)"
    r" from (?P<address>\S+)(?: port (?P<port>\d+))?(?: ssh\d*)?(?::\s.*)?\Z",
    _S,
)
# The shortcut of the two above for the brute force's line: a name without spaces and
# sshd's plain tail, so the first " from " is the only one (no backtracking).
_FAILED_PLAIN_RE: Final = re.compile(
    r"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>\S*) from (?P<address>\S+)"
    r" port (?P<port>\d+) ssh2\Z"
)
_INVALID_USER_RE: Final = re.compile(
    r"(?:[Ii]nvalid|[Ii]llegal) user (?P<user>.*) from (?P<address>\S+)(?: port (?P<port>\d+))?"
    r"(?: ssh\d)?(?: \[preauth\])?\s*\Z",
    _S,
)
_INVALID_PLAIN_RE: Final = re.compile(
    r"(?:[Ii]nvalid|[Ii]llegal) user (?P<user>\S*) from (?P<address>\S+) port (?P<port>\d+)\Z"
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
    r"Received disconnect from (?P<address>\S+)(?: port (?P<port>\d+))?:\s*(?P<code>\d+): ?"
    r"(?P<text>.*?)(?: \[preauth\])?\s*\Z",
    _S,
)
_MAX_ATTEMPTS_RE: Final = re.compile(
    r"maximum authentication attempts exceeded for (?P<invalid>invalid user )?(?P<user>.*)"
    r" from (?P<address>\S+)(?: port (?P<port>\d+))?(?: ssh\d*)?(?: \[preauth\])?\s*\Z",
    _S,
)
_TOO_MANY_RE: Final = re.compile(
    r"Disconnecting: Too many authentication failures(?: for (?P<user>.*?))?(?: \[preauth\])?"
    r"\s*\Z",
    _S,
)
_DISCONNECTING_USER_RE: Final = re.compile(
    r"Disconnecting (?:from )?(?P<kind>invalid|authenticating) user (?P<user>.*?)"
    r" (?P<address>\S+) port (?P<port>\d+): (?P<text>.*)\Z",
    _S,
)
_CLOSED_RE: Final = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from)"
    r"(?: (?P<kind>invalid|authenticating) user (?P<user>.*?))? (?P<address>[^\s\[]\S*?)"
    r"(?: port (?P<port>\d+))?(?P<preauth> \[preauth\])?\s*\Z",
    _S,
)
# Its shortcut: a name without spaces, the port, nothing after "[preauth]".
_CLOSED_PLAIN_RE: Final = re.compile(
    r"(?:Connection (?:closed|reset) by|Disconnected from)"
    r"(?: (?P<kind>invalid|authenticating) user (?P<user>\S*))? (?P<address>[^\s\[]\S*)"
    r" port (?P<port>\d+)(?P<preauth> \[preauth\])?\Z"
)
_CONNECTION_FROM_RE: Final = re.compile(
    r"Connection from (?P<address>\S+)(?: port (?P<port>\d+))?(?: |\Z)"
)
_NO_IDENT_RE: Final = re.compile(
    r"Did not receive identification string from (\S+)(?: port (\d+))?\s*\Z"
)
_BAD_PROTOCOL_RE: Final = re.compile(
    r"Bad protocol version identification '.*' from (\S+)(?: port (\d+))?\s*\Z", _S
)
_BANNER_RE: Final = re.compile(
    r"banner exchange: Connection from (?P<address>\S+)(?: port (?P<port>\d+))?: (?P<text>.*)\Z",
    _S,
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
    r"Unable to negotiate with (?P<address>\S+)(?: port (?P<port>\d+))?:"
    r" (?P<text>no matching .*? found)",
    _S,
)
_DROP_RE: Final = re.compile(
    r"drop connection #\d+ from \[(.*)\]:(\d+) on \[.*\]:\d+ (past MaxStartups|penalty: .*)\Z", _S
)
_INVALID_WORDS: Final = ("Invalid", "invalid", "Illegal", "illegal")
_KEX_RE: Final = re.compile(r"kex_exchange_identification:(?: (?P<cause>.*))?\Z", _S)
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

Handler = Callable[[str, Header], Event | Skip]


#: The message families read by an expression (``start``: the first word), in the order
#: a word's rows are tried.
#: A line none of its word's rows reads goes to that word's handler (``_handlers``),
#: which knows the understood lines that are no event; a word with rows and no handler
#: gives ``NO_MATCH``. :class:`~soc.parse.syslog.SyslogParser` reads the same rows with
#: the framing in front (one match per line for the lines of a brute force): the same
#: expression and builder either way. A shortcut row (``Row.shortcut``) reads the
#: commonest shape of the full row after it for less: the brute force's lines skip the
#: full rows' backtracking over names that may hold spaces.
ROWS: Final[tuple[Row, ...]] = (
    Row("Failed", _FAILED_PLAIN_RE, "_failed_any", shortcut=True),
    Row("Failed", _FAILED_VALID_RE, "_failed_valid"),
    Row("Failed", _FAILED_ANY_RE, "_failed_any"),
    Row("Accepted", _FAILED_VALID_RE, "_accepted"),
    Row("Accepted", _FAILED_ANY_RE, "_accepted"),
    *(
        row
        for word in _INVALID_WORDS
        for row in (
            Row(word, _INVALID_PLAIN_RE, "_invalid_user", shortcut=True),
            Row(word, _INVALID_USER_RE, "_invalid_user"),
        )
    ),
    Row("Connection", _CONNECTION_FROM_RE, "_connection_from"),
    Row("Connection", _CLOSED_PLAIN_RE, "_closed", shortcut=True),
    Row("Connection", _CLOSED_RE, "_closed"),
    Row("Disconnected", _CLOSED_PLAIN_RE, "_closed", shortcut=True),
    Row("Disconnected", _CLOSED_RE, "_closed"),
    Row("Received", _RECEIVED_DISCONNECT_RE, "_received"),
    Row("maximum", _MAX_ATTEMPTS_RE, "_max_attempts"),
    Row("Disconnecting:", _TOO_MANY_RE, "_too_many"),
    Row("Disconnecting", _DISCONNECTING_USER_RE, "_disconnecting"),
    Row("Unable", _NEGOTIATE_RE, "_negotiate"),
    Row("banner", _BANNER_RE, "_banner"),
    Row("kex_exchange_identification:", _KEX_RE, "_kex"),
)
#: Words sshd also logs after ``error: `` (the same family, louder).
LOUD_WORDS: Final = frozenset({"maximum", "kex_exchange_identification:"})


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

Fallback = Callable[[str, Header], Event | Skip | None]


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
        "_rows",
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
        #: Each word's rows, bound: (the expression's match, the builder).
        self._rows: dict[str, list[tuple[Callable[[str], re.Match[str] | None], Builder]]] = {}
        for row in ROWS:
            self._rows.setdefault(row.start, []).append((row.regex.match, getattr(self, row.build)))
        #: Words read by a handler alone, and what a word's rows did not read.
        self._handlers: dict[str, Handler] = {
            "error:": self._prefixed,
            "fatal:": self._prefixed,
            "Accepted": self._accepted_other,
            "User": self._user,
            "ROOT": self._root_refused,
            "refused": self._refused_connect,
            "Received": self._received_other,
            "Connection": self._closed_other,
            "Disconnected": self._closed_other,
            "Disconnecting": self._disconnecting_other,
            "PAM:": self._pam_error,
            "Authentication": self._pam_error,
            "authentication": self._pam_error,
            "Did": self._no_identification,
            "Bad": self._bad_protocol,
            "ssh_dispatch_run_fatal:": self._dispatch_fatal,
            "Timeout": self._timeout,
            "Read": self._read_reset,
            "Unable": self._unable_other,
            "no": self._no_matching,
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
        h: Header,
    ) -> Event | Skip:
        """Parse one sshd message (``error: ``/``fatal: `` prefixes allowed)."""
        space = message.find(" ")
        word = message if space < 0 else message[:space]
        rows = self._rows.get(word)
        if rows is not None:
            for match, build in rows:
                m = match(message)
                if m is not None:
                    return build(m, h)
        handler = self._handlers.get(word)
        if handler is not None:
            return handler(message, h)
        if rows is not None:
            self.pattern = None
            return NO_MATCH
        return self._unknown_word(message, h)

    def lanes(self) -> list[tuple[str, re.Pattern[str], Builder]]:
        """The rows as the framing reads them: (message start, expression, builder).

        A message of one of :data:`LOUD_WORDS` may come after ``error: `` too.
        """
        out = []
        for row in ROWS:
            build = getattr(self, row.build)
            out.append((row.start + " ", row.regex, build))
            if row.start in LOUD_WORDS:
                loud = re.compile("error: " + row.regex.pattern, row.regex.flags)
                out.append(("error: " + row.start + " ", loud, build))
        return out

    def _unknown_word(
        self,
        message: str,
        h: Header,
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
            result = self._fallback(message, h)
            if result is not None:
                return result
        self.pattern = None
        return NO_MATCH

    def _prefixed(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        """``error: …`` and ``fatal: …``: the same messages, louder."""
        message = message[7:]
        if message.startswith(("error:", "fatal:")):
            return self._unknown_word(message, h)
        return self.parse(message, h)

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
        h: Header,
    ) -> Event:
        if address is None:
            ip = name = None
        else:
            ip, name = self._memo.get(address) or self._addresses.split(address)
        # A TCP port, or None when absent or out of range.
        number = None if port is None or len(port) > 5 else int(port)
        timestamp, hostname, program, pid, line_no, raw = h
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

    def state(self) -> dict[str, Any]:
        """The per-connection tables as plain JSON, oldest first (the order trimming uses).

        ``seen``: [pid, hostname, address, port]; ``waiting``: [pid, hostname, pattern,
        kind, outcome, action, user, reason]; ``offered``: [pid, hostname, user].
        """
        return {
            "seen": [[pid, *seen] for pid, seen in self._seen.items()],
            "waiting": [
                [pid, host, p.pattern, p.kind, p.outcome, p.action, p.user, p.reason]
                for pid, (host, p) in self._waiting.items()
            ],
            "offered": [[pid, *offered] for pid, offered in self._offered.items()],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`'s tables (replacing the current ones)."""
        self._seen.clear()
        self._seen.update(
            (int(pid), (host, address, port)) for pid, host, address, port in state["seen"]
        )
        self._waiting.clear()
        self._waiting.update(
            (int(row[0]), (row[1], _Pending(*row[2:8]))) for row in state["waiting"]
        )
        self._offered.clear()
        self._offered.update((int(pid), (host, user)) for pid, host, user in state["offered"])

    def _remember(self, h: Header, address: str, port: str | None) -> None:
        """Record the address of the connection the line's sshd PID serves."""
        if h.pid is not None and self._stateful:
            seen = self._seen
            seen[h.pid] = (h.hostname, address, port)
            if len(seen) > MAX_CONNECTIONS:
                _trim(seen)

    def _forget(self, h: Header) -> _Pending | None:
        """End the line's connection: return the failure still waiting for it, if any."""
        hostname, pid = h.hostname, h.pid
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
        self, h: Header, address: str, port: str | None, user: str | None
    ) -> Event | None:
        """The failed attempt of a connection that offered only keys, ended by this line."""
        hostname, pid = h.hostname, h.pid
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
            h,
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
        h: Header,
    ) -> Event | Skip:
        """A failure line that names no address: use the connection's, or wait for it."""
        self.pattern = pattern
        hostname, pid = h.hostname, h.pid
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
                h,
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
        h: Header,
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
            h,
        )

    def _preauth_failure(
        self,
        pattern: str,
        address: str,
        port: str | None,
        reason: str,
        h: Header,
    ) -> Event:
        """A protocol-level failure before authentication, with its address."""
        self.pattern = pattern
        if h.pid is not None and self._waiting:
            # This line counts the connection's failure: nothing is left waiting.
            self._waiting.pop(h.pid, None)
        return self._event(
            PREAUTH,
            FAILURE,
            ACTION_CONNECTION,
            address,
            port,
            None,
            reason,
            h,
        )

    # --- handlers, one per first word -----------------------------------------------

    def _failed_valid(self, m: re.Match[str], h: Header) -> Event | Skip:
        method, user, address, port = m.group("method", "user", "address", "port")
        return self._failure(method, False, user, address, port, h)

    def _failed_any(self, m: re.Match[str], h: Header) -> Event | Skip:
        method, invalid, user, address, port = m.group(
            "method", "invalid", "user", "address", "port"
        )
        return self._failure(method, invalid is not None, user, address, port, h)

    def _failure(
        self,
        method: str,
        invalid: bool,
        user: str | None,
        address: str,
        port: str | None,
        h: Header,
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
        timestamp, hostname, program, pid, line_no, raw = h
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

    def _accepted(self, m: re.Match[str], h: Header) -> Event | Skip:
        method, user, address, port = m.group("method", "user", "address", "port")
        return self._success(method, user, address, port, h)

    def _accepted_other(self, message: str, h: Header) -> Event | Skip:
        if message.startswith(("Accepted key ", "Accepted certificate ")):
            self.pattern = "sshd.accepted_key"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH

    def _success(
        self,
        method: str,
        user: str,
        address: str,
        port: str | None,
        h: Header,
    ) -> Event:
        self.pattern = "sshd.accepted"
        # A success ends whatever failure the connection had pending.
        self._forget(h)
        return self._event(
            AUTH_SUCCESS,
            SUCCESS,
            ACTION_LOGIN,
            address,
            port,
            user,
            f"accepted {method}",
            h,
        )

    def _invalid_user(self, m: re.Match[str], h: Header) -> Event | Skip:
        user, address, port = m.group("user", "address", "port")
        return self._invalid(user, address, port, h)

    def _invalid(
        self,
        user: str,
        address: str,
        port: str | None,
        h: Header,
    ) -> Event:
        self.pattern = "sshd.invalid_user"
        self._remember(h, address, port)
        return self._event(
            INVALID_USER,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            user,
            "invalid user",
            h,
        )

    def _user(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        m = _NOT_ALLOWED_RE.match(message)
        if m is not None:
            user, address, why = m.group(1, 2, 3)
            self.pattern = "sshd.user_not_allowed"
            self._remember(h, address, None)
            return self._event(
                ACCESS_DENIED,
                FAILURE,
                ACTION_LOGIN,
                address,
                None,
                user,
                f"not allowed: {why}",
                h,
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
                h,
            )
        m = _NOT_KNOWN_RE.match(message)
        if m is not None:
            user, address, port = m.group(1, 2, 3)
            for prefix in ("illegal user ", "invalid user "):
                if user.startswith(prefix):
                    user = user[len(prefix) :]
                    break
            self.pattern = "sshd.pam_user_unknown"
            self._remember(h, address, port)
            return self._event(
                INVALID_USER,
                FAILURE,
                ACTION_LOGIN,
                address,
                port,
                user,
                "user not known to PAM",
                h,
            )
        if message.startswith("User child is on pid "):
            self.pattern = "sshd.session"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH

    def _root_refused(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _refused_connect(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _received(self, m: re.Match[str], h: Header) -> Event | Skip:
        address, port, code, text = m.group("address", "port", "code", "text")
        # The message ends the line: whether it ends in "[preauth]" is the line's.
        preauth = m.string.endswith("[preauth]")
        if code == "3" and text.endswith("Auth fail"):
            self.pattern = "sshd.auth_fail_disconnect"
            self._forget(h)
            return self._event(
                AUTH_FAILURE,
                FAILURE,
                ACTION_LOGIN,
                address,
                port,
                None,
                "client gave up: auth fail",
                h,
            )
        if code == "14" and "authentication methods available" in text:
            return self._preauth_failure(
                "sshd.no_auth_methods",
                address,
                port,
                "no supported authentication methods",
                h,
            )
        return self._disconnect(address, port, preauth, h)

    def _received_other(self, message: str, h: Header) -> Event | Skip:
        if message.startswith(("Received signal", "Received SIGHUP")):
            self.pattern = "sshd.daemon"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH

    def _disconnect(
        self,
        address: str,
        port: str | None,
        preauth: bool,
        h: Header,
    ) -> Event | Skip:
        """``Received disconnect`` with an ordinary reason (11: Bye Bye, …)."""
        self.pattern = "sshd.disconnect_preauth" if preauth else "sshd.disconnected"
        rejected = self._keys_rejected(h, address, port, None)
        settled = self._settle(
            self._forget(h),
            address,
            port,
            h,
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
            h,
        )

    def _connection_from(self, m: re.Match[str], h: Header) -> Event | Skip:
        self.pattern = "sshd.connection_from"
        self._remember(h, m.group("address"), m.group("port"))
        return NOT_RELEVANT

    def _closed(self, m: re.Match[str], h: Header) -> Event | Skip:
        user_kind, user, address, port, preauth = m.group(
            "kind", "user", "address", "port", "preauth"
        )
        return self._closing(user_kind, user, address, port, preauth is not None, h)

    def _closed_other(self, message: str, h: Header) -> Event | Skip:
        if message.startswith(("Disconnected from user ", "Connection closed by remote host")):
            self.pattern = "sshd.disconnected"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH

    def _closing(
        self,
        user_kind: str | None,
        user: str | None,
        address: str,
        port: str | None,
        preauth: bool,
        h: Header,
    ) -> Event | Skip:
        """A connection closed, reset or disconnected by the client."""
        self.pattern = "sshd.closed_preauth" if preauth else "sshd.connection_closed"
        rejected = self._keys_rejected(h, address, port, user)
        # The connection ends: report what waited for its address.
        settled = self._settle(
            self._forget(h),
            address,
            port,
            h,
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
            h,
        )

    def _too_many(self, m: re.Match[str], h: Header) -> Event | Skip:
        if h.pid is not None and self._offered:
            self._offered.pop(h.pid, None)  # this line is the connection's counted failure
        return self._without_address(
            "sshd.too_many_failures",
            AUTH_FAILURE,
            FAILURE,
            ACTION_LOGIN,
            m.group("user"),
            "too many authentication failures",
            h,
        )

    def _disconnecting(self, m: re.Match[str], h: Header) -> Event | Skip:
        user_kind, user, address, port, text = m.group("kind", "user", "address", "port", "text")
        if text.startswith("Change of username or service not allowed"):
            self.pattern = "sshd.change_of_username"
            self._remember(h, address, port)
            return self._event(
                ACCESS_DENIED,
                FAILURE,
                ACTION_LOGIN,
                address,
                port,
                user,
                f"change of username not allowed ({user_kind} user)",
                h,
            )
        if text.startswith("Too many authentication failures"):
            # sshd logged "maximum authentication attempts exceeded" just before.
            self.pattern = "sshd.too_many_failures_disconnect"
            return NOT_RELEVANT
        self.pattern = "sshd.disconnected"
        return NOT_RELEVANT

    def _disconnecting_other(self, message: str, h: Header) -> Event | Skip:
        if message.startswith("Disconnecting user "):
            self.pattern = "sshd.disconnected"
            return NOT_RELEVANT
        self.pattern = None
        return NO_MATCH

    def _max_attempts(self, m: re.Match[str], h: Header) -> Event | Skip:
        invalid, user, address, port = m.group("invalid", "user", "address", "port")
        return self._exceeded(invalid is not None, user, address, port, h)

    def _exceeded(
        self,
        invalid: bool,
        user: str,
        address: str,
        port: str | None,
        h: Header,
    ) -> Event:
        self.pattern = "sshd.max_auth_attempts"
        self._remember(h, address, port)
        if not invalid:
            rejected = self._keys_rejected(h, address, port, user)
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
            h,
        )

    def _pam_error(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        m = _PAM_ERROR_RE.match(message)
        if m is None:
            if message.startswith("PAM: User not known"):
                return self._user(message[5:], h)
            self.pattern = None
            return NO_MATCH
        what, user, address, port = m.group(1, 2, 3, 4)
        self.pattern = "sshd.pam_auth_failure"
        self._remember(h, address, port)
        return self._event(
            AUTH_FAILURE,
            FAILURE,
            ACTION_LOGIN,
            address,
            port,
            user,
            f"PAM authentication {what}",
            h,
        )

    def _no_identification(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _bad_protocol(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _banner(self, m: re.Match[str], h: Header) -> Event | Skip:
        return self._preauth_failure(
            "sshd.banner_invalid",
            m.group("address"),
            m.group("port"),
            f"banner exchange: {m.group('text')}",
            h,
        )

    def _dispatch_fatal(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _timeout(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _read_reset(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _negotiate(self, m: re.Match[str], h: Header) -> Event | Skip:
        return self._preauth_failure(
            "sshd.negotiation_failed", m.group("address"), m.group("port"), m.group("text"), h
        )

    def _unable_other(self, message: str, h: Header) -> Event | Skip:
        if message.startswith("Unable to negotiate a "):
            return self._without_address(
                "sshd.negotiation_failed",
                PREAUTH,
                FAILURE,
                ACTION_CONNECTION,
                None,
                "unable to negotiate " + message[22:].removesuffix(" [preauth]"),
                h,
            )
        self.pattern = "sshd.daemon"
        return NOT_RELEVANT

    def _no_matching(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _kex(self, m: re.Match[str], h: Header) -> Event | Skip:
        cause = (m.group("cause") or "").removeprefix("read: ")
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
            h,
        )

    def _drop(
        self,
        message: str,
        h: Header,
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
            h,
        )

    def _audit(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        m = _SSH_AUDIT_RE.match(message)
        if m is None:
            self.pattern = None
            return NO_MATCH
        self.pattern = "sshd.audit"
        self._remember(h, m.group(1), None)
        return NOT_RELEVANT

    def _server(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        listening = message.startswith("Server listening on ")
        self.pattern = "sshd.listening" if listening else "sshd.daemon"
        return NOT_RELEVANT

    def _postponed(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        self.pattern = "sshd.postponed"
        return NOT_RELEVANT

    def _input_userauth(
        self,
        message: str,
        h: Header,
    ) -> Event | Skip:
        # The "Invalid user … from …" line before it already counted the attempt.
        self.pattern = "sshd.input_userauth_invalid"
        return NOT_RELEVANT

    def _reverse_mapping(
        self,
        message: str,
        h: Header,
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
