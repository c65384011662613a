"""One batch of events as columns, each made once, on first use, for every stage.

The windower, the detector and the replay's findings read the same few attributes
of the same batch (time, key address, count, attempts, kind, user, port, path).
A column costs one pass over the events in Python; made per stage, the batch was
walked three times for most of them. :class:`EventColumns` makes each column once
per batch and hands the same arrays to every stage (the engine builds it; a stage
given a plain list of events builds its own, see :func:`columns_of`).

The columns are numpy arrays, in the batch's order: float times (NaN when the line
had none), ``int64`` counts, and ``object`` arrays of strings or ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from operator import attrgetter
from typing import overload

import numpy as np

from soc.events import Event, failure_counts


class EventColumns(Sequence[Event]):
    """A batch of events and its columns (``len``, indexing and iteration are the events')."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = events

    def __len__(self) -> int:
        return len(self.events)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        return self.events[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    @cached_property
    def timestamps(self) -> np.ndarray:
        """``Event.timestamp``, NaN where the line had none."""
        return _column(self.events, "timestamp", float)

    @cached_property
    def addresses(self) -> np.ndarray:
        """``Event.key_address``: the source IP, else the source's name, else None."""
        # Event.key_address, inlined (a property call per event costs more).
        return np.array(
            [e.source_ip if e.source_ip is not None else e.source_address for e in self.events],
            dtype=object,
        )

    @cached_property
    def counts(self) -> np.ndarray:
        """``Event.count``: the attempts a line stands for (``message repeated``)."""
        return _column(self.events, "count", np.int64)

    @cached_property
    def failures(self) -> np.ndarray:
        """:func:`~soc.events.failure_count` of each event: the failed attempts it counts."""
        return np.array(failure_counts(self.events), dtype=np.int64)

    @cached_property
    def kinds(self) -> np.ndarray:
        """``Event.kind``."""
        return _column(self.events, "kind", object)

    @cached_property
    def users(self) -> np.ndarray:
        """``Event.user`` (None where the line named none)."""
        return _column(self.events, "user", object)

    @cached_property
    def ports(self) -> np.ndarray:
        """``Event.destination_port`` (None where the line named none)."""
        return _column(self.events, "destination_port", object)

    @cached_property
    def paths(self) -> np.ndarray:
        """``Event.url_path`` (None where the line named none)."""
        return _column(self.events, "url_path", object)

    @cached_property
    def statuses(self) -> np.ndarray:
        """``Event.http_status``, 0 where the line had none."""
        return np.array([e.http_status or 0 for e in self.events], dtype=np.int64)


def _column(events: Sequence[Event], name: str, dtype: type) -> np.ndarray:
    """Attribute ``name`` of every event, as an array of ``dtype``."""
    return np.array(list(map(attrgetter(name), events)), dtype=dtype)


def columns_of(events: Sequence[Event]) -> EventColumns:
    """``events`` as :class:`EventColumns` (itself when it already is one)."""
    return events if isinstance(events, EventColumns) else EventColumns(events)


__all__ = ["EventColumns", "columns_of"]
