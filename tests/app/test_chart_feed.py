"""The chart feed: chart data computed off the live refresh, fresh after what runs changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.analyze import AnalyzeConfig
from soc.app import views
from soc.app.runtime import Runtime
from soc.config import load_settings

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.chdir(ROOT)
    settings = load_settings(None, environ={"SOC_STORE__URL": f"sqlite:///{tmp_path}/soc.db"})
    settings.analyze = AnalyzeConfig(chain=["offline"])
    opened = Runtime(settings)
    try:
        yield opened
    finally:
        opened.close()


def _finish(runtime: Runtime) -> None:
    deadline = time.monotonic() + 60
    while not runtime.status().finished:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_feed_answers_from_its_latest_data_and_starts_again_on_a_new_replay(
    runtime: Runtime, tmp_path: Path
) -> None:
    feed = views.chart_feed(runtime)
    assert views.chart_feed(runtime) is feed  # one per runtime
    runtime.replay_samples()
    _finish(runtime)
    six_hours = views.SPANS["6 hours"]
    first = feed.get(six_hours)
    assert first is not None
    assert int(first.attackers["failures"].sum()) > 0
    assert first.attackers.iloc[0]["address"] == "203.0.113.45"  # the fast brute force
    assert feed.get(six_hours) is first  # a refresh reads, it does not query
    # a new replay: the feed forgets, and the next request sees the new data
    log = tmp_path / "one.log"
    log.write_text(
        "".join(
            f"Nov 21 10:00:{s:02d} web01 sshd[1]: Failed password for root from 198.51.100.99 "
            f"port {4000 + s} ssh2\n"
            for s in range(10)
        )
    )
    runtime.replay([log])
    _finish(runtime)
    second = feed.get(six_hours)
    assert second is not None and second is not first
    assert "198.51.100.99" in set(second.attackers["address"])
