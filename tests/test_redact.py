"""Redaction: URL credentials, secret query values, secrets and their partial echoes masked."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from soc.config import Secret, settings_from_dict
from soc.errors import StoreError
from soc.redact import (
    MASK,
    RedactingFilter,
    SecretRegistry,
    install,
    installed,
    process_secrets,
    redact,
    redact_url,
    uninstall,
    url_secrets,
)

#: Shaped like a Gemini API key (random letters after the fixed "AIzaSy").
KEY = "AIzaSyD9tSrke72PouQMnMXa7eZSW0jkFMBWYq"
ORDINARY = (
    "Failed password for invalid user admin from 203.0.113.9 port 40000 ssh2; "
    "Gemini API answered 400 INVALID_ARGUMENT: API key not valid. Please pass a valid "
    "API key. See https://ai.google.dev/gemini-api/docs/api-key?hl=en#troubleshooting."
)


@pytest.fixture(autouse=True)
def _no_process_state() -> Iterator[None]:
    """Each test starts and ends with an empty process registry and plain logging."""
    process_secrets().clear()
    factory = logging.getLogRecordFactory()
    yield
    uninstall()
    logging.setLogRecordFactory(factory)
    process_secrets().clear()


def _empty() -> SecretRegistry:
    return SecretRegistry()


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg2://soc:S3cret-pw@db.example:5432/soc",
            "postgresql+psycopg2://soc:***@db.example:5432/soc",
        ),
        ("https://elastic:changeme-9@es.example:9200", "https://elastic:***@es.example:9200"),
        # an unencoded "@" in the password: everything up to the host's "@" is hidden
        ("postgresql://soc:p@ss@db.example/soc", "postgresql://soc:***@db.example/soc"),
        (
            "https://x-access-token:ghs_abc@github.com/o/r",
            "https://x-access-token:***@github.com/o/r",
        ),
        # nothing to hide: unchanged
        ("postgresql+psycopg2://soc@db.example/soc", "postgresql+psycopg2://soc@db.example/soc"),
        ("http://127.0.0.1:9200/_bulk", "http://127.0.0.1:9200/_bulk"),
        ("http://host/p?to=alice@example.org", "http://host/p?to=alice@example.org"),
        ("sqlite:///data/soc.db", "sqlite:///data/soc.db"),
    ],
)
def test_url_passwords_are_masked_and_nothing_else(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact(url, registry=_empty()) == expected
    assert redact_url(expected) == expected  # masking twice changes nothing


def test_a_url_inside_a_message_loses_its_password() -> None:
    text = "cannot open postgresql://soc:S3cret-pw@db/soc: refused (retry 'https://u:pw9@h/x')"
    assert redact(text, registry=_empty()) == (
        "cannot open postgresql://soc:***@db/soc: refused (retry 'https://u:***@h/x')"
    )


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "TOKEN",
        "key",
        "Key",
        "api_key",
        "API_KEY",
        "apiKey",
        "access_token",
        "password",
        "secret",
        "client_secret",
        "sig",
        "X-Amz-Signature",
    ],
)
def test_sensitive_query_parameters_are_masked_by_name_in_any_case(name: str) -> None:
    url = f"https://hooks.example/services/T0?page=2&{name}=v4lu3-xyz&lang=en#top"
    shown = redact_url(url)
    assert shown == f"https://hooks.example/services/T0?page=2&{name}=***&lang=en#top"
    assert "v4lu3-xyz" not in redact(f"POST {url} failed", registry=_empty())


def test_ordinary_query_parameters_are_kept() -> None:
    url = "https://h.example/x?monkey=1&hotkey=F5&page=2&sort=key&q=token"
    assert redact_url(url) == url


def test_secret_assignments_and_authorization_headers_are_masked_anywhere() -> None:
    dsn = "host=db port=5432 user=soc password=hunter2xyz dbname=soc"
    assert redact(dsn, registry=_empty()) == "host=db port=5432 user=soc password=*** dbname=soc"
    assert redact("password='a b c' sslmode=require", registry=_empty()) == (
        "password=*** sslmode=require"
    )
    assert redact("retry with access_token=ya29.A0AfH6S and go", registry=_empty()) == (
        "retry with access_token=*** and go"
    )
    echoed = '{"you sent": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"}'
    assert redact(echoed, registry=_empty()) == '{"you sent": "Bearer ***"}'
    # words that only look like it stay
    prose = "max_tokens=1024 token_prefix=Bearer; Basic authentication failed"
    assert redact(prose, registry=_empty()) == prose


def test_url_secrets_finds_the_password_however_it_is_written() -> None:
    found = url_secrets("postgresql://soc:p%40ss%2Fw0rd@db/soc?sslpassword=k3y-pass&x=1")
    assert {"p%40ss%2Fw0rd", "p@ss/w0rd", "k3y-pass"} <= set(found)
    assert "1" not in found
    # unencoded "/" in the password: SQLAlchemy reads it up to the first "@"
    assert "pa/ss-word" in url_secrets("postgresql://soc:pa/ss-word@db/soc")
    assert url_secrets("https://es.example:9200") == []


# --- secret values and their echoes ------------------------------------------------------------


@pytest.mark.parametrize(
    "echo",
    [
        KEY,  # whole
        KEY.lower(),  # case-changed copies
        KEY.upper(),
        KEY[:10],  # cut to its first 10 characters
        KEY[:12] + "...",
        KEY[5:17],  # any run of 8 or more of its characters
        KEY[-9:],
        KEY[:8].swapcase(),
    ],
)
def test_a_secret_and_any_partial_or_case_changed_echo_of_it_is_masked(echo: str) -> None:
    text = f"Gemini API answered 400: API key {echo} not valid. Please pass a valid API key."
    shown = redact(text, [Secret(KEY)], registry=_empty())
    assert echo.rstrip(".") not in shown
    assert shown.startswith("Gemini API answered 400: API key ***")
    assert shown.endswith(" not valid. Please pass a valid API key.")


def test_a_short_prefix_or_suffix_is_masked_only_where_it_stands_alone() -> None:
    key = "sk-proj-Q7vXb2LmN9pR4tYw8zKc"
    registry = SecretRegistry([key])
    assert redact("key sk-pro… is not valid", registry=registry) == "key ***… is not valid"
    assert redact("ends in …w8zKc!", registry=registry) == "ends in …w8zKc!"  # 5: too short
    assert redact("ends in …Yw8zKc!", registry=registry) == "ends in …***!"
    # the same letters inside a longer word are not the key
    assert redact("a sk-proXY token", registry=registry) == "a sk-proXY token"


def test_ordinary_text_is_not_masked() -> None:
    registry = SecretRegistry([KEY, "correct-horse-battery", "s3cr3t", "ab"])
    assert redact(ORDINARY, registry=registry) == ORDINARY
    # a secret shorter than 8 is masked only whole and standing alone; under 4, never
    assert redact("s3cr3t and s3cr3tive", registry=registry) == "*** and s3cr3tive"
    assert redact("about abc", registry=registry) == "about abc"


def test_runs_of_a_secret_next_to_each_other_become_one_mask() -> None:
    text = f"x {KEY}{KEY.lower()} y"
    assert redact(text, [KEY], registry=_empty()) == "x *** y"


def test_the_registry_collects_settings_secrets_and_url_passwords() -> None:
    settings = settings_from_dict(
        {
            "store": {"url": "postgresql+psycopg2://soc:Db-Passw0rd@db.example/soc"},
            "analyze": {"openai_base_url": "https://llm.example/v1?api_key=llm-key-771"},
            "exports": [
                {"type": "elasticsearch", "hosts": ["https://elastic:Es-Passw0rd@es.example:9200"]},
                {"type": "webhook", "url": "https://hooks.example/in?token=hook-token-4242"},
            ],
        }
    )
    settings.secrets = {"gemini_api_key": Secret(KEY)}
    registry = SecretRegistry()
    registry.add_settings(settings)
    assert {KEY, "Db-Passw0rd", "Es-Passw0rd", "llm-key-771", "hook-token-4242"} <= set(
        registry.values()
    )
    said = "auth failed for Db-Passw0rd / es-passw0rd / HOOK-TOKEN-4242 / llm-key-771"
    assert redact(said, registry=registry) == "auth failed for *** / *** / *** / ***"
    assert "Db-Passw0rd" not in repr(registry)


def test_errors_are_redacted_when_they_are_made() -> None:
    process_secrets().add(KEY)
    error = StoreError(
        f"cannot open: key {KEY[:10]}", where="postgresql://soc:Db-Passw0rd@db.example/soc"
    )
    assert str(error) == "postgresql://soc:***@db.example/soc: cannot open: key ***"
    assert KEY[:10] not in error.message and "Db-Passw0rd" not in (error.where or "")


# --- logging ------------------------------------------------------------------------------------


def _logger(name: str, *filters: logging.Filter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for f in filters:
        handler.addFilter(f)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def _fail_connecting() -> None:
    try:
        raise ConnectionError(f"refused by https://elastic:Es-Passw0rd@es.example (key {KEY})")
    except ConnectionError as exc:
        raise RuntimeError(f"export failed: {KEY.lower()[:12]}") from exc


def test_the_filter_redacts_messages_arguments_and_tracebacks() -> None:
    registry = SecretRegistry([KEY])
    logger, stream = _logger("tests.redact.filter", RedactingFilter(registry))
    logger.info("connecting to %s with %s", "postgresql://soc:Db-Passw0rd@db/soc", KEY.upper())
    try:
        _fail_connecting()
    except RuntimeError:
        logger.exception("export to %s failed", "siem")
    out = stream.getvalue()
    assert "INFO tests.redact.filter connecting to postgresql://soc:***@db/soc with ***" in out
    assert "ERROR tests.redact.filter export to siem failed" in out
    assert "Traceback (most recent call last)" in out  # the traceback is still there
    assert "RuntimeError: export failed: ***" in out
    assert "refused by https://elastic:***@es.example (key ***)" in out
    for leaked in ("Db-Passw0rd", "Es-Passw0rd", KEY, KEY.lower()[:12], KEY.upper()):
        assert leaked not in out


def test_without_the_filter_the_same_records_leak() -> None:
    # the control: what the filter is there for
    logger, stream = _logger("tests.redact.plain")
    logger.info("connecting with %s", KEY)
    assert KEY in stream.getvalue()


def test_install_redacts_every_record_of_every_logger_and_handler() -> None:
    registry = SecretRegistry()
    settings = settings_from_dict({"store": {"url": "postgresql://soc:Db-Passw0rd@db/soc"}})
    settings.secrets = {"openai_api_key": Secret(KEY)}
    with installed(settings, registry=registry):
        # a handler with no filter of ours, added after install, on a child logger
        logger, stream = _logger("soc.store.tests_child")
        logger.warning("store %s down; key %s", "db", KEY[:14])
        try:
            raise OSError("password=Db-Passw0rd rejected")
        except OSError:
            logger.error("giving up", exc_info=True)
    logger.warning("after: %s", KEY)  # uninstalled: records are no longer touched
    out = stream.getvalue()
    assert "store db down; key ***" in out
    assert "OSError: password=*** rejected" in out
    assert "Db-Passw0rd" not in out and KEY[:14] not in out.split("after:")[0]
    assert out.rstrip().endswith(f"after: {KEY}")


def test_install_uses_the_process_registry_by_default() -> None:
    settings = settings_from_dict({})
    settings.secrets = {"webhook_token": Secret("whk-0123456789")}
    assert install(settings) is process_secrets()
    logger, stream = _logger("soc.tests_default")
    logger.warning("echo WHK-0123456789")
    assert stream.getvalue().strip() == "WARNING soc.tests_default echo ***"
    assert MASK in redact("whk-0123456789")
