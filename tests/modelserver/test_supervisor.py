"""The supervised model server as a real process: its API, crashes, hangs, restarts, limits.

Every test runs ``python -m soc.modelserver`` on the bundled Gemma through
:class:`ModelServer` and talks to it over HTTP on loopback, as the analyst
does. Crashes are real signals sent to the real process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.modelserver.supervisor import ModelServer, ServerSpec
from tests.modelserver.ggufs import sparse_copy

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"severity": {"type": "string", "enum": ["low", "high"]}},
    "required": ["severity"],
}
CHAT: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "Reply with JSON."},
        {"role": "user", "content": "500 failed SSH logins from 203.0.113.5 in 60 s."},
    ],
    "max_tokens": 24,
    "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
}
#: A request that keeps the model busy for many seconds (free text, a long answer).
LONG_CHAT: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Write a long story about a firewall."}],
    "max_tokens": 2000,
}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def request(
    server: ModelServer,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout: float = 120.0,
) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of one request to ``server``'s API, with its token unless given."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 (an http:// URL on loopback)
        f"{server.base_url}{path}", data=data, method=method
    )
    req.add_header("Content-Type", "application/json")
    auth = server.token if token is None else token
    if auth:
        req.add_header("Authorization", f"Bearer {auth}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def health(server: ModelServer) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except (OSError, ValueError):
        return {}


def busy(server: ModelServer) -> bool:
    return health(server).get("busy_seconds") is not None


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` on a thread; its result (or exception) lands in the returned list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def spec(model: Path, **overrides: Any) -> ServerSpec:
    values: dict[str, Any] = {
        "model_path": model,
        "health_interval": 0.25,
        "hang_seconds": 3.0,
        "backoff_seconds": 0.5,
        "max_backoff_seconds": 4.0,
        "start_timeout": 60.0,
    }
    values.update(overrides)
    return ServerSpec(**values)


@pytest.fixture
def server(gemma_path: Path) -> Iterator[ModelServer]:
    supervised = ModelServer(spec(gemma_path))
    try:
        assert supervised.wait_ready(60) is None
        yield supervised
    finally:
        supervised.close()


# --- the API ------------------------------------------------------------------------------
def test_chat_completion_in_openai_shape(server: ModelServer) -> None:
    status, body = request(server, "POST", "/chat/completions", CHAT)
    assert status == 200, body
    assert body["object"] == "chat.completion"
    assert body["model"] == "gemma-3-270m-q4_k_m.gguf"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert json.loads(choice["message"]["content"])["severity"] in ("low", "high")
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    status, models = request(server, "GET", "/models")
    assert status == 200
    assert [m["id"] for m in models["data"]] == ["gemma-3-270m-q4_k_m.gguf"]

    state = health(server)
    assert state["status"] == "ok"
    assert state["pid"] == server.pid != os.getpid()  # out of process
    assert state["chat_format"] == "gemma"
    assert state["system_turn"] is False


def test_requests_without_the_token_are_refused(server: ModelServer) -> None:
    for token in ("", "not-the-token"):
        status, body = request(server, "POST", "/chat/completions", CHAT, token=token)
        assert status == 401
        assert body["error"]["type"] == "invalid_api_key"
        assert server.token not in json.dumps(body)
    status, _ = request(server, "GET", "/models", token="nope")  # noqa: S106
    assert status == 401


@pytest.mark.parametrize(
    ("change", "status", "kind"),
    [
        ({"model": "gpt-4o"}, 404, "model_not_found"),
        ({"stream": True}, 400, "invalid_request_error"),
        ({"n": 2}, 400, "invalid_request_error"),
        ({"messages": []}, 400, "invalid_request_error"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, "invalid_request_error"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "r", "schema": {"$ref": "#/definitions/none"}},
                }
            },
            400,
            "invalid_request_error",
        ),
    ],
)
def test_bad_requests_get_openai_errors(
    server: ModelServer, change: dict[str, Any], status: int, kind: str
) -> None:
    got, body = request(server, "POST", "/chat/completions", {**CHAT, **change})
    assert (got, body["error"]["type"]) == (status, kind), body
    assert body["error"]["message"]


def test_deadline_answers_504_with_the_tokens_spent(gemma_path: Path) -> None:
    supervised = ModelServer(spec(gemma_path, request_timeout=3.0))
    try:
        assert supervised.wait_ready(60) is None
        status, body = request(supervised, "POST", "/chat/completions", LONG_CHAT)
        assert status == 504
        assert body["error"]["type"] == "timeout"
        assert "3 s" in body["error"]["message"]
        assert body["usage"]["prompt_tokens"] > 0  # the budget counts what was evaluated
        status, _ = request(supervised, "POST", "/chat/completions", CHAT)
        assert status == 200  # and the model serves the next request
    finally:
        supervised.close()


# --- crashes, hangs and restarts ----------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_crash_mid_request_is_reported_and_the_server_restarts(
    server: ModelServer, sig: signal.Signals
) -> None:
    first_pid, port = server.pid, server.port
    assert first_pid is not None
    sent = time.monotonic()
    thread, outcome = in_background(lambda: request(server, "POST", "/chat/completions", LONG_CHAT))
    wait_for(lambda: busy(server), "the server to be busy with the request")
    os.kill(first_pid, sig)
    thread.join(30)
    assert outcome and isinstance(outcome[0], OSError | urllib.error.URLError), outcome
    death = server.death_since(sent)
    assert death is not None
    expected = "killed by SIGKILL" if sig == signal.SIGKILL else "crashed with SIGSEGV"
    assert death.why.startswith(expected), death.why
    assert death.pid == first_pid

    assert server.wait_ready(60) is None  # restarted, same address
    assert server.pid not in (None, first_pid)
    assert server.port == port
    assert server.starts == 2
    status, _ = request(server, "POST", "/chat/completions", CHAT)
    assert status == 200
    assert server.status()["last_failure"] == death.why


def test_repeated_crashes_back_off_longer_each_time(server: ModelServer) -> None:
    waits = []
    for _ in range(3):
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGSEGV)
        died = time.monotonic()
        wait_for(lambda p=pid: server.pid not in (None, p), "a new server process")  # type: ignore[misc]
        waits.append(time.monotonic() - died)
        assert server.wait_ready(60) is None
    # backoff 0.5 s, then 1 s, then 2 s before each new process starts
    assert waits[0] >= 0.5
    assert waits[1] >= 1.0
    assert waits[2] >= 2.0
    assert server.starts == 4
    assert len(server.deaths) == 3


def test_a_hung_server_is_killed_and_restarted(server: ModelServer) -> None:
    pid = server.pid
    assert pid is not None
    sent = time.monotonic()
    thread, outcome = in_background(lambda: request(server, "POST", "/chat/completions", LONG_CHAT))
    wait_for(lambda: busy(server), "the server to be busy")
    os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        thread.join(30)
        assert outcome and isinstance(outcome[0], OSError | urllib.error.URLError), outcome
        death = server.death_since(sent)
        assert death is not None
        assert death.why == "hung (no answer to its health checks for 3 s), killed"
        # noticed after hang_seconds (3 s), not after the request's own 60 s
        assert death.at - sent < 15
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not alive(pid)
    assert server.wait_ready(60) is None
    assert server.pid not in (None, pid)


def test_an_unloadable_model_is_not_restarted_in_a_loop(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))  # no tensors, no keys
    supervised = ModelServer(spec(broken, max_backoff_seconds=60.0))
    try:
        why = supervised.wait_ready(60)
        assert why is not None
        assert why.startswith("the model server is down: cannot load the model: ")
        assert str(broken) in why
        assert "next start in" in why
        assert "cannot load the model" in (supervised.unavailable() or "")
        time.sleep(2)
        assert supervised.starts == 1  # waits max_backoff_seconds, not a crash loop
    finally:
        supervised.close()


def test_a_model_larger_than_memory_never_starts(gemma_path: Path, tmp_path: Path) -> None:
    huge = sparse_copy(gemma_path, tmp_path / "mistral-1t.gguf", 2**40)  # a 1 TiB "model"
    supervised = ModelServer(spec(huge))
    try:
        why = supervised.wait_ready(30)
        assert why is not None
        assert re.search(r"mistral-1t\.gguf needs about 1024\.\d GiB of memory", why), why
        assert "GiB available" in why
        assert "local_n_ctx" in why
        assert supervised.starts == 0  # no process was started at all
        assert supervised.pid is None
    finally:
        supervised.close()


# --- nothing outlives the app -------------------------------------------------------------
def test_close_stops_the_server(gemma_path: Path) -> None:
    supervised = ModelServer(spec(gemma_path))
    assert supervised.wait_ready(60) is None
    pid = supervised.pid
    assert pid is not None
    assert os.getsid(pid) != os.getsid(0)  # its own session: a Ctrl-C meant for us is not its
    supervised.close()
    assert not alive(pid)
    assert supervised.state == "closed"
    assert supervised.wait_ready(1) == "the model server was shut down"


def test_the_server_dies_with_its_parent(gemma_path: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from soc.modelserver.supervisor import ModelServer, ServerSpec
        server = ModelServer(ServerSpec(model_path=Path({str(gemma_path)!r})))
        assert server.wait_ready(60) is None
        Path({str(pid_file)!r}).write_text(str(server.pid))
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(pid_file.exists, "the parent to start its server")
        child = int(pid_file.read_text())
        assert alive(child)
        parent.kill()  # kill -9: no chance to clean up
        parent.wait(10)
        wait_for(lambda: not alive(child), "the orphaned server to exit", timeout=10)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_server_that_cannot_be_spawned_says_why(gemma_path: Path, tmp_path: Path) -> None:
    supervised = ModelServer(spec(gemma_path), python=str(tmp_path / "no-such-python"))
    try:
        why = supervised.wait_ready(10)
        assert why is not None
        assert why.startswith("the model server is down: cannot start: ")
        assert "no-such-python" in why
    finally:
        supervised.close()
