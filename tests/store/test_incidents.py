"""Incidents in the store: campaigns update one row, the analyst's word is kept, search is data."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from soc.errors import StoreError
from soc.events import (
    CREDENTIAL_COMPROMISE,
    FALSE_POSITIVE,
    NEW,
    PASSWORD_SPRAY,
    RESOLVED,
    TRIAGED,
)
from soc.store import SqlStore
from soc.store.sql import evidence, incidents
from tests.store.builders import T0, make_incident


def test_upsert_updates_the_campaign_without_duplicating(store: SqlStore) -> None:
    first = make_incident(failures=10, events=10, last_seen=T0 + 10)
    with store.transaction(now=T0 + 11) as tx:
        incident_id = tx.upsert_incident(first, "brute_force:203.0.113.9:1")
    assert first.id == incident_id
    assert first.opened_at == T0 + 11

    later = make_incident(
        failures=250,
        events=260,
        successes=1,
        last_seen=T0 + 300,
        users=["root", "admin"],
        distinct_users=2,
        severity="high",
        facts={"peak_per_window": 40, "ratio": 0.5},
        closed=True,
    )
    with store.transaction(now=T0 + 301) as tx:
        assert tx.upsert_incident(later, "brute_force:203.0.113.9:1") == incident_id
    assert later.id == incident_id
    assert later.opened_at == T0 + 11  # the stored opening time comes back

    assert store.count_incidents() == 1
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert (stored.failures, stored.events, stored.successes) == (250, 260, 1)
    assert stored.users == ["root", "admin"]
    assert stored.distinct_users == 2
    assert stored.last_seen == T0 + 300
    assert stored.first_seen == T0
    assert stored.severity == "high"
    assert stored.facts == {"peak_per_window": 40, "ratio": 0.5}
    assert stored.closed is True
    assert stored.opened_at == T0 + 11
    assert stored.updated_at == T0 + 301
    assert stored.technique == "T1110.001"

    # another detector key is another incident
    with store.transaction(now=T0) as tx:
        other = tx.upsert_incident(make_incident(), "brute_force:203.0.113.9:2")
    assert other != incident_id
    assert store.count_incidents() == 2


def test_analyst_status_and_notes_survive_detector_updates(store: SqlStore) -> None:
    with store.transaction(now=T0) as tx:
        incident_id = tx.upsert_incident(make_incident(failures=5), "k")
    store.set_status(incident_id, TRIAGED, notes="blocked at the edge; watching")
    update = make_incident(failures=50, status=NEW, notes="")
    with store.transaction(now=T0 + 60) as tx:
        tx.upsert_incident(update, "k")
    # the caller's object learns the analyst's state instead of overwriting it
    assert (update.status, update.notes) == (TRIAGED, "blocked at the edge; watching")
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert stored.failures == 50
    assert (stored.status, stored.notes) == (TRIAGED, "blocked at the edge; watching")

    store.set_status(incident_id, RESOLVED)  # notes=None keeps the notes
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert (stored.status, stored.notes) == (RESOLVED, "blocked at the edge; watching")
    store.set_status(incident_id, FALSE_POSITIVE, notes="")
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert (stored.status, stored.notes) == (FALSE_POSITIVE, "")


def test_set_status_is_validated(store: SqlStore) -> None:
    with store.transaction() as tx:
        incident_id = tx.upsert_incident(make_incident(), "k")
    with pytest.raises(StoreError, match="unknown status 'closed'"):
        store.set_status(incident_id, "closed")
    with pytest.raises(StoreError, match="no such incident"):
        store.set_status(incident_id + 1000, RESOLVED)
    with pytest.raises(StoreError, match="unknown incident status"), store.transaction() as tx:
        tx.upsert_incident(make_incident(status="bogus"), "k2")
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert stored.status == NEW
    assert store.get_incident(incident_id + 1000) is None


def test_evidence_keeps_the_first_lines_and_the_latest_up_to_the_limit(store: SqlStore) -> None:
    lines = [f"Nov 21 10:00:{i:02d} web01 sshd[1]: Failed password for root" for i in range(12)]
    with store.transaction() as tx:
        incident_id = tx.upsert_incident(make_incident(evidence=lines[:3]), "k", evidence_limit=5)
    assert store.evidence(incident_id) == lines[:3]
    # a detector handing over every line it has so far: only the new ones are added,
    # and past the limit the first half stays while the rest follows the latest lines
    with store.transaction() as tx:
        tx.upsert_incident(make_incident(evidence=lines[:8]), "k", evidence_limit=5)
    assert store.evidence(incident_id) == lines[:2] + lines[5:8]
    # a detector handing over only its newest lines
    with store.transaction() as tx:
        tx.upsert_incident(make_incident(evidence=lines[8:]), "k", evidence_limit=5)
    assert store.evidence(incident_id) == lines[:2] + lines[9:]
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert stored.evidence == lines[:2] + lines[9:]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sa.func.count())
            .select_from(evidence)
            .where(evidence.c.incident_id == incident_id)
        ).scalar_one()
        count = conn.execute(
            sa.select(incidents.c.evidence_count).where(incidents.c.id == incident_id)
        ).scalar_one()
    assert rows == count == 5


def test_evidence_limit_applies_to_one_batch_and_repeats_are_stored_once(store: SqlStore) -> None:
    lines = ["a", "b", "a", "c", "d", "e"]
    with store.transaction() as tx:
        incident_id = tx.upsert_incident(make_incident(evidence=lines), "k", evidence_limit=3)
    # repeats are stored once; past the limit: the first half and the latest
    assert store.evidence(incident_id) == ["a", "d", "e"]
    assert store.evidence(incident_id + 1) == []


def _seed(store: SqlStore) -> dict[str, int]:
    specs = {
        "bf": make_incident(
            "203.0.113.9", users=["root", "admin"], last_seen=T0 + 100, severity="high"
        ),
        "spray": make_incident(
            "198.51.100.23",
            kind=PASSWORD_SPRAY,
            users=["alice", "bob", "carol"],
            last_seen=T0 + 200,
            severity="medium",
        ),
        "compromise": make_incident(
            "2001:db8::/64",
            kind=CREDENTIAL_COMPROMISE,
            source_ips=["2001:db8::1", "2001:db8::2"],
            users=["deploy"],
            last_seen=T0 + 300,
            severity="critical",
        ),
        "old": make_incident("192.0.2.1", users=["test"], last_seen=T0 - 1000, severity="low"),
    }
    ids: dict[str, int] = {}
    with store.transaction(now=T0) as tx:
        for name, incident in specs.items():
            ids[name] = tx.upsert_incident(incident, name)
    return ids


def test_list_filters_order_and_pages(store: SqlStore) -> None:
    ids = _seed(store)
    store.set_status(ids["spray"], TRIAGED)

    assert [i.id for i in store.list_incidents()] == [
        ids["compromise"],
        ids["spray"],
        ids["bf"],
        ids["old"],
    ]
    assert [i.id for i in store.list_incidents(status=NEW)] == [
        ids["compromise"],
        ids["bf"],
        ids["old"],
    ]
    assert [i.id for i in store.list_incidents(status=[TRIAGED, RESOLVED])] == [ids["spray"]]
    assert [i.id for i in store.list_incidents(kind=PASSWORD_SPRAY)] == [ids["spray"]]
    assert [i.id for i in store.list_incidents(since=T0 + 150)] == [
        ids["compromise"],
        ids["spray"],
    ]
    assert [i.id for i in store.list_incidents(order="severity desc")] == [
        ids["compromise"],
        ids["bf"],
        ids["spray"],
        ids["old"],
    ]
    assert [i.id for i in store.list_incidents(order="last_seen asc", limit=2)] == [
        ids["old"],
        ids["bf"],
    ]
    assert [i.id for i in store.list_incidents(order="last_seen asc", limit=2, offset=2)] == [
        ids["spray"],
        ids["compromise"],
    ]
    assert store.count_incidents(status=NEW) == 3
    assert store.count_incidents(since=T0 + 150, kind=[PASSWORD_SPRAY, CREDENTIAL_COMPROMISE]) == 2
    listed = store.list_incidents(kind=CREDENTIAL_COMPROMISE)[0]
    assert listed.source_ips == ["2001:db8::1", "2001:db8::2"]
    assert listed.evidence == []  # lists leave evidence to get_incident/evidence


@pytest.mark.parametrize(
    "order",
    ["last_seen; DROP TABLE incidents", "password desc", "last_seen sideways", "", "id,"],
)
def test_order_outside_the_fixed_set_is_refused(store: SqlStore, order: str) -> None:
    _seed(store)
    with pytest.raises(StoreError, match="cannot order incidents by"):
        store.list_incidents(order=order)
    assert store.count_incidents() == 4


def test_search_matches_key_ips_and_users_case_insensitively(store: SqlStore) -> None:
    ids = _seed(store)
    assert [i.id for i in store.list_incidents(search="ALICE")] == [ids["spray"]]
    assert [i.id for i in store.list_incidents(search="2001:db8::2")] == [ids["compromise"]]
    assert [i.id for i in store.list_incidents(search="203.0.113")] == [ids["bf"]]
    assert {i.id for i in store.list_incidents(search="ro")} == {ids["bf"], ids["spray"]}
    assert store.list_incidents(search="nobody") == []
    assert store.count_incidents(search="ADMIN") == 1


HOSTILE = {
    "quote": "x' OR '1'='1",
    "drop": "'; DROP TABLE incidents; --",
    "percent": "100%",
    "underscore": "a_b",
    "backslash": "c:\\users\\x",
    "comment": "admin/*",
}


def test_sql_injection_looking_search_is_just_text(store: SqlStore) -> None:
    ids: dict[str, int] = {}
    with store.transaction() as tx:
        for name, user in HOSTILE.items():
            ids[name] = tx.upsert_incident(make_incident(f"192.0.2.{len(ids)}", users=[user]), name)
        ids["plain"] = tx.upsert_incident(make_incident("192.0.2.99", users=["aXb", "100"]), "p")
    for name, user in HOSTILE.items():
        found = store.list_incidents(search=user)
        assert [i.id for i in found] == [ids[name]], name
        assert found[0].users == [user]
    # wildcards and quotes are literal
    assert [i.id for i in store.list_incidents(search="%")] == [ids["percent"]]
    assert [i.id for i in store.list_incidents(search="_")] == [ids["underscore"]]
    assert [i.id for i in store.list_incidents(search="' OR 1=1 --")] == []
    assert [i.id for i in store.list_incidents(search="'")] == sorted(
        [ids["quote"], ids["drop"]], reverse=True
    )
    assert store.list_incidents(search="\\") != []
    assert store.count_incidents() == len(HOSTILE) + 1  # the table is still there


HOSTILE_USERS = [
    "root",
    "アドミン",
    "𝔞𝔡𝔪𝔦𝔫",
    "admin\x00hidden",
    "lone\ud800surrogate",
    "quote\"double'single\\back",
    "new\nline\ttab\r",
    "\u202eevil-bidi",
    "emoji🔥💀",
    "ÜBER",
    "x" * 10_000,
    "",
    " spaced ",
]


def test_hostile_usernames_round_trip_exactly(store: SqlStore) -> None:
    incident = make_incident(
        users=HOSTILE_USERS,
        distinct_users=len(HOSTILE_USERS),
        facts={"top_user": HOSTILE_USERS[3], "nested": {"u": HOSTILE_USERS[4]}},
    )
    with store.transaction() as tx:
        incident_id = tx.upsert_incident(incident, "hostile")
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert stored.users == HOSTILE_USERS
    assert stored.facts == {"top_user": HOSTILE_USERS[3], "nested": {"u": HOSTILE_USERS[4]}}
    assert [i.users for i in store.list_incidents(search="アドミン")] == [HOSTILE_USERS]
    assert store.count_incidents(search="über") == 1
    assert store.count_incidents(search="🔥") == 1
    assert store.count_incidents(search="evil-bidi") == 1


def test_text_columns_turn_nul_and_lone_surrogates_into_replacement(store: SqlStore) -> None:
    # PostgreSQL text cannot hold NUL and no UTF-8 can hold a lone surrogate; the
    # store must not fail a batch over attacker text, on either backend.
    key = "user\x00name\udc80"
    line = "Failed password for bad\x00user"
    with store.transaction() as tx:
        incident_id = tx.upsert_incident(make_incident(key, evidence=[line]), key)
        # the same detector key again hits the same incident
        assert tx.upsert_incident(make_incident(key, failures=99), key) == incident_id
    store.set_status(incident_id, TRIAGED, notes="note\x00with nul")
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert stored.key == "user\ufffdname\ufffd"
    assert stored.evidence == ["Failed password for bad\ufffduser"]
    assert stored.notes == "note\ufffdwith nul"
    assert stored.failures == 99
    assert stored.source_ips == [key]  # JSON columns keep the exact text


def test_long_detector_keys_fit_the_unique_index(store: SqlStore) -> None:
    long_key = "distributed_brute_force:" + "u" * 20_000
    with store.transaction() as tx:
        first = tx.upsert_incident(make_incident("u" * 20_000), long_key)
        second = tx.upsert_incident(make_incident("u" * 20_000, failures=3), long_key)
        third = tx.upsert_incident(make_incident("u" * 20_000), long_key + "x")
    assert first == second != third
    assert store.open_incidents().keys() == {long_key, long_key + "x"}


def test_open_incidents_by_detector_key(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.upsert_incident(make_incident("192.0.2.1"), "a")
        tx.upsert_incident(make_incident("192.0.2.2", closed=True), "b")
    opened = store.open_incidents()
    assert list(opened) == ["a"]
    assert opened["a"].key == "192.0.2.1"


def test_incidents_roll_back_with_the_batch(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.upsert_incident(make_incident(evidence=["line"]), "k")
        tx.save_checkpoint("auth", {"offset": 10})
        raise RuntimeError("the engine died mid-batch")
    assert store.count_incidents() == 0
    assert store.load_checkpoint("auth") is None
    with store.transaction() as tx:
        incident_id = tx.upsert_incident(make_incident(evidence=["line"]), "k")
    assert store.evidence(incident_id) == ["line"]


def test_many_incidents_upserted_at_once_equal_one_by_one(store: SqlStore) -> None:
    with store.transaction(now=T0) as tx:
        first = tx.upsert_incident(make_incident("203.0.113.1", evidence=["a1"]), "k1")
    store.set_status(first, RESOLVED, notes="blocked at the edge")
    batch = [
        (make_incident("203.0.113.1", failures=50, evidence=["a1", "a2"]), "k1"),  # update
        (make_incident("203.0.113.2", failures=7, evidence=["b1"]), "k2"),  # new
        (make_incident("203.0.113.3", failures=9), "k3"),  # new, no evidence
    ]
    with store.transaction(now=T0 + 5) as tx:
        ids = tx.upsert_incidents(batch, evidence_limit=5)
    assert ids[0] == first
    assert len(set(ids)) == 3
    assert [incident.id for incident, _ in batch] == ids
    updated = store.get_incident(first)
    assert updated is not None
    assert (updated.failures, updated.status, updated.notes) == (
        50,
        RESOLVED,
        "blocked at the edge",
    )
    assert updated.evidence == ["a1", "a2"]
    assert batch[0][0].status == RESOLVED  # the stored status is copied back
    second = store.get_incident(ids[1])
    assert second is not None and (second.failures, second.evidence) == (7, ["b1"])
    assert store.evidence(ids[2]) == []
    with pytest.raises(StoreError, match="same detector key twice"), store.transaction() as tx:
        tx.upsert_incidents([(make_incident(), "k9"), (make_incident(), "k9")])
    assert store.count_incidents() == 3


def test_iter_incidents_reads_pages_in_first_seen_order_and_keeps_only_the_ids_asked(
    store: SqlStore,
) -> None:
    # 23 incidents, first seen out of id order and with ties; one in ten not asked for.
    seen = [T0 + (i * 7) % 5 for i in range(23)]
    ids: list[int] = []
    with store.transaction(now=T0) as tx:
        for i, first in enumerate(seen):
            incident = make_incident(f"198.51.100.{i}", first_seen=first, last_seen=first + 1)
            ids.append(tx.upsert_incident(incident, f"brute_force:198.51.100.{i}:1"))
    asked = [n for i, n in enumerate(ids) if i % 10 != 3]
    expected = sorted(store.get_incidents(asked), key=lambda i: (i.first_seen, i.id or 0))
    assert len(expected) == 21
    for page in (1, 2, 3, 7, 21, 22, 1000):
        got = list(store.iter_incidents(asked, page=page))
        assert [(i.id, i.first_seen, i.key) for i in got] == [
            (i.id, i.first_seen, i.key) for i in expected
        ], page
    assert list(store.iter_incidents([])) == []
    assert [i.id for i in store.iter_incidents([ids[5], 10**9])] == [ids[5]]
