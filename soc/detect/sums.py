"""Sliding counts of failures per tracker, with typos forgiven from the login on.

The batch's events (sorted by tracker, clock times ascending within each) and every
tracker's earlier failures (its *tail*) are laid out on one axis, tracker after
tracker, so that one ``searchsorted`` finds every window's start at once. A login
forgives its user's earlier failures from the same key (:mod:`soc.detect.logins`):
they no longer count for the rows after it, nor in the tail kept for later batches.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: A tracker's earlier failures: clock times, weights and user names (aligned).
Tail = tuple[np.ndarray, np.ndarray, np.ndarray]
_EMPTY: Final = np.empty(0)


class SlidingSums:
    """Failures within a horizon before each batch event, each tracker's tail in front."""

    def __init__(
        self,
        code: np.ndarray,
        t: np.ndarray,
        weight: np.ndarray,
        users: np.ndarray,
        batch_length: int,
        tail_length: int,
        *,
        longest: float,
        tail_size: int,
        window: float,
        window_cap: int,
    ) -> None:
        is_batch = np.zeros(len(code), dtype=np.int8)
        is_batch[:batch_length] = 1
        if tail_length:
            # Tails first within each tracker, then the batch in its own order.
            order = np.lexsort((is_batch, code))
            code, t, weight, users = code[order], t[order], weight[order], users[order]
            is_batch = is_batch[order]
            self.batch_at = np.flatnonzero(is_batch)
        else:
            self.batch_at = np.arange(batch_length)
        self.code = code
        self.t = t
        self.weight = weight
        self.users = users
        self.cum = np.concatenate(([0], np.cumsum(weight)))
        base = float(np.min(t)) if len(t) else 0.0
        spread = (float(np.max(t)) - base) if len(t) else 0.0
        # Trackers laid end to end, each further along than any horizon reaches back.
        self.axis = (t - base) + code.astype(float) * (spread + longest + 1.0)
        self.tail_size = tail_size
        self.longest = longest
        self.window = window
        self.window_cap = window_cap
        # Forgiven failures: axis row, and the axis row of the login that forgave it.
        self._forgiven = np.empty(0, dtype=np.int64)
        self._forgiven_at = np.empty(0, dtype=np.int64)

    def forgive(self, rows: np.ndarray, at: np.ndarray) -> None:
        """Failures at axis ``rows`` stop counting after axis rows ``at`` (their logins)."""
        self._forgiven = np.concatenate((self._forgiven, rows))
        self._forgiven_at = np.concatenate((self._forgiven_at, at))

    def __call__(self, horizon: float) -> np.ndarray:
        """For each batch event, the failures within ``(t - horizon, t]`` up to it."""
        at = self.batch_at
        start = np.searchsorted(self.axis, self.axis[at] - horizon, side="right")
        sums: np.ndarray = self.cum[at + 1] - self.cum[start]
        if len(self._forgiven):
            sums = sums - self._forgiven_within(horizon)
        return sums

    def _forgiven_within(self, horizon: float) -> np.ndarray:
        """Per batch event: forgiven failures in its span whose login came before it."""
        out = np.zeros(len(self.batch_at), dtype=self.cum.dtype)
        rows, logins = self._forgiven, self._forgiven_at
        codes = self.code[rows]
        batch_codes = self.code[self.batch_at]
        for g in np.unique(codes).tolist():
            mine = codes == g
            f_axis = self.axis[rows[mine]]
            f_weight = self.weight[rows[mine]]
            f_login = logins[mine]
            events = np.flatnonzero(batch_codes == g)
            e_at = self.batch_at[events]
            e_axis = self.axis[e_at]
            counted = (f_login[None, :] < e_at[:, None]) & (
                f_axis[None, :] > e_axis[:, None] - horizon
            )
            out[events] = counted @ f_weight
        return out

    def tails(self) -> dict[int, Tail]:
        """Each tracker's unforgiven failures later sums may look back on.

        The latest ``tail_size`` (enough to tell whether any count threshold is
        reached) and every one within ``window`` of the latest, up to
        ``window_cap`` (so the peak per window is exact up to that), all within
        the longest horizon.
        """
        weight = self.weight
        if len(self._forgiven):
            weight = weight.copy()
            weight[self._forgiven] = 0
        rows = np.flatnonzero(weight > 0)
        if not len(rows):
            return {}
        codes = self.code[rows]
        axis = self.axis[rows]
        out: dict[int, Tail] = {}
        change = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [len(rows)]))
        in_window = np.searchsorted(axis, axis[ends - 1] - self.window, side="right")
        for lo, hi, w in zip(starts.tolist(), ends.tolist(), in_window.tolist(), strict=True):
            first = min(max(lo, hi - self.tail_size), max(w, hi - self.window_cap))
            picked = rows[first:hi]
            times = self.t[picked]
            recent = times > times[-1] - self.longest
            out[int(codes[lo])] = (
                times[recent].copy(),
                weight[picked][recent].copy(),
                self.users[picked][recent].copy(),
            )
        return out


__all__ = ["SlidingSums", "Tail"]
