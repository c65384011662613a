"""What a run's lines showed, in brief: who failed, how often, as whom, and who got in.

The replay summary's top lists. A brute force that tries a new user name on every
attempt, or a botnet of a million addresses, must not grow them with the log: the
counts are kept in bounded memory (:class:`TopCounts`), exact until more distinct
values than its capacity have been counted, and then low by at most a bound the
summary states.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from soc.columns import columns_of
from soc.events import AUTH_SUCCESS, Event

#: Distinct values a top list keeps exact counts for (it holds at most twice as many).
TOP_CAPACITY = 65_536


class TopCounts:
    """Weighted counts of the most frequent values, in bounded memory (Misra–Gries).

    Exact while at most ``capacity`` distinct values have been counted. When the
    table reaches twice that, every count is lowered by the (capacity + 1)-th
    largest and the values left at zero are dropped. Each such cut takes at least
    capacity + 1 times its amount out of the total, so over a whole run a count is
    low by at most :attr:`undercount`, itself at most ``total / (capacity + 1)``;
    a value counted more often than that is never dropped (the heavy hitters of a
    brute force stay, with their counts nearly exact).
    """

    __slots__ = ("_counts", "capacity", "total", "undercount")

    def __init__(self, capacity: int = TOP_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._counts: dict[str, int] = {}
        #: Everything counted, and how much any count may be low by.
        self.total = 0
        self.undercount = 0

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, counts: dict[str, int]) -> None:
        """Count each value ``counts`` names that many more times."""
        table = self._counts
        for value, n in counts.items():
            table[value] = table.get(value, 0) + n
            self.total += n
        if len(table) >= 2 * self.capacity:
            self._cut()

    def get(self, value: str) -> int:
        """``value``'s count (0 when not kept)."""
        return self._counts.get(value, 0)

    def most_common(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` largest counts, largest first (ties in first-counted order)."""
        return heapq.nlargest(n, self._counts.items(), key=lambda item: item[1])

    def _cut(self) -> None:
        table = self._counts
        cut = heapq.nlargest(self.capacity + 1, table.values())[-1]
        self._counts = {value: n - cut for value, n in table.items() if n > cut}
        self.undercount += cut


@dataclass(slots=True)
class Findings:
    """What the lines showed, in brief: who failed, how often, as whom, and who got in."""

    failures_by_address: TopCounts = field(default_factory=TopCounts)
    successes_by_address: TopCounts = field(default_factory=TopCounts)
    targeted_users: TopCounts = field(default_factory=TopCounts)
    first_seen: float | None = None
    last_seen: float | None = None

    def add(self, events: Sequence[Event]) -> None:
        """Account for a batch of events (a list, or :class:`~soc.columns.EventColumns`).

        A failure counts as :func:`~soc.events.failure_count` does (attempts, each
        once: no echoes, no key offers); events without a source address count
        only for first and last seen.
        """
        batch = columns_of(events)
        if not len(batch):
            return
        times = batch.timestamps
        timed = times[~np.isnan(times)]
        if len(timed):
            low, high = float(timed.min()), float(timed.max())
            if self.first_seen is None or low < self.first_seen:
                self.first_seen = low
            if self.last_seen is None or high > self.last_seen:
                self.last_seen = high
        addresses = batch.addresses
        keyed = ~pd.isna(addresses)
        failed = batch.failures
        failures: dict[str, int] = {}
        users: dict[str, int] = {}
        rows = np.flatnonzero(keyed & (failed > 0))
        for address, n, user in zip(
            addresses[rows].tolist(),
            failed[rows].tolist(),
            batch.users[rows].tolist(),
            strict=True,
        ):
            failures[address] = failures.get(address, 0) + n
            if user is not None:
                users[user] = users.get(user, 0) + n
        successes: dict[str, int] = {}
        rows = np.flatnonzero(keyed & (failed == 0) & (batch.kinds == AUTH_SUCCESS))
        for address, n in zip(addresses[rows].tolist(), batch.counts[rows].tolist(), strict=True):
            successes[address] = successes.get(address, 0) + n
        self.failures_by_address.add(failures)
        self.successes_by_address.add(successes)
        self.targeted_users.add(users)

    @property
    def undercount(self) -> int:
        """How much any count of the top lists may be low by (0: all exact)."""
        return max(
            self.failures_by_address.undercount,
            self.successes_by_address.undercount,
            self.targeted_users.undercount,
        )


__all__ = ["TOP_CAPACITY", "Findings", "TopCounts"]
