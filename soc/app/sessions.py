"""Signed-in sessions and sign-in throttling for the command center (no Streamlit here).

A session is a server-side record (who, from where, since when, last action)
named by 256 random bits. The browser holds ``<id>.<HMAC-SHA256(secret, id)>``
in an ``HttpOnly``, ``SameSite=Strict`` cookie that :mod:`soc.app.server` sets
at sign-in, and every request and page run looks the record up: a cookie the
server did not issue (bad signature, unknown, revoked or expired id) is worth
nothing. A new id is made at every sign-in, so no id chosen or seen before
sign-in ever becomes signed in (no fixation). Sessions end after
``idle_seconds`` without a page action and ``max_seconds`` after sign-in, and at
sign-out. They live in this process only: a restart signs everyone out.

Streamlit's own session id (sent by the browser to reconnect a websocket, and
visible in upload URLs) is bound to the signed-in session that opened it
(:meth:`SessionStore.bind`); the server refuses to resume a Streamlit session
for anyone else, so that id is no longer a password.

:class:`SignInThrottle` slows password guessing: per client address, failed
sign-ins within a window make each further attempt wait (doubling delays) and,
at a limit, lock the client out for a while; one attempt per client at a time;
and a global budget of password checks per minute bounds distributed guessing
(and the CPU the PBKDF2 checks cost).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

#: The name of the session cookie.
COOKIE_NAME: Final = "soc_session"
#: The longest delay a client is made to wait before its password is checked.
MAX_DELAY_SECONDS: Final = 30.0


@dataclass(slots=True)
class Session:
    """One signed-in analyst."""

    id: str
    user: str
    client: str  # the address it signed in from
    method: str  # "password" or "oidc"
    created: float
    last_seen: float


class SessionStore:
    """Server-side sessions with signed cookie values; safe to use from any thread."""

    def __init__(
        self,
        secret: bytes,
        *,
        idle_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._owners: dict[str, str] = {}  # Streamlit session id -> our session id

    def _sign(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode("ascii"), hashlib.sha256).hexdigest()

    def create(self, user: str, client: str, method: str) -> tuple[Session, str]:
        """A new session and the cookie value naming it (a fresh id: rotated at sign-in)."""
        now = self._clock()
        sid = secrets.token_urlsafe(32)
        session = Session(sid, user, client, method, now, now)
        with self._lock:
            self._expire(now)
            self._sessions[sid] = session
        return session, f"{sid}.{self._sign(sid)}"

    def lookup(self, cookie: str | None, *, touch: bool = False) -> Session | None:
        """The live session a cookie value names, or None (forged, unknown or expired).

        ``touch`` counts this as an action of the analyst (it restarts the idle time).
        """
        if not cookie or len(cookie) > 256:
            return None
        sid, _, signature = cookie.partition(".")
        if not sid or not hmac.compare_digest(signature.encode(), self._sign(sid).encode()):
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if self._expired(session, now):
                self._drop(sid)
                return None
            if touch:
                session.last_seen = now
            return session

    def revoke(self, sid: str) -> bool:
        """End a session (sign-out); whether it was live."""
        with self._lock:
            return self._drop(sid)

    def bind(self, streamlit_session: str, sid: str) -> None:
        """Record that Streamlit session ``streamlit_session`` belongs to session ``sid``."""
        with self._lock:
            if sid in self._sessions:
                self._owners[streamlit_session] = sid

    def owner(self, streamlit_session: str) -> str | None:
        """The session a Streamlit session was opened by, if it is still live."""
        with self._lock:
            sid = self._owners.get(streamlit_session)
            return sid if sid in self._sessions else None

    def count(self) -> int:
        """Live sessions."""
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen > self.idle_seconds or now - session.created > self.max_seconds
        )

    def _expire(self, now: float) -> None:
        for sid in [s.id for s in self._sessions.values() if self._expired(s, now)]:
            self._drop(sid)

    def _drop(self, sid: str) -> bool:
        found = self._sessions.pop(sid, None) is not None
        for key in [k for k, v in self._owners.items() if v == sid]:
            del self._owners[key]
        return found


@dataclass(slots=True, frozen=True)
class Decision:
    """Whether a sign-in attempt may go ahead, after how long, or when to come back."""

    allowed: bool
    delay: float = 0.0  # seconds to wait before checking the password
    retry_after: float = 0.0  # when refused: seconds until an attempt may be made
    reason: str = ""


@dataclass(slots=True)
class _Client:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    in_flight: bool = False


class SignInThrottle:
    """Per-client and global limits on password checks; safe to use from any thread.

    Call :meth:`begin` before checking a password; if allowed, wait ``delay``,
    check, then call :meth:`finish` with the outcome (always, also on errors).
    """

    def __init__(
        self,
        *,
        window_seconds: float,
        base_delay: float,
        lockout_failures: int,
        lockout_seconds: float,
        global_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self.base_delay = base_delay
        self.lockout_failures = lockout_failures
        self.lockout_seconds = lockout_seconds
        self.global_per_minute = global_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._checks: deque[float] = deque()  # every password check, for the global budget

    def begin(self, client: str) -> Decision:
        """May ``client`` try a password now? Reserves its one attempt when allowed."""
        now = self._clock()
        with self._lock:
            state = self._clients.setdefault(client, _Client())
            self._forget(state, now)
            if state.locked_until > now:
                return Decision(False, retry_after=state.locked_until - now, reason="locked out")
            if state.in_flight:
                return Decision(False, retry_after=1.0, reason="one attempt at a time")
            while self._checks and now - self._checks[0] >= 60.0:
                self._checks.popleft()
            if len(self._checks) >= self.global_per_minute:
                return Decision(
                    False,
                    retry_after=60.0 - (now - self._checks[0]),
                    reason="too many sign-in attempts on this server",
                )
            self._checks.append(now)
            state.in_flight = True
            failures = len(state.failures)
            delay = (
                min(self.base_delay * 2 ** (failures - 1), MAX_DELAY_SECONDS) if failures else 0.0
            )
            return Decision(True, delay=delay)

    def finish(self, client: str, *, success: bool) -> None:
        """The outcome of the attempt :meth:`begin` allowed."""
        now = self._clock()
        with self._lock:
            state = self._clients.setdefault(client, _Client())
            state.in_flight = False
            if success:
                state.failures.clear()
                return
            self._forget(state, now)
            state.failures.append(now)
            if len(state.failures) >= self.lockout_failures:
                state.locked_until = now + self.lockout_seconds
                state.failures.clear()

    def failures(self, client: str) -> int:
        """Failed attempts of ``client`` within the window."""
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                return 0
            self._forget(state, self._clock())
            return len(state.failures)

    def _forget(self, state: _Client, now: float) -> None:
        while state.failures and now - state.failures[0] > self.window_seconds:
            state.failures.popleft()
        if len(self._clients) > 100_000:  # bounded memory under address rotation
            idle = [
                key
                for key, other in self._clients.items()
                if other is not state
                and not other.failures
                and not other.in_flight
                and other.locked_until <= now
            ]
            for key in idle[:50_000]:
                del self._clients[key]


__all__ = ["COOKIE_NAME", "Decision", "Session", "SessionStore", "SignInThrottle"]
