"""An Elastic Security webhook creates incidents: the intake spool is one of the engine's
live sources on its own (``[api] follow_intake``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from soc.clock import SystemClock
from soc.config import INTAKE_SOURCE, live_sources, settings_from_dict
from soc.engine import Engine
from soc.errors import ConfigError
from soc.events import BRUTE_FORCE
from soc.store.api import ApiLog
from tests.api.conftest import make_settings, serve


def config(tmp_path: Path, *sources: Mapping[str, object], **api: object) -> dict[str, object]:
    return {
        "api": {"intake_path": str(tmp_path / "intake" / "ecs.jsonl"), **api},
        "sources": list(sources),
    }


def test_the_spool_is_added_to_the_live_sources(tmp_path: Path) -> None:
    auth = {"name": "auth", "type": "file", "paths": [str(tmp_path / "auth.log")]}
    settings = settings_from_dict(config(tmp_path, auth))
    assert [s.name for s in settings.sources] == ["auth"]  # the configuration is unchanged
    live = live_sources(settings)
    assert [s.name for s in live] == ["auth", INTAKE_SOURCE]
    spool = live[1]
    assert spool.type == "file" and spool.parse.format == "ecs_json"
    assert spool.options.paths == [str((tmp_path / "intake" / "ecs.jsonl").resolve())]
    assert spool.options.start_at == "beginning"
    off = settings_from_dict(config(tmp_path, auth, follow_intake=False))
    assert [s.name for s in live_sources(off)] == ["auth"]


@pytest.mark.parametrize("pattern", ["intake/ecs.jsonl", "intake/*.jsonl"])
def test_a_source_reading_the_spool_already_is_not_doubled(tmp_path: Path, pattern: str) -> None:
    mine = {
        "name": "siem",
        "type": "file",
        "paths": [str(tmp_path / pattern)],
        "format": "ecs_json",
    }
    settings = settings_from_dict(config(tmp_path, mine))
    assert [s.name for s in live_sources(settings)] == ["siem"]


def test_a_source_named_like_the_spool_elsewhere_is_a_clear_error(tmp_path: Path) -> None:
    other = {"name": INTAKE_SOURCE, "type": "file", "paths": [str(tmp_path / "x.log")]}
    settings = settings_from_dict(config(tmp_path, other))
    with pytest.raises(ConfigError, match="follow_intake = false"):
        live_sources(settings)


def test_an_elastic_webhook_creates_an_incident(tmp_path: Path) -> None:
    """A rule's webhook posts 30 failed logins; the engine following its live sources
    opens one brute-force incident for them, with every failure counted."""
    settings = make_settings(tmp_path)
    served, store, _ = serve(tmp_path, settings=settings)
    token = ApiLog(store).create_token("elastic", ["intake"], now=time.time())
    alerts = [
        {
            "kibana.alert.uuid": f"alert-{i}",
            "kibana.alert.original_time": f"2025-11-21T10:00:{i:02d}Z",
            "@timestamp": "2025-11-21T10:05:00Z",
            "event": {
                "kind": "signal",
                "category": ["authentication"],
                "action": "ssh_login",
                "outcome": "failure",
            },
            "source": {"ip": "192.0.2.10"},
            "user": {"name": f"user{i % 3}"},
            "host": {"name": "bastion"},
        }
        for i in range(30)
    ]
    body = {"rule": {"id": "r-1", "name": "SSH failures"}, "alerts": alerts}
    try:
        answer = served.call("POST", "/intake/elastic", token=token, json_body=body)
        assert answer.status == 200 and answer.json()["accepted"] == 30
        # The same webhook fired again (Kibana retries): nothing more reaches the engine.
        again = served.call("POST", "/intake/elastic", token=token, json_body=body).json()
        assert (again["accepted"], again["duplicates"]) == (0, 30)
        settings.sources = live_sources(settings)
        assert [s.name for s in settings.sources] == [INTAKE_SOURCE]
        engine = Engine(settings, store, SystemClock(), host_addresses=[])
        try:
            deadline = time.monotonic() + 20
            while engine.report.parse.events < 30 and time.monotonic() < deadline:
                engine.step()
                time.sleep(0.05)
            engine.finish()
        finally:
            engine.close()
        incidents = store.list_incidents()
    finally:
        served.stop()
        store.close()
    assert engine.report.parse.lines == 30 and engine.report.parse.events == 30
    assert [(i.kind, i.source_ips, i.failures) for i in incidents] == [
        (BRUTE_FORCE, ["192.0.2.10"], 30)
    ]
    assert sorted(incidents[0].users) == ["user0", "user1", "user2"]
