"""Who may use the command center: the sign-in policy, password hashes, the page gate.

Bound to a loopback address (the default, ``.streamlit/config.toml``) with no
sign-in configured, the app is reachable only from this machine and asks for
nothing. A password whose PBKDF2 hash is ``app_password_hash`` in
``.streamlit/secrets.toml``, or an ``[auth]`` OIDC section there (Streamlit's
``st.login``), makes sign-in required, on loopback too. Bound anywhere else (an
empty ``server.address`` means every interface) the server refuses to start
without sign-in, and without TLS unless ``[console] allow_insecure`` (see
:meth:`Policy.refusal`). The sign-in itself, sessions and throttling happen in
front of Streamlit, in :mod:`soc.app.server`; :func:`gate` repeats the check at
every page run.

Make a hash with ``python -m soc.app.auth`` (it asks for the password).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from soc.app.sessions import COOKIE_NAME, Session, SessionStore

ALGORITHM: Final = "pbkdf2_sha256"
DEFAULT_ITERATIONS: Final = 600_000
SECRET_NAME: Final = "app_password_hash"  # noqa: S105 (the secret's name)
#: The server's sign-in page (the only page before sign-in).
SIGN_IN_PATH: Final = "/signin"
_log = logging.getLogger(__name__)
_LOCAL_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt_b64>$<hash_b64>`` for ``password`` (random salt)."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "$".join(
        (
            ALGORITHM,
            str(iterations),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        )
    )


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant-time; a malformed hash never does)."""
    try:
        algorithm, iterations_text, salt_b64, hash_b64 = encoded.strip().split("$")
        iterations = int(iterations_text)
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if algorithm != ALGORITHM or not 1 <= iterations <= 10_000_000 or not expected:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


def is_local_address(address: str) -> bool:
    """Whether the server listens on loopback only (an empty address is every interface)."""
    value = address.strip().strip("[]").lower()
    if not value:
        return False
    if value in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False


