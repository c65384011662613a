"""The sign-in gate: password hashes, what counts as local, and the app behind the gate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from soc.app.auth import hash_password, is_local_address, verify_password
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


def test_password_gate(exposed: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["app_password_hash"] = hash_password(PASSWORD, iterations=1000)
    at.run()
    assert not at.exception, at.exception
    assert RUNTIME_KEY not in at.session_state  # nothing started, nothing shown
    assert [t.label for t in at.text_input] == ["Password"]
    assert not at.metric and not at.expander

    at.text_input[0].set_value("wrong password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password."]
    assert RUNTIME_KEY not in at.session_state
    assert not at.metric

    at.text_input[0].set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error
    assert RUNTIME_KEY in at.session_state
    assert at.title[0].value == "Command Center"
    assert any(m.label == "Lines ingested" for m in at.metric)


def test_oidc_gate(exposed: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {
        "redirect_uri": "https://soc.example.org/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "soc",
        "client_secret": "s",
        "server_metadata_url": "https://id.example.org/.well-known/openid-configuration",
    }
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert RUNTIME_KEY not in at.session_state
    at.user = {"is_logged_in": True, "email": "analyst@example.org"}
    at.run()
    assert not at.exception, at.exception
    assert RUNTIME_KEY in at.session_state
    assert at.title[0].value == "Command Center"


def test_refuses_when_exposed_without_sign_in(exposed: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, at.exception
    assert RUNTIME_KEY not in at.session_state
    (error,) = at.error
    assert "no sign-in is configured" in error.value
    assert not at.metric and not at.button and not at.text_input
