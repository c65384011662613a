"""A real API server (uvicorn on a free loopback port) over a SQLite store with incidents."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from soc.api.app import create_app
from soc.api.base import ApiConfig
from soc.clock import SystemClock
from soc.config import Settings
from soc.engine import build_responder
from soc.events import CREDENTIAL_COMPROMISE, PASSWORD_SPRAY, WEB_SCAN
from soc.respond.base import RespondConfig
from soc.store import SqlStore, open_store
from soc.store.api import ApiLog
from tests.store.builders import T0, make_incident

REPO = Path(__file__).resolve().parents[2]


@dataclass(slots=True)
class Answer:
    """An HTTP response as the tests read it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Served:
    """An app served by uvicorn on a thread, on 127.0.0.1 and a port the OS picked."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-test-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request with a real HTTP client (urllib); 4xx and 5xx are answers, not errors."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        url = self.url + path  # http to the test server: S310 does not apply
        request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), exc.read())


@dataclass
class Api:
    """The served API and what the tests look at behind it."""

    served: Served
    store: SqlStore
    log: ApiLog
    settings: Settings
    tokens: dict[str, str]
    analysed: list[int] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def call(self, method: str, path: str, *, who: str | None = "all", **kw: Any) -> Answer:
        """A request with the token ``who`` names (read, respond, intake, all), or none."""
        token = self.tokens.get(who, who) if who else None
        return self.served.call(method, path, token=token, **kw)


def logged_requests(api: Api, at_least: int) -> list[Any]:
    """The request log, once it holds ``at_least`` rows (a row is written after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        rows = api.log.requests()
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.01)


def make_settings(tmp_path: Path, **api: Any) -> Settings:
    settings = Settings()
    settings.respond = RespondConfig(playbooks_dir=str(REPO / "playbooks"))
    values: dict[str, Any] = {
        "intake_path": str(tmp_path / "intake" / "ecs.jsonl"),
        "max_body_bytes": 64 * 1024,
        "max_events": 50,
    }
    values.update(api)
    settings.api = ApiConfig(**values)
    return settings


def seed(store: SqlStore) -> dict[str, int]:
    """Four incidents of three kinds, by name."""
    incidents = {
        "brute": make_incident("203.0.113.9", evidence=["evidence of brute"]),
        "spray": make_incident(
            "198.51.100.7", kind=PASSWORD_SPRAY, severity="high", users=["alice", "bob"]
        ),
        "scan": make_incident("192.0.2.55", kind=WEB_SCAN, severity="low", last_seen=T0 + 500),
        "owned": make_incident(
            "203.0.113.77", kind=CREDENTIAL_COMPROMISE, severity="critical", users=["carol"]
        ),
    }
    ids: dict[str, int] = {}
    with store.transaction(now=T0) as tx:
        for name, incident in incidents.items():
            ids[name] = tx.upsert_incident(incident, f"test:{name}")
    return ids


def serve(
    tmp_path: Path,
    *,
    analyse: Callable[[int], None] | None = None,
    settings: Settings | None = None,
    store: SqlStore | None = None,
    similar: Callable[[int, int], list[dict[str, Any]]] | None = None,
) -> tuple[Served, SqlStore, Settings]:
    settings = settings or make_settings(tmp_path)
    store = store or open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    clock = SystemClock()
    responder = build_responder(settings, store, clock, host_addresses=[])
    app = create_app(settings, store, responder, clock=clock, analyse=analyse, similar=similar)
    return Served(app), store, settings


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    analysed: list[int] = []
    served, store, settings = serve(tmp_path, analyse=analysed.append)
    log = ApiLog(store)
    now = time.time()
    tokens = {
        "read": log.create_token("reader", ["read"], now=now),
        "respond": log.create_token("responder", ["read", "respond"], now=now),
        "intake": log.create_token("elastic", ["intake"], now=now),
        "all": log.create_token("admin", ["read", "respond", "intake"], now=now),
    }
    try:
        yield Api(served, store, log, settings, tokens, analysed, seed(store))
    finally:
        served.stop()
        store.close()
