"""The model server's keeper: starts it, checks its health, restarts it after a crash.

:class:`ModelServer` runs ``python -m soc.modelserver`` as a child process and
watches it from a thread of its own:

- **Before each start** the model's memory needs (its GGUF header: weights, KV
  cache at ``n_ctx``, runtime) are compared with what the machine or its
  cgroup has available; a model that does not fit does not start, and the
  reason says what it needs and what there is. The child also asks the kernel
  to pick it first if memory still runs out, so the app is never the victim.
- **Health**: ``GET /health`` every ``health_interval`` seconds. It answers
  while a report is being written (inference runs off the server's event
  loop); a server that leaves it unanswered for ``hang_seconds`` is hung
  (``SIGSTOP``, a deadlock in native code) and is killed.
- **Crashes** (a signal, an exit, a kill by the out-of-memory killer) are seen
  within a tenth of a second. The server is restarted after a backoff that
  doubles from ``backoff_seconds`` to ``max_backoff_seconds`` while it keeps
  failing, and starts again from the bottom once it has run ``stable_seconds``.
  A model that cannot be loaded or does not fit in memory is retried only
  after ``max_backoff_seconds``: the same start would fail the same way.
- **One address for its whole life**: the listening socket is created here
  once and inherited by every server process, so clients keep one URL across
  restarts and connections made while it restarts wait in the backlog.
- **Nothing outlives the app**: the child exits when a pipe from this process
  closes (this process ended, ``kill -9`` included), and it runs in a session
  of its own, so a Ctrl-C meant for the app is not its to handle.
- Requests need a bearer token made here for each supervisor
  (:attr:`ModelServer.token`): other local users cannot use the model.

Who asked for a report learns why it failed (:meth:`ModelServer.death_since`):
the report falls back to the next provider with that reason recorded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from soc.modelserver import EXIT_LOAD_FAILED, LOAD_FAILED_PREFIX, TOKEN_ENV
from soc.modelserver.gguf import GGUFError, available_memory, gib, model_memory

_log = logging.getLogger(__name__)

#: How often the supervisor looks at its child between health checks (seconds).
POLL_SECONDS: Final = 0.1
#: How long a health check may take before it counts as unanswered (seconds).
HEALTH_TIMEOUT_SECONDS: Final = 5.0
#: A backoff shorter than this is waited through by a caller (not a reason to fall back).
SHORT_BACKOFF_SECONDS: Final = 10.0
#: Lines of the server's output kept to explain a death.
OUTPUT_LINES: Final = 40


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What to serve and how to keep it alive (built from ``[analyze] local_*``)."""

    model_path: Path
    model_id: str = ""
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: int = 0
    chat_format: str = ""
    request_timeout: float = 60.0
    max_tokens: int = 4096
    start_timeout: float = 120.0
    health_interval: float = 2.0
    hang_seconds: float = 30.0
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    stable_seconds: float = 60.0
    check_memory: bool = True

    def command(self, python: str, socket_fd: int, parent_fd: int) -> list[str]:
        """The server's command line, listening on ``socket_fd``."""
        return [
            python,
            "-m",
            "soc.modelserver",
            "--model",
            str(self.model_path),
            "--model-id",
            self.model_id or self.model_path.name,
            "--fd",
            str(socket_fd),
            "--parent-fd",
            str(parent_fd),
            "--n-ctx",
            str(self.n_ctx),
            "--n-gpu-layers",
            str(self.n_gpu_layers),
            "--n-threads",
            str(self.n_threads),
            "--chat-format",
            self.chat_format,
            "--request-timeout",
            f"{self.request_timeout:g}",
            "--max-tokens",
            str(self.max_tokens),
        ]


@dataclass(frozen=True, slots=True)
class Death:
    """A server process that ended without being asked to."""

    at: float  # monotonic
    pid: int
    why: str
    #: The same start would fail the same way (no model loaded).
    permanent: bool = False


