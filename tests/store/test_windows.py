"""Window aggregates: merged when written twice, bucketed by the database, kept for a while."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from soc.events import AUTH_FAILURE, AUTH_SUCCESS, INVALID_USER, PREAUTH, WindowStats
from soc.store import SqlStore
from soc.store.sql import window_aggregates, window_kinds
from tests.store.builders import T0, make_incident, make_window

DAY = 86400.0


def _count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_window_written_twice_is_merged(store: SqlStore) -> None:
    first = make_window(
        "203.0.113.9",
        T0,
        events=10,
        failures=9,
        successes=1,
        distinct_users=2,
        users=["root", "admin"],
        distinct_ports=1,
        ports=[22],
        by_kind={AUTH_FAILURE: 9, AUTH_SUCCESS: 1},
        first_seen=T0 + 2,
        last_seen=T0 + 9,
    )
    late = make_window(
        "203.0.113.9",
        T0,
        events=3,
        failures=3,
        distinct_users=2,
        users=["admin", "oracle"],
        distinct_ports=1,
        ports=[2222],
        by_kind={AUTH_FAILURE: 2, INVALID_USER: 1},
        first_seen=T0 + 1,
        last_seen=T0 + 5,
    )
    with store.transaction() as tx:
        tx.save_windows([first])
    with store.transaction() as tx:
        tx.save_windows([late])
    assert _count(store, window_aggregates) == 1
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(window_aggregates)).mappings().one()
        kinds = dict(conn.execute(sa.select(window_kinds.c.kind, window_kinds.c.count)).all())
    assert (row["events"], row["failures"], row["successes"]) == (13, 12, 1)
    assert row["users"] == ["root", "admin", "oracle"]
    assert row["distinct_users"] == 3  # both samples were complete: the union is exact
    assert row["distinct_ports"] == 2
    assert row["by_kind"] == {AUTH_FAILURE: 11, AUTH_SUCCESS: 1, INVALID_USER: 1}
    assert kinds == row["by_kind"]
    assert (row["first_seen"], row["last_seen"]) == (T0 + 1, T0 + 9)


def test_merging_truncated_samples_keeps_a_lower_bound(store: SqlStore) -> None:
    a = make_window("192.0.2.1", T0, events=500, distinct_users=400, users=["u1", "u2"])
    b = make_window("192.0.2.1", T0, events=5, distinct_users=3, users=["u3", "u4", "u5"])
    with store.transaction() as tx:
        tx.save_windows([a, b])  # twice in one batch merges too
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(window_aggregates)).mappings().one()
    assert row["events"] == 505
    assert row["distinct_users"] == 400
    assert len(row["users"]) <= 3


def test_same_key_other_type_or_span_is_another_row(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.save_windows(
            [
                make_window("192.0.2.1", T0, events=1),
                make_window("192.0.2.1", T0, key_type="user", events=1),
                make_window("192.0.2.1", T0, window_end=T0 + 30, events=1),
                make_window("192.0.2.1", T0 + 15, events=1),
            ]
        )
    assert _count(store, window_aggregates) == 4


@contextmanager
def _statements(store: SqlStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def test_aggregates_are_bucketed_in_sql_with_correct_sums(store: SqlStore) -> None:
    rng = random.Random(20251121)
    keys = [f"203.0.113.{i}" for i in range(12)]
    kinds = [AUTH_FAILURE, INVALID_USER, AUTH_SUCCESS, PREAUTH]
    rows: list[WindowStats] = []
    for window in range(240):  # one hour of 15-second windows
        start = T0 + window * 15
        for key in rng.sample(keys, rng.randint(0, 5)):
            by_kind = {kind: rng.randint(0, 30) for kind in rng.sample(kinds, 2)}
            by_kind = {k: v for k, v in by_kind.items() if v}
            failures = by_kind.get(AUTH_FAILURE, 0) + by_kind.get(INVALID_USER, 0)
            rows.append(
                make_window(
                    key,
                    start,
                    events=sum(by_kind.values()),
                    failures=failures,
                    successes=by_kind.get(AUTH_SUCCESS, 0),
                    by_kind=by_kind,
                )
            )
    rows.append(make_window("2001:db8::/64", T0 + 30, key_type="ipv6_64", events=7, failures=7))
    with store.transaction() as tx:
        tx.save_windows(rows)

    since, until, size = T0 + 60, T0 + 3000, 300.0
    with _statements(store) as statements:
        buckets = store.aggregates(since, until, size)
    # the sums come from GROUP BY in the database, never from rows pulled into Python
    assert len(statements) == 2
    assert all("GROUP BY" in s and "window_aggregates" in s for s in statements)

    expected: dict[float, dict[str, Any]] = defaultdict(
        lambda: {
            "events": 0,
            "failures": 0,
            "successes": 0,
            "windows": 0,
            "keys": set(),
            "by_kind": Counter(),
        }
    )
    for w in rows:
        if since <= w.window_start < until:
            b = expected[(w.window_start // size) * size]
            b["events"] += w.events
            b["failures"] += w.failures
            b["successes"] += w.successes
            b["windows"] += 1
            b["keys"].add(w.key)
            b["by_kind"].update(w.by_kind)
    assert [b.start for b in buckets] == sorted(expected)
    for bucket in buckets:
        e = expected[bucket.start]
        assert bucket.start % size == 0
        assert bucket.key is None
        assert (bucket.events, bucket.failures, bucket.successes) == (
            e["events"],
            e["failures"],
            e["successes"],
        )
        assert bucket.windows == e["windows"]
        assert bucket.keys == len(e["keys"])
        assert bucket.by_kind == dict(+e["by_kind"])

    # one key type only
    ip_only = store.aggregates(T0, T0 + 3600, 3600, key_types=["ip"])
    assert sum(b.events for b in ip_only) == sum(w.events for w in rows if w.key_type == "ip")
    v6 = store.aggregates(T0, T0 + 3600, 3600, key_types=["ipv6_64"])
    assert [(b.events, b.keys) for b in v6] == [(7, 1)]

    # per key
    per_key = store.aggregates(T0, T0 + 3600, 900, by_key=True)
    totals: Counter[tuple[float, str]] = Counter()
    for w in rows:
        totals[((w.window_start // 900) * 900, w.key)] += w.failures
    assert {(b.start, b.key): b.failures for b in per_key} == {
        k: v for k, v in totals.items() if k in {(b.start, b.key) for b in per_key}
    }
    assert {(b.start, b.key) for b in per_key} == set(totals)
    assert all(b.keys == 1 for b in per_key)


def test_aggregates_range_is_half_open(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.save_windows([make_window("a", T0, events=1), make_window("a", T0 + 60, events=2)])
    assert [b.events for b in store.aggregates(T0, T0 + 60, 60)] == [1]
    assert [b.events for b in store.aggregates(T0 + 60, T0 + 61, 60)] == [2]
    assert store.aggregates(T0 + 61, T0 + 1000, 60) == []


def test_top_attackers(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.save_windows(
            [
                make_window("198.51.100.1", T0, failures=50, events=50, distinct_users=3),
                make_window("198.51.100.1", T0 + 15, failures=50, events=55, distinct_users=9),
                make_window("198.51.100.2", T0, failures=80, events=80),
                make_window("198.51.100.3", T0, failures=80, events=90),
                make_window("198.51.100.4", T0 - 3600, failures=1000, events=1000),
                make_window("root", T0, key_type="user", failures=500, events=500),
            ]
        )
    top = store.top_attackers(T0, limit=3, key_types=["ip", "ipv6_64"])
    assert [(a.key, a.failures, a.events, a.windows) for a in top] == [
        ("198.51.100.1", 100, 105, 2),
        ("198.51.100.3", 80, 90, 1),
        ("198.51.100.2", 80, 80, 1),
    ]
    assert top[0].max_distinct_users == 9
    assert (top[0].first_seen, top[0].last_seen) == (T0, T0 + 15 + 14)
    assert store.top_attackers(T0, limit=1)[0].key == "root"


def test_retention_deletes_old_aggregates_and_never_incidents(store: SqlStore) -> None:
    now = T0 + 30 * DAY
    with store.transaction(now=T0) as tx:
        tx.save_windows(
            [
                make_window("old", T0, events=1, by_kind={AUTH_FAILURE: 1}),
                make_window("edge", now - 7 * DAY, events=1, by_kind={AUTH_FAILURE: 1}),
                make_window("recent", now - DAY, events=1, by_kind={AUTH_FAILURE: 1}),
            ]
        )
        old_incident = tx.upsert_incident(make_incident(last_seen=T0, evidence=["old line"]), "old")
        tx.enqueue_export("elasticsearch", old_incident, {"n": 1})
        tx.enqueue_export("webhook", old_incident, {"n": 2})
    [delivered] = store.pending_exports("elasticsearch", T0)
    store.mark_exported([delivered.id], T0)

    deleted = store.apply_retention(now, aggregates_days=7)
    assert deleted == {"window_aggregates": 1, "window_kinds": 1, "export_outbox": 1}
    with store.engine.connect() as conn:
        keys = set(conn.execute(sa.select(window_aggregates.c.key)).scalars())
    assert keys == {"edge", "recent"}
    assert _count(store, window_kinds) == 2
    incident = store.get_incident(old_incident)
    assert incident is not None
    assert incident.evidence == ["old line"]
    assert store.outbox_depth("webhook") == 1  # undelivered documents are never dropped
    assert store.apply_retention(now, aggregates_days=7) == {
        "window_aggregates": 0,
        "window_kinds": 0,
        "export_outbox": 0,
    }


#: Attacker-chosen text as a bulk write must carry it: separators, quotes, escapes,
#: the NULL marker itself, an empty string, line breaks, a tab, COPY's end marker, UTF-8.
HOSTILE = [
    "a,b",
    'say "hi"',
    "back\\slash",
    "\\N",
    "",
    "two\nlines",
    "cr\rhere",
    "tab\there",
    "\\.",
    "é✓",
]


def test_bulk_writes_carry_any_text_and_nulls_exactly(store: SqlStore) -> None:
    windows = [
        make_window(
            name,
            T0 + 15 * i,
            key_type="user",
            users=[name, "\\N"],
            distinct_users=2,
            by_kind={AUTH_FAILURE: 1},
            first_seen=None if i % 2 else T0 + 15 * i + 0.125,
            last_seen=None if i % 2 else T0 + 15 * i + 1 / 3,
        )
        for i, name in enumerate(HOSTILE)
    ]
    with store.transaction() as tx:
        tx.save_windows(windows)
        incident_id = tx.upsert_incident(make_incident(evidence=HOSTILE), "brute_force:x:1")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(window_aggregates).order_by(window_aggregates.c.id))
        stored = [dict(row) for row in rows.mappings()]
    assert [r["key"] for r in stored] == HOSTILE
    assert [r["users"] for r in stored] == [[name, "\\N"] for name in HOSTILE]
    assert [r["first_seen"] for r in stored] == [w.first_seen for w in windows]
    assert [r["last_seen"] for r in stored] == [w.last_seen for w in windows]
    assert store.evidence(incident_id) == HOSTILE


def test_window_keys_are_stored_alike_whether_remembered_or_not(store: SqlStore) -> None:
    # Short keys' cleaned form and hash are remembered, long ones are not: written
    # twice, each key keeps one hash, its own for each key type, and its cleaned text.
    long = "u" * 100 + "\x00"
    for step in range(2):
        with store.transaction() as tx:
            tx.save_windows(
                [
                    make_window(key, T0 + 15 * step, key_type=key_type, by_kind={AUTH_FAILURE: 1})
                    for key_type in ("ip", "user")
                    for key in ("x\x00y", long)
                ]
            )
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                window_aggregates.c.key_type, window_aggregates.c.key, window_aggregates.c.key_hash
            )
        ).all()
    assert len(rows) == 8
    hashes = {(t, k): {h for t2, k2, h in rows if (t2, k2) == (t, k)} for t, k, _ in rows}
    assert set(hashes) == {
        (t, k) for t in ("ip", "user") for k in ("x\ufffdy", "u" * 100 + "\ufffd")
    }
    assert all(len(h) == 1 for h in hashes.values())
    assert len({h for hs in hashes.values() for h in hs}) == 4
