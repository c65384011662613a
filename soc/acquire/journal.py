"""Follow the systemd journal through a ``journalctl -o json --follow`` child process.

Each journal entry arrives as one JSON object per line; the source yields that
line as is (the ``journal_json`` parser turns it into an event) and remembers the
entry's ``__CURSOR`` so that a restart resumes just after the last line yielded.
The child's stdout is read non-blockingly from ``read()``; a child that dies is
counted (``child_exit``) and started again from the cursor on a later ``read()``,
after a back-off that doubles up to a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from soc.acquire.base import AcquireStats, decode_line
from soc.clock import Clock
from soc.errors import ConfigError, SourceError
from soc.events import Line

_READ_BYTES: Final = 1 << 20
_MAX_LINES_PER_READ: Final = 50_000
_MAX_ENTRY_BYTES: Final = 16 * 1024 * 1024  # one JSON line over this is dropped, not buffered
_STDERR_KEEP: Final = 4096
_BACKOFF_FIRST: Final = 1.0
_BACKOFF_MAX: Final = 60.0
_CURSOR_KEY: Final = b'"__CURSOR":"'
# A journal cursor is ``s=…;i=…;b=…;m=…;t=…;x=…`` in hex; anything else is refused.
_CURSOR_RE: Final = re.compile(r"[a-z]=[0-9a-f]+(?:;[a-z]=[0-9a-f]+)*")
# Unit names and syslog identifiers: no control characters, no option-looking values.
_MATCH_RE: Final = re.compile(r"[^\x00-\x20\x7f-][^\x00-\x1f\x7f]*")


@dataclass(slots=True)
class JournalSourceConfig:
    """Which journal entries to follow, and where from.

    ``units`` (``ssh.service``) select entries by systemd unit; when it is empty,
    ``identifiers`` select by ``SYSLOG_IDENTIFIER`` (both empty: the whole journal).
    ``directory`` reads journal files from a directory instead of the system
    journal (a copied journal, tests). ``start_at`` says where the first run
    starts: ``"end"`` (new entries only) or ``"beginning"``; a restored cursor
    overrides it.
    """

    units: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=lambda: ["sshd", "sshd-session"])
    journalctl: str = "journalctl"
    directory: str | None = None
    start_at: Literal["end", "beginning"] = "end"

    def __post_init__(self) -> None:
        for key in ("units", "identifiers"):
            value = getattr(self, key)
            if not isinstance(value, list) or not all(
                isinstance(v, str) and _MATCH_RE.fullmatch(v) for v in value
            ):
                raise ConfigError(
                    "must be a list of names (no spaces, control characters or leading '-')", key
                )
        if not isinstance(self.journalctl, str) or not self.journalctl:
            raise ConfigError("must be the journalctl command or its path", "journalctl")
        if self.directory is not None and (
            not isinstance(self.directory, str) or not self.directory
        ):
            raise ConfigError("must be a directory path or unset", "directory")
        if self.start_at not in ("end", "beginning"):
            raise ConfigError(f"must be 'end' or 'beginning', not {self.start_at!r}", "start_at")


class JournalSource:
    """A source following the journal through a ``journalctl`` child process.

    The child is started by the first ``read()`` (after ``restore()``), never
    through a shell. ``checkpoint()`` is ``{"cursor": …}``, the cursor of the last
    entry yielded. ``last_error`` keeps the end of the child's stderr when it died.
    """

    def __init__(self, name: str, config: JournalSourceConfig, clock: Clock) -> None:
        self.name = name
        self.config = config
        self.stats = AcquireStats()
        self._clock = clock
        executable = shutil.which(config.journalctl)
        if executable is None:
            raise SourceError(
                f"journalctl not found ({config.journalctl!r}): install systemd's journalctl "
                "or set 'journalctl' to its path",
                name,
            )
        self._executable = executable
        if config.directory is not None and not Path(config.directory).is_dir():
            raise SourceError(f"journal directory does not exist: {config.directory}", name)
        self._process: subprocess.Popen[bytes] | None = None
        self._stdout_open = False
        self._partial = b""
        self._oversize = False  # throwing away the rest of an entry over _MAX_ENTRY_BYTES
        self._pending: deque[tuple[bytes, str | None]] = deque()
        self._stderr = bytearray()  # the end of the running child's stderr
        self._cursor: str | None = None
        self._line_no = 0
        self._first_start: float | None = None  # clock.now() when the first child started
        self._restart_at = 0.0  # clock.monotonic() before which no child is started
        self._backoff = _BACKOFF_FIRST
        self._closed = False
        self.last_error: str | None = None
        self.stream = f"journal:{config.directory}" if config.directory else "journal"

    @property
    def exhausted(self) -> bool:
        """Always False: the journal can always grow."""
        return False

    @property
    def child_pid(self) -> int | None:
        """The pid of the running journalctl child, if any."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def command(self) -> list[str]:
        """The journalctl argument list the next child will run."""
        cmd = [self._executable, "--output=json", "--follow", "--no-pager", "--all"]
        if self.config.directory is not None:
            cmd.append(f"--directory={self.config.directory}")
        if self.config.units:
            cmd += [f"--unit={unit}" for unit in self.config.units]
        else:
            cmd += [f"--identifier={ident}" for ident in self.config.identifiers]
        if self._cursor is not None:
            # --no-tail: with --follow, journalctl would otherwise show only 10 entries.
            cmd += [f"--after-cursor={self._cursor}", "--no-tail"]
        elif self.config.start_at == "beginning":
            cmd.append("--no-tail")
        elif self._first_start is not None:
            # Restarted before any entry was yielded: miss nothing since the first start.
            cmd += [f"--since=@{self._first_start:.6f}", "--no-tail"]
        else:
            cmd.append("--lines=0")
        return cmd

    def read(self) -> Iterator[Line]:
        """Yield the journal entries available now, then return."""
        if self._closed:
            return
        budget = _MAX_LINES_PER_READ
        while budget > 0:
            if not self._pending and not self._fill():
                return
            received = self._clock.now()
            while self._pending and budget > 0:
                raw, cursor = self._pending.popleft()
                budget -= 1
                if cursor is not None:
                    self._cursor = cursor
                    self._backoff = _BACKOFF_FIRST  # a child that delivers is a healthy one
                self._line_no += 1
                self.stats.lines += 1
                self.stats.bytes += len(raw)
                yield Line(
                    decode_line(raw, self.stats),
                    self.name,
                    self.stream,
                    self._line_no,
                    None,
                    received,
                )

    def checkpoint(self) -> dict[str, Any] | None:
        """``{"cursor": …}`` of the last entry yielded, or None before the first."""
        return None if self._cursor is None else {"cursor": self._cursor}

    def restore(self, state: dict[str, Any]) -> None:
        """Resume after the entry whose cursor a previous ``checkpoint()`` returned."""
        cursor = state.get("cursor")
        if not isinstance(cursor, str) or not _CURSOR_RE.fullmatch(cursor):
            raise SourceError(f"checkpoint has no valid journal cursor: {cursor!r}", self.name)
        self._stop_child()
        self._pending.clear()
        self._partial = b""
        self._cursor = cursor

    def close(self) -> None:
        """Stop the journalctl child."""
        self._closed = True
        self._stop_child()

    # --- internals ----------------------------------------------------------------

    def _fill(self) -> bool:
        """Read what the child has written into ``_pending``; False if nothing came."""
        if self._process is None:
            if self._clock.monotonic() < self._restart_at:
                return False
            self._start_child()
            if self._process is None:
                return False
        process = self._process
        got = False
        if self._stdout_open and process.stdout is not None:
            for _ in range(16):  # at most 16 MiB per fill, then yield what came
                try:
                    chunk = os.read(process.stdout.fileno(), _READ_BYTES)
                except BlockingIOError:
                    break
                except OSError:
                    chunk = b""
                if not chunk:
                    self._stdout_open = False
                    break
                got = self._split(chunk) or got
        self._drain_stderr()
        if not self._stdout_open and process.poll() is not None:
            self._child_died(process)
        return got

    def _split(self, chunk: bytes) -> bool:
        data = self._partial + chunk if self._partial else chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        if self._oversize and lines:
            lines.pop(0)  # the tail of the oversize entry
            self._oversize = False
        for raw in lines:
            if raw:
                self._pending.append((raw, _cursor_of(raw)))
        self._partial = rest
        if len(self._partial) > _MAX_ENTRY_BYTES:
            if not self._oversize:
                self.stats.anomalies["oversize_entry"] += 1
            self._oversize = True
            self._partial = b""
        return bool(lines)

    def _start_child(self) -> None:
        cmd = self.command()
        try:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""},
            )
        except OSError as exc:
            self.stats.anomalies["child_start_error"] += 1
            self.last_error = f"cannot start {cmd[0]}: {exc}"
            self._schedule_restart()
            return
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                os.set_blocking(pipe.fileno(), False)
        self._process = process
        self._stdout_open = True
        self._stderr.clear()
        self._partial = b""
        self._oversize = False
        if self._first_start is None:
            self._first_start = self._clock.now()

    def _child_died(self, process: subprocess.Popen[bytes]) -> None:
        self.stats.anomalies["child_exit"] += 1
        if self._partial:
            self.stats.anomalies["partial_line"] += 1  # an entry cut off by the child's death
        self._drain_stderr()
        stderr = self._stderr.decode("utf-8", errors="replace").strip()
        self.last_error = f"journalctl exited with status {process.returncode}: {stderr}"
        self._release(process)
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        self._restart_at = self._clock.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    def _drain_stderr(self) -> None:
        if self._process is None or self._process.stderr is None:
            return
        while True:
            try:
                data = os.read(self._process.stderr.fileno(), _STDERR_KEEP)
            except OSError:  # BlockingIOError included: nothing more for now
                return
            if not data:
                return
            self._stderr += data
            del self._stderr[:-_STDERR_KEEP]

    def _stop_child(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._release(process)

    def _release(self, process: subprocess.Popen[bytes]) -> None:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        self._process = None
        self._stdout_open = False
        self._partial = b""
        self._oversize = False


def _cursor_of(raw: bytes) -> str | None:
    """The ``__CURSOR`` value of one JSON journal line, found without parsing it."""
    start = raw.find(_CURSOR_KEY)
    if start < 0:
        return None
    start += len(_CURSOR_KEY)
    end = raw.find(b'"', start)
    return raw[start:end].decode("ascii", errors="replace") if end > start else None
