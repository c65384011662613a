"""The columns of one batch as the rules see them (:class:`soc.detect.rules.base.BatchView`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from soc.detect.sums import SlidingSums


class Columns:
    """One batch's rows, sorted by tracker, with what every rule may ask of them.

    ``first_hits`` fills in as rules are evaluated (in registry order): per rule,
    per campaign unit, the first row it held at. ``fired_before`` lists, per unit,
    the rules its campaign had fired before the batch.
    """

    def __init__(
        self,
        *,
        fam: np.ndarray,
        families: tuple[int, int, int],
        weight: np.ndarray,
        logins: np.ndarray,
        threshold: int,
        window_seconds: float,
        sums: SlidingSums,
        distinct: np.ndarray,
        units: np.ndarray,
        fired_before: Sequence[Mapping[str, float]],
        other_names: Callable[[float], np.ndarray],
    ) -> None:
        auth, web, net = families
        self.auth = fam == auth
        self.web = fam == web
        self.net = fam == net
        self.weight = weight
        self.logins = logins
        self.threshold = threshold
        self.window_seconds = window_seconds
        self._sums = sums
        self._within: dict[float, np.ndarray] = {}
        self._distinct = distinct
        self._units = units
        self._fired_before = fired_before
        self._other_names = other_names
        self._names: tuple[float, np.ndarray] | None = None
        self.first_hits: dict[str, dict[int, int]] = {}

    def within(self, horizon: float) -> np.ndarray:
        """Counted failures of the row's key within ``(t - horizon, t]`` up to the row."""
        cached = self._within.get(horizon)
        if cached is None:
            cached = self._within[horizon] = self._sums(horizon)
        return cached

    def distinct(self) -> np.ndarray:
        """Distinct values the row's family counts in its campaign, up to the row."""
        return self._distinct

    def attack_before(self, rules: tuple[str, ...]) -> np.ndarray:
        """Whether one of ``rules`` held in the row's campaign before the row."""
        n_units = len(self._fired_before)
        earliest = np.full(n_units, np.iinfo(np.int64).max, dtype=np.int64)
        for u, fired in enumerate(self._fired_before):
            if any(r in fired for r in rules):
                earliest[u] = -1
        for r in rules:
            for u, j in self.first_hits.get(r, {}).items():
                earliest[u] = min(earliest[u], j)
        positions = np.arange(len(self._units))
        before: np.ndarray = positions > earliest[self._units]
        return before

    def other_names(self, horizon: float) -> np.ndarray:
        """At a login: other user names the key failed for within ``horizon`` (unforgiven).

        Computed once per batch (it advances each key's memory of names).
        """
        if self._names is None:
            self._names = (horizon, self._other_names(horizon))
        elif self._names[0] != horizon:
            raise ValueError("other_names is computed for one horizon per batch")
        names: np.ndarray = self._names[1]
        return names


__all__ = ["Columns"]
