"""The export outbox: queued with the batch, delivered when the sink is back, nothing lost."""

from __future__ import annotations

import pytest

from soc.store import SqlStore
from tests.store.builders import T0, make_incident

ES = "elasticsearch"
HOOK = "webhook"


def _incident(store: SqlStore, key: str) -> int:
    with store.transaction(now=T0) as tx:
        return tx.upsert_incident(make_incident(key), key)


def test_outbox_lifecycle(store: SqlStore) -> None:
    a, b = _incident(store, "192.0.2.1"), _incident(store, "192.0.2.2")
    with store.transaction(now=T0 + 1) as tx:
        first = tx.enqueue_export(ES, a, {"incident": a, "user": "アドミン\x00"})
        second = tx.enqueue_export(ES, b, {"incident": b})
        hook = tx.enqueue_export(HOOK, a, {"incident": a})
    assert store.outbox_depth(ES) == 2
    assert store.outbox_depth(HOOK) == 1
    assert store.outbox_depth() == 3
    assert store.pending_exports(ES, now=T0) == []  # not due before it was queued

    pending = store.pending_exports(ES, now=T0 + 1)
    assert [p.id for p in pending] == [first, second]
    assert pending[0].document == {"incident": a, "user": "アドミン\x00"}
    assert (pending[0].sink, pending[0].incident_id, pending[0].attempts) == (ES, a, 0)
    assert pending[0].created_at == T0 + 1
    assert [p.id for p in store.pending_exports(ES, now=T0 + 1, limit=1)] == [first]

    # the sink is down: back off
    assert store.mark_export_failed(first, "ConnectionError: refused", next_attempt_at=T0 + 31)
    assert [p.id for p in store.pending_exports(ES, now=T0 + 10)] == [second]
    again = store.pending_exports(ES, now=T0 + 31)
    assert [p.id for p in again] == [first, second]
    assert (again[0].attempts, again[0].last_error) == (1, "ConnectionError: refused")
    assert again[0].next_attempt_at == T0 + 31
    assert store.mark_export_failed(first, "still down", next_attempt_at=T0 + 91)
    assert store.pending_exports(ES, now=T0 + 60)[0].id == second

    # it is back
    assert store.mark_exported([first, second], now=T0 + 100) == 2
    assert store.pending_exports(ES, now=T0 + 1000) == []
    assert store.outbox_depth(ES) == 0
    assert store.mark_exported([first], now=T0 + 200) == 0  # already delivered
    assert not store.mark_export_failed(first, "late failure", next_attempt_at=T0 + 300)
    assert store.mark_exported([], now=T0) == 0
    assert [p.id for p in store.pending_exports(HOOK, now=T0 + 1)] == [hook]


def test_a_newer_document_replaces_the_undelivered_one(store: SqlStore) -> None:
    a = _incident(store, "192.0.2.1")
    with store.transaction(now=T0) as tx:
        old = tx.enqueue_export(ES, a, {"failures": 10})
    store.mark_export_failed(old, "down", next_attempt_at=T0 + 60)
    with store.transaction(now=T0 + 5) as tx:
        new = tx.enqueue_export(ES, a, {"failures": 20})
    assert store.outbox_depth(ES) == 1
    assert store.pending_exports(ES, now=T0 + 30) == []  # the back-off carries over
    [item] = store.pending_exports(ES, now=T0 + 60)
    assert (item.id, item.document, item.attempts, item.created_at) == (
        new,
        {"failures": 20},
        1,
        T0,
    )
    # an exporter still holding the replaced row marks nothing, and the new one stays
    assert store.mark_exported([old], now=T0 + 61) == 0
    assert store.outbox_depth(ES) == 1

    # keeping every document is a choice
    with store.transaction(now=T0 + 70) as tx:
        tx.enqueue_export(ES, a, {"failures": 30}, replace_pending=False)
    assert store.outbox_depth(ES) == 2


def test_queued_exports_commit_with_the_batch(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction(now=T0) as tx:
        incident_id = tx.upsert_incident(make_incident(), "k")
        tx.enqueue_export(ES, incident_id, {"id": incident_id})
        raise RuntimeError("crash before commit")
    assert store.outbox_depth() == 0
    assert store.count_incidents() == 0
