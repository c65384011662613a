"""The command center's background runtime: one engine, controls from any thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.analyze import AnalyzeConfig
from soc.app.runtime import Runtime
from soc.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
#: Lines of the bundled samples the command center replays (auth, nginx, ufw).
SAMPLE_LINES = sum(
    len((ROOT / "data" / "samples" / name).read_bytes().splitlines())
    for name in ("auth.log", "nginx-access.log", "ufw.log")
)


def _wait(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.chdir(ROOT)  # the samples are found relative to the project
    settings = load_settings(
        None,
        environ={"SOC_STORE__URL": f"sqlite:///{tmp_path}/soc.db"},
    )
    settings.analyze = AnalyzeConfig(chain=["offline"], batch_wait_seconds=1.0)
    opened = Runtime(settings)
    try:
        yield opened
    finally:
        opened.close()


def test_replaying_the_samples_stores_incidents_with_reports(runtime: Runtime) -> None:
    runtime.replay_samples()
    _wait(lambda: runtime.status().finished)
    status = runtime.status()
    assert (status.mode, status.running, status.error) == ("replay", False, None)
    assert status.lines == SAMPLE_LINES
    incidents = runtime.store.list_incidents(limit=100)
    assert len(incidents) == 10  # nine as before, and the hostile_names botnet's
    # a report for each at once; below critical severity, the batch's follows
    _wait(lambda: runtime.analysis.pending == 0 and len(runtime.analysis.reports) == 10)
    batched = 0
    for incident in incidents:
        analyses = runtime.store.analyses(int(incident.id or 0))
        assert analyses and all(a.grounded for a in analyses)
        if incident.severity != "critical":
            assert len(analyses) == 2 and "batch" not in analyses[0].structured
            assert analyses[1].structured["batch"]["incidents"] >= 2
            batched += 1
        else:
            assert len(analyses) == 1 and "batch" not in analyses[0].structured
    assert batched >= 2


def test_the_threshold_applies_to_the_running_engine_and_persists(runtime: Runtime) -> None:
    runtime.replay_samples()
    runtime.set_threshold(12)
    assert runtime.threshold() == 12
    assert runtime.store.tuning() == {"threshold": 12}
    _wait(lambda: runtime.status().finished)
    assert runtime.status().threshold == 12


def test_pause_holds_the_engine_and_resume_lets_it_finish(runtime: Runtime) -> None:
    runtime.pause()
    runtime.replay_samples()
    time.sleep(0.5)
    assert runtime.status().lines == 0 and runtime.status().paused
    runtime.resume()
    _wait(lambda: runtime.status().finished)
    assert runtime.status().lines == SAMPLE_LINES


def test_a_file_gone_before_it_is_read_is_counted_not_fatal(
    runtime: Runtime, tmp_path: Path
) -> None:
    with pytest.raises(Exception, match="no such file"):
        runtime.replay([tmp_path / "missing.log"])  # refused up front, clearly
    log = tmp_path / "vanishing.log"
    log.write_text("Nov 21 10:00:01 web01 sshd[1]: Failed password for root from 203.0.113.9\n")
    runtime.pause()
    runtime.replay([log])
    log.unlink()  # gone before the engine reads it
    runtime.resume()
    _wait(lambda: not runtime.status().running)
    status = runtime.status()
    # the pipeline keeps going and says what it skipped
    assert (status.finished, status.error, status.lines) == (True, None, 0)
    assert status.details["acquire"]["replay"]["read_error"] == 1


def test_a_restarted_app_does_not_count_the_samples_twice(runtime: Runtime, tmp_path: Path) -> None:
    runtime.replay_samples()
    _wait(lambda: runtime.status().finished)
    lines = runtime.store.counters("samples")["lines"]
    incidents = runtime.store.count_incidents()
    # a new server process on the same store
    settings = load_settings(None, environ={"SOC_STORE__URL": f"sqlite:///{tmp_path}/soc.db"})
    settings.analyze = AnalyzeConfig(chain=["offline"])
    again = Runtime(settings)
    try:
        again.replay_samples()
        _wait(lambda: again.status().finished)
        assert again.status().lines == 0
        assert again.store.counters("samples")["lines"] == lines == SAMPLE_LINES
        assert again.store.count_incidents() == incidents
        again.replay_samples(again=True)  # asked for explicitly: replayed from the top
        _wait(lambda: again.status().finished)
        assert again.status().lines == SAMPLE_LINES
        assert again.store.count_incidents() == incidents  # updated, not duplicated
    finally:
        again.close()


def test_an_uploaded_log_is_deleted_once_no_run_reads_it(runtime: Runtime, tmp_path: Path) -> None:
    from soc.app.views import save_upload

    data = (ROOT / "data" / "samples" / "auth.log").read_bytes()[:20_000]
    first = save_upload(data, base_dir=tmp_path)
    runtime.replay([first], owned=True)
    _wait(lambda: runtime.status().finished)
    assert first.exists()  # the run that read it is the latest: kept
    second = save_upload(data, base_dir=tmp_path)
    runtime.replay([second], owned=True)
    assert not first.parent.exists() and second.exists()
    _wait(lambda: runtime.status().finished)
    kept = tmp_path / "mine.log"  # not owned: never deleted
    kept.write_bytes(data)
    runtime.replay([kept])
    assert not second.parent.exists() and kept.exists()
    third = save_upload(data, base_dir=tmp_path)
    runtime.replay([third], owned=True)
    runtime.close()
    assert not third.parent.exists() and kept.exists()
