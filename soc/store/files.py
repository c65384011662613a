"""The SQLite store's files kept private: only the account running the product reads them.

The store holds evidence lines (a user-name field often holds a mistyped
password), analysts' notes and reports, so on POSIX systems its database file and
SQLite's side files (``-wal``, ``-shm``, ``-journal``) are 0600 and a folder made
for it is 0700. SQLite creates its side files with the database file's mode, so
creating the database 0600 before SQLite opens it makes them private as well.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

_log = logging.getLogger(__name__)

#: The folder of the default store (``[store] url = "sqlite:///data/soc.db"``),
#: relative to the working directory: the product's own, so it is tightened.
DEFAULT_STORE_DIR: Final = Path("data")
#: SQLite's side files of a database, by suffix.
SIDE_SUFFIXES: Final = ("-wal", "-shm", "-journal")

_PRIVATE_DIR: Final = 0o700
_PRIVATE_FILE: Final = 0o600
_OTHERS: Final = 0o077  # group and other permission bits


def make_store_private(database: Path, *, default_dir: Path = DEFAULT_STORE_DIR) -> None:
    """Make ``database``'s folder and files private before SQLite opens it (POSIX only).

    - Folders that do not exist are created 0700 (every missing level).
    - An existing folder open to the group or others is tightened to 0700 when it
      is the product's default folder (``data/``: the product made it and owns
      what is in it), with a warning saying so. A folder the user chose (a
      shared ``/srv/soc``, ``/tmp``) is left as it is, with a warning: others
      may legitimately need to list it, and the files in it are private anyway.
    - The database file, when missing, is created empty with 0600 (SQLite takes
      an empty file as a new database) so that SQLite never creates it with the
      umask's wider mode; its side files then get 0600 from SQLite.
    - An existing database or side file open to the group or others is made
      0600, with one warning naming the files and their old modes.

    A file or folder that cannot be changed (another owner) gets a warning, not
    an error: the store still opens.
    """
    if os.name != "posix":
        return
    folder = database.parent
    created = _make_folders(folder)
    if folder not in created:
        _check_folder(folder, default_dir)
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    fixed: list[str] = []
    for path in [database, *(database.with_name(database.name + s) for s in SIDE_SUFFIXES)]:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & _OTHERS:
            try:
                path.chmod(_PRIVATE_FILE)
            except OSError as exc:
                _log.warning(
                    "the store file %s is readable by others (%04o) and cannot be made private: %s",
                    path,
                    mode,
                    exc.strerror,
                )
                continue
            fixed.append(f"{path.name} (was {mode:04o})")
    if fixed:
        _log.warning("made the store's files in %s private (0600): %s", folder, ", ".join(fixed))


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents, each 0700; returns those created."""
    missing: list[Path] = []
    level = folder
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir(mode=_PRIVATE_DIR)
        except FileExistsError:  # made by another process meanwhile: not ours to change
            continue
        path.chmod(_PRIVATE_DIR)  # whatever the umask left of it
        created.append(path)
    return created


def _check_folder(folder: Path, default_dir: Path) -> None:
    mode = stat.S_IMODE(folder.stat().st_mode)
    if not mode & _OTHERS:
        return
    if folder.resolve() == default_dir.resolve():
        try:
            folder.chmod(_PRIVATE_DIR)
        except OSError as exc:
            _log.warning(
                "the store's folder %s is open to others (%04o) and cannot be made private: %s",
                folder,
                mode,
                exc.strerror,
            )
            return
        _log.warning("made the store's folder %s private (0700, was %04o)", folder, mode)
        return
    _log.warning(
        "the store's folder %s is open to others (%04o); its files are made private, the "
        "folder is left as it is (chmod 700 it unless others must list it)",
        folder,
        mode,
    )


__all__ = ["DEFAULT_STORE_DIR", "SIDE_SUFFIXES", "make_store_private"]
