"""Store fixtures: an open store on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soc.store import SqlStore, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """A fresh store on SQLite and on PostgreSQL, closed afterwards."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
