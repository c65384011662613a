"""Who logged in from where: what tells a legitimate user's failures from an attacker's.

An attacker fails and fails; a user fails now and then and gets in. So, per key (a
source address, an IPv6 network) and user name:

- once the user logged in from the key, their failures from it count for no rule
  for ``known_login_seconds`` (a *known* login);
- their failures from it within the ``forgive_seconds`` before the login stop
  counting from the login on (typos; :meth:`SlidingSums.forgive
  <soc.detect.sums.SlidingSums.forgive>`), and so do failures for a near miss of
  their name (:func:`near_miss`: ``Gschmidt``, ``nmurhy``, ``ubernadr`` before
  ``gschmidt``, ``nmurphy``, ``ubernard``);
- the other user names a key failed for recently, and never got in as, are what a
  login after them is judged by (:func:`other_names`): guessing names is evidence
  of an attack, a user mistyping their own is not. From an address other users
  logged in from (an office, a VPN egress: many people, each mistyping their name
  now and then) they are no evidence at all.

Everything is decided in arrival order, so the same events give the same result in
one batch or in many.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from soc.detect.sums import SlidingSums


def near_miss(typed: str, name: str) -> bool:
    """Whether ``typed`` is ``name`` mistyped: the same but for case, or one or two slips.

    Slips are a character left out, added, replaced or two swapped (the optimal
    string alignment distance, case ignored): at most 1 for names shorter than six
    characters, 2 for longer ones. A name is its own near miss.
    """
    a, b = typed.lower(), name.lower()
    if a == b:
        return True
    most = 1 if min(len(a), len(b)) < 6 else 2
    if abs(len(a) - len(b)) > most:
        return False
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], previous2[j - 2] + 1)
        if min(row) > most:
            return False
        previous2, previous = previous, row
    return previous[-1] <= most


class _Keyed(Protocol):
    family: int
    key: str
    names: OrderedDict[str, float] | None
    logged_in: OrderedDict[str, float] | None


@dataclass(frozen=True, slots=True)
class FirstLogin:
    """A user's first login from a key in a batch (batch row, clock time)."""

    group: int
    user: str
    row: int
    t: float


