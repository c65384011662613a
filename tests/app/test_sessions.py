"""Sessions and sign-in throttling on a clock the test moves, and the guard's OIDC hand-off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from soc.app import auth
from soc.app.server import Guard, GuardConfig
from soc.app.sessions import COOKIE_NAME, SessionStore, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock) -> SessionStore:
    return SessionStore(b"k" * 32, idle_seconds=60, max_seconds=600, clock=clock)


def test_sessions_expire_idle_and_absolute() -> None:
    clock = Clock()
    sessions = store(clock)
    session, cookie = sessions.create("analyst", "198.51.100.1", "password")
    assert sessions.lookup(cookie) is session
    clock.now += 59
    assert sessions.lookup(cookie, touch=True) is session  # an action restarts idle time
    clock.now += 59
    assert sessions.lookup(cookie) is session
    clock.now += 2  # 61 s since the last action
    assert sessions.lookup(cookie) is None
    assert sessions.count() == 0
    # Absolute: however busy, ten minutes after sign-in it ends.
    session, cookie = sessions.create("analyst", "198.51.100.1", "password")
    for _ in range(10):
        clock.now += 59
        assert sessions.lookup(cookie, touch=True) is session
    clock.now += 20
    assert sessions.lookup(cookie, touch=True) is None


def test_cookies_are_signed_and_ids_fresh() -> None:
    sessions = store(Clock())
    first, cookie = sessions.create("analyst", "198.51.100.1", "password")
    second, other = sessions.create("analyst", "198.51.100.1", "password")
    assert first.id != second.id and cookie != other
    sid, _, signature = cookie.partition(".")
    assert len(sid) >= 40  # 256 random bits
    another_key = SessionStore(b"x" * 32, idle_seconds=60, max_seconds=600)
    assert another_key.lookup(cookie) is None  # signed with this process's key only
    altered = signature[:-1] + ("1" if signature.endswith("0") else "0")  # one character off
    for forged in (sid, f"{sid}.", f"{sid}.{altered}", f"x{cookie}", "", "a" * 300):
        assert sessions.lookup(forged) is None, forged
    assert sessions.revoke(first.id) and sessions.lookup(cookie) is None
    assert not sessions.revoke(first.id)


def test_streamlit_sessions_belong_to_their_opener() -> None:
    sessions = store(Clock())
    owner, _ = sessions.create("analyst", "198.51.100.1", "password")
    sessions.bind("streamlit-1", owner.id)
    sessions.bind("streamlit-2", "not-a-session")
    assert sessions.owner("streamlit-1") == owner.id
    assert sessions.owner("streamlit-2") is None
    sessions.revoke(owner.id)
    assert sessions.owner("streamlit-1") is None


def throttle(clock: Clock, **overrides: Any) -> SignInThrottle:
    values: dict[str, Any] = {
        "window_seconds": 900,
        "base_delay": 1.0,
        "lockout_failures": 4,
        "lockout_seconds": 600,
        "global_per_minute": 100,
        "clock": clock,
    }
    values.update(overrides)
    return SignInThrottle(**values)


def test_failures_double_the_delay_then_lock_out() -> None:
    clock = Clock()
    limits = throttle(clock)
    delays = []
    for _ in range(4):
        decision = limits.begin("203.0.113.9")
        assert decision.allowed
        delays.append(decision.delay)
        limits.finish("203.0.113.9", success=False)
    assert delays == [0.0, 1.0, 2.0, 4.0]
    locked = limits.begin("203.0.113.9")
    assert not locked.allowed and locked.reason == "locked out"
    assert locked.retry_after == pytest.approx(600)
    assert limits.begin("198.51.100.1").allowed  # others are not locked out
    clock.now += 601
    again = limits.begin("203.0.113.9")
    assert again.allowed and again.delay == 0.0


def test_one_attempt_at_a_time_and_success_forgets() -> None:
    clock = Clock()
    limits = throttle(clock)
    assert limits.begin("203.0.113.9").allowed
    assert limits.begin("203.0.113.9").reason == "one attempt at a time"
    limits.finish("203.0.113.9", success=False)
    assert limits.failures("203.0.113.9") == 1
    assert limits.begin("203.0.113.9").allowed
    limits.finish("203.0.113.9", success=True)
    assert limits.failures("203.0.113.9") == 0
    clock.now += 1
    limits.begin("203.0.113.9")
    limits.finish("203.0.113.9", success=False)
    clock.now += 901  # failures older than the window are forgotten
    assert limits.failures("203.0.113.9") == 0


def test_the_global_budget_bounds_distributed_guessing() -> None:
    clock = Clock()
    limits = throttle(clock, global_per_minute=5)
    for i in range(5):
        assert limits.begin(f"203.0.113.{i}").allowed
        limits.finish(f"203.0.113.{i}", success=False)
    refused = limits.begin("203.0.113.200")
    assert not refused.allowed and "too many" in refused.reason
    clock.now += 61
    assert limits.begin("203.0.113.200").allowed


def test_oidc_callback_hands_over_to_a_fresh_session() -> None:
    """Streamlit's callback set its user cookie: the guard adds ours and a same-site hop."""
    sessions = SessionStore(b"k" * 32, idle_seconds=60, max_seconds=600)
    policy = auth.Policy(address="127.0.0.1", method="oidc", oidc_provider=None)
    sent: list[dict[str, Any]] = []

    async def streamlit(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [
                    (b"location", b"/"),
                    (b"set-cookie", b"_streamlit_user=signed; Path=/; HttpOnly"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    guard = Guard(
        streamlit,
        GuardConfig(
            policy=policy,
            sessions=sessions,
            throttle=throttle(Clock()),
        ),
    )

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/oauth2callback",
        "headers": [(b"host", b"127.0.0.1:8501")],
        "client": ("198.51.100.1", 5000),
        "scheme": "http",
    }
    asyncio.run(guard(scope, receive, send))
    headers = sent[0]["headers"]
    assert (b"location", b"/signin/continue") in headers
    ours = [v.decode() for k, v in headers if k == b"set-cookie" and v.startswith(b"soc_session=")]
    assert len(ours) == 1 and "SameSite=Strict" in ours[0] and "HttpOnly" in ours[0]
    session = sessions.lookup(ours[0].split(";")[0].split("=", 1)[1])
    assert session is not None and session.method == "oidc"
    assert (b"x-frame-options", b"DENY") in headers
    assert COOKIE_NAME == "soc_session"


def test_page_errors_are_logged_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        import streamlit as st

        from soc.app.server import on_script_error

        try:
            raise RuntimeError("/srv/secret/path exploded")
        except RuntimeError as exc:
            assert on_script_error(exc) is True

        st.caption("after")

    with caplog.at_level("ERROR", logger="soc.app"):
        at = AppTest.from_function(page).run()
    assert [e.value for e in at.error] == ["This page failed; the details are in the server's log."]
    assert not at.exception
    (record,) = [r for r in caplog.records if r.name == "soc.app"]
    assert record.exc_info is not None and "/srv/secret/path" in str(record.exc_info[1])


def test_the_browser_never_gets_tracebacks() -> None:
    import tomllib

    from tests.app.browser import REPO_ROOT

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text("utf-8"))
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["enableCORS"] is True
    assert "localhost" in config["server"]["allowedHosts"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"trusted_proxies": ["not-an-address"]}, "trusted_proxies"),
        ({"session_idle_minutes": 0}, "session_idle_minutes"),
        ({"sign_in_lockout_failures": 0}, "sign_in_lockout_failures"),
        ({"sign_in_delay_seconds": -1}, "sign_in_delay_seconds"),
        ({"allow_insecure": "yes"}, "allow_insecure"),
    ],
)
def test_console_settings_are_checked(values: dict[str, Any], message: str) -> None:
    from soc.config import settings_from_dict
    from soc.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        settings_from_dict({"console": values})
