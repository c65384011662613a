"""One writer and concurrent readers (the UI, the exporter) do not block each other."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

from soc.events import TRIAGED
from soc.store import SqlStore, open_store
from soc.store.sql import incidents
from tests.store.builders import T0, make_incident, make_window

PROMPT = 2.0  # seconds: far below the 10 s busy timeout a blocked call would wait


def test_reader_reads_while_the_writer_holds_a_write_transaction(store: SqlStore) -> None:
    with store.transaction(now=T0) as tx:
        committed = tx.upsert_incident(make_incident("192.0.2.1"), "a")
    writer_holds = threading.Event()
    reader_done = threading.Event()
    seen: dict[str, object] = {}

    def reader() -> None:
        writer_holds.wait(5)
        started = time.monotonic()
        seen["keys"] = [i.key for i in store.list_incidents()]
        seen["one"] = store.get_incident(committed)
        seen["elapsed"] = time.monotonic() - started
        reader_done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with store.transaction(now=T0 + 1) as tx:
        tx.upsert_incident(make_incident("192.0.2.2"), "b")  # not committed yet
        tx.save_windows([make_window("192.0.2.2", T0, events=5)])
        writer_holds.set()
        assert reader_done.wait(PROMPT), "the reader was blocked by the writer"
    thread.join()
    assert seen["keys"] == ["192.0.2.1"]  # the committed state only
    assert seen["one"] is not None
    assert isinstance(seen["elapsed"], float)
    assert seen["elapsed"] < PROMPT
    assert {i.key for i in store.list_incidents()} == {"192.0.2.1", "192.0.2.2"}


def test_writer_is_not_blocked_by_an_open_reader(store: SqlStore) -> None:
    with store.transaction(now=T0) as tx:
        tx.upsert_incident(make_incident("192.0.2.1"), "a")
    reading = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with store.engine.connect() as conn, conn.begin():
            if store.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")  # pysqlite would not open one for a SELECT
            conn.execute(sa.select(sa.func.count()).select_from(incidents)).scalar_one()
            reading.set()
            release.wait(10)  # holds its read transaction open

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert reading.wait(5)
        started = time.monotonic()
        with store.transaction(now=T0 + 1) as tx:
            tx.upsert_incident(make_incident("192.0.2.1", failures=99), "a")
            tx.upsert_incident(make_incident("192.0.2.2"), "b")
        elapsed = time.monotonic() - started
    finally:
        release.set()
        thread.join()
    assert elapsed < PROMPT
    assert store.count_incidents() == 2


def test_a_ui_status_change_waits_for_the_engine_batch_and_both_stick(store: SqlStore) -> None:
    with store.transaction(now=T0) as tx:
        incident_id = tx.upsert_incident(make_incident(failures=1), "a")
    in_batch = threading.Event()
    errors: list[BaseException] = []

    def analyst() -> None:
        in_batch.wait(5)
        try:
            store.set_status(incident_id, TRIAGED, notes="mine")
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    thread = threading.Thread(target=analyst)
    thread.start()
    with store.transaction(now=T0 + 1) as tx:
        tx.upsert_incident(make_incident(failures=500), "a")
        in_batch.set()
        time.sleep(0.3)  # the analyst's write queues behind this batch
    thread.join(15)
    assert errors == []
    stored = store.get_incident(incident_id)
    assert stored is not None
    assert (stored.failures, stored.status, stored.notes) == (500, TRIAGED, "mine")


def test_many_reader_threads_while_the_engine_writes(store: SqlStore) -> None:
    stop = threading.Event()

    def read(_: int) -> int:
        reads = 0
        while not stop.is_set() or reads < 5:
            store.list_incidents(limit=20)
            store.aggregates(T0, T0 + 3600, 60)
            reads += 1
        return reads

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(read, i) for i in range(6)]
        for batch in range(40):
            with store.transaction(now=T0 + batch) as tx:
                tx.upsert_incident(
                    make_incident(f"192.0.2.{batch % 7}", failures=batch), str(batch % 7)
                )
                tx.save_windows([make_window(f"192.0.2.{batch % 7}", T0 + batch * 15, events=1)])
        stop.set()
        reads = [f.result(timeout=30) for f in futures]
    assert all(r >= 5 for r in reads)
    assert store.count_incidents() == 7
    assert sum(b.events for b in store.aggregates(T0, T0 + 3600, 3600)) == 40


def test_in_memory_url_is_shared_by_threads_and_removed_on_close() -> None:
    store = open_store("sqlite://")
    database = store.engine.url.database
    assert database is not None
    try:
        with store.transaction(now=T0) as tx:
            tx.upsert_incident(make_incident(), "k")
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert pool.submit(store.count_incidents).result(timeout=10) == 1
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        store.close()
    assert not Path(database).exists()
    assert not Path(database).parent.exists()
