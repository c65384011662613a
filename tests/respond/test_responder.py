"""The responder's bookkeeping: dry-run, refusals, limits, idempotence, audit, expiry, restore.

The firewall itself runs for real in ``test_netns.py``; here commands go to a
:class:`~tests.respond.conftest.Recorder` (or nowhere, in dry-run), because
the point is what the responder decides and records.

(Why one file past 600 lines: every decision of one class, in the order a run
takes them; split by decision the fixtures would repeat.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from soc.clock import ManualClock
from soc.events import CREDENTIAL_COMPROMISE
from soc.respond import Responder, RespondError
from soc.respond.responder import PLAN_MAX_AGE
from soc.store import SqlStore
from tests.respond.conftest import (
    Recorder,
    add_incident,
    all_blocks,
    block_for,
    make_responder,
    playbooks_with,
)
from tests.store.builders import T0

NOW = T0 + 60  # 2025-11-21 10:01:00 UTC

NFT_UNBLOCK4 = [
    "nft",
    *("add", "element", "inet", "soc_response", "block4", "{", "203.0.113.9", "}", ";"),
    *("delete", "element", "inet", "soc_response", "block4", "{", "203.0.113.9", "}"),
]


def _nft_block4(address: str, ttl: int) -> list[str]:
    element = ("inet", "soc_response", "block4", "{", address)
    return [
        "nft",
        *("add", "element", *element, "}", ";"),
        *("delete", "element", *element, "}", ";"),
        *("add", "element", *element, "timeout", f"{ttl}s", "}"),
    ]


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """The shipped playbooks plus blocks of an hour, a day, and a plain note."""
    return playbooks_with(
        tmp_path / "playbooks",
        block_1h=block_for("1h"),
        block_1d=block_for("1d"),
        note_only="name: note-only\nsteps:\n  - action: annotate\n    note: seen by {actor}\n",
    )


def _enforcing(store: SqlStore, clock: ManualClock, books: Path, **respond: Any) -> Responder:
    return make_responder(store, clock, playbooks_dir=books, mode="enforce", **respond)


# --- dry run -------------------------------------------------------------------------


@pytest.mark.parametrize("respond", [{}, {"mode": "enforce"}])
def test_a_dry_run_runs_nothing_and_audits_every_step(
    store: SqlStore, respond: dict[str, Any]
) -> None:
    incident = add_incident(store, source_ips=["203.0.113.9", "2001:db8:1:2::77"])
    recorder = Recorder()
    clock = ManualClock(NOW)
    responder = make_responder(store, clock, run=recorder, **respond)
    plan = responder.plan(incident, "block-source", actor="alice", client="192.0.2.50")
    clock.advance(5)  # the analyst reads the plan, then confirms it
    result = responder.execute(plan)

    assert recorder.calls == []
    assert result.status == "dry_run"
    assert [(r.result, r.exit_status, r.output) for r in result.steps] == [
        ("dry_run", None, "dry run: nothing was run")
    ] * 4
    assert all_blocks(store) == []
    stored = store.get_incident(incident)
    assert stored is not None
    assert (stored.status, stored.notes) == ("new", "")

    audit = sorted(responder.log.audit_log(), key=lambda a: a.step)
    assert [
        (a.run_id, a.incident_id, a.at, a.actor, a.client, a.playbook, a.step, a.action)
        for a in audit
    ] == [
        (result.run_id, incident, NOW + 5, "alice", "192.0.2.50", "block-source", i, action)
        for i, action in enumerate(["block_ip", "block_ip", "annotate", "set_status"], 1)
    ]
    assert [(a.target, a.backend, a.mode, a.result, a.exit_status) for a in audit] == [
        ("203.0.113.9/32", "nftables", "dry_run", "dry_run", None),
        ("2001:db8:1:2::/64", "nftables", "dry_run", "dry_run", None),
        (f"incident {incident}", "store", "dry_run", "dry_run", None),
        (f"incident {incident}", "store", "dry_run", "dry_run", None),
    ]
    assert [a.argv for a in audit] == [step.argv() for step in plan.steps]
    assert audit[0].argv[-1] == _nft_block4("203.0.113.9", 86400)
    assert audit[2].argv == []
    assert {a.output for a in audit} == {"dry run: nothing was run"}

    (run,) = store.playbook_runs(incident)
    assert (run.id, run.playbook, run.actor, run.status) == (
        result.run_id,
        "block-source",
        "alice",
        "dry_run",
    )
    assert (run.started_at, run.finished_at) == (NOW + 5, NOW + 5)
    assert run.output == {
        "mode": "dry_run",
        "client": "192.0.2.50",
        "steps": 4,
        "results": {"dry_run": 4},
    }


def test_an_enforced_run_blocks_notes_and_triages(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    store.set_status(incident, "new", "the analyst's own note")
    recorder = Recorder()
    responder = make_responder(
        store, ManualClock(NOW), playbooks_dir=books, run=recorder, mode="enforce"
    )
    result = responder.run(incident, "block-source", actor="alice", enforce=True)

    assert result.status == "ok"
    assert [(r.step.action, r.result, r.exit_status, r.output) for r in result.steps] == [
        ("block_ip", "ok", 0, ""),
        ("annotate", "ok", None, "note added"),
        ("set_status", "ok", None, "status triaged"),
    ]
    assert len(recorder.calls) == 1
    assert recorder.calls[0][-1] == _nft_block4("203.0.113.9", 86400)
    assert recorder.prefixes == [[]]
    stored = store.get_incident(incident)
    assert stored is not None
    assert stored.status == "triaged"
    assert stored.notes == (
        "the analyst's own note\n"
        "[2025-11-21 10:01 UTC] alice: alice blocked the source addresses for 1d (block-source)"
    )
    (block,) = all_blocks(store)
    assert (block.network, block.backend, block.incident_id, block.playbook, block.actor) == (
        "203.0.113.9/32",
        "nftables",
        incident,
        "block-source",
        "alice",
    )
    assert (block.created_at, block.expires_at, block.ended_at) == (NOW, NOW + 86400, None)
    audit = sorted(responder.log.audit_log(), key=lambda a: a.step)
    assert [(a.action, a.mode, a.result, a.output) for a in audit] == [
        ("block_ip", "enforce", "ok", "block 203.0.113.9/32 for 1d (nftables)"),
        ("annotate", "enforce", "ok", "note added"),
        ("set_status", "enforce", "ok", "status triaged"),
    ]


def test_local_steps_follow_their_own_mode(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    recorder = Recorder()
    responder = make_responder(
        store,
        ManualClock(NOW),
        playbooks_dir=books,
        run=recorder,
        mode="enforce",
        modes={"set_status": "dry_run"},
    )
    result = responder.run(incident, "block-source", actor="alice", enforce=True)
    assert [r.result for r in result.steps] == ["ok", "ok", "dry_run"]
    stored = store.get_incident(incident)
    assert stored is not None
    assert stored.status == "new"
    assert stored.notes.endswith("alice blocked the source addresses for 1d (block-source)")


def test_a_status_already_set_is_unchanged(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    store.set_status(incident, "triaged")
    responder = _enforcing(store, ManualClock(NOW), books, run=Recorder())
    plan = responder.plan(incident, "block-source", actor="alice", enforce=True)
    assert plan.steps[-1].unchanged == "already triaged"
    result = responder.execute(plan)
    assert [(r.step.action, r.result, r.output) for r in result.steps][-1] == (
        "set_status",
        "unchanged",
        "already triaged",
    )


# --- refusals ------------------------------------------------------------------------


def test_refused_steps_are_audited_and_never_run(store: SqlStore, books: Path) -> None:
    incident = add_incident(
        store,
        source_ips=[
            "127.0.0.1",
            "1.2.3.4; rm -rf /",
            "192.0.2.50",
            "10.1.2.3",
            "198.51.100.1",
            "2001:db8:7:8::99",
            "203.0.113.9",
        ],
    )
    recorder = Recorder()
    responder = _enforcing(
        store,
        ManualClock(NOW),
        books,
        run=recorder,
        allow_list=["10.0.0.0/8"],
        host_addresses=["198.51.100.1", "2001:db8:7:8::1"],
    )
    result = responder.run(incident, "block-1h", actor="alice", client="192.0.2.50", enforce=True)
    assert [(r.step.target, r.result, r.output) for r in result.steps] == [
        ("127.0.0.1/32", "refused", "127.0.0.1/32 is loopback"),
        ("1.2.3.4; rm -rf /", "refused", "not an IP address: '1.2.3.4; rm -rf /'"),
        (
            "192.0.2.50/32",
            "refused",
            "192.0.2.50/32 holds the analyst's own address (192.0.2.50/32)",
        ),
        ("10.1.2.3/32", "refused", "10.1.2.3/32 holds allow-listed address (10.0.0.0/8)"),
        (
            "198.51.100.1/32",
            "refused",
            "198.51.100.1/32 holds this machine's address (198.51.100.1/32)",
        ),
        (
            "2001:db8:7:8::/64",
            "refused",
            "2001:db8:7:8::/64 holds this machine's address (2001:db8:7:8::1/128)",
        ),
        ("203.0.113.9/32", "ok", ""),
    ]
    assert result.status == "ok"
    assert len(recorder.calls) == 1
    assert recorder.calls[0][-1] == _nft_block4("203.0.113.9", 3600)
    assert [b.network for b in all_blocks(store)] == ["203.0.113.9/32"]

    refused = responder.log.audit_log(result="refused")
    assert len(refused) == 6
    assert {(a.argv == [], a.mode, a.exit_status) for a in refused} == {(True, "enforce", None)}
    assert refused[-1].output == "127.0.0.1/32 is loopback"


def test_a_run_with_every_step_refused_is_refused(store: SqlStore, books: Path) -> None:
    incident = add_incident(store, "127.0.0.1")
    recorder = Recorder()
    responder = _enforcing(store, ManualClock(NOW), books, run=recorder)
    result = responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert result.status == "refused"
    assert recorder.calls == []
    (run,) = store.playbook_runs(incident)
    assert run.status == "refused"


def test_an_incident_without_addresses_refuses_the_block(store: SqlStore, books: Path) -> None:
    incident = add_incident(store, source_ips=[])
    responder = _enforcing(store, ManualClock(NOW), books, run=Recorder())
    (step,) = responder.plan(incident, "block-1h", actor="alice", enforce=True).steps
    assert step.refused == "the incident names no source address"


def test_too_many_addresses_are_refused_in_one_step(store: SqlStore, books: Path) -> None:
    addresses = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
    incident = add_incident(store, source_ips=addresses)
    responder = _enforcing(store, ManualClock(NOW), books, run=Recorder(), max_targets=2)
    steps = responder.plan(incident, "block-1h", actor="alice", enforce=True).steps
    assert [(s.target, s.refused) for s in steps] == [
        ("203.0.113.1/32", None),
        ("203.0.113.2/32", None),
        ("2 more addresses", "more than 2 addresses ([respond] max_targets)"),
    ]


def test_the_same_network_is_planned_once(store: SqlStore, books: Path) -> None:
    incident = add_incident(
        store,
        source_ips=["2001:db8:1:2::1", "2001:db8:1:2::2", "::ffff:203.0.113.9", "203.0.113.9"],
    )
    responder = _enforcing(store, ManualClock(NOW), books, run=Recorder())
    steps = responder.plan(incident, "block-1h", actor="alice", enforce=True).steps
    assert [s.target for s in steps] == ["2001:db8:1:2::/64", "203.0.113.9/32"]


def test_a_firewall_failure_fails_the_step_and_records_no_block(
    store: SqlStore, books: Path
) -> None:
    incident = add_incident(store)
    responder = _enforcing(store, ManualClock(NOW), books, run=Recorder(fail=True))
    result = responder.run(incident, "block-source", actor="alice", enforce=True)
    assert [(r.result, r.exit_status) for r in result.steps] == [
        ("failed", 1),
        ("ok", None),
        ("ok", None),
    ]
    assert result.steps[0].output == "Error: simulated failure"
    assert result.status == "partial"
    assert all_blocks(store) == []
    only = responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert only.status == "failed"
    assert [r.status for r in store.playbook_runs(incident)] == ["partial", "failed"]


# --- the hourly limit --------------------------------------------------------------------


def test_new_blocks_past_the_hourly_limit_are_refused(store: SqlStore, books: Path) -> None:
    first = add_incident(store, source_ips=["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    second = add_incident(store, "203.0.113.4")
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder, max_blocks_per_hour=2)

    result = responder.run(first, "block-1h", actor="alice", enforce=True)
    assert [(r.step.target, r.result, r.output) for r in result.steps] == [
        ("203.0.113.1/32", "ok", ""),
        ("203.0.113.2/32", "ok", ""),
        ("203.0.113.3/32", "refused", "block limit reached (2 per hour, max_blocks_per_hour)"),
    ]
    assert len(recorder.calls) == 2

    # counted across runs (and incidents)
    clock.advance(600)
    (step,) = responder.run(second, "block-1h", actor="bob", enforce=True).steps
    assert (step.result, step.output) == (
        "refused",
        "block limit reached (2 per hour, max_blocks_per_hour)",
    )
    # a longer TTL on a block in force is not a new block
    extended = responder.run(first, "block-1d", actor="alice", enforce=True)
    assert [r.result for r in extended.steps] == ["ok", "ok", "refused"]
    assert len(recorder.calls) == 4

    # an hour after the first blocks, the limit has room again
    clock.advance(3001)
    (step,) = responder.run(second, "block-1h", actor="bob", enforce=True).steps
    assert step.result == "ok"
    assert [b.network for b in all_blocks(store)] == [
        "203.0.113.1/32",
        "203.0.113.2/32",
        "203.0.113.4/32",
    ]


# --- idempotence -----------------------------------------------------------------------


def test_blocking_twice_adds_nothing_and_a_longer_ttl_wins(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder)

    first = responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert (first.status, len(recorder.calls)) == ("ok", 1)
    assert len(recorder.calls[0]) == 2  # setup, then the block

    again = responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert again.status == "unchanged"
    assert [(r.result, r.output) for r in again.steps] == [("unchanged", "already blocked for 1h")]
    assert len(recorder.calls) == 1

    clock.advance(30)  # the same block half a minute later still changes nothing
    assert responder.run(incident, "block-1h", actor="alice", enforce=True).status == "unchanged"

    clock.advance(570)  # ten minutes later: an hour from now is later than what is in force
    later = responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert later.status == "ok"
    assert recorder.calls[-1] == [_nft_block4("203.0.113.9", 3600)]  # set up once only
    (block,) = all_blocks(store)
    assert (block.created_at, block.expires_at) == (NOW, NOW + 600 + 3600)

    longer = responder.run(incident, "block-1d", actor="bob", enforce=True)
    assert longer.status == "ok"
    assert recorder.calls[-1] == [_nft_block4("203.0.113.9", 86400)]
    (block,) = all_blocks(store)
    assert (block.created_at, block.expires_at, block.actor) == (NOW, NOW + 600 + 86400, "alice")

    shorter = responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert [(r.result, r.output) for r in shorter.steps] == [
        ("unchanged", "already blocked for 1d")
    ]
    assert len(recorder.calls) == 3
    assert len(all_blocks(store)) == 1
    assert all_blocks(store)[0].expires_at == NOW + 600 + 86400


# --- the audit log -------------------------------------------------------------------------


def test_the_audit_log_filters(store: SqlStore, books: Path) -> None:
    one = add_incident(store, "203.0.113.1")
    two = add_incident(store, "127.0.0.1")
    clock = ManualClock(NOW)
    responder = _enforcing(store, clock, books, run=Recorder())
    responder.run(one, "block-1h", actor="alice", enforce=True)  # ok
    clock.advance(10)
    responder.run(two, "block-1h", actor="bob", enforce=True)  # refused: loopback
    clock.advance(10)
    responder.run(one, "note-only", actor="bob")  # dry run
    clock.advance(10)
    responder.run(one, "block-1h", actor="carol", client="192.0.2.7", enforce=True)  # unchanged

    log = responder.log
    everything = log.audit_log()
    assert [(a.actor, a.playbook, a.result, a.at) for a in everything] == [
        ("carol", "block-1h", "unchanged", NOW + 30),
        ("bob", "note-only", "dry_run", NOW + 20),
        ("bob", "block-1h", "refused", NOW + 10),
        ("alice", "block-1h", "ok", NOW),
    ]
    assert [a.result for a in log.audit_log(actor="bob")] == ["dry_run", "refused"]
    assert [a.actor for a in log.audit_log(result="refused")] == ["bob"]
    assert [a.actor for a in log.audit_log(playbook="note-only")] == ["bob"]
    assert [a.actor for a in log.audit_log(incident_id=one)] == ["carol", "bob", "alice"]
    assert [a.actor for a in log.audit_log(incident_id=two)] == ["bob"]
    assert [a.actor for a in log.audit_log(mode="dry_run")] == ["bob"]
    assert [a.actor for a in log.audit_log(since=NOW + 20)] == ["carol", "bob"]
    assert [a.actor for a in log.audit_log(actor="bob", playbook="block-1h")] == ["bob"]
    assert log.audit_log(actor="alice", result="refused") == []
    assert [a.actor for a in log.audit_log(limit=2)] == ["carol", "bob"]
    assert everything[0].client == "192.0.2.7"
    assert log.audit_actors() == ["alice", "bob", "carol"]


def test_audited_text_is_cut_and_nul_free(store: SqlStore, books: Path) -> None:
    incident = add_incident(store, source_ips=["x" * 300 + "\x00"])
    responder = _enforcing(store, ManualClock(NOW), books, run=Recorder())
    responder.run(incident, "block-1h", actor="a" * 500, enforce=True)
    (row,) = responder.log.audit_log()
    assert row.actor == "a" * 199 + "…"
    assert len(row.target) == 200 and row.target.endswith("…")
    assert "\x00" not in row.output


# --- expiry and restore -----------------------------------------------------------------


def test_expiry_lifts_the_block_and_audits_it(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder)
    responder.run(incident, "block-1h", actor="alice", enforce=True)
    assert [b.network for b in responder.blocks()] == ["203.0.113.9/32"]

    clock.advance(3599)
    assert responder.expire() == 0
    assert len(recorder.calls) == 1

    clock.advance(2)
    assert responder.expire() == 1
    assert recorder.calls[-1] == [NFT_UNBLOCK4]
    (block,) = all_blocks(store)
    assert (block.ended_at, block.ended_by, block.end_reason) == (NOW + 3601, "expiry", "expired")
    assert responder.blocks() == []
    (row,) = responder.log.audit_log(actor="expiry")
    assert (row.playbook, row.action, row.backend, row.target) == (
        "(expired)",
        "unblock_ip",
        "nftables",
        "203.0.113.9/32",
    )
    assert (row.mode, row.result, row.exit_status, row.argv) == ("enforce", "ok", 0, [NFT_UNBLOCK4])
    assert (row.incident_id, row.run_id, row.at) == (incident, None, NOW + 3601)
    assert row.output == "expired 203.0.113.9/32"

    assert responder.expire() == 0
    assert len(recorder.calls) == 2


def test_a_failed_expiry_is_retried_with_backoff(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder)
    responder.run(incident, "block-1h", actor="alice", enforce=True)
    clock.advance(3600)
    recorder.fail = True
    assert responder.expire() == 0
    assert len(recorder.calls) == 2
    assert [b.network for b in responder.blocks()] == ["203.0.113.9/32"]
    (failed,) = responder.log.audit_log(actor="expiry")
    assert (failed.result, failed.exit_status) == ("failed", 1)

    clock.advance(29)
    assert responder.expire() == 0
    assert len(recorder.calls) == 2  # not before 30 s
    clock.advance(1)
    assert responder.expire() == 0
    assert len(recorder.calls) == 3
    clock.advance(59)
    responder.expire()
    assert len(recorder.calls) == 3  # then 60 s
    recorder.fail = False
    clock.advance(1)
    assert responder.expire() == 1
    assert responder.blocks() == []
    assert [a.result for a in responder.log.audit_log(actor="expiry")] == [
        "ok",
        "failed",
        "failed",
    ]


def test_restore_puts_back_what_is_in_force(store: SqlStore, books: Path) -> None:
    incident = add_incident(store, source_ips=["203.0.113.9", "203.0.113.10"])
    clock = ManualClock(NOW)
    responder = _enforcing(store, clock, books, run=Recorder())
    responder.run(incident, "block-1h", actor="alice", enforce=True)
    store.set_status(incident, "new")

    clock.advance(1000)
    recorder = Recorder()
    restarted = _enforcing(store, clock, books, run=recorder)
    assert restarted.restore() == {"expired": 0, "restored": 2, "failed": 0}
    assert len(recorder.calls) == 2
    assert recorder.calls[0][1:] == [_nft_block4("203.0.113.9", 2600)]
    assert recorder.calls[0][0][:5] == ["nft", "add", "table", "inet", "soc_response"]
    assert recorder.calls[1] == [_nft_block4("203.0.113.10", 2600)]  # set up once
    rows = responder.log.audit_log(actor="restore")
    assert [(a.playbook, a.action, a.result, a.output) for a in rows] == [
        ("(restore)", "block_ip", "ok", "restored for 2600 s")
    ] * 2


def test_restore_lifts_what_expired_while_stopped(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    _enforcing(store, clock, books, run=Recorder()).run(
        incident, "block-1h", actor="alice", enforce=True
    )
    clock.advance(7200)
    recorder = Recorder()
    restarted = _enforcing(store, clock, books, run=recorder)
    assert restarted.restore() == {"expired": 1, "restored": 0, "failed": 0}
    (block,) = all_blocks(store)
    assert (block.ended_at, block.ended_by, block.end_reason) == (NOW + 7200, "expiry", "expired")
    # a new process sets the firewall up first: after a reboot our table is gone
    (call,) = recorder.calls
    assert len(call) == 2
    assert call[0][:5] == ["nft", "add", "table", "inet", "soc_response"]
    assert call[1] == NFT_UNBLOCK4


def test_restore_never_puts_back_a_block_that_is_due(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    _enforcing(store, clock, books, run=Recorder()).run(
        incident, "block-1h", actor="alice", enforce=True
    )
    clock.advance(7200)
    recorder = Recorder(fail=True)
    restarted = _enforcing(store, clock, books, run=recorder)
    assert restarted.restore() == {"expired": 0, "restored": 0, "failed": 0}
    (call,) = recorder.calls  # the failed removal only, no block for what remains
    assert call[-1] == NFT_UNBLOCK4
    assert [b.network for b in restarted.blocks()] == ["203.0.113.9/32"]
    assert restarted.log.audit_log(actor="restore") == []


def test_restore_leaves_blocks_alone_when_not_enforcing(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    _enforcing(store, clock, books, run=Recorder()).run(
        incident, "block-1h", actor="alice", enforce=True
    )
    recorder = Recorder()
    dry = make_responder(store, clock, playbooks_dir=books, run=recorder)
    assert dry.restore() == {"expired": 0, "restored": 0, "failed": 0}
    assert recorder.calls == []
    assert [b.network for b in dry.blocks()] == ["203.0.113.9/32"]


def test_the_expiry_worker_restores_then_lifts(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    _enforcing(store, clock, books, run=Recorder()).run(
        incident, "block-1h", actor="alice", enforce=True
    )
    recorder = Recorder()
    worker = _enforcing(store, clock, books, run=recorder, expiry_interval=0.02)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not recorder.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.calls[0][-1] == _nft_block4("203.0.113.9", 3600)  # restored
        clock.advance(3600)
        while worker.blocks() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.blocks() == []
        assert recorder.calls[-1] == [NFT_UNBLOCK4]
    finally:
        worker.stop()


# --- manual unblock ------------------------------------------------------------------------


def test_unblock_lifts_a_block_now(store: SqlStore, books: Path) -> None:
    incident = add_incident(store, source_ips=["203.0.113.9", "2001:db8:1:2::77"])
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder)
    responder.run(incident, "block-1h", actor="alice", enforce=True)
    clock.advance(60)

    (lifted,) = responder.unblock("203.0.113.9", actor="bob", client="192.0.2.7")
    assert (lifted.result, lifted.exit_status) == ("ok", 0)
    assert recorder.calls[-1] == [NFT_UNBLOCK4]
    (lifted6,) = responder.unblock("2001:db8:1:2::1", actor="bob")  # any address of the /64
    assert lifted6.step.target == "2001:db8:1:2::/64"
    assert responder.blocks() == []
    assert [(b.ended_by, b.end_reason, b.ended_at) for b in all_blocks(store)] == [
        ("bob", "unblocked", NOW + 60)
    ] * 2
    rows = responder.log.audit_log(actor="bob")
    assert [(a.playbook, a.target, a.client, a.result) for a in rows] == [
        ("(unblocked)", "2001:db8:1:2::/64", "", "ok"),
        ("(unblocked)", "203.0.113.9/32", "192.0.2.7", "ok"),
    ]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("203.0.113.9", "203.0.113.9/32 is not blocked"),
        ("198.51.100.0/24", "198.51.100.0/24 is not blocked"),
        ("1.2.3.4; id", "not an IP address: '1.2.3.4; id'"),
        ("-f", "not an IP address: '-f'"),
        ("1.2.3.4/99", "not an IP address or network: '1.2.3.4/99'"),
    ],
)
def test_unblock_of_what_is_not_blocked_is_an_error(
    store: SqlStore, books: Path, address: str, message: str
) -> None:
    recorder = Recorder()
    responder = _enforcing(store, ManualClock(NOW), books, run=recorder)
    with pytest.raises(RespondError) as caught:
        responder.unblock(address, actor="bob")
    assert str(caught.value) == message
    assert recorder.calls == []
    assert responder.log.audit_log() == []


def test_the_release_playbook_lifts_the_incidents_blocks(store: SqlStore, books: Path) -> None:
    incident = add_incident(
        store, source_ips=["203.0.113.9", "203.0.113.10"], kind=CREDENTIAL_COMPROMISE
    )
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder, protected_users=[])
    responder.run(incident, "block-1h", actor="alice", enforce=True)
    responder.unblock("203.0.113.10", actor="alice")
    result = responder.run(incident, "release", actor="bob", enforce=True)
    assert [(r.step.action, r.step.target, r.result) for r in result.steps] == [
        ("unblock_ip", "203.0.113.9/32", "ok"),
        ("unblock_ip", "203.0.113.10/32", "unchanged"),
        ("enable_user", "root", "ok"),
        ("annotate", f"incident {incident}", "ok"),
    ]
    assert recorder.calls[-1] == [["usermod", "-U", "--expiredate", "-1", "--", "root"]]
    assert recorder.calls[-2] == [NFT_UNBLOCK4]
    assert responder.blocks() == []
    assert [(b.ended_by, b.end_reason) for b in all_blocks(store)] == [
        ("bob", "unblocked"),
        ("alice", "unblocked"),
    ]


# --- errors and stale plans ---------------------------------------------------------------


def test_a_plan_older_than_ten_minutes_is_refused(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    clock = ManualClock(NOW)
    recorder = Recorder()
    responder = _enforcing(store, clock, books, run=recorder)
    stale = responder.plan(incident, "block-1h", actor="alice", enforce=True)
    clock.advance(PLAN_MAX_AGE + 1)
    with pytest.raises(RespondError) as caught:
        responder.execute(stale)
    assert str(caught.value) == "this plan is more than 10 minutes old: plan it again"
    assert recorder.calls == []
    assert store.playbook_runs(incident) == []
    assert responder.log.audit_log() == []

    assert PLAN_MAX_AGE == 600
    at_limit = responder.plan(incident, "block-1h", actor="alice", enforce=True)
    clock.advance(PLAN_MAX_AGE)
    assert responder.execute(at_limit).status == "ok"


def test_unknown_playbooks_and_incidents_are_errors(store: SqlStore) -> None:
    incident = add_incident(store)
    responder = make_responder(store, ManualClock(NOW))
    with pytest.raises(RespondError) as caught:
        responder.plan(incident, "nope", actor="alice")
    assert str(caught.value) == (
        "unknown playbook 'nope' (known: block-15m, block-1h, block-and-notify, block-source, "
        "contain-account, escalate, notify-team, release)"
    )
    with pytest.raises(RespondError) as caught:
        responder.plan(incident + 1, "block-source", actor="alice")
    assert str(caught.value) == f"no incident {incident + 1}"


def test_a_bad_playbook_folder_loads_none_and_says_why(store: SqlStore, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nsteps: []\n", encoding="utf-8")
    responder = make_responder(store, ManualClock(NOW), playbooks_dir=tmp_path)
    assert responder.playbooks == {}
    assert responder.playbook_error == f"{tmp_path}/bad.yaml: steps must be a non-empty list"
    with pytest.raises(RespondError, match=r"^unknown playbook 'bad' \(known: none loaded\)$"):
        responder.plan(1, "bad", actor="alice")


def test_a_playbook_longer_than_max_ttl_is_refused_at_load(store: SqlStore, books: Path) -> None:
    responder = make_responder(store, ManualClock(NOW), playbooks_dir=books, max_ttl="12h")
    assert responder.playbooks == {}
    assert responder.playbook_error is not None
    assert responder.playbook_error.endswith("ttl 1d is longer than max_ttl 12h")


def test_the_recommended_playbook_follows_the_rule(store: SqlStore) -> None:
    responder = make_responder(store, ManualClock(NOW))
    recommended = responder.recommend("credential_compromise")
    assert recommended is not None and recommended.name == "contain-account"
    assert responder.recommend("no_such_kind") is None


# --- export to the SIEM ----------------------------------------------------------------------


def test_export_to_elastic_queues_the_alert(store: SqlStore) -> None:
    incident = add_incident(store)
    siem = {"type": "elasticsearch", "name": "siem", "hosts": ["http://127.0.0.1:9"]}
    responder = make_responder(store, ManualClock(NOW), exports=[siem], mode="enforce")
    result = responder.run(incident, "escalate", actor="alice", enforce=True)
    assert [(r.step.action, r.result, r.output) for r in result.steps] == [
        ("open_ticket", "refused", "no ticket webhook configured ([respond] ticket_url)"),
        ("export_to_elastic", "ok", "alert queued for siem"),
        ("annotate", "ok", "note added"),
    ]
    assert store.outbox_depth("siem") == 1

    unconfigured = make_responder(store, ManualClock(NOW), mode="enforce")
    step = unconfigured.plan(incident, "escalate", actor="alice", enforce=True).steps[1]
    assert step.refused == 'no Elasticsearch export configured ([[exports]] type = "elasticsearch")'
