"""The ``file`` source: follow log files by path or glob, like ``tail -F``, across rotation.

(Why this file is long: following a file across rename, copytruncate, deletion and
glob changes is one state machine per path, whose reader, fingerprint and
checkpoint share the same open descriptor and offsets. Vector splits the same job
into watcher, fingerprinter and checkpointer modules; that split is the plan when
this file next grows.)

Each configured path (``~`` expanded) or glob is followed by *name*. The file
currently at a name is read through an open descriptor in large chunks; only
complete lines are yielded, and a partial last line is held until its newline
arrives. What happens to the file under us is detected and handled so that no
line is lost and none is read twice:

- **rename rotation** (``path`` → ``path.1``, a new ``path`` created): the old
  file is finished through its still-open descriptor, then the new one is read
  from its start. The old file stays open for ``rotate_wait`` seconds after it
  last grew, because a daemon keeps writing to it until it reopens its log
  (logrotate's ``postrotate`` HUP); only then is it closed. Its partial last line,
  if any, is yielded as a line at that moment.
- **copytruncate** (``path`` copied to ``path.1``, then truncated in place):
  detected when the file shrinks below what we have read, or when its first
  bytes no longer match the fingerprint we took (checked after every chunk, so
  a truncated file rewritten past our offset is never read from the middle). If
  a rotated sibling starts with our fingerprint and is at least as long as our
  offset, it is the copy: it is read from our offset to its end first, then the
  truncated file from 0.
- **delete and recreate**: the deleted file is drained through its descriptor,
  then the new file is read from 0.
- Generations rotated away between two of our checks (two rotations in a row
  while we looked elsewhere, or while the process was down) are found among the
  rotated siblings: each followed name keeps an *anchor*, the newest rotated
  sibling when its current file was opened. Every sibling newer than it came
  later and is read whole, in order, except the one holding what we were
  reading (the renamed file itself, or its copy) which goes on from our
  offset, and plain copies of what the current file still holds (logrotate's
  ``copy``, or copytruncate between its copy and its truncate), which are
  remembered and used only if the truncate follows.

Change notification comes from ``watchdog`` (inotify on Linux), watching the
directories only for creations, deletions and renames; appended data is picked
up by trying a read on every ``read()`` call, which costs one ``pread`` and one
``fstat`` per idle file. Without watchdog (``use_watchdog = false``, NFS, or an
observer that cannot start) the names are re-checked every ``poll_interval``;
with it they are also re-checked every ``5 × poll_interval`` as a safety net.
Globs are re-evaluated at each check, and files matching later are read from
the beginning. Rotated names (``x.1``, ``x.1.gz``, ``x-20240101``) and ``.gz``
files are not followed as live files when ``x`` itself is followed or matched.

The checkpoint names every open file by device, inode, a fingerprint of its
first bytes (taken as soon as they exist, read or not) and the offset just
after the last line yielded, plus each name's anchor. ``restore`` finds each
file again by identity at its path or among its rotated siblings (by
fingerprint alone when it was compressed), and holds them open at once; then
the file that was current is resumed exactly as after a rotation: renamed,
copied, compressed or deleted while we were down, what it held from our
offset is read first, then the generations written since, then the file now
at the name from 0.

Limits, by nature of the problem: lines written to a file that was deleted (or
rotated past logrotate's ``rotate`` count) before anything opened it are gone,
and so is the unread rest of a deleted file when the process stops before
draining it; copytruncate loses whatever the writer adds between the copy and
the truncate; two generations whose first ``fingerprint_bytes`` are identical
cannot be told apart (raise ``fingerprint_bytes`` for logs that start with a
fixed header). Positions in ``.gz`` files
are offsets in the decompressed stream. With ``start_at = "end"`` the lines of
existing files are counted (one sequential read) so that line numbers are exact.
"""

# This module works at the system-call level on string paths and descriptors
# (stat identities, pread); os and os.path keep that explicit and cheap.
# ruff: noqa: PTH100, PTH111, PTH113, PTH116, PTH118, PTH119, PTH120, PTH206, PTH207, PTH208

from __future__ import annotations

import contextlib
import fnmatch
import glob
import gzip
import hashlib
import io
import math
import os
import queue
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from soc.acquire.base import MAX_LINE_BYTES, AcquireStats, decode_line
from soc.clock import Clock
from soc.errors import ConfigError, SourceError
from soc.events import Line

#: Bytes read per system call.
CHUNK_BYTES: Final = 1 << 20

#: Version of the checkpoint layout written by :meth:`FileSource.checkpoint`.
CHECKPOINT_VERSION: Final = 1

#: With watchdog running, names are still re-checked every this many poll intervals.
WATCHDOG_SAFETY_FACTOR: Final = 5

# An over-long line keeps this much of its start: enough for decode_line to see
# it is over the limit even after dropping a CR, and to cut it on a UTF-8 boundary.
_KEEP_BYTES: Final = MAX_LINE_BYTES + 4

_GLOB_MAGIC: Final = re.compile(r"[*?[]")
# What logrotate appends: ".1" (``rotate``), "-20240131" (``dateext``), "-2024013113"
# (hourly), each optionally compressed.
_ROTATED_SUFFIX: Final = re.compile(r"(?:\.(?P<n>\d{1,6})|-(?P<date>\d{8}(?:\d{2})?))(?P<gz>\.gz)?")
_ROTATED_NAME: Final = re.compile(r"(?P<base>.+?)(?:\.\d{1,6}|-\d{8}(?:\d{2})?)(?:\.gz)?")

# Reader kinds.
_CURRENT: Final = "current"  # the file now at the followed name
_ROTATED: Final = "rotated"  # moved or deleted under us: finish it, wait rotate_wait, close
_STATIC: Final = "static"  # history and copytruncate copies: read to the end, close