def _oidc_provider(secrets: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether an ``[auth]`` OIDC section is configured, and the provider for ``st.login``.

    The provider is ``None`` for the single unnamed one (``client_id`` directly
    under ``[auth]``), else the name of the first ``[auth.<name>]`` provider.
    """
    section = secrets.get("auth")
    if not isinstance(section, Mapping) or not section:
        return False, None
    if "client_id" in section:
        return True, None
    for name, value in section.items():
        if isinstance(value, Mapping) and "client_id" in value:
            return True, str(name)
    return False, None


def read_secrets() -> Mapping[str, Any]:
    """``st.secrets`` as a plain mapping (empty when there is no or a broken secrets.toml)."""
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except Exception:  # no or a broken secrets.toml: nothing configured (refused below)
        return {}


@dataclass(slots=True, frozen=True)
class Policy:
    """How this server lets people in, decided once at start from its address and secrets.

    ``method``: ``"password"`` (``app_password_hash``), ``"oidc"`` (an ``[auth]``
    section, Streamlit's ``st.login``) or ``"none"``. Sign-in is required whenever
    one is configured, on loopback too (a reverse proxy on this machine makes a
    loopback-bound app reachable from everywhere).
    """

    address: str
    method: str
    password_hash: str = ""
    oidc_provider: str | None = None
    tls: bool = False
    allow_insecure: bool = False

    @property
    def loopback(self) -> bool:
        return is_local_address(self.address)

    @property
    def required(self) -> bool:
        return self.method != "none"

    def refusal(self) -> str | None:
        """Why this server must not start, or None."""
        where = self.address or "every interface"
        if self.loopback:
            return None
        if not self.required:
            return (
                f"the command center would listen on {where}, beyond this machine, with no "
                "sign-in configured. Either bind it to 127.0.0.1 ([server] address in "
                ".streamlit/config.toml), or add an app_password_hash (python -m soc.app.auth) "
                "or an [auth] OIDC section to .streamlit/secrets.toml."
            )
        if not self.tls and not self.allow_insecure:
            return (
                f"the command center would take passwords over plain HTTP on {where}. Serve "
                "TLS (server.sslCertFile and server.sslKeyFile), or bind 127.0.0.1 behind a TLS "
                "reverse proxy (README: Security), or set [console] allow_insecure = true in "
                "soc.toml if a TLS proxy on another machine fronts it."
            )
        return None


def policy_from(
    address: str, secrets: Mapping[str, Any], *, tls: bool = False, allow_insecure: bool = False
) -> Policy:
    """The sign-in policy for a server on ``address`` with these secrets."""
    oidc, provider = _oidc_provider(secrets)
    encoded = secrets.get(SECRET_NAME)
    if oidc:
        method = "oidc"
    elif isinstance(encoded, str) and encoded.strip():
        method = "password"
    else:
        method = "none"
    return Policy(
        address=address,
        method=method,
        password_hash=encoded.strip() if method == "password" and isinstance(encoded, str) else "",
        oidc_provider=provider,
        tls=tls,
        allow_insecure=allow_insecure,
    )


@dataclass(slots=True)
class Console:
    """What the running server decided and keeps: the policy and the signed-in sessions."""

    policy: Policy
    sessions: SessionStore


_installed: dict[str, Console] = {}


def install(console: Console) -> None:
    """Make ``console`` the process's (done once by :mod:`soc.app.server` at start)."""
    _installed["console"] = console


def installed() -> Console | None:
    """The running server's console, or None (a script run without :mod:`soc.app.server`)."""
    return _installed.get("console")


def current_session(*, touch: bool = False) -> Session | None:
    """The signed-in session of the browser running this script, if any."""
    console = installed()
    if console is None:
        return None
    try:
        cookie = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser context (a bare script run)
        return None
    return console.sessions.lookup(cookie, touch=touch)


def gate() -> bool:
    """True when the rest of the app may render for this browser; else say why.

    The server already refuses every request without a live session when sign-in
    is required; this is the same check at each page run (an expired or revoked
    session stops here), and it binds Streamlit's session to the signed-in one.
    """
    console = installed()
    policy = (
        console.policy
        if console is not None
        else policy_from(str(st.get_option("server.address") or ""), read_secrets())
    )
    if (reason := policy.refusal()) is not None and not policy.required:
        st.title("SOC Command Center")
        st.error(f"Nothing is shown: {reason}")
        return False
    if not policy.required:
        return True
    session = current_session(touch=True)
    if console is None or session is None:
        st.title("SOC Command Center")
        st.info("You are signed out (or your session expired). Reload this page to sign in.")
        st.link_button("Sign in", SIGN_IN_PATH, type="primary")
        return False
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is not None:
        console.sessions.bind(ctx.session_id, session.id)
    with st.sidebar:
        name = st.user.get("email") if policy.method == "oidc" and st.user.is_logged_in else None
        st.caption(f"Signed in as {name or session.user} from {session.client}")
        st.button("Sign out", on_click=_sign_out, args=(session.id,), key="soc_sign_out")
    return True


def still_signed_in() -> bool:
    """For parts that refresh on their own: is this browser's session still live?

    (Without touching it: an unattended refresh is not an analyst's action.)
    """
    console = installed()
    if console is None or not console.policy.required:
        return True
    return current_session() is not None


def _sign_out(sid: str) -> None:
    console = installed()
    if console is not None and console.sessions.revoke(sid):
        _log.info("sign-out: session %s…", sid[:6])


def main() -> None:
    """Print a hash for ``app_password_hash`` (the password is read without echo)."""
    password = getpass.getpass("Password for the command center: ")
    if not password or password != getpass.getpass("Again: "):
        raise SystemExit("the passwords are empty or differ")
    print(f'{SECRET_NAME} = "{hash_password(password)}"')


if __name__ == "__main__":
    main()


__all__ = [
    "SIGN_IN_PATH",
    "Console",
    "Policy",
    "current_session",
    "gate",
    "hash_password",
    "install",
    "installed",
    "is_local_address",
    "policy_from",
    "read_secrets",
    "still_signed_in",
    "verify_password",
]
