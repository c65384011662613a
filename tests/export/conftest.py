"""Export fixtures: a fake Elasticsearch, a webhook receiver, a store, incidents."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from soc.events import BRUTE_FORCE, Incident
from tests.export.fake_es import FakeElasticsearch
from tests.fake_http import QuietHTTPServer

T0 = 1_763_719_200.0  # 2025-11-21 10:00:00 UTC
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="


def make_incident(key: str = "203.0.113.9", **fields: Any) -> Incident:
    """An incident as the detector hands it over (id set as the store would)."""
    values: dict[str, Any] = {
        "key": key,
        "kind": BRUTE_FORCE,
        "first_seen": T0,
        "last_seen": T0 + 10,
        "source_ips": [key],
        "users": ["root"],
        "distinct_users": 1,
        "failures": 10,
        "events": 10,
        "severity": "medium",
        "technique": "T1110.001",
        "technique_name": "Brute Force: Password Guessing",
        "id": 1,
        "opened_at": T0 + 1,
        "updated_at": T0 + 11,
    }
    values.update(fields)
    return Incident(**values)


@pytest.fixture
def fake_es() -> Iterator[FakeElasticsearch]:
    """A running fake Elasticsearch that requires ``API_KEY``."""
    with FakeElasticsearch(api_key=API_KEY) as fake:
        yield fake


@dataclass
class Received:
    """One request the webhook receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server that records POSTs and answers with scripted statuses.

    ``script`` is consumed one entry per request: a status code, or
    ``("redirect", url)``, or ``("sleep", seconds)``; when empty, 200.
    """

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/soc"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.received]


def _start_receiver() -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            receiver = holder["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append(
                    Received(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                step = receiver.script.pop(0) if receiver.script else 200
            if isinstance(step, tuple) and step[0] == "sleep":
                time.sleep(step[1])
                step = 200
            if isinstance(step, tuple) and step[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", step[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(step, tuple) and step[0] == "echo":
                echoed = self.headers.get("X-Token") or self.headers.get("Authorization")
                data = json.dumps({"you sent": echoed, "headers": dict(self.headers)}).encode()
                step = step[1]
            else:
                data = b'{"ok": true}' if step < 300 else b'{"error": "nope"}'
            self.send_response(step)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    holder["r"] = receiver
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    return receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1."""
    r = _start_receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    """A second receiver: where a hostile redirect points."""
    r = _start_receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()