@dataclass(slots=True)
class FileSourceConfig:
    """Options of the ``file`` source (see the module docstring for the behaviour).

    ``start_at`` applies only to files without a checkpoint that exist when the
    source starts; files appearing later are always read from the beginning.
    ``read_history`` (with ``start_at = "beginning"``) first reads the rotated
    siblings ``path.N``, ``path.N.gz``, ``path-YYYYMMDD[.gz]``, oldest first.
    ``rotate_wait`` is how long a rotated-away file is kept open after it last grew.
    """

    paths: list[str]
    start_at: Literal["end", "beginning"] = "end"
    poll_interval: float = 1.0
    use_watchdog: bool = True
    read_history: bool = False
    fingerprint_bytes: int = 256
    rotate_wait: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.paths, list) or not self.paths:
            raise ConfigError("must be a non-empty list of paths or globs", where="paths")
        for i, path in enumerate(self.paths):
            if not isinstance(path, str) or not path.strip():
                raise ConfigError(f"must be a non-empty string, got {path!r}", where=f"paths[{i}]")
        if self.start_at not in ("end", "beginning"):
            raise ConfigError(
                f"must be 'end' or 'beginning', got {self.start_at!r}", where="start_at"
            )
        _check_seconds(self.poll_interval, "poll_interval", minimum=0.01)
        _check_seconds(self.rotate_wait, "rotate_wait", minimum=0.0)
        for key in ("use_watchdog", "read_history"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"must be true or false, got {getattr(self, key)!r}", where=key)
        fpb = self.fingerprint_bytes
        if isinstance(fpb, bool) or not isinstance(fpb, int) or not 16 <= fpb <= 65536:
            raise ConfigError(
                f"must be an integer from 16 to 65536, got {fpb!r}", where="fingerprint_bytes"
            )


