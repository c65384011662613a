"""A store never shows its URL's password: not in errors, not in its own URL, not in logs."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from soc.errors import StoreError
from soc.redact import installed, process_secrets
from soc.store import open_store

PASSWORD = "Sup3r-S3cret-db-pw"  # noqa: S105 (a test value)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Opening a store registers its password process-wide: forget it after each test."""
    yield
    process_secrets().clear()


def _shown(error: StoreError) -> str:
    """Everything a user or a log may see of the error: its text and its whole chain."""
    return "\n".join(
        [
            str(error),
            repr(error),
            error.message,
            error.where or "",
            *traceback.format_exception(error),
        ]
    )


def test_an_unreachable_server_gives_an_error_without_the_password() -> None:
    url = f"postgresql+psycopg2://soc:{PASSWORD}@127.0.0.1:1/soc"  # port 1 refuses
    with pytest.raises(StoreError) as caught:
        open_store(url)
    error = caught.value
    assert error.where == "postgresql+psycopg2://soc:***@127.0.0.1:1/soc"
    assert "cannot open the store" in error.message and "Connection refused" in error.message
    assert "\n" not in str(error)
    assert PASSWORD not in _shown(error)


def test_a_server_refusal_gives_an_error_without_the_password(postgres_admin_url: str) -> None:
    # A real server (trust auth accepts any password) and a database it does not have.
    url = sa.make_url(postgres_admin_url).set(password=PASSWORD, database="soc_no_such_db_x")
    with pytest.raises(StoreError) as caught:
        open_store(url.render_as_string(hide_password=False))
    error = caught.value
    assert 'database "soc_no_such_db_x" does not exist' in error.message
    assert ":***@" in (error.where or "")
    assert PASSWORD not in _shown(error)


def test_a_url_that_is_not_one_is_refused_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"soc:{PASSWORD}@db.example")
    assert PASSWORD not in _shown(caught.value)
    with pytest.raises(StoreError) as caught:
        open_store(f"nosuchdialect://soc:{PASSWORD}@db.example/soc")
    assert PASSWORD not in _shown(caught.value)


def test_an_open_store_shows_its_url_without_the_password(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(password=PASSWORD)
    store = open_store(url.render_as_string(hide_password=False))
    try:
        assert store.url == url.render_as_string(hide_password=True)
        assert PASSWORD not in store.url
        assert store.schema_version() > 0  # it is the real, working store
    finally:
        store.close()


def test_the_password_is_masked_in_logs_once_a_store_was_opened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A library that logs the URL it was given (SQLAlchemy's own connection
    # messages, a driver's DSN): the password, registered by open_store, is masked.
    url = f"postgresql+psycopg2://soc:{PASSWORD}@127.0.0.1:1/soc"
    with pytest.raises(StoreError):
        open_store(url)
    with installed(), caplog.at_level(logging.INFO):
        logging.getLogger("tests.store.driver").info(
            "dsn host=127.0.0.1 user=soc pass %s; again %s", PASSWORD, PASSWORD.lower()
        )
    assert PASSWORD not in caplog.text and PASSWORD.lower() not in caplog.text
    assert "again ***" in caplog.text
