"""The store queries incident memory uses, on SQLite and PostgreSQL."""

from __future__ import annotations

from soc.store import SqlStore
from tests.similar.builders import DAY, T0, add, brute_force, spray


def test_changes_since_a_watermark(store: SqlStore) -> None:
    ids = add(
        store,
        spray("198.51.100.1", ["a", "b"], updated_at=T0 + 10),
        spray("198.51.100.2", ["a", "b"], updated_at=T0 + 20),
        brute_force("198.51.100.3", ["root"], updated_at=T0 + 30, last_seen=T0 - 50 * DAY),
    )
    assert store.incident_changes(None) == [
        (ids[0], T0 + 10),
        (ids[1], T0 + 20),
        (ids[2], T0 + 30),
    ]
    # At or after the watermark, or newer than its id.
    assert [i for i, _ in store.incident_changes(T0 + 20, after_id=ids[2])] == ids[1:]
    assert [i for i, _ in store.incident_changes(T0 + 99, after_id=ids[0])] == ids[1:]
    assert store.incident_changes(T0 + 99, after_id=ids[2]) == []
    assert [i for i, _ in store.incident_changes(None, seen_since=T0 - DAY)] == ids[:2]


def test_ids_and_ids_seen_before(store: SqlStore) -> None:
    ids = add(
        store,
        spray("198.51.100.1", ["a"], at=T0),
        spray("198.51.100.2", ["a"], at=T0 - 10 * DAY),
    )
    assert store.incident_ids() == sorted(ids)
    assert store.incident_ids(seen_before=T0 - DAY) == [ids[1]]


def test_summaries_take_the_newest_analysis_in_one_query(store: SqlStore) -> None:
    ids = add(store, spray("198.51.100.1", ["a"]), spray("198.51.100.2", ["b"], severity="high"))
    store.add_analysis(ids[0], provider="offline", model="x", created_at=T0, markdown="1")
    newest = store.add_analysis(
        ids[0],
        provider="gemini",
        model="y",
        created_at=T0 + 5,
        markdown="2",
        structured={"summary": "sprayed"},
        reused=True,
    )
    rows = store.incident_summaries([ids[1], ids[0], 424242])
    assert set(rows) == set(ids)
    first = rows[ids[0]]
    assert first["analysis_id"] == newest and first["structured"] == {"summary": "sprayed"}
    assert (first["provider"], first["reused"], first["analysed_at"]) == ("gemini", True, T0 + 5)
    assert (first["kind"], first["status"]) == ("password_spray", "new")
    second = rows[ids[1]]
    assert second["severity"] == "high"
    assert second["analysis_id"] is None and second["structured"] is None
    assert store.incident_summaries([]) == {}