def _check_seconds(value: object, key: str, minimum: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ConfigError(f"must be a number of seconds >= {minimum}, got {value!r}", where=key)


def rotated_siblings(path: str) -> list[str]:
    """The rotated copies of ``path`` in its directory, oldest first.

    ``path.N`` is older the larger N is; ``path-YYYYMMDD`` is ordered by date and
    counted newer than any numbered one. When both ``path.N`` and ``path.N.gz``
    exist (compression in progress) only the plain one is listed.
    """
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    best: dict[tuple[int, int], tuple[bool, str]] = {}
    for name in names:
        if len(name) <= len(base) or not name.startswith(base):
            continue
        match = _ROTATED_SUFFIX.fullmatch(name, len(base))
        if match is None:
            continue
        n, date = match["n"], match["date"]
        key = (0, -int(n)) if n is not None else (1, int(date))
        compressed = match["gz"] is not None
        if key not in best or (best[key][0] and not compressed):
            best[key] = (compressed, name)
    return [os.path.join(directory, best[key][1]) for key in sorted(best)]


def _fp_hex(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def _position(line: Line) -> int:
    return line.position if line.position is not None else 0


class _Reader:
    """One open (or, for history not started yet, located-later) file and our place in it."""

    __slots__ = (
        "base_line_no",
        "base_offset",
        "compressed",
        "dev",
        "discarding",
        "fd",
        "file",
        "finished",
        "fp",
        "gz",
        "idx",
        "ino",
        "kind",
        "last_growth",
        "lines",
        "next_line_no",
        "opened",
        "raw",
        "read_pos",
        "stream",
        "suspect",
        "tail",
        "want_fp",
    )

    def __init__(self, stream: str, file: str, kind: str) -> None:
        self.stream = stream  # Line.stream of its lines
        self.file = file  # where it was last seen on disk
        self.kind = kind
        self.fd: int | None = None
        self.gz: gzip.GzipFile | None = None
        self.raw: io.BufferedReader | None = None  # the file object under ``gz``
        self.compressed = False
        self.opened = False
        self.dev = 0
        self.ino = 0
        self.fp = b""  # the file's first bytes as we read them (up to fingerprint_bytes)
        self.want_fp: tuple[str, int] = ("", 0)  # (sha256 hex, length) before it is opened
        self.read_pos = 0  # next byte to read (decompressed offset for .gz)
        self.tail = b""  # bytes of the line not complete yet (its kept start, if discarding)
        self.discarding = False  # inside an over-long line: skip to its newline
        self.lines: list[Line] = []  # built, yielded up to ``idx``
        self.idx = 0
        self.base_offset = 0  # committed position before ``lines``
        self.base_line_no = 0
        self.next_line_no = 0  # number of the last line built
        self.last_growth = 0.0
        self.suspect = False  # a check saw the file shrink or change its first bytes
        self.finished = False  # at its end for good; closed once ``lines`` are yielded

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)

    def committed(self) -> tuple[int, int]:
        """Offset and line number just after the last line yielded."""
        if self.idx:
            line = self.lines[self.idx - 1]
            return _position(line), line.line_no
        return self.base_offset, self.base_line_no

    def start_batch(self) -> None:
        if self.lines:
            self.base_offset, self.base_line_no = self.committed()
            self.lines = []
            self.idx = 0

    def close(self) -> None:
        if self.gz is not None:
            self.gz.close()
            self.gz = None
        if self.raw is not None:
            self.raw.close()
            self.raw = None
            self.fd = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_Anchor = tuple[tuple[int, int], str, int]


class _Follower:
    """One followed name and the files read for it, oldest first (the current one last)."""

    __slots__ = ("anchor", "chain", "deferred", "from_glob", "missing", "path")

    def __init__(self, path: str, from_glob: bool) -> None:
        self.path = path
        self.from_glob = from_glob
        self.chain: list[_Reader] = []
        self.missing = False
        # Rotated files whose content is accounted for, newest last: what was the
        # newest sibling when the current file was opened, and files we finished
        # since. Each is (identity, sha256 of its first bytes, how many). Every
        # sibling newer than the newest of them still there came later. [] when
        # there were no siblings; None when unknown (nothing is inferred then).
        self.anchor: list[_Anchor] | None = None
        # Rotated copies of what the current file still holds (a copy made before
        # the truncate of copytruncate, or logrotate's ``copy``): skipped for now,
        # but the place to resume from if the current file turns out truncated.
        self.deferred: list[_Anchor] = []

    @property
    def current(self) -> _Reader | None:
        if self.chain and self.chain[-1].kind == _CURRENT:
            return self.chain[-1]
        return None


class FileSource:
    """Follows files by name across rotation; see the module docstring.

    ``read()`` must be consumed by one caller at a time: starting a new ``read()``
    ends the previous iterator (it stops yielding), so no line is yielded twice.
    """

    def __init__(self, name: str, config: FileSourceConfig, clock: Clock) -> None:
        self.name = name
        self.config = config
        self.clock = clock
        self.stats = AcquireStats()
        self._patterns = [os.path.abspath(os.path.expanduser(p)) for p in config.paths]
        self._followers: dict[str, _Follower] = {}
        self._started = False
        self._closed = False
        self._restored_patterns: set[str] | None = None
        self._token = object()
        self._next_poll = 0.0
        self._poll_every = config.poll_interval
        self._events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._observer: Any = None  # a running watchdog Observer
        self._watches: dict[str, tuple[Any, tuple[int, int]]] = {}  # dir -> (watch, identity)
        self._reported: set[tuple[str, str]] = set()  # (reason, path) counted once

    # --- Source protocol ----------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        """Always False: a follower never knows that no more lines will come."""
        return False

    def read(self) -> Iterator[Line]:
        """Yield the complete lines available now, then return; never waits."""
        if self._closed:
            return
        token = object()
        self._token = token
        if not self._started:
            self._start()
        self._check(self.clock.monotonic())
        while True:
            progressed = False
            # Round robin, one chunk per follower per pass, so a big file does not
            # starve the others.
            for follower in list(self._followers.values()):
                reader, moved = self._next_batch(follower)
                progressed = progressed or moved
                if reader is None:
                    continue
                lines = reader.lines
                while True:
                    i = reader.idx
                    if i >= len(lines) or self._token is not token:
                        break
                    reader.idx = i + 1
                    yield lines[i]
                if self._token is not token:
                    return
            if not progressed:
                self._drop_gone_followers()
                return

    def checkpoint(self) -> dict[str, Any] | None:
        """Every file still being read: identity, fingerprint and committed offset."""
        if not self._started and self._restored_patterns is None:
            return None
        files: list[dict[str, Any]] = []
        for follower in self._followers.values():
            for r in follower.chain:
                if r.finished and r.idx >= len(r.lines):
                    continue
                self._take_fingerprint(r)
                offset, line_no = r.committed()
                fp_hex, fp_len = (_fp_hex(r.fp), len(r.fp)) if r.opened else r.want_fp
                files.append(
                    {
                        "path": follower.path,
                        "stream": r.stream,
                        "file": r.file,
                        "kind": r.kind,
                        "device": r.dev,
                        "inode": r.ino,
                        "offset": offset,
                        "line_no": line_no,
                        "fingerprint": fp_hex,
                        "fingerprint_bytes": fp_len,
                        # The bytes themselves: a copy made when the file was
                        # shorter is recognised by its prefix, which a hash cannot do.
                        "head": r.fp.hex(),
                        "compressed": r.compressed,
                        "opened": r.opened,
                    }
                )
        anchors: dict[str, Any] = {}
        for follower in self._followers.values():
            if follower.anchor is not None:
                anchors[follower.path] = [
                    [dev, ino, fp_hex, fp_len] for (dev, ino), fp_hex, fp_len in follower.anchor
                ]
        deferred = {
            f.path: [[dev, ino, fp_hex, fp_len] for (dev, ino), fp_hex, fp_len in f.deferred]
            for f in self._followers.values()
            if f.deferred
        }
        return {
            "version": CHECKPOINT_VERSION,
            "patterns": list(self._patterns),
            "files": files,
            "anchors": anchors,
            "deferred": deferred,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from a checkpoint: finish every file it names, then what came after."""
        entries = _validate_state(state)
        self._token = object()
        self._close_files()
        self._followers = {}
        self._started = False
        self._restored_patterns = {str(p) for p in state.get("patterns", [])}
        anchors = state.get("anchors")
        deferred = state.get("deferred")
        anchors = anchors if isinstance(anchors, dict) else {}
        deferred = deferred if isinstance(deferred, dict) else {}
        # A name with no file open still has an anchor: what appears there is new.
        groups: dict[str, list[dict[str, Any]]] = {str(path): [] for path in anchors}
        for entry in entries:
            groups.setdefault(entry["path"], []).append(entry)
        for path, group in groups.items():
            from_glob = self._wanted(path)
            if from_glob is None:
                continue  # no longer configured
            follower = _Follower(path, from_glob)
            follower.anchor = _anchor_from_state(anchors.get(path))
            follower.deferred = _anchor_from_state(deferred.get(path)) or []
            self._followers[path] = follower
            self._restore_follower(follower, group)

    def close(self) -> None:
        """Stop the watchdog observer and close every file."""
        self._closed = True
        self._token = object()
        self._stop_watching()
        self._close_files()

    # --- starting and restoring ---------------------------------------------------
    def _start(self) -> None:
        self._started = True
        self._start_watching()
        now = self.clock.monotonic()
        self._next_poll = now + self._poll_every
        for follower in list(self._followers.values()):
            self._check_name(follower, now)
        self._rescan(now, initial=True)

    def _restore_follower(self, follower: _Follower, group: list[dict[str, Any]]) -> None:
        now = self.clock.monotonic()
        claimed: set[tuple[int, int]] = set()
        current_entry: dict[str, Any] | None = None
        for entry in group:
            if not entry["opened"]:
                history = _Reader(entry["stream"], entry["file"], _STATIC)
                history.dev, history.ino = entry["device"], entry["inode"]
                history.want_fp = (entry["fingerprint"], entry["fingerprint_bytes"])
                follower.chain.append(history)
                continue
            if entry["kind"] == _CURRENT:
                current_entry = entry
                continue
            found = self._locate(
                follower.path,
                entry["file"],
                (entry["device"], entry["inode"]),
                (entry["fingerprint"], entry["fingerprint_bytes"]),
                entry["offset"],
                claimed,
            )
            if found is None:
                self._count("file_missing")
                continue
            found.stream = entry["stream"]
            found.kind = entry["kind"] if entry["kind"] == _STATIC else _ROTATED
            found.last_growth = now
            self._seek(found, entry["offset"], entry["line_no"])
            claimed.add(found.key)
            follower.chain.append(found)
        if current_entry is None:
            self._resync(follower, None, b"", 0, 0)
            return
        # The file that was at the name: wherever it is now, found by identity (its
        # content is checked by _resync, which also finds it if it was copied).
        key = (current_entry["device"], current_entry["inode"])
        reader: _Reader | None = None
        for candidate in dict.fromkeys(
            [current_entry["file"], follower.path, *rotated_siblings(follower.path)]
        ):
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == key and key not in claimed:
                reader = self._open(candidate, current_entry["stream"], _CURRENT)
                if reader is not None and reader.key != key:
                    reader.close()
                    reader = None
                break
        offset, line_no = current_entry["offset"], current_entry["line_no"]
        if reader is not None:
            self._seek(reader, offset, line_no)
            follower.chain.append(reader)
        head = _unhex(current_entry.get("head"))
        if not self._resync(follower, reader, head, offset, line_no):
            self._count("file_missing")

    # --- checking names -------------------------------------------------------------
    def _check(self, now: float) -> None:
        touched: list[str] = []
        rescan = False
        while True:
            try:
                kind, path = self._events.get_nowait()
            except queue.Empty:
                break
            touched.append(path)
            rescan = rescan or kind != "deleted"
        if now >= self._next_poll:
            self._next_poll = now + self._poll_every
            self._ensure_watches()
            for follower in list(self._followers.values()):
                self._check_name(follower, now, full=True)
            self._rescan(now, initial=False)
            return
        if not touched:
            return
        for follower in list(self._followers.values()):
            if any(p.startswith(follower.path) for p in touched):
                self._check_name(follower, now)
        if rescan:
            self._rescan(now, initial=False)

    def _rescan(self, now: float, initial: bool) -> None:
        for pattern in self._patterns:
            is_glob = _GLOB_MAGIC.search(pattern) is not None
            if is_glob:
                matches = sorted(glob.glob(pattern, recursive=True))
                paths = [m for m in matches if not self._is_rotated_copy(m, pattern)]
            else:
                paths = [pattern]
            for path in paths:
                if path in self._followers:
                    continue
                if is_glob and not os.path.isfile(path):
                    continue
                follower = _Follower(path, is_glob)
                held = self._adopt(follower)
                if held == "duplicate":
                    continue
                appeared_later = not initial or (
                    self._restored_patterns is not None and pattern in self._restored_patterns
                )
                if held == "adopted":
                    pass
                elif appeared_later:
                    self._check_name(follower, now)
                else:
                    start = self.config.start_at
                    history = start == "beginning" and self.config.read_history
                    self._check_name(follower, now, start=start, history=history)
                    if follower.missing and not is_glob:
                        self._count("file_missing")
                if follower.chain or not is_glob:
                    self._followers[path] = follower

    def _is_rotated_copy(self, path: str, pattern: str) -> bool:
        if path.endswith(".gz"):
            return True
        match = _ROTATED_NAME.fullmatch(os.path.basename(path))
        if match is None:
            return False
        base = os.path.join(os.path.dirname(path), match["base"])
        return base in self._followers or fnmatch.fnmatch(base, pattern)

    def _wanted(self, path: str) -> bool | None:
        """Whether ``path`` is configured: False as a literal path, True by a glob, else None."""
        for pattern in self._patterns:
            if _GLOB_MAGIC.search(pattern) is None:
                if path == pattern:
                    return False
            elif fnmatch.fnmatch(path, pattern):
                return True
        return None

    def _adopt(self, follower: _Follower) -> Literal["adopted", "duplicate", None]:
        """Whether a new name is a file we already read under another name.

        A file rotated away from one followed name and now matching a glob is
        taken over ("adopted") and read on from where it was; a file reachable
        under two names (a symlink, a hard link) is followed once ("duplicate").
        """
        try:
            st = os.stat(follower.path)
        except OSError:
            return None
        key = (st.st_dev, st.st_ino)
        for other in self._followers.values():
            for reader in other.chain:
                if reader.opened and reader.key == key:
                    if reader.kind != _ROTATED:
                        return "duplicate"
                    other.chain.remove(reader)
                    reader.kind = _CURRENT
                    reader.stream = reader.file = follower.path
                    follower.chain.append(reader)
                    return "adopted"
        return None

    def _check_name(
        self,
        follower: _Follower,
        now: float,
        full: bool = False,
        start: Literal["end", "beginning"] = "beginning",
        history: bool = False,
    ) -> None:
        """Compare the file now at the followed name with the one we read.

        A file found at a name we had no file for is read from ``start``; only
        the initial scan passes anything but "beginning".
        """
        path = follower.path
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            follower.missing = True
            if follower.anchor is None and not follower.chain:
                # Missing from the start: rotated files seen from now on are new.
                self._set_anchor(follower, rotated_siblings(path))
            return
        except OSError:
            self._count_once("read_error", path)
            return
        follower.missing = False
        if not stat.S_ISREG(st.st_mode):
            self._count_once("not_regular_file", path)
            return
        key = (st.st_dev, st.st_ino)
        current = follower.current
        if full:
            for reader in follower.chain:
                self._verify_fingerprint(reader)
        if current is not None and current.key == key:
            if st.st_size < current.read_pos:
                current.suspect = True
            elif self._has_new_siblings(follower):
                # Copied away (copytruncate) before we read anything of it, or a
                # rotated name appeared we did not account for: find out what it holds.
                offset, line_no = current.committed()
                self._resync(follower, current, current.fp, offset, line_no)
            return
        for reader in follower.chain:
            if reader.opened and reader.key == key and reader.kind == _ROTATED:
                # A rotated file moved back under the name: it is current again.
                follower.chain.remove(reader)
                if current is not None:
                    current.kind = _ROTATED
                    current.last_growth = now
                reader.kind = _CURRENT
                follower.chain.append(reader)
                return
        if current is not None:
            deleted = current.fd is not None and _nlink(current.fd) == 0
            self._count("recreated" if deleted else "rotation")
            offset, line_no = current.committed()
            self._resync(follower, current, current.fp, offset, line_no)
            return
        if follower.anchor is not None:
            # The name has a file again: it, and whatever was rotated since, is new.
            self._resync(follower, None, b"", 0, 0)
            return
        siblings = rotated_siblings(path)
        new = self._open(path, path, _CURRENT)
        if new is None:
            return
        self._set_anchor(follower, siblings)
        if start == "end":
            self._seek_end(new)
        else:
            self._take_fingerprint(new)
            if history:
                self._queue_history(follower)
        new.last_growth = now
        follower.chain.append(new)

    def _resync(
        self,
        follower: _Follower,
        r: _Reader | None,
        head: bytes,
        offset: int,
        line_no: int,
    ) -> bool:
        """Find the files holding what we have not read, after a rotation or truncation.

        ``r`` is the file that was at the followed name (None if it is gone or we
        had none). Its content is the first generation written after the
        follower's anchor; ``head`` (its first bytes, as far as we know them) and
        ``offset`` say what we read of it.
        The rotated siblings newer than the anchor, then the file now at the
        name, hold the generations written since, in order. Each is read whole,
        except: ``r`` itself (renamed) goes on from ``offset`` if its content is
        intact; a copy of its content (copytruncate, or compressed while we were
        down) is read from ``offset`` when ``r`` no longer holds it; and a plain
        copy of what ``r`` still holds is skipped. Returns False if ``r``'s
        content from ``offset`` is nowhere to be found.
        """
        now = self.clock.monotonic()
        path = follower.path
        siblings = rotated_siblings(path)
        identities = [_identity(s) for s in siblings]
        start = self._anchor_index(follower, siblings, identities)
        if start is None:  # no anchor: only r's own new place and what is newer
            start = len(siblings) - 1
            if r is not None and r.key in identities:
                start = identities.index(r.key) - 1
        deferred = {d[0] for d in follower.deferred}
        candidates = [s for i, s in enumerate(siblings) if i > start or identities[i] in deferred]
        skipped: list[_Anchor] = []
        at_path = _identity(path)
        intact = r is not None and self._holds(r, head)
        if r is not None and not intact:
            self._count("truncation")
        pending = not intact and (offset > 0 or bool(head))
        found = not pending
        # With nothing known of r, its current start tells a copy of it from a generation.
        r_head = head
        if r is not None and not head:
            r_head = self._head(r, self.config.fingerprint_bytes)
        held = {x.key for x in follower.chain if x.opened and x is not r}
        if at_path is not None:
            held.add(at_path)
        queue: list[_Reader] = []
        placed = False
        for sibling in candidates:
            x = self._open(sibling, path, _ROTATED)
            if x is None:
                continue
            if r is not None and x.key == r.key:
                x.close()
                r.file = sibling
                r.kind = _ROTATED
                r.last_growth = now
                if not intact:
                    self._reset(r)  # truncated before it was renamed
                queue.append(r)
                placed = True
                continue
            if x.key in held:
                x.close()
                continue
            x_head = self._head(x, self.config.fingerprint_bytes)
            same = min(len(x_head), len(r_head))
            # A copy of r's content starts like it (it may be shorter: copied earlier).
            copy_of_r = same > 0 and x_head[:same] == r_head[:same]
            if copy_of_r and head:
                if pending and (x.compressed or _size(x) >= offset):
                    x.kind = _STATIC
                    x.stream = r.stream if r is not None else path
                    self._seek(x, offset, line_no)
                    queue.append(x)
                    pending = False
                    found = True
                    continue
                skipped.append((x.key, _fp_hex(x_head), len(x_head)))
                x.close()  # a copy of what r still holds, or of what we found already
                continue
            if copy_of_r and intact:
                skipped.append((x.key, _fp_hex(x_head), len(x_head)))
                x.close()  # a copy of what r still holds (none of it read yet)
                continue
            if not x_head and intact and r is not None and at_path == r.key:
                # Empty while r is still at the name: copytruncate's copy, caught
                # before any byte was copied. Decided at the next resync (deferred).
                skipped.append((x.key, _fp_hex(x_head), 0))
                x.close()
                continue
            x.last_growth = now
            queue.append(x)
        current: _Reader | None = None
        if r is not None and at_path == r.key:
            if not intact:
                self._reset(r)  # after its copy, read it again from 0
            r.kind = _CURRENT
            current = r
            placed = True
        elif at_path is not None:
            current = self._open(path, path, _CURRENT)
            if current is not None:
                self._take_fingerprint(current)
                current.last_growth = now
        if r is not None and not placed:
            # Deleted, or moved out of sight: finish it through its descriptor first.
            r.kind = _ROTATED
            r.last_growth = now
            if r.fd is None:
                r.close()
            elif intact:
                queue.insert(0, r)
            else:
                self._reset(r)
                queue.append(r)
        chain = [x for x in follower.chain if x is not r] + queue
        if current is not None:
            chain.append(current)
        follower.chain = chain
        self._set_anchor(follower, siblings)
        follower.deferred = skipped[-4:] if intact and current is r else []
        return found

    def _has_new_siblings(self, follower: _Follower) -> bool:
        """Whether a rotated sibling exists that the anchor does not account for."""
        if follower.anchor is None:
            return False
        siblings = rotated_siblings(follower.path)
        if not siblings:
            return False
        identities = [_identity(s) for s in siblings]
        start = self._anchor_index(follower, siblings, identities)
        if start is None:
            return False
        deferred = {d[0] for d in follower.deferred}
        return any(key not in deferred for key in identities[start + 1 :])

    def _holds(self, r: _Reader, head: bytes) -> bool:
        """Whether ``r`` still has the content we read (not truncated or rewritten)."""
        if r.compressed:
            return True
        if r.fd is None:
            return False
        try:
            if os.fstat(r.fd).st_size < r.read_pos:
                return False
            now = os.pread(r.fd, len(head), 0) if head else b""
        except OSError:
            return False
        if now != head:
            return False
        if len(head) > len(r.fp):
            r.fp = head  # a restored reader learns its first bytes here
        return True

    def _reset(self, r: _Reader) -> None:
        """Read ``r`` again from 0: its content was replaced (truncated in place)."""
        self.stats.lines -= len(r.lines) - r.idx  # built, never yielded
        r.lines = []
        r.idx = 0
        r.base_offset = r.base_line_no = r.next_line_no = 0
        r.read_pos = 0
        r.tail = b""
        r.discarding = False
        r.fp = b""
        r.suspect = False
        r.last_growth = self.clock.monotonic()
        if r.gz is not None:
            self._seek(r, 0, 0)

    def _anchor_index(
        self,
        follower: _Follower,
        siblings: list[str],
        identities: list[tuple[int, int] | None],
    ) -> int | None:
        """Where the newest anchor still present is among ``siblings`` (-1: none).

        None when the follower has no anchor. An anchor that is gone was deleted
        by rotation, which deletes the oldest files first: all siblings are newer.
        """
        anchors = follower.anchor
        if anchors is None:
            return None
        for key, fp_hex, fp_len in reversed(anchors):
            # By identity, checking the content (inode numbers are reused), then by
            # content alone (compressed since: a new identity).
            order = [i for i, k in enumerate(identities) if k == key]
            order += [i for i in range(len(siblings) - 1, -1, -1) if fp_len and i not in order]
            for i in order:
                reader = self._open(siblings[i], siblings[i], _STATIC)
                if reader is None:
                    continue
                head = self._head(reader, fp_len)
                reader.close()
                if len(head) == fp_len and _fp_hex(head) == fp_hex:
                    return i
        return -1

    def _set_anchor(self, follower: _Follower, siblings: list[str]) -> None:
        """Everything in ``siblings`` (a listing taken before) is accounted for.

        The three newest are kept, so that one deleted by hand does not make
        every older file look new.
        """
        anchors: list[_Anchor] = []
        for sibling in siblings[-3:]:
            reader = self._open(sibling, sibling, _STATIC)
            if reader is None:
                continue
            head = self._head(reader, self.config.fingerprint_bytes)
            anchors.append((reader.key, _fp_hex(head), len(head)))
            reader.close()
        follower.anchor = anchors

    def _add_anchor(self, follower: _Follower, r: _Reader) -> None:
        """``r`` is finished: wherever it is rotated to later, it is not new."""
        if follower.anchor is not None and r.opened and r.fd is not None and _nlink(r.fd):
            follower.anchor = [*follower.anchor, (r.key, _fp_hex(r.fp), len(r.fp))][-6:]

    def _queue_history(self, follower: _Follower) -> None:
        for sibling in rotated_siblings(follower.path):
            reader = self._open(sibling, sibling, _STATIC)
            if reader is None:
                continue
            head = self._head(reader, self.config.fingerprint_bytes)
            reader.want_fp = (_fp_hex(head), len(head))
            reader.close()
            reader.opened = False
            follower.chain.append(reader)

    # --- reading --------------------------------------------------------------------
    def _next_batch(self, follower: _Follower) -> tuple[_Reader | None, bool]:
        """Read one chunk from the first file of the chain that has data.

        Returns the reader whose ``lines`` have something to yield (or None) and
        whether anything moved (bytes read, a file finished or reset).
        """
        moved = False
        for reader in list(follower.chain):
            if reader.idx < len(reader.lines):
                return reader, True
            if reader.finished:
                reader.close()
                follower.chain.remove(reader)
                moved = True
                continue
            if not reader.opened and not self._open_pending(follower, reader):
                follower.chain.remove(reader)
                moved = True
                continue
            if self._advance(follower, reader):
                if reader.idx < len(reader.lines):
                    return reader, True
                return None, True
            if reader.kind == _STATIC and not reader.finished:
                return None, moved  # history is read strictly in order
        return None, moved

    def _advance(self, follower: _Follower, r: _Reader) -> bool:
        """Read one chunk of ``r`` (its lines all yielded); True if anything moved."""
        if r.suspect:
            r.suspect = False
            self._truncated(follower, r)
            return True
        try:
            data = self._read_chunk(r)
        except (OSError, EOFError, zlib.error):
            self._count_once("read_error", r.file)
            # A file we only finish is given up after rotate_wait; the current one is retried.
            quiet = self.clock.monotonic() - r.last_growth >= self.config.rotate_wait
            if r.kind == _STATIC or r.compressed or (r.kind == _ROTATED and quiet):
                return self._finish(r)
            return False
        now = self.clock.monotonic()
        if data:
            # A rotated file can have been copytruncated before it was renamed.
            if r.kind != _STATIC and not self._fingerprint_holds(r, data):
                self._truncated(follower, r)
                return True
            self._build(r, data)
            r.read_pos += len(data)
            self.stats.bytes += len(data)
            r.last_growth = now
            return True
        if r.kind == _STATIC or r.compressed or r.fd is None:
            return self._finish(r)
        try:
            st = os.fstat(r.fd)
        except OSError:
            self._count_once("read_error", r.file)
            return False
        if st.st_size < r.read_pos:
            self._truncated(follower, r)
            return True
        if r.kind == _CURRENT:
            gone = st.st_nlink == 0 or follower.missing
            if gone and now - r.last_growth >= self.config.rotate_wait:
                # Deleted (or renamed away) and quiet: stop holding it open.
                r.kind = _ROTATED
                self._take_fingerprint(r)
                self._add_anchor(follower, r)
                return self._finish(r)
            return False
        if now - r.last_growth >= self.config.rotate_wait:
            return self._finish(r)
        return False

    def _read_chunk(self, r: _Reader) -> bytes:
        if r.gz is not None:
            return r.gz.read(CHUNK_BYTES)
        if r.fd is None:
            return b""
        return os.pread(r.fd, CHUNK_BYTES, r.read_pos)

    def _fingerprint_holds(self, r: _Reader, data: bytes) -> bool:
        """After reading ``data``: is the file still the one we fingerprinted?

        Checked after the read so that a truncate-and-rewrite racing the read is
        seen: then the data is thrown away and the truncation handled.
        """
        if r.fd is None or r.compressed:
            return True
        want = self.config.fingerprint_bytes
        if r.read_pos == 0:
            # Read from the start: it must begin with what we fingerprinted before
            # reading it (at open, at a checkpoint), or the file was replaced.
            head = data[:want]
            if head[: len(r.fp)] != r.fp:
                return False
            r.fp = head if len(head) > len(r.fp) else r.fp
            return True
        if len(r.fp) >= want:
            return os.pread(r.fd, len(r.fp), 0) == r.fp
        head = os.pread(r.fd, want, 0)
        if head[: len(r.fp)] != r.fp:
            return False
        r.fp = head  # the file grew past a short fingerprint: extend it
        return True

    def _verify_fingerprint(self, r: _Reader) -> None:
        """Mark ``r`` suspect if its first bytes changed (truncated and rewritten)."""
        if r.kind == _STATIC or r.fd is None or r.compressed or not r.opened:
            return
        if len(r.fp) < self.config.fingerprint_bytes:
            self._take_fingerprint(r)
            return
        try:
            head = os.pread(r.fd, len(r.fp), 0)
        except OSError:
            return
        if head != r.fp:
            r.suspect = True

    def _take_fingerprint(self, r: _Reader) -> None:
        """Complete a short fingerprint from the file, even from bytes not read yet.

        A checkpoint must identify the content of a file we have not read much
        of: if it is copytruncated while we are down, its copy is found by this.
        """
        want = self.config.fingerprint_bytes
        if r.fd is None or r.compressed or len(r.fp) >= want:
            return
        try:
            head = os.pread(r.fd, want, 0)
        except OSError:
            return
        if head[: len(r.fp)] != r.fp:
            r.suspect = r.kind != _STATIC
        elif len(head) > len(r.fp):
            r.fp = head

    def _build(self, r: _Reader, data: bytes) -> None:
        """Split ``data`` (read at ``r.read_pos``) into lines, keeping the partial tail."""
        r.start_batch()
        lines = r.lines
        stats = self.stats
        received = self.clock.now()
        name, stream = self.name, r.stream
        pos = r.read_pos
        no = r.next_line_no
        if r.discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return
            pos += nl + 1
            no += 1
            lines.append(Line(decode_line(r.tail, stats), name, stream, no, pos, received))
            r.tail = b""
            r.discarding = False
            data = data[nl + 1 :]
        if r.tail:
            pos -= len(r.tail)
            data = r.tail + data
        parts = data.split(b"\n")
        tail = parts.pop()
        append = lines.append
        for raw in parts:
            pos += len(raw) + 1
            no += 1
            if len(raw) > MAX_LINE_BYTES or raw[-1:] == b"\r":
                text = decode_line(raw, stats)
            else:
                try:
                    text = raw.decode()
                except UnicodeDecodeError:
                    text = decode_line(raw, stats)
            append(Line(text, name, stream, no, pos, received))
        r.next_line_no = no
        stats.lines += len(lines)
        if len(tail) > _KEEP_BYTES:
            r.tail = tail[:_KEEP_BYTES]
            r.discarding = True
        else:
            r.tail = tail

    def _finish(self, r: _Reader) -> bool:
        """``r`` is at its end for good: yield its partial last line, then close it."""
        r.finished = True
        if not r.tail and not r.discarding:
            return True
        r.start_batch()
        r.next_line_no += 1
        text = decode_line(r.tail, self.stats)
        r.lines.append(
            Line(text, self.name, r.stream, r.next_line_no, r.read_pos, self.clock.now())
        )
        self.stats.lines += 1
        r.tail = b""
        r.discarding = False
        return True

    def _truncated(self, follower: _Follower, r: _Reader) -> None:
        """``r`` was truncated in place: finish its copy, then read ``r`` again from 0."""
        offset, line_no = r.committed()
        if r.kind == _CURRENT:
            self._resync(follower, r, r.fp, offset, line_no)
            return
        fingerprint = (_fp_hex(r.fp), len(r.fp))
        self._count("truncation")
        # A rotated file truncated later (rare): its copy, if there is one, then 0.
        if r.fp:
            held = {x.key for x in follower.chain if x.opened}
            copy = self._locate(
                follower.path, None, None, fingerprint, offset, held, siblings_only=True
            )
            if copy is not None:
                copy.stream = r.stream
                copy.kind = _STATIC
                self._seek(copy, offset, line_no)
                follower.chain.insert(follower.chain.index(r), copy)
        self._reset(r)

    # --- opening and locating files -------------------------------------------------
    def _open(self, path: str, stream: str, kind: str) -> _Reader | None:
        """Open ``path`` (a regular file) for reading from its start."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            self._count_once("read_error", path)
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            self._count_once("read_error", path)
            return None
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._count_once("not_regular_file", path)
            return None
        reader = _Reader(stream, path, kind)
        reader.dev, reader.ino = st.st_dev, st.st_ino
        reader.opened = True
        if path.endswith(".gz"):
            reader.compressed = True
            reader.raw = open(fd, "rb", closefd=True)  # noqa: SIM115 - kept open by the reader
            reader.gz = gzip.GzipFile(fileobj=reader.raw, mode="rb")
        reader.fd = fd
        reader.last_growth = self.clock.monotonic()
        return reader

    def _head(self, r: _Reader, n: int) -> bytes:
        """The first ``n`` bytes of ``r`` (decompressed for .gz), not moving its position."""
        try:
            if r.gz is not None:
                r.gz.seek(0)
                head = r.gz.read(n)
                r.gz.seek(r.read_pos)
                return head
            if r.fd is None:
                return b""
            return os.pread(r.fd, n, 0)
        except (OSError, EOFError, zlib.error):
            return b""

    def _seek(self, r: _Reader, offset: int, line_no: int) -> None:
        """Resume ``r`` just after a committed line."""
        r.read_pos = r.base_offset = offset
        r.base_line_no = r.next_line_no = line_no
        r.lines = []
        r.idx = 0
        r.tail = b""
        r.discarding = False
        if r.gz is not None:
            try:
                r.gz.seek(offset)
            except (OSError, EOFError, zlib.error):
                self._count_once("read_error", r.file)

    def _seek_end(self, r: _Reader) -> None:
        """Start after the last complete line, counting lines so numbers stay exact."""
        if r.fd is None:
            return
        count = last_nl = 0
        pos = 0
        while True:
            chunk = os.pread(r.fd, CHUNK_BYTES, pos)
            if not chunk:
                break
            count += chunk.count(b"\n")
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                last_nl = pos + nl + 1
            pos += len(chunk)
        r.fp = self._head(r, self.config.fingerprint_bytes)
        self._seek(r, last_nl, count)

    def _open_pending(self, follower: _Follower, r: _Reader) -> bool:
        """Open a history file queued earlier, wherever it has been rotated to since."""
        found = self._locate(
            follower.path, r.file, r.key, r.want_fp, 0, {x.key for x in follower.chain if x.opened}
        )
        if found is None:
            self._count("file_missing")
            return False
        # Move the open file into the placeholder, which keeps its place in the chain.
        r.fd, r.gz, r.raw = found.fd, found.gz, found.raw
        found.fd = found.gz = found.raw = None
        r.dev, r.ino, r.compressed, r.opened = found.dev, found.ino, found.compressed, True
        r.file, r.fp = found.file, found.fp
        r.last_growth = self.clock.monotonic()
        return True

    def _locate(
        self,
        path: str,
        file: str | None,
        key: tuple[int, int] | None,
        fingerprint: tuple[str, int],
        min_size: int,
        claimed: set[tuple[int, int]],
        siblings_only: bool = False,
    ) -> _Reader | None:
        """Find a file by identity and fingerprint at ``path`` or among its rotated siblings.

        Identity first (renamed files keep their inode); then fingerprint alone,
        newest sibling first (a copytruncate copy, a compressed file); then, last,
        fingerprint alone at ``path`` (device numbers can change across reboots).
        """
        fp_hex, fp_len = fingerprint
        siblings = rotated_siblings(path)
        if key is not None:
            candidates = [c for c in dict.fromkeys([file, path, *siblings]) if c]
            for candidate in candidates:
                try:
                    st = os.stat(candidate)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) != key or key in claimed:
                    continue
                reader = self._open_matching(candidate, fp_hex, fp_len, min_size)
                if reader is None:
                    continue
                if reader.key == key:
                    return reader
                reader.close()  # replaced between stat and open
        if fp_len <= 0:
            return None
        fallbacks = list(reversed(siblings))
        if not siblings_only:
            fallbacks.append(path)
        for candidate in fallbacks:
            reader = self._open_matching(candidate, fp_hex, fp_len, min_size)
            if reader is None:
                continue
            if reader.key in claimed:
                reader.close()
                continue
            return reader
        return None

    def _open_matching(
        self, candidate: str, fp_hex: str, fp_len: int, min_size: int
    ) -> _Reader | None:
        reader = self._open(candidate, candidate, _STATIC)
        if reader is None:
            return None
        if not reader.compressed and reader.fd is not None:
            try:
                size = os.fstat(reader.fd).st_size
            except OSError:
                size = -1
            if size < min_size:
                reader.close()
                return None
        head = self._head(reader, fp_len)
        if len(head) != fp_len or _fp_hex(head) != fp_hex:
            reader.close()
            return None
        reader.fp = head
        return reader

    # --- watching -------------------------------------------------------------------
    def _start_watching(self) -> None:
        if not self.config.use_watchdog or self._observer is not None:
            return
        observer = Observer()
        observer.daemon = True
        try:
            observer.start()
        except (OSError, RuntimeError):
            self._count("watch_failed")
            return
        self._observer = observer
        self._ensure_watches()

    def _ensure_watches(self) -> None:
        """(Re)watch every directory a pattern lives in; poll faster if one cannot be."""
        if self._observer is None:
            self._poll_every = self.config.poll_interval
            return
        wanted: dict[str, bool] = {}
        for pattern in self._patterns:
            directory, recursive = _watch_root(pattern)
            wanted[directory] = wanted.get(directory, False) or recursive
        all_watched = True
        for directory, recursive in wanted.items():
            try:
                st = os.stat(directory)
                identity = (st.st_dev, st.st_ino)
            except OSError:
                all_watched = False
                continue
            known = self._watches.get(directory)
            if known is not None and known[1] == identity:
                continue
            if known is not None:
                with contextlib.suppress(KeyError, OSError):
                    self._observer.unschedule(known[0])
                del self._watches[directory]
            try:
                watch = self._observer.schedule(
                    _EventForwarder(self._events),
                    directory,
                    recursive=recursive,
                    event_filter=[
                        FileCreatedEvent,
                        FileDeletedEvent,
                        FileMovedEvent,
                        DirCreatedEvent,
                        DirDeletedEvent,
                        DirMovedEvent,
                    ],
                )
            except (OSError, RuntimeError):
                self._count_once("watch_failed", directory)
                all_watched = False
                continue
            self._watches[directory] = (watch, identity)
        base = self.config.poll_interval
        self._poll_every = base * WATCHDOG_SAFETY_FACTOR if all_watched else base

    def _stop_watching(self) -> None:
        observer, self._observer = self._observer, None
        self._watches = {}
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    # --- bookkeeping ----------------------------------------------------------------
    def _drop_gone_followers(self) -> None:
        for path, follower in list(self._followers.items()):
            if follower.from_glob and follower.missing and not follower.chain:
                del self._followers[path]

    def _close_files(self) -> None:
        for follower in self._followers.values():
            for reader in follower.chain:
                reader.close()

    def _count(self, reason: str) -> None:
        self.stats.anomalies[reason] += 1

    def _count_once(self, reason: str, path: str) -> None:
        """Count a persistent condition once per path, not at every check."""
        key = (reason, path)
        if key not in self._reported:
            self._reported.add(key)
            self.stats.anomalies[reason] += 1


def _unhex(value: object) -> bytes:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return bytes.fromhex(value)
    return b""


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _size(r: _Reader) -> int:
    try:
        return os.fstat(r.fd).st_size if r.fd is not None else -1
    except OSError:
        return -1


def _nlink(fd: int) -> int:
    try:
        return os.fstat(fd).st_nlink
    except OSError:
        return 0


def _watch_root(pattern: str) -> tuple[str, bool]:
    """The directory to watch for ``pattern``, and whether recursively."""
    directory = os.path.dirname(pattern)
    if _GLOB_MAGIC.search(directory) is None:
        return directory, False
    parts = directory.split(os.sep)
    static: list[str] = []
    for part in parts:
        if _GLOB_MAGIC.search(part):
            break
        static.append(part)
    return os.sep.join(static) or os.sep, True


_ENTRY_KEYS: Final = {
    "path": str,
    "stream": str,
    "file": str,
    "kind": str,
    "device": int,
    "inode": int,
    "offset": int,
    "line_no": int,
    "fingerprint": str,
    "fingerprint_bytes": int,
    "compressed": bool,
    "opened": bool,
}


def _anchor_from_state(value: object) -> list[_Anchor] | None:
    if not isinstance(value, list):
        return None
    anchors: list[_Anchor] = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) for v in (*item[:2], item[3]))
            and isinstance(item[2], str)
        ):
            return None
        anchors.append(((item[0], item[1]), item[2], item[3]))
    return anchors


def _validate_state(state: object) -> list[dict[str, Any]]:
    where = "file source checkpoint"
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise SourceError(f"not a version {CHECKPOINT_VERSION} file checkpoint", where=where)
    files = state.get("files")
    patterns = state.get("patterns", [])
    if not isinstance(files, list) or not isinstance(patterns, list):
        raise SourceError("'files' and 'patterns' must be lists", where=where)
    for entry in files:
        if not isinstance(entry, dict):
            raise SourceError("each file must be an object", where=where)
        for key, kind in _ENTRY_KEYS.items():
            value = entry.get(key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise SourceError(f"file entry needs {key!r} ({kind.__name__})", where=where)
    return files


class _EventForwarder(FileSystemEventHandler):
    """Hands watchdog's events to the reading thread through a queue; nothing else."""

    def __init__(self, events: queue.SimpleQueue[tuple[str, str]]) -> None:
        self._events = events

    def dispatch(self, event: FileSystemEvent) -> None:
        self._events.put((event.event_type, os.fsdecode(event.src_path)))
        dest = getattr(event, "dest_path", "")
        if dest:
            self._events.put((event.event_type, os.fsdecode(dest)))
