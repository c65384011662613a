"""The sign-in gate: password hashes, what counts as local, and the app behind the gate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from soc.app.auth import (
    SIGN_IN_PATH,
    hash_password,
    is_local_address,
    policy_from,
    verify_password,
)
from soc.app.views import RUNTIME_KEY
from tests.app.test_pages import APP

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test password)


def test_hash_round_trip() -> None:
    encoded = hash_password(PASSWORD, iterations=1000)
    algorithm, iterations, salt, digest = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000")
    assert salt and digest
    assert verify_password(PASSWORD, encoded)
    assert not verify_password(PASSWORD + " ", encoded)
    assert not verify_password("", encoded)
    assert hash_password(PASSWORD, iterations=1000) != encoded  # a fresh salt each time


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain-text-password",
        "md5$1000$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$many$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$0$c2FsdA==$ZGlnZXN0",
        "pbkdf2_sha256$1000$not base64!$ZGlnZXN0",
        "pbkdf2_sha256$1000$c2FsdA==$",
    ],
)
def test_malformed_hashes_never_match(encoded: str) -> None:
    assert not verify_password("", encoded)
    assert not verify_password(PASSWORD, encoded)


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("", False),  # Streamlit binds every interface
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_local_addresses(address: str, local: bool) -> None:
    assert is_local_address(address) is local


@pytest.fixture
def exposed(app_env: Path) -> Iterator[Path]:
    """The app bound to every interface."""
    st_config.set_option("server.address", "0.0.0.0")
    yield app_env  # app_env restores the address


def _signed_out(at: AppTest) -> None:
    """Nothing of the console ran: only the signed-out notice and the way to sign in."""
    assert not at.exception, at.exception
    assert RUNTIME_KEY not in at.session_state
    links: list[Any] = list(at.get("link_button"))
    assert [(b.proto.label, b.proto.url) for b in links] == [("Sign in", SIGN_IN_PATH)]
    assert not at.metric and not at.expander and not at.text_input and not at.dataframe


def test_password_set_means_nothing_runs_without_a_session(exposed: Path) -> None:
    """A password is configured; this browser holds no live session: no page runs."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["app_password_hash"] = hash_password(PASSWORD, iterations=1000)
    at.run()
    _signed_out(at)
    assert "signed out" in at.info[0].value


def test_password_required_on_loopback_too(app_env: Path) -> None:
    """A configured password is asked for on loopback as well (a local proxy exposes it)."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["app_password_hash"] = hash_password(PASSWORD, iterations=1000)
    at.run()
    _signed_out(at)


def test_oidc_set_means_nothing_runs_without_a_session(exposed: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {
        "redirect_uri": "https://soc.example.org/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "soc",
        "client_secret": "s",
        "server_metadata_url": "https://id.example.org/.well-known/openid-configuration",
    }
    # Streamlit's own OIDC state alone is not a session of the command center.
    at.user = {"is_logged_in": True, "email": "analyst@example.org"}
    at.run()
    _signed_out(at)


def test_refuses_when_exposed_without_sign_in(exposed: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, at.exception
    assert RUNTIME_KEY not in at.session_state
    (error,) = at.error
    assert "no sign-in configured" in error.value
    assert not at.metric and not at.button and not at.text_input


@pytest.mark.parametrize(
    ("address", "secrets", "tls", "insecure", "refused"),
    [
        ("127.0.0.1", {}, False, False, None),
        ("0.0.0.0", {}, False, False, "no sign-in configured"),
        ("", {}, True, True, "no sign-in configured"),
        ("0.0.0.0", {"app_password_hash": "x"}, False, False, "plain HTTP"),
        ("0.0.0.0", {"app_password_hash": "x"}, True, False, None),
        ("0.0.0.0", {"app_password_hash": "x"}, False, True, None),
        ("127.0.0.1", {"app_password_hash": "x"}, False, False, None),
    ],
)
def test_start_policy(
    address: str, secrets: dict[str, str], tls: bool, insecure: bool, refused: str | None
) -> None:
    policy = policy_from(address, secrets, tls=tls, allow_insecure=insecure)
    reason = policy.refusal()
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason
    assert policy.required is bool(secrets)