class ModelServer:
    """One supervised model-server process (see the module's docstring). Thread-safe."""

    def __init__(self, spec: ServerSpec, *, python: str | None = None) -> None:
        self.spec = spec
        self.python = python or sys.executable
        self.token = secrets.token_urlsafe(32)
        self.deaths: deque[Death] = deque(maxlen=50)
        #: Processes started so far, and the last one's load time (from its health check).
        self.starts = 0
        self.load_seconds: float | None = None
        self._cond = threading.Condition()
        self._state = "stopped"  # starting, ready, backoff, closed
        self._reason: str | None = None
        self._permanent = False  # the last failure would repeat: do not wait for a retry
        self._retry_at = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._death: Death | None = None  # the current process's, once reaped
        self._kill_reason: str | None = None
        self._reader: threading.Thread | None = None
        self._output: deque[str] = deque(maxlen=OUTPUT_LINES)
        self._sock: socket.socket | None = None
        self._port = 0
        self._parent_end: int | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what callers see ----------------------------------------------------------------
    @property
    def port(self) -> int:
        self.start()
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint (``http://127.0.0.1:PORT/v1``), stable across restarts."""
        return self._url(self.port)

    @property
    def pid(self) -> int | None:
        """The running server's process id (None between processes)."""
        with self._cond:
            proc = self._proc
            return proc.pid if proc is not None and self._death is None else None

    @property
    def state(self) -> str:
        with self._cond:
            return self._state

    def start(self) -> None:
        """Start supervising (the first server process starts at once); idempotent."""
        with self._cond:
            if self._thread is not None or self._closing.is_set():
                return
            self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
            self._port = int(self._sock.getsockname()[1])
            self._thread = threading.Thread(
                target=self._supervise, name="soc-model-server", daemon=True
            )
            self._thread.start()

    def wait_ready(self, timeout: float) -> str | None:
        """Wait until the server answers (None), or say why it cannot now.

        A restart due within a few seconds is waited for; a longer backoff (a
        crash loop, a model that does not fit) is a reason to fall back now.
        """
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                if self._state == "ready":
                    return None
                if self._state == "closed":
                    return "the model server was shut down"
                if self._down_beyond(now, min(SHORT_BACKOFF_SECONDS, deadline - now)):
                    return self._why_not(now)
                if now >= deadline:
                    return (
                        f"the model server was not ready within {timeout:g} s "
                        f"({self._state}{'' if not self._reason else ': ' + self._reason})"
                    )
                self._cond.wait(min(deadline - now, 1.0))

    def unavailable(self) -> str | None:
        """Why the server cannot take a request now (a long backoff, closed), or None."""
        with self._cond:
            now = time.monotonic()
            if self._state == "closed":
                return "the model server was shut down"
            if self._down_beyond(now, SHORT_BACKOFF_SECONDS):
                return self._why_not(now)
            return None

    def death_since(self, since: float, *, wait: float = 2.0) -> Death | None:
        """The server's death at or after ``since`` (monotonic), if it died: asked after a
        request lost its connection. Waits up to ``wait`` seconds for the dying process
        to be reaped (its sockets close a moment before its exit status is known)."""
        deadline = time.monotonic() + wait
        while True:
            with self._cond:
                proc = self._proc
                if proc is not None:
                    self._reap(proc)
                for death in reversed(self.deaths):
                    if death.at >= since:
                        return death
            if time.monotonic() >= deadline or self._closing.is_set():
                return None
            time.sleep(0.05)

    def status(self) -> dict[str, Any]:
        """What the Settings page and the logs show: state, process, restarts, last failure."""
        with self._cond:
            last = self.deaths[-1] if self.deaths else None
            proc = self._proc
            return {
                "state": self._state,
                "model": self.spec.model_id or self.spec.model_path.name,
                "pid": proc.pid if proc is not None and self._death is None else None,
                "url": self._url(self._port) if self._port else None,
                "starts": self.starts,
                "deaths": len(self.deaths),
                "last_failure": None if last is None else last.why,
                "reason": self._reason,
                "load_seconds": self.load_seconds,
            }

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server process and the supervision (SIGTERM, then SIGKILL)."""
        self._closing.set()
        with self._cond:
            proc, thread = self._proc, self._thread
            self._cond.notify_all()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout / 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout / 2)
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._proc = None
            self._state = "closed"
            self._cond.notify_all()
            if self._parent_end is not None:
                os.close(self._parent_end)
                self._parent_end = None
            if self._sock is not None:
                self._sock.close()

    # --- supervision ---------------------------------------------------------------------
    def _supervise(self) -> None:
        delay = self.spec.backoff_seconds
        while not self._closing.is_set():
            outcome = self._run_once()
            if outcome is None or self._closing.is_set():
                break
            death, stable = outcome
            if stable:
                delay = self.spec.backoff_seconds  # it ran well: this is news, not a crash loop
            if death.permanent:
                wait = self.spec.max_backoff_seconds
            else:
                wait, delay = delay, min(delay * 2, self.spec.max_backoff_seconds)
            with self._cond:
                self._state = "backoff"
                self._reason = death.why
                self._permanent = death.permanent
                self._retry_at = time.monotonic() + wait
                self._cond.notify_all()
            _log.warning("model server: %s; starting it again in %g s", death.why, wait)
            self._closing.wait(wait)
        with self._cond:
            self._state = "closed"
            self._cond.notify_all()

    def _run_once(self) -> tuple[Death, bool] | None:
        """Start one server process and watch it: (its death, whether it had run
        ``stable_seconds``), or None once we close."""
        problem = self._memory_problem()
        if problem is not None:
            refused = Death(time.monotonic(), 0, problem, permanent=True)
            with self._cond:
                self.deaths.append(refused)
            return refused, False
        try:
            proc = self._spawn()
        except OSError as exc:  # no interpreter, no file descriptors left…
            refused = Death(time.monotonic(), 0, f"cannot start: {exc}", permanent=True)
            with self._cond:
                self.deaths.append(refused)
            return refused, False
        started = time.monotonic()
        ready_at: float | None = None
        last_ok = started
        next_check = started
        spec = self.spec
        while not self._closing.is_set():
            with self._cond:
                death = self._reap(proc)
            if death is not None:
                stable = ready_at is not None and death.at - ready_at >= spec.stable_seconds
                return death, stable
            now = time.monotonic()
            if now >= next_check:
                health = self._health()
                now = time.monotonic()
                if health is not None and health.get("status") == "ok":
                    last_ok = now
                    if ready_at is None:
                        ready_at = now
                        self._ready(proc, health)
                elif ready_at is None and now - started > spec.start_timeout:
                    self._kill(
                        proc, f"did not load the model within {spec.start_timeout:g} s, killed"
                    )
                elif ready_at is not None and now - last_ok > spec.hang_seconds:
                    silent = f"{spec.hang_seconds:g} s"
                    self._kill(proc, f"hung (no answer to its health checks for {silent}), killed")
                next_check = now + (spec.health_interval if ready_at is not None else 0.2)
            self._closing.wait(POLL_SECONDS)
        return None

    def _ready(self, proc: subprocess.Popen[bytes], health: dict[str, Any]) -> None:
        load = health.get("load_seconds")
        with self._cond:
            self.load_seconds = float(load) if isinstance(load, int | float) else None
            self._state = "ready"
            self._reason = None
            self._cond.notify_all()
        _log.info(
            "model server ready: %s on %s (pid %d, loaded in %s s)",
            health.get("model"),
            self.base_url,
            proc.pid,
            "?" if self.load_seconds is None else f"{self.load_seconds:.1f}",
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        read_end, write_end = os.pipe()
        socket_fd = self._listening().fileno()
        env = {**os.environ, TOKEN_ENV: self.token, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(
                self.spec.command(self.python, socket_fd, read_end),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(socket_fd, read_end),
                env=env,
                start_new_session=True,
            )
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        reader = threading.Thread(
            target=self._read_output, args=(proc,), name="soc-model-server-output", daemon=True
        )
        reader.start()
        with self._cond:
            if self._parent_end is not None:
                os.close(self._parent_end)  # the previous process's: it is gone
            self._parent_end = write_end
            self._proc, self._death, self._kill_reason = proc, None, None
            self._reader = reader
            self._output.clear()
            self._state = "starting"
            self._reason = None
            self._permanent = False
            self.starts += 1
            self._cond.notify_all()
        _log.info("model server: started pid %d for %s", proc.pid, self.spec.model_path)
        return proc

    def _read_output(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdout is None:
            return
        with proc.stdout:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self._output.append(line)
                    _log.info("[model server %d] %s", proc.pid, line)

    def _reap(self, proc: subprocess.Popen[bytes]) -> Death | None:
        """``proc``'s death if it has ended (recorded once); call with the lock held."""
        if proc is not self._proc:
            return None
        if self._death is not None:
            return self._death
        code = proc.poll()
        if code is None:
            return None
        if self._reader is not None:
            self._reader.join(1.0)  # its last words explain the death
        why = self._kill_reason or self._describe_exit(code)
        death = Death(time.monotonic(), proc.pid, why, permanent=code == EXIT_LOAD_FAILED)
        self._death = death
        if not self._closing.is_set():
            self.deaths.append(death)
            # down from now on; the supervising thread sets when it starts again
            self._state, self._reason, self._retry_at = "backoff", why, death.at
            self._permanent = death.permanent
            self._cond.notify_all()
        return death

    def _describe_exit(self, code: int) -> str:
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if -code == signal.SIGKILL:
                return "killed by SIGKILL (out of memory, or an operator)"
            return f"crashed with {name}"
        if code == EXIT_LOAD_FAILED:
            for line in reversed(self._output):
                if line.startswith(LOAD_FAILED_PREFIX):
                    return "cannot load the model: " + line.removeprefix(LOAD_FAILED_PREFIX)
            return "cannot load the model"
        last = self._output[-1] if self._output else ""
        return f"exited with status {code}" + (f" ({last})" if last else "")

    def _kill(self, proc: subprocess.Popen[bytes], why: str) -> None:
        with self._cond:
            self._kill_reason = why
        _log.warning("model server: %s; killing pid %d", why, proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    def _health(self) -> dict[str, Any] | None:
        """The server's ``/health`` answer (200 or 503), or None when it gives none."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self._port, timeout=HEALTH_TIMEOUT_SECONDS
        )
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = json.loads(response.read())
            return body if isinstance(body, dict) else None
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            connection.close()

    @staticmethod
    def _url(port: int) -> str:
        return f"http://127.0.0.1:{port}/v1"

    def _listening(self) -> socket.socket:
        if self._sock is None:
            raise RuntimeError("the model server was never started")
        return self._sock

    def _memory_problem(self) -> str | None:
        """Why the model cannot start here (no readable header; not enough memory), or None."""
        spec = self.spec
        try:
            need = model_memory(spec.model_path, n_ctx=spec.n_ctx, n_gpu_layers=spec.n_gpu_layers)
        except GGUFError as exc:
            return f"cannot load the model: {spec.model_path}: {exc.message}"
        if not spec.check_memory:
            return None
        available = available_memory()
        if available is None or need.total_bytes <= available:
            return None
        return (
            f"{spec.model_path.name} needs about {gib(need.total_bytes)} of memory "
            f"({gib(need.weights_bytes)} of weights, {gib(need.kv_cache_bytes)} of KV cache "
            f"for local_n_ctx = {spec.n_ctx}, {gib(need.overhead_bytes)} for the runtime) and "
            f"this machine has {gib(available)} available: use a smaller model or "
            "quantisation, a smaller local_n_ctx, or offload layers to a GPU "
            "(local_n_gpu_layers)"
        )

    def _down_beyond(self, now: float, horizon: float) -> bool:
        """Down, and not starting again within ``horizon`` seconds (or not at all: the
        last failure would repeat). Call with the lock held."""
        return self._state == "backoff" and (self._permanent or self._retry_at - now > horizon)

    def _why_not(self, now: float) -> str:
        wait = max(0.0, self._retry_at - now)
        return f"the model server is down: {self._reason} (next start in {wait:.0f} s)"


__all__ = ["Death", "ModelServer", "ServerSpec"]
