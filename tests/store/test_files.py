"""A SQLite store's folder and files are private: evidence and notes are for its owner only."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.store import open_store
from tests.store.builders import make_incident

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """The usual umask (022): without care, folders come out 0755 and files 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_store_has_a_private_folder_and_private_files(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "store"
    store = open_store(f"sqlite:///{folder}/soc.db")
    try:
        with store.transaction(now=1.0) as tx:
            tx.upsert_incident(make_incident(), "auth:203.0.113.9:1")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        files = [folder / "soc.db", folder / "soc.db-wal", folder / "soc.db-shm"]
        assert all(f.exists() for f in files)  # WAL mode, while the store is open
        assert {f.name: mode(f) for f in files} == {
            "soc.db": 0o600,
            "soc.db-wal": 0o600,
            "soc.db-shm": 0o600,
        }
    finally:
        store.close()
    assert mode(folder) == 0o700
    assert mode(folder.parent) == 0o700  # every level it had to create


def test_open_files_of_an_existing_store_are_made_private_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/soc.db"
    open_store(url).close()
    database = tmp_path / "soc.db"
    journal = tmp_path / "soc.db-journal"
    journal.write_bytes(b"")  # a leftover rollback journal
    database.chmod(0o644)
    journal.chmod(0o664)
    with caplog.at_level(logging.WARNING, logger="soc.store"):
        open_store(url).close()
    assert mode(database) == 0o600
    assert mode(journal) == 0o600
    said = [r.getMessage() for r in caplog.records if "private" in r.getMessage()]
    assert said == [
        f"made the store's files in {tmp_path} private (0600): "
        "soc.db (was 0644), soc.db-journal (was 0664)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="soc.store"):
        open_store(url).close()
    assert [r for r in caplog.records if "private" in r.getMessage()] == []  # nothing to do


def test_the_default_data_folder_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="soc.store"):
        open_store("sqlite:///data/soc.db").close()  # the default [store] url
    assert mode(data) == 0o700
    assert mode(data / "soc.db") == 0o600
    assert [r.getMessage() for r in caplog.records] == [
        "made the store's folder data private (0700, was 0755)"
    ]


def test_a_folder_the_user_chose_is_left_as_it_is_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o750)
    with caplog.at_level(logging.WARNING, logger="soc.store"):
        open_store(f"sqlite:///{shared}/soc.db").close()
    assert mode(shared) == 0o750
    assert mode(shared / "soc.db") == 0o600
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith(
        f"the store's folder {shared} is open to others (0750); its files are made private"
    )


def test_a_temporary_store_is_private_too() -> None:
    store = open_store("sqlite://")
    try:
        database = Path(store.engine.url.database or "")
        assert mode(database) == 0o600
        assert mode(database.parent) == 0o700
    finally:
        store.close()
