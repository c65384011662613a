"""IncidentMemory over a real store, the real model and real FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from soc.clock import ManualClock
from soc.events import PASSWORD_SPRAY, PORT_SCAN, RESOLVED, WEB_SCAN
from soc.similar import Embedder, IncidentMemory, SimilarConfig
from soc.similar.index import APPROXIMATE, sidecar_path
from soc.store import SqlStore, open_store
from soc.store.sql import analyses, evidence, incidents
from tests.similar.builders import DAY, T0, add, brute_force, spray, web_scan, zoo
from tests.similar.conftest import MakeMemory


def _detector_key(store: SqlStore, incident_id: int) -> str:
    with store.engine.connect() as conn:
        key: str = conn.execute(
            sa.select(incidents.c.detector_key).where(incidents.c.id == incident_id)
        ).scalar_one()
    return key


def _answers(memory: IncidentMemory, ids: dict[str, int]) -> dict[str, list[tuple[int, float]]]:
    return {
        name: [(m.incident_id, m.score) for m in memory.similar(incident_id, 4)]
        for name, incident_id in ids.items()
    }


def test_a_campaign_ranks_above_unrelated_incidents(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    ids = zoo(sqlite_store)
    memory = make_memory()
    assert memory.sync()["embedded"] == len(ids)
    matches = memory.similar(ids["spray_a"], 3)
    # The campaign's two other sprays first, from other addresses, then the rest.
    assert {m.incident_id for m in matches[:2]} == {ids["spray_b"], ids["spray_c"]}
    assert ids["spray_a"] not in [m.incident_id for m in matches]
    assert matches[1].score > matches[2].score
    # spray_a and spray_b list the same users in another order, from other addresses.
    assert matches[0].incident_id == ids["spray_b"] and matches[0].score > 0.99
    same_kind = memory.similar(ids["brute_root"], 5, same_kind=True)
    assert same_kind == []  # the only brute force


def test_free_text_finds_the_right_kind(sqlite_store: SqlStore, make_memory: MakeMemory) -> None:
    ids = zoo(sqlite_store)
    memory = make_memory()
    memory.sync()
    spray_hit = memory.search("password spray against oracle and postgres accounts", 3)
    assert spray_hit[0].kind == PASSWORD_SPRAY
    assert memory.search("port scan", 1)[0].incident_id == ids["ports"]
    assert memory.search("port scan", 1)[0].kind == PORT_SCAN
    assert memory.search("web scan", 1)[0].kind == WEB_SCAN
    assert (
        memory.search("scanner looking for WordPress login pages", 1)[0].incident_id
        == ids["web_wp"]
    )


def test_matches_carry_the_store_state_and_the_verdict(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    ids = zoo(sqlite_store)
    sqlite_store.add_analysis(
        ids["spray_b"],
        provider="offline",
        model="offline",
        created_at=T0 + 500,
        markdown="old",
        structured={"summary": "first look"},
    )
    newest = sqlite_store.add_analysis(
        ids["spray_b"],
        provider="gemini",
        model="gemini-2.5-flash",
        created_at=T0 + 600,
        markdown="report",
        structured={"summary": "Database accounts sprayed", "severity": "medium"},
    )
    sqlite_store.add_analysis(
        ids["spray_c"],
        provider="offline",
        model="offline",
        created_at=T0 + 700,
        markdown="report",
        structured={"severity": "high"},
    )
    sqlite_store.set_status(ids["spray_c"], RESOLVED)
    memory = make_memory()
    memory.sync()
    by_id = {m.incident_id: m for m in memory.similar(ids["spray_a"], 3)}
    b, c = by_id[ids["spray_b"]], by_id[ids["spray_c"]]
    assert (b.verdict, b.analysis_id, b.analysed_at) == (
        "Database accounts sprayed",
        newest,
        T0 + 600,
    )
    assert (b.kind, b.status, b.severity) == (PASSWORD_SPRAY, "new", "medium")
    assert (c.verdict, c.status) == ("high", RESOLVED)
    assert b.score == round(b.score, 4)
    others = [m for m in by_id.values() if m.incident_id not in (ids["spray_b"], ids["spray_c"])]
    assert all(m.verdict is None and m.analysis_id is None for m in others)


def test_the_index_survives_a_restart_and_a_rebuild_agrees(
    sqlite_store: SqlStore, make_memory: MakeMemory, tmp_path: Path
) -> None:
    ids = zoo(sqlite_store)
    first = make_memory()
    first.sync()
    before = _answers(first, ids)
    first.stop()
    assert (tmp_path / "soc.similar.faiss").exists()
    assert sidecar_path(tmp_path / "soc.similar.faiss").exists()

    again = make_memory()
    report = again.sync()
    assert again.load_error is None
    assert len(again) == len(ids)
    # Only the incident at the watermark's instant is looked at again, and its
    # saved tag says its description has not changed: nothing embedded.
    assert report == {"embedded": 0, "removed": 0, "checked": 1}
    assert _answers(again, ids) == before

    assert again.rebuild() == len(ids)
    rebuilt = _answers(again, ids)
    assert rebuilt.keys() == before.keys()
    for name in before:
        assert [i for i, _ in rebuilt[name]] == [i for i, _ in before[name]]
        for (_, x), (_, y) in zip(rebuilt[name], before[name], strict=True):
            assert abs(x - y) < 1e-3


def test_sync_embeds_what_changed_while_away_and_drops_the_deleted(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    ids = zoo(sqlite_store)
    first = make_memory()
    first.sync()
    first.stop()
    # While the memory was not running: a new incident, a changed one, a deleted one.
    (new_id,) = add(
        sqlite_store, spray("198.51.100.150", ["oracle", "postgres", "mysql", "db2inst1"])
    )
    changed = brute_force(
        "198.51.100.20",
        ["root", "oracle"],
        at=T0 + 120,
        last_seen=T0 + 5 * 3600,
        updated_at=T0 + 5 * 3600,
    )
    with sqlite_store.transaction(now=T0) as tx:
        tx.upsert_incident(changed, _detector_key(sqlite_store, ids["brute_root"]))
    with sqlite_store.engine.begin() as conn:
        conn.execute(evidence.delete().where(evidence.c.incident_id == ids["web_wp"]))
        conn.execute(analyses.delete().where(analyses.c.incident_id == ids["web_wp"]))
        conn.execute(incidents.delete().where(incidents.c.id == ids["web_wp"]))

    again = make_memory()
    report = again.sync()
    assert report["removed"] == 1
    assert report["embedded"] == 2  # the new one and the changed one, nothing else
    held = {m.incident_id for m in again.search("web scan", 20)}
    assert ids["web_wp"] not in held
    assert new_id in {m.incident_id for m in again.similar(ids["spray_a"], 3)}
    root = again.search("brute force of root and oracle accounts", 1)[0]
    assert root.incident_id == ids["brute_root"]


def test_incidents_past_retention_leave(sqlite_store: SqlStore, make_memory: MakeMemory) -> None:
    ids = zoo(sqlite_store)
    (old_id,) = add(sqlite_store, spray("198.51.100.9", ["oracle", "postgres"], at=T0 - 40 * DAY))
    config = SimilarConfig(retention_days=30)
    memory = make_memory(config=config)
    memory.sync()
    assert old_id not in {m.incident_id for m in memory.similar(ids["spray_a"], 10)}
    assert len(memory) == len(ids)
    # Retention is in event time (a replayed old log stays searchable): the wall
    # clock moving on changes nothing...
    idle = make_memory(config=config, clock=ManualClock(T0 + 400 * DAY))
    idle.sync()
    assert len(idle) == len(ids)
    # ...a newer incident 31 days on ages the whole zoo out.
    (new_id,) = add(sqlite_store, spray("192.0.2.99", ["oracle"], at=T0 + 31 * DAY))
    later = make_memory(config=config, clock=ManualClock(T0 + 31 * DAY))
    later.sync()
    assert len(later) == 1
    assert [m.incident_id for m in later.search("password spray", 3)] == [new_id]


def test_the_worker_embeds_notified_incidents_and_skips_unchanged(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    ids = zoo(sqlite_store)
    memory = make_memory(save_every=3600.0)
    memory.start(sync=False)
    memory.notify(ids.values())
    memory.drain()
    assert len(memory) == len(ids) and memory.embedded == len(ids)
    assert memory.pending == 0
    # The same facts again: nothing to embed. A real change: embedded again.
    memory.start(sync=False)
    memory.notify([ids["ports"]])
    updated = web_scan("198.51.100.88", ["/wp-login.php", "/phpmyadmin/"], at=T0 + 150)
    with sqlite_store.transaction(now=T0) as tx:
        tx.upsert_incident(updated, _detector_key(sqlite_store, ids["web_wp"]))
    memory.notify([ids["web_wp"]])
    memory.drain()
    assert memory.unchanged == 1 and memory.embedded == len(ids) + 1
    hit = memory.search("phpmyadmin", 1)[0]
    assert hit.incident_id == ids["web_wp"]
    # Saved when drained: the watermark covers what was embedded.
    meta = json.loads(sidecar_path(memory.index_path or Path()).read_text(encoding="utf-8"))
    assert meta["count"] == len(ids) and meta["watermark"]["max_id"] == max(ids.values())


def test_similar_embeds_an_incident_not_indexed_yet(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    ids = zoo(sqlite_store)
    memory = make_memory()
    memory.sync()
    (late,) = add(sqlite_store, spray("192.0.2.1", ["oracle", "postgres", "mysql", "db2inst1"]))
    matches = memory.similar(late, 2)
    assert {m.incident_id for m in matches} <= {ids["spray_a"], ids["spray_b"], ids["spray_c"]}
    assert late not in memory._ready()  # left for the worker
    assert memory.similar(999_999) == []


def test_reuse_candidates_need_the_same_kind_and_the_bar(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    ids = zoo(sqlite_store)
    memory = make_memory(config=SimilarConfig(reuse_min_score=0.95, reuse_max_age_days=2))
    memory.sync()
    assert memory.max_age_seconds == 2 * DAY
    twin = spray("203.0.113.200", ["db2inst1", "mysql", "oracle", "postgres"], at=T0 + 999)
    found = memory.candidates(twin)
    assert found and found[0][0] in (ids["spray_a"], ids["spray_b"])
    assert all(score >= 0.95 for _, score in found)
    kinds = {m.kind for m in memory.similar_to(twin, 5, kind=PASSWORD_SPRAY)}
    assert kinds == {PASSWORD_SPRAY}
    # The incident itself (once stored) is never its own precedent.
    (twin_id,) = add(sqlite_store, twin)
    memory.notify([twin_id])
    memory.run_pending()
    assert twin_id not in [i for i, _ in memory.candidates(twin)]
    assert twin_id not in [
        m.incident_id for m in memory.similar_to(twin, 5, exclude=[ids["spray_a"]])
    ]


def test_a_foreign_index_is_refused_and_rebuilt(
    sqlite_store: SqlStore, make_memory: MakeMemory, tmp_path: Path
) -> None:
    ids = zoo(sqlite_store)
    first = make_memory()
    first.sync()
    first.stop()
    path = tmp_path / "soc.similar.faiss"
    meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    sidecar_path(path).write_text(
        json.dumps({**meta, "model": "some-other-model"}), encoding="utf-8"
    )
    again = make_memory()
    assert again.sync()["embedded"] == len(ids)  # everything again
    assert again.load_error is not None and "some-other-model" in again.load_error
    assert len(again) == len(ids)
    assert json.loads(sidecar_path(path).read_text(encoding="utf-8"))["model"] == meta["model"]


def test_a_small_exact_max_turns_the_memory_approximate(
    sqlite_store: SqlStore, make_memory: MakeMemory
) -> None:
    zoo(sqlite_store)
    add(
        sqlite_store,
        *[spray(f"198.51.100.{n}", [f"svc{n}", "oracle"], at=T0 + n) for n in range(80)],
    )
    memory = make_memory(config=SimilarConfig(exact_max=40))
    memory.sync()
    assert memory.stats()["mode"] == APPROXIMATE
    assert memory.search("port scan", 1)[0].kind == PORT_SCAN


def test_an_in_memory_store_keeps_the_index_in_memory(embedder: Embedder) -> None:
    store = open_store("sqlite://")
    try:
        zoo(store)
        memory = IncidentMemory(
            store, SimilarConfig(), index_path=None, clock=ManualClock(T0 + DAY), embedder=embedder
        )
        memory.sync()
        assert memory.save() is False
        assert memory.search("port scan", 1)[0].kind == PORT_SCAN
    finally:
        store.close()