class Logins:
    """The logins remembered per (family, key, user), bounded to ``max_known`` pairs."""

    def __init__(self, *, known_seconds: float, forgive_seconds: float, max_known: int) -> None:
        self.known_seconds = known_seconds
        self.forgive_seconds = forgive_seconds
        self.max_known = max_known
        # (family, key, user) → (latest login clock time, global position it is known since)
        self._known: OrderedDict[tuple[int, str, str], tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def clear(self) -> None:
        self._known.clear()

    def knows(self, family: int, key: str, user: str, position: int) -> bool:
        """Whether ``user`` had logged in from ``key`` by global arrival ``position``."""
        entry = self._known.get((family, key, user))
        return entry is not None and entry[1] <= position

    def apply(
        self,
        trackers: Sequence[_Keyed],
        code: np.ndarray,
        t: np.ndarray,
        users: np.ndarray,
        weight: np.ndarray,
        logins: np.ndarray,
        position: np.ndarray,
    ) -> tuple[np.ndarray, list[FirstLogin]]:
        """Known users' failures weighed 0; returns the weights and each pair's first login.

        Arrays are the batch's rows sorted by tracker (``code``), arrival order within
        each; ``position`` is each row's global arrival position.
        """
        rows = np.flatnonzero(((weight > 0) | (logins > 0)) & ~pd.isna(users))
        if not len(rows):
            return weight, []
        user_codes, names = pd.factorize(users[rows])
        pair_codes, pair_ids = pd.factorize(code[rows] * len(names) + user_codes)
        n_pairs = len(pair_ids)
        pair_group = (pair_ids // len(names)).astype(np.int64)
        pair_user = names[(pair_ids % len(names)).astype(np.int64)]
        # Known before the batch: the latest login's time, per pair.
        last = np.full(n_pairs, np.nan)
        since = np.zeros(n_pairs, dtype=np.int64)
        known = self._known
        for p, (g, user) in enumerate(zip(pair_group.tolist(), pair_user.tolist(), strict=True)):
            tracker = trackers[g]
            entry = known.get((tracker.family, tracker.key, user))
            if entry is not None:
                last[p], since[p] = entry
        row_t = t[rows]
        row_pair = pair_codes
        with np.errstate(invalid="ignore"):
            known_row = row_t - last[row_pair] <= self.known_seconds
        # Known within the batch: after the pair's first login in it.
        is_login = logins[rows] > 0
        first_at = np.full(n_pairs, len(rows), dtype=np.int64)
        login_rows = np.flatnonzero(is_login)
        if len(login_rows):
            found, index = np.unique(row_pair[login_rows], return_index=True)
            first_at[found] = login_rows[index]
        after_login = np.arange(len(rows)) > first_at[row_pair]
        adjusted = weight.copy()
        adjusted[rows[(known_row | after_login) & (weight[rows] > 0)]] = 0
        first: list[FirstLogin] = []
        for p in np.flatnonzero(first_at < len(rows)).tolist():
            r = int(rows[first_at[p]])
            first.append(FirstLogin(int(pair_group[p]), str(pair_user[p]), r, float(t[r])))
            # Remember the login (its latest time), known from its first position.
            tracker = trackers[int(pair_group[p])]
            pair_key = (tracker.family, tracker.key, str(pair_user[p]))
            latest = float(row_t[login_rows[row_pair[login_rows] == p]].max())
            entry = known.get(pair_key)
            still = entry is not None and latest - entry[0] <= self.known_seconds
            known[pair_key] = (latest, entry[1] if still and entry else int(position[r]))
            known.move_to_end(pair_key)
        while len(known) > self.max_known:
            known.popitem(last=False)
        return adjusted, first

    def forgive(self, sums: SlidingSums, first: Sequence[FirstLogin]) -> None:
        """Each first login forgives its user's failures from the key before it."""
        if not first or not self.forgive_seconds:
            return
        code = sums.code
        rows_out: list[np.ndarray] = []
        at_out: list[np.ndarray] = []
        for login in first:
            lo = int(np.searchsorted(code, login.group, side="left"))
            at = int(sums.batch_at[login.row])
            if at <= lo:
                continue
            span = slice(lo, at)
            recent = (sums.weight[span] > 0) & (sums.t[span] >= login.t - self.forgive_seconds)
            names = sums.users[span]
            typed = {
                name for name in set(names[recent].tolist()) if near_miss(str(name), login.user)
            }
            mine = recent & np.isin(names, list(typed))
            hit = np.flatnonzero(mine) + lo
            if len(hit):
                rows_out.append(hit)
                at_out.append(np.full(len(hit), at, dtype=np.int64))
        if rows_out:
            sums.forgive(np.concatenate(rows_out), np.concatenate(at_out))


def other_names(
    trackers: Sequence[_Keyed],
    code: np.ndarray,
    t: np.ndarray,
    users: np.ndarray,
    weight: np.ndarray,
    logins: np.ndarray,
    *,
    horizon: float,
    known_seconds: float,
    cap: int,
) -> np.ndarray:
    """At each login row: other user names its key failed for within ``horizon``, unforgiven.

    Each tracker remembers, per user name it failed for, the latest such failure;
    a login removes its own user (a user who got in is no guessed name). A login
    from a key another user logged in from within ``known_seconds`` counts none: a
    shared address. Bounded to ``cap`` names (and ``cap`` users logged in) per tracker,
    the least recent dropped.
    """
    out = np.zeros(len(code), dtype=np.int64)
    relevant = ((weight > 0) | (logins > 0)) & ~pd.isna(users)
    rows = np.flatnonzero(relevant)
    if not len(rows):
        return out
    groups = code[rows]
    change = np.flatnonzero(np.diff(groups)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(rows)]))
    has_login = np.maximum.reduceat(logins[rows] > 0, starts)
    # Trackers with no login in the batch: only each name's latest failure matters,
    # the last occurrence of each (one pass over all of them: most trackers are bots).
    quiet = np.repeat(~has_login, ends - starts)
    if quiet.any():
        picked = rows[quiet]
        frame = pd.DataFrame({"g": groups[quiet], "user": users[picked], "t": t[picked]})
        latest = frame.drop_duplicates(["g", "user"], keep="last")
        touched: dict[int, OrderedDict[str, float]] = {}
        for g, user, when in zip(
            latest["g"].tolist(), latest["user"].tolist(), latest["t"].tolist(), strict=True
        ):
            names = touched.get(g)
            if names is None:
                tracker = trackers[g]
                names = tracker.names
                if names is None:
                    names = tracker.names = OrderedDict()
                touched[g] = names
            names[user] = when
            names.move_to_end(user)
        for names in touched.values():
            while len(names) > cap:
                names.popitem(last=False)
    for lo, hi in zip(starts[has_login].tolist(), ends[has_login].tolist(), strict=True):
        mine = rows[lo:hi]
        tracker = trackers[int(code[mine[0]])]
        names = tracker.names
        if names is None:
            names = tracker.names = OrderedDict()
        for r, user, when, login in zip(
            mine.tolist(),
            users[mine].tolist(),
            t[mine].tolist(),
            (logins[mine] > 0).tolist(),
            strict=True,
        ):
            if login:
                logged_in = tracker.logged_in
                if logged_in is None:
                    logged_in = tracker.logged_in = OrderedDict()
                shared = any(
                    other != user and when - seen <= known_seconds
                    for other, seen in logged_in.items()
                )
                if not shared:
                    out[r] = sum(
                        1 for name, seen in names.items() if name != user and seen > when - horizon
                    )
                for name in [n for n in names if near_miss(n, user)]:
                    del names[name]
                logged_in[user] = when
                logged_in.move_to_end(user)
                if len(logged_in) > cap:
                    logged_in.popitem(last=False)
            else:
                names[user] = when
                names.move_to_end(user)
        while len(names) > cap:
            names.popitem(last=False)
    return out


__all__ = ["FirstLogin", "Logins", "near_miss", "other_names"]
