"""Similar incidents in ``GET /incidents/{id}`` (real FAISS and embeddings), and the
retention of the request log and of the intake's alert ids."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from soc.clock import SystemClock
from soc.similar import Embedder, IncidentMemory, SimilarConfig
from soc.store import open_store
from soc.store.api import ApiLog
from tests.api.conftest import make_settings, seed, serve
from tests.store.builders import make_incident

DAY = 86400.0


def memory_over(store: Any, path: Path, embedder: Embedder) -> IncidentMemory:
    return IncidentMemory(
        store, SimilarConfig(), index_path=path, clock=SystemClock(), embedder=embedder
    )


def test_an_incident_lists_the_incidents_most_like_it(tmp_path: Path) -> None:
    embedder = Embedder()
    store = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    ids = seed(store)
    with store.transaction(now=time.time()) as tx:
        ids["brute2"] = tx.upsert_incident(
            make_incident("203.0.113.10", failures=12, events=12), "test:brute2"
        )
    memory = memory_over(store, tmp_path / "soc.similar.faiss", embedder)
    memory.sync()

    def similar(incident_id: int, k: int) -> list[dict[str, Any]]:
        return [m.to_dict() for m in memory.similar(incident_id, k)]

    served, _, _ = serve(tmp_path, store=store, similar=similar)
    log = ApiLog(store)
    token = log.create_token("reader", ["read"], now=time.time())
    try:
        detail = served.call("GET", f"/incidents/{ids['brute']}", token=token).json()
    finally:
        served.stop()
        store.close()
    like = detail["similar"]
    assert detail["similar_error"] is None
    assert like[0]["incident_id"] == ids["brute2"]  # the other brute force
    assert ids["brute"] not in {m["incident_id"] for m in like}
    assert len(like) == 4  # everything else, at most SIMILAR_K
    scores = [m["score"] for m in like]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1.0001
    assert like[0]["kind"] == "brute_force" and like[0]["status"] == "new"


def test_a_failing_memory_is_named_and_the_incident_still_answered(tmp_path: Path) -> None:
    def broken(incident_id: int, k: int) -> list[dict[str, Any]]:
        raise OSError("the index file is unreadable")

    served, store, _ = serve(tmp_path, similar=broken)
    ids = seed(store)
    token = ApiLog(store).create_token("reader", ["read"], now=time.time())
    try:
        answer = served.call("GET", f"/incidents/{ids['scan']}", token=token)
    finally:
        served.stop()
        store.close()
    assert answer.status == 200
    body = answer.json()
    assert body["incident"]["id"] == ids["scan"] and body["similar"] == []
    assert body["similar_error"].startswith("similar incidents are not available")
    assert "unreadable" not in answer.body.decode()


def test_a_reader_follows_the_index_the_engine_saves(tmp_path: Path) -> None:
    """``soc api serve`` beside ``soc run``: the API reloads the index when it is saved again."""
    embedder = Embedder()
    store = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    path = tmp_path / "soc.similar.faiss"
    try:
        ids = seed(store)
        writer = memory_over(store, path, embedder)
        writer.sync()
        assert writer.save()
        reader = memory_over(store, path, embedder)
        assert len(reader) == 4
        assert not reader.reload_if_changed()  # first look: nothing new
        with store.transaction(now=time.time()) as tx:
            new = tx.upsert_incident(make_incident("203.0.113.11"), "test:new")
        writer.notify([new])
        assert writer.run_pending() == 1 and writer.save()
        assert reader.reload_if_changed()
        assert len(reader) == 5
        assert new in {m.incident_id for m in reader.similar(ids["brute"], 5)}
        assert not reader.reload_if_changed()
    finally:
        store.close()


def test_old_requests_and_alert_ids_are_pruned_and_the_counts_kept(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, request_log_days=7, intake_ids_days=2)
    served, store, _ = serve(tmp_path, settings=settings)
    log = ApiLog(store)
    now = time.time()
    token = log.create_token("siem", ["intake", "read"], now=now)
    for status, age_days in ((200, 30), (401, 30), (200, 8), (200, 1)):
        log.record_request(
            at=now - age_days * DAY,
            token_name="siem",  # noqa: S106 (a token's name)
            client="127.0.0.1",
            method="GET",
            path="/incidents",
            status=status,
            latency_ms=1.0,
        )
    log.record_alerts("ecs", ["old-1"], now=now - 3 * DAY)
    log.record_alerts("ecs", ["new-1"], now=now - 1 * DAY)
    before = log.requests_by_status()
    assert before == {200: 3, 401: 1}
    alert = {"@timestamp": "2025-11-21T10:00:01Z", "source": {"ip": "203.0.113.9"}}
    try:
        assert served.call("GET", "/healthz").status == 200  # the first request prunes
        deadline = time.monotonic() + 10
        while len(rows := log.requests()) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the row is written, then the log pruned, after the answer
        assert sorted(r.path for r in rows) == ["/healthz", "/incidents"]
        assert log.requests_by_status() == {200: 4, 401: 1}  # a counter never goes down
        taken = served.call(
            "POST",
            "/intake/ecs",
            token=token,
            json_body=[{**alert, "_id": "old-1"}, {**alert, "_id": "new-1"}],
        ).json()
    finally:
        served.stop()
        store.close()
    assert (taken["accepted"], taken["duplicates"]) == (1, 1)  # old-1 was forgotten
