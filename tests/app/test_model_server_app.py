"""The command center with the local model: killing the model server never takes the app down.

Streamlit's ``AppTest`` runs the real app (its runtime, engine and analysis worker in
this process) with the bundled Gemma served by the supervised model server. The
server is killed with SIGKILL while the worker has it writing a report: the pages
keep rendering, the incident gets its fallback report with the reason, the server is
started again, and the next report (a re-analysis with the local model) is the model's.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from soc.analyze.local import LocalProvider
from soc.app.runtime import Runtime
from tests.app.test_pages import runtime_of, start_app, wait_for
from tests.modelserver.test_supervisor import busy

DIED = "the model server died during the request: killed by SIGKILL"


def _local(runtime: Runtime) -> LocalProvider:
    provider = runtime.analysis.analyst.providers["local"]
    assert isinstance(provider, LocalProvider)
    return provider


def _fallback_reasons(runtime: Runtime) -> list[str]:
    reasons = []
    for incident in runtime.store.list_incidents(limit=100):
        for record in runtime.store.analyses(int(incident.id or 0)):
            reasons.append(record.fallback_reason or "")
    return reasons


@pytest.mark.timeout(300)
def test_killing_the_model_server_mid_report_keeps_the_app_serving(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, gemma_path: Path
) -> None:
    monkeypatch.setenv("SOC_ANALYZE__CHAIN", '["local", "offline"]')
    monkeypatch.setenv("SOC_ANALYZE__LOCAL_MODEL_PATH", str(gemma_path))
    monkeypatch.setenv("SOC_ANALYZE__MAX_OUTPUT_TOKENS", "160")
    at = start_app(wait=False)
    runtime = runtime_of(at)
    provider = _local(runtime)
    server = provider.server
    assert server is not None  # started with the runtime, loading in the background
    assert server.wait_ready(60) is None
    first_pid = server.pid
    assert first_pid is not None and first_pid != os.getpid()

    # The worker upgrades the severe incidents' offline reports with the model's.
    wait_for(lambda: busy(server), "the model server to be writing a report", timeout=120)
    os.kill(first_pid, signal.SIGKILL)
    wait_for(
        lambda: any(DIED in r for r in _fallback_reasons(runtime)),
        "the report in flight to fall back with the reason",
    )

    # The app never noticed more than a fallback: every page renders, the engine runs.
    at.run()
    assert not at.exception, at.exception
    assert runtime.status().error is None
    rows = _settings(at)
    assert rows["crashes and kills"] == "1"
    assert rows["last failure"].startswith("killed by SIGKILL")

    # Started again, same address; the next report comes from the model.
    assert server.wait_ready(60) is None
    assert server.pid not in (None, first_pid)
    at.switch_page("pages/incidents.py").run(timeout=120)
    incident_id = at.selectbox(key="inc_selected").value
    assert isinstance(incident_id, int)
    at.selectbox(key=f"inc_provider_{incident_id}").set_value("local")
    at.button(key=f"inc_reanalyse_{incident_id}").click().run(timeout=180)
    assert not at.exception, at.exception
    latest = runtime.store.analyses(incident_id)[-1]
    assert latest.structured["model_calls"] >= 1 and latest.tokens_out > 0  # the model ran
    assert "died" not in (latest.fallback_reason or "")
    assert any("New report by" in str(s.value) for s in at.success)
    assert _settings(at)["processes started"] == "2"


def _settings(at: AppTest) -> dict[str, str]:
    """The Settings page's local model server table, as setting → value."""
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    table = next(d for d in at.dataframe if "processes started" in set(d.value["setting"]))
    return dict(zip(table.value["setting"], table.value["value"], strict=True))
