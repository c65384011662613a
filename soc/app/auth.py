"""The sign-in gate: nothing of the command center is shown to an unknown visitor.

Bound to a loopback address (the default, ``.streamlit/config.toml``) the app is
reachable only from this machine and asks for nothing. Bound anywhere else (an
empty ``server.address`` means every interface) it requires either Streamlit's
OIDC sign-in (``st.login``, when ``.streamlit/secrets.toml`` has an ``[auth]``
section) or a password whose PBKDF2 hash is ``app_password_hash`` in the same
file. With neither configured it refuses to show anything.

Make a hash with ``python -m soc.app.auth`` (it asks for the password).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Final

import streamlit as st

ALGORITHM: Final = "pbkdf2_sha256"
DEFAULT_ITERATIONS: Final = 600_000
SECRET_NAME: Final = "app_password_hash"  # noqa: S105 (the secret's name)
SIGNED_IN_KEY: Final = "soc_signed_in"
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


def _secrets() -> Mapping[str, Any]:
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except Exception:  # no or a broken secrets.toml: nothing configured (refused below)
        return {}


def gate() -> bool:
    """Show the sign-in form when needed; True when the rest of the app may render."""
    address = str(st.get_option("server.address") or "")
    if is_local_address(address):
        return True
    secrets = _secrets()
    oidc, provider = _oidc_provider(secrets)
    if oidc:
        if st.user.is_logged_in:
            with st.sidebar:
                st.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or '?'}")
                st.button("Sign out", on_click=st.logout)
            return True
        st.title("SOC Command Center")
        st.info("Sign in to continue.")
        if st.button("Sign in", type="primary"):
            if provider is None:
                st.login()
            else:
                st.login(provider)
        return False
    encoded = secrets.get(SECRET_NAME)
    if isinstance(encoded, str) and encoded:
        if st.session_state.get(SIGNED_IN_KEY):
            with st.sidebar:
                st.button("Sign out", on_click=_sign_out)
            return True
        st.title("SOC Command Center")
        with st.form("sign_in"):
            password = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            if verify_password(password, encoded):
                st.session_state[SIGNED_IN_KEY] = True
                st.rerun()
            st.error("Wrong password.")
        return False
    st.title("SOC Command Center")
    st.error(
        f"This server listens on {address or 'every interface'!s}, not only on this machine, "
        "and no sign-in is configured, so nothing is shown. Either bind it to 127.0.0.1 "
        "([server] address in .streamlit/config.toml), or add an [auth] OIDC section or an "
        f"{SECRET_NAME} (python -m soc.app.auth) to .streamlit/secrets.toml."
    )
    return False


def _sign_out() -> None:
    st.session_state[SIGNED_IN_KEY] = False


def main() -> None:
    """Print a hash for ``app_password_hash`` (the password is read without echo)."""
    password = getpass.getpass("Password for the command center: ")
    if not password or password != getpass.getpass("Again: "):
        raise SystemExit("the passwords are empty or differ")
    print(f'{SECRET_NAME} = "{hash_password(password)}"')


if __name__ == "__main__":
    main()


__all__ = ["gate", "hash_password", "is_local_address", "verify_password"]
