"""What the incident-memory tests share: the real model, loaded once, and a memory factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.clock import ManualClock
from soc.similar import Embedder, IncidentMemory, SimilarConfig
from soc.store import SqlStore, open_store
from tests.similar.builders import DAY, T0

MakeMemory = Callable[..., IncidentMemory]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The packaged all-MiniLM-L6-v2, loaded once for the session."""
    model = Embedder()
    model.load()
    return model


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh SQLite store in a file (its index goes beside it)."""
    opened = open_store(f"sqlite:///{tmp_path}/soc.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> ManualClock:
    """A day after the builders' incidents."""
    return ManualClock(T0 + DAY)


@pytest.fixture
def make_memory(
    sqlite_store: SqlStore, tmp_path: Path, clock: ManualClock, embedder: Embedder
) -> Iterator[MakeMemory]:
    """Builds memories over the test's store (index in its folder unless told otherwise)."""
    made: list[IncidentMemory] = []

    def make(**options: Any) -> IncidentMemory:
        config = options.pop("config", SimilarConfig())
        memory = IncidentMemory(
            options.pop("store", sqlite_store),
            config,
            index_path=options.pop("index_path", tmp_path / "soc.similar.faiss"),
            clock=options.pop("clock", clock),
            embedder=embedder,
            **options,
        )
        made.append(memory)
        return memory

    yield make
    for memory in made:
        memory.stop()
