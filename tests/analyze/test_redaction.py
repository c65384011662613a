"""A provider that echoes its API key (a prefix, a lower-cased copy) gets none of it stored.

Through the real pieces: the provider's HTTP client against a local fake of the
service, the analyst's chain and its fallback, the analysis worker, and a SQLite
store; what is checked is the ``analyses.fallback_reason`` the store gives back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from soc.analyze import AnalyzeConfig
from soc.analyze.analyst import Analyst, build_providers
from soc.analyze.worker import AnalysisWorker
from soc.clock import SystemClock
from soc.config import Secret
from soc.redact import process_secrets
from soc.store import SqlStore, open_store
from tests.analyze import fake_gemini, fake_openai
from tests.store.builders import make_incident


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    """Only the provider's own knowledge of its key may mask it here."""
    process_secrets().clear()
    yield
    process_secrets().clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path}/soc.db")
    try:
        yield opened
    finally:
        opened.close()


def _echo(key: str) -> str:
    """An error message quoting the key the way providers do: cut short, and re-cased."""
    return (
        f"API key {key[:12]}... is not valid for this project "
        f"(did you mean {key.lower()}?). Please pass a valid API key."
    )


def _gemini() -> tuple[AbstractContextManager[Any], str, str]:
    fake = fake_gemini.FakeGemini()
    fake.plan(fake_gemini.error(400, _echo(fake_gemini.API_KEY)))
    return fake, "gemini", fake_gemini.API_KEY


def _openai() -> tuple[AbstractContextManager[Any], str, str]:
    fake = fake_openai.FakeOpenAI()
    fake.plan(fake_openai.error(400, _echo(fake_openai.API_KEY)))
    return fake, "openai_compatible", fake_openai.API_KEY


@pytest.mark.parametrize("service", [_gemini, _openai], ids=["gemini", "openai_compatible"])
def test_a_key_echoed_in_a_provider_error_is_not_stored(store: SqlStore, service: Any) -> None:
    fake, name, key = service()
    with fake as server:
        config = AnalyzeConfig(
            chain=[name],
            gemini_base_url=server.url,
            openai_base_url=f"{server.url}/v1",
            openai_model="qwen2.5:7b-instruct",
            backoff_seconds=0.05,
            timeout_seconds=5.0,
            batch_below_severity="low",
        )
        secret_name = "gemini_api_key" if name == "gemini" else "openai_api_key"
        analyst = Analyst(
            config, build_providers(config, {secret_name: Secret(key)}), SystemClock()
        )
        worker = AnalysisWorker(store, analyst, SystemClock())
        with store.transaction(now=1.0) as tx:
            incident_id = tx.upsert_incident(make_incident(), "auth:203.0.113.9:1")
        worker.notify([incident_id])
        assert worker.run_pending() == 1
        analyst.close()
    (record,) = store.analyses(incident_id)
    assert record.provider == "offline"  # the provider refused: the offline analyst wrote it
    reason = record.fallback_reason or ""
    assert reason.startswith(f"{name}: refused (")
    assert "API key ***... is not valid for this project (did you mean ***?)" in reason
    for leaked in (key, key[:12], key.lower(), key[:8].lower(), key[-8:].lower()):
        assert leaked not in reason
