"""``[respond] auto``: the playbooks an operator lets run on their own, and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from soc.clock import ManualClock
from soc.config import settings_from_dict
from soc.errors import ConfigError
from soc.events import CREDENTIAL_COMPROMISE, DISTRIBUTED_BRUTE_FORCE
from soc.respond.auto import AUTO_ACTOR
from soc.store import SqlStore
from soc.store.response import ResponseLog
from tests.respond.conftest import Recorder, add_incident, make_responder
from tests.store.builders import T0


def runs(store: SqlStore, incident_id: int) -> list[tuple[str, str, str]]:
    return [(r.playbook, r.actor, r.status) for r in store.playbook_runs(incident_id)]


def test_nothing_runs_unless_a_playbook_is_named(store: SqlStore) -> None:
    responder = make_responder(store, ManualClock(T0), run=Recorder())
    iid = add_incident(store, severity="critical")
    responder.notify([iid])
    assert responder.auto.pending() == 0
    assert responder.auto.run_pending(responder) == 0
    assert runs(store, iid) == []


def test_the_recommended_playbook_runs_once_as_auto(store: SqlStore) -> None:
    recorder = Recorder()
    responder = make_responder(
        store, ManualClock(T0), run=recorder, auto=["block-source"], mode="enforce"
    )
    high = add_incident(store, "203.0.113.9", severity="high")
    responder.notify([high, high])
    assert responder.auto.run_pending(responder) == 1
    assert runs(store, high) == [("block-source", AUTO_ACTOR, "ok")]
    assert any("203.0.113.9" in " ".join(argv) for call in recorder.calls for argv in call)
    audit = ResponseLog(store).audit_log(incident_id=high)
    assert audit and {a.actor for a in audit} == {AUTO_ACTOR}
    # Updated again later: it already ran for this incident.
    responder.notify([high])
    assert responder.auto.run_pending(responder) == 0
    assert len(runs(store, high)) == 1


def test_severity_kind_and_state_decide(store: SqlStore) -> None:
    responder = make_responder(
        store, ManualClock(T0), run=Recorder(), auto=["block-source"], auto_min_severity="high"
    )
    medium = add_incident(store, "203.0.113.1", severity="medium")
    closed = add_incident(store, "203.0.113.2", severity="critical", closed=True)
    # contain-account is recommended for a compromise, and it is not listed.
    owned = add_incident(
        store, "203.0.113.3", kind=CREDENTIAL_COMPROMISE, severity="critical", users=["carol"]
    )
    # notify-team is recommended for a botnet.
    botnet = add_incident(store, "203.0.113.4", kind=DISTRIBUTED_BRUTE_FORCE, severity="high")
    responder.notify([medium, closed, owned, botnet, 999_999])
    assert responder.auto.run_pending(responder) == 0
    assert all(runs(store, i) == [] for i in (medium, closed, owned, botnet))
    # The medium one grows to high: its next update runs the playbook.
    add_incident(store, "203.0.113.1", severity="high")
    responder.notify([medium])
    assert responder.auto.run_pending(responder) == 1
    # dry_run is the default mode: the run shows its argv and changes nothing.
    assert runs(store, medium) == [("block-source", AUTO_ACTOR, "dry_run")]


def test_an_analysts_enforced_run_counts_a_dry_run_does_not(store: SqlStore) -> None:
    responder = make_responder(
        store, ManualClock(T0), run=Recorder(), auto=["block-source"], mode="enforce"
    )
    shown = add_incident(store, "203.0.113.5", severity="high")
    done = add_incident(store, "203.0.113.6", severity="high")
    responder.run(shown, "block-source", actor="alice")  # a dry run
    responder.run(done, "block-source", actor="alice", enforce=True)
    responder.notify([shown, done])
    assert responder.auto.run_pending(responder) == 1
    assert [r[1] for r in runs(store, shown)] == ["alice", AUTO_ACTOR]
    assert [r[1] for r in runs(store, done)] == ["alice"]


def test_the_checks_still_apply(store: SqlStore) -> None:
    recorder = Recorder()
    responder = make_responder(
        store,
        ManualClock(T0),
        run=recorder,
        auto=["block-source"],
        mode="enforce",
        allow_list=["203.0.113.0/24"],
    )
    iid = add_incident(store, "203.0.113.7", severity="critical")
    responder.notify([iid])
    assert responder.auto.run_pending(responder) == 1
    assert [r[:2] for r in runs(store, iid)] == [("block-source", AUTO_ACTOR)]
    blocked = ResponseLog(store).audit_log(incident_id=iid, actor=AUTO_ACTOR, result="refused")
    assert [a.action for a in blocked] == ["block_ip"]
    assert recorder.calls == []  # the firewall was never asked


def test_the_worker_runs_it_when_notified(store: SqlStore) -> None:
    responder = make_responder(
        store,
        ManualClock(T0),
        run=Recorder(),
        auto=["block-source"],
        expiry_interval=3600.0,  # only the notification can wake it in time
    )
    iid = add_incident(store, "198.51.100.9", severity="high")
    responder.start()
    try:
        responder.notify([iid])
        deadline = time.monotonic() + 10
        while not runs(store, iid) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        responder.stop()
    assert runs(store, iid) == [("block-source", AUTO_ACTOR, "dry_run")]


def test_unknown_names_and_severities_are_refused(store: SqlStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="auto_min_severity"):
        settings_from_dict({"respond": {"auto_min_severity": "urgent"}})
    responder = make_responder(store, ManualClock(T0), run=Recorder(), auto=["block-sauce"])
    assert responder.playbooks  # the shipped ones load
    assert responder.playbook_error == "[respond] auto names unknown playbooks: block-sauce"
