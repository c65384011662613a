"""What the tests' fake HTTP services share (Gemini, Elasticsearch, webhook receivers).

A threaded server on 127.0.0.1 that stays quiet when a client hangs up and keeps
track of its open connections, so that :meth:`FakeService.stop` can cut
keep-alive clients the way an outage does, and :meth:`FakeService.start` can
listen again on the same port.
"""

from __future__ import annotations

import abc
import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that does not print tracebacks when a client hangs up.

    Tests cut connections on purpose (timeouts, outages); the default handler would
    print a broken-pipe traceback to stderr for each.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class TrackingHandler(BaseHTTPRequestHandler):
    """A keep-alive handler that registers its connection with its fake while it is open."""

    protocol_version = "HTTP/1.1"
    server_fake: FakeService

    def setup(self) -> None:
        super().setup()
        with self.server_fake.lock:
            self.server_fake.connections.add(self.connection)

    def finish(self) -> None:
        with self.server_fake.lock:
            self.server_fake.connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client may be gone already
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: pytest shows the test's own output

    def request_parts(self) -> tuple[str, dict[str, list[str]], dict[str, str], bytes]:
        """The request's path, query, headers (lower-case names) and body, read whole."""
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        return split.path, parse_qs(split.query), headers, body


class FakeService(abc.ABC):
    """A fake HTTP service's life cycle; subclasses give their :meth:`handler` class."""

    @abc.abstractmethod
    def handler(self) -> type[TrackingHandler]:
        """The request handler class (its ``server_fake`` is set to this fake)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        #: Set while stopping: handlers waiting to answer (a planned delay) wake up.
        self.stopping = threading.Event()
        self._port = 0
        self._server: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Listen (again, on the same port after a :meth:`stop`)."""
        fake = self

        class Handler(self.handler()):  # type: ignore[misc]
            server_fake = fake

        self.stopping.clear()
        deadline = time.monotonic() + 5
        while True:
            try:
                server = QuietHTTPServer(("127.0.0.1", self._port), Handler)
                break
            except OSError:  # the port of a stopped server, not free again yet
                if self._port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, wake delayed answers and cut open connections: clients get refused."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            connections = list(self.connections)
            self.connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._port, "not started"
        return f"http://127.0.0.1:{self._port}"
