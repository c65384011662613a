"""A batch's columns say what its events say, and each is made once for every stage."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from soc.columns import EventColumns, columns_of
from soc.events import Event, failure_count
from soc.parse import make_parser
from soc.parse.base import ParseConfig

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _events(name: str) -> list[Event]:
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines()
    config = ParseConfig(format="auto", timezone="UTC", year=2025)
    parser = make_parser(config, reference_time=0.0, sample=lines[:50])
    parsed = (parser.parse(t, i) for i, t in enumerate(lines, 1))
    return [e for e in parsed if isinstance(e, Event)]


def _same(column: list[object], expected: list[object]) -> bool:
    return len(column) == len(expected) and all(
        (isinstance(a, float) and math.isnan(a) and b is None) or a == b
        for a, b in zip(column, expected, strict=True)
    )


@pytest.mark.parametrize("name", ["auth.log", "nginx-access.log", "ufw.log", "auth-rfc3339.log"])
def test_each_column_is_the_attribute_of_each_event(name: str) -> None:
    events = _events(name)
    assert events
    batch = EventColumns(events)
    assert len(batch) == len(events) and list(batch) == events and batch[3] is events[3]
    expected: dict[str, list[Any]] = {
        "timestamps": [e.timestamp for e in events],
        "addresses": [e.key_address for e in events],
        "counts": [e.count for e in events],
        "failures": [failure_count(e) for e in events],
        "kinds": [e.kind for e in events],
        "users": [e.user for e in events],
        "ports": [e.destination_port for e in events],
        "paths": [e.url_path for e in events],
        "statuses": [e.http_status or 0 for e in events],
    }
    for column, values in expected.items():
        got = getattr(batch, column)
        assert got.ndim == 1, column
        assert _same(got.tolist(), values), column
    assert any(v is not None for v in expected["addresses"])
    # Firewall drops are no failed attempts: the other logs have some.
    assert any(expected["failures"]) == (name != "ufw.log")


def test_a_column_is_made_once_and_shared() -> None:
    events = _events("auth.log")[:100]
    batch = EventColumns(events)
    assert batch.users is batch.users
    assert columns_of(batch) is batch
    fresh = columns_of(events)
    assert fresh is not batch and fresh.events is events


def test_missing_times_are_nan_and_an_empty_batch_has_empty_columns() -> None:
    event = _events("auth.log")[0]
    untimed = Event(None, event.kind, event.outcome, event.action)
    batch = EventColumns([event, untimed])
    assert batch.timestamps[0] == event.timestamp and math.isnan(batch.timestamps[1])
    assert batch.addresses.tolist() == [event.key_address, None]
    empty = EventColumns([])
    assert len(empty) == 0 and empty.kinds.shape == (0,) and empty.timestamps.shape == (0,)
