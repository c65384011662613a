"""The windower: micro-batches of events into per-key, per-window aggregates (pandas).

Each batch becomes one DataFrame of (key, window, event) rows, grouped by key and
window; the groups are added to the open windows, and windows whose end plus
``late_seconds`` the event time has passed are handed over, closed. Thousands of
lines from one address within a window become one row.

Event time only: the *watermark* is the latest timestamp seen; windows close when
it passes their end plus ``late_seconds``. Whether an event is late is decided
against its stream's watermark as it stood when the event arrived (a running
maximum over the batch), so the rows handed over are the same whether the events
come in one batch or in many. Streams matter when sources are read one after the
other (a replay of several files): a file read after another is not late for
being older; its rows for windows already handed over come as second rows for the
same key and window, which the store adds to the first.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import operator
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from soc.columns import EventColumns, columns_of
from soc.events import (
    AUTH_SUCCESS,
    FIREWALL_DROP,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    Event,
    WindowStats,
)
from soc.window.base import (
    KEY_HOST,
    KEY_IP,
    KEY_IPV6_NET,
    KEY_TYPES,
    KEY_USER,
    WindowConfig,
    WindowerStats,
)

_KT_IP, _KT_HOST, _KT_NET, _KT_USER = (
    KEY_TYPES.index(k) for k in (KEY_IP, KEY_HOST, KEY_IPV6_NET, KEY_USER)
)
#: Kinds whose events carry destination ports / URL paths (others are not read for them).
_PORT_KINDS = frozenset({FIREWALL_DROP})
_PATH_KINDS = frozenset({WEB_REQUEST, WEB_AUTH_FAILURE})
#: Distinct addresses remembered with their key facts before the memo starts over.
_MEMO_SIZE = 65_536

WindowKey = tuple[int, str, int]  # (key type index, key, window index)


class _Distinct:
    """Distinct values in first-seen order, tracked up to a cap; the rest counted."""

    __slots__ = ("overflow", "values")

    def __init__(self) -> None:
        self.values: dict[Any, None] = {}
        self.overflow = 0

    def add(self, value: Any, cap: int) -> int:
        """Track ``value``; returns 1 when it could not be tracked (cap reached)."""
        if value in self.values:
            return 0
        if len(self.values) >= cap:
            self.overflow += 1
            return 1
        self.values[value] = None
        return 0


class _Window:
    """One key's open window, accumulating batch after batch."""

    __slots__ = ("by_kind", "events", "failures", "first", "last", "late", "sets", "successes")

    def __init__(self) -> None:
        self.events = 0
        self.failures = 0
        self.successes = 0
        self.late = 0
        self.first = math.inf
        self.last = -math.inf
        self.by_kind: dict[str, int] = {}
        self.sets: dict[str, _Distinct] = {}  # "users", "ports", "paths", "sources"

    def distinct(self, name: str) -> _Distinct:
        found = self.sets.get(name)
        if found is None:
            found = self.sets[name] = _Distinct()
        return found

    def values(self, name: str) -> dict[Any, None]:
        found = self.sets.get(name)
        return found.values if found is not None else {}


class _Pairs:
    """The distinct (group, value) pairs of a batch, each group's in first-seen order."""

    __slots__ = ("bounds", "order_values")

    def __init__(self, gid: np.ndarray, values: np.ndarray, n_groups: int) -> None:
        present = np.flatnonzero(~pd.isna(values))
        if not len(present):
            self.order_values: list[Any] = []
            self.bounds: list[int] = [0] * (n_groups + 1)
            return
        value_codes, names = pd.factorize(values[present])
        width = max(len(names), 1)
        pairs = pd.unique(gid[present] * width + value_codes)
        groups = pairs // width
        order = np.argsort(groups, kind="stable")
        self.order_values = names.take(pairs[order] % width).tolist()
        self.bounds = np.searchsorted(groups[order], np.arange(n_groups + 1)).tolist()

    def values(self, g: int) -> list[Any]:
        """Every distinct value of group ``g``."""
        return self.order_values[self.bounds[g] : self.bounds[g + 1]]

    def samples(
        self, groups: np.ndarray, limit: int, cap: int
    ) -> tuple[list[int], list[list[Any]], int]:
        """For each of ``groups``: its distinct count (at most ``cap``, as an open
        window tracks them), its first ``limit`` values; and how many went past ``cap``.
        """
        bounds = np.asarray(self.bounds)
        lo = bounds[groups]
        counts = bounds[groups + 1] - lo
        if not self.order_values:
            return counts.tolist(), [[] for _ in range(len(groups))], 0
        over = int(np.maximum(counts - cap, 0).sum())
        hi = lo + np.minimum(counts, limit)
        values = self.order_values
        return (
            np.minimum(counts, cap).tolist(),
            [values[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)],
            over,
        )


def _pairs(gid: np.ndarray, values: np.ndarray, rows: np.ndarray | None, n_groups: int) -> _Pairs:
    if rows is not None:
        values = _where(rows, values)
    return _Pairs(gid, values, n_groups)


def _nonzero_rows(matrix: np.ndarray, names: list[str]) -> list[dict[str, int]]:
    """Each row's non-zero columns as ``{name: count}``."""
    rows, cols = np.nonzero(matrix)
    counts = matrix[rows, cols].astype(np.int64).tolist()
    keys = np.array(names, dtype=object)[cols].tolist()
    out: list[dict[str, int]] = [{} for _ in range(len(matrix))]
    for r, key, count in zip(rows.tolist(), keys, counts, strict=True):
        out[r][key] = count
    return out


class Windower:
    """Aggregates batches of events into per-key windows and hands over closed ones.

    Keys: the source address (``ip``, or ``host`` for a host name); for IPv6 also
    its network (``ipv6_64``); and the targeted user name (``user``). An event
    without a source address is not windowed (``stats.unkeyed``).
    """

    def __init__(self, config: WindowConfig | None = None) -> None:
        self.config = config or WindowConfig()
        self.stats = WindowerStats()
        #: The latest event time seen (None before the first timed event), and per stream.
        self.watermark: float | None = None
        self.watermarks: dict[str, float] = {}
        self._open: dict[WindowKey, _Window] = {}
        self._by_index: dict[int, set[WindowKey]] = {}
        # (key type, key) → window indexes open for it, least recently seen first.
        self._keys: OrderedDict[tuple[int, str], set[int]] = OrderedDict()
        self._memo: dict[str, tuple[int, str | None]] = {}

    # --- public API -------------------------------------------------------------------
    def add(self, events: Sequence[Event], stream: str = "") -> list[WindowStats]:
        """Aggregate one batch from ``stream``; returns the windows it closed (oldest first).

        ``events`` may be :class:`~soc.columns.EventColumns`, whose columns the
        detector then reuses.
        """
        if not events:
            return []
        self.stats.events += len(events)
        out = self._aggregate(columns_of(events), stream)
        out.extend(self._close(self._closable_below()))
        out.extend(self._evict())
        return self._finish(out)

    def advance(self, now: float) -> list[WindowStats]:
        """Move event time on to ``now`` without events (a quiet live source).

        Windows that ``now`` closes are handed over. Lines that arrive later with
        older timestamps are late, as after any other watermark move.
        """
        if self.watermark is None or now > self.watermark:
            self.watermark = now
        return self._finish(self._close(self._closable_below()))

    def flush(self) -> list[WindowStats]:
        """Hand over every open window (end of a replay)."""
        return self._finish(self._close(math.inf))

    def window_start(self, timestamp: float) -> float:
        """The start of the window ``timestamp`` falls in."""
        return math.floor(timestamp / self.config.seconds) * self.config.seconds

    # --- one batch ----------------------------------------------------------------------
    def _aggregate(self, events: EventColumns, stream: str) -> list[WindowStats]:
        """Group the batch by key and window; returns the windows it completes at once.

        A window the batch both opens and closes (most of them, in a replay) is
        built straight from the group's aggregates; the others are added to the
        open windows.
        """
        cfg = self.config
        stats = self.stats
        width = cfg.seconds
        ts = events.timestamps
        # The stream's watermark as each event found it: the running maximum before it.
        previous = self.watermarks.get(stream, np.nan)
        running = np.fmax.accumulate(np.concatenate(([previous], ts)))
        before = running[:-1]
        if not np.isnan(running[-1]):
            self.watermarks[stream] = float(running[-1])
            if self.watermark is None or running[-1] > self.watermark:
                self.watermark = float(running[-1])
        missing = np.isnan(ts)
        if missing.any():
            # Untimed events get the event time of their arrival; before any event
            # time is known, the batch's first one.
            known = ts[~missing]
            fill = np.where(np.isnan(before), known[0] if len(known) else np.nan, before)
            ts = np.where(missing, fill, ts)
            stats.untimed += int(np.count_nonzero(missing & ~np.isnan(ts)))
        with np.errstate(invalid="ignore"):
            late = (np.floor(ts / width) + 1) * width + cfg.late_seconds <= before
        # A late event goes to the oldest window still open: the one holding
        # (watermark - late_seconds), which closes only when the watermark moves on.
        ts = np.where(late, before - cfg.late_seconds, ts)
        addresses = events.addresses
        no_address = pd.isna(addresses)
        untimed = np.isnan(ts)
        stats.unkeyed += int(np.count_nonzero(no_address))
        stats.no_time += int(np.count_nonzero(~no_address & untimed))
        kept = np.flatnonzero(~no_address & ~untimed)
        if not len(kept):
            return []
        stats.windowed += len(kept)
        stats.late += int(np.count_nonzero(late[kept]))
        ev_ts = ts[kept]
        ev_wi = np.floor(ev_ts / width).astype(np.int64)
        ev_late = late[kept].astype(np.int64)
        ev_addr = addresses[kept]
        ev_count = events.counts[kept]
        ev_fail = events.failures[kept]
        ev_kind = events.kinds[kept]
        ev_succ = np.where(ev_kind == AUTH_SUCCESS, ev_count, 0)
        ev_user = self._cut(events.users[kept])
        present = set(ev_kind.tolist())
        nothing = np.full(len(kept), None, dtype=object)
        ev_port = events.ports[kept] if present & _PORT_KINDS else nothing
        ev_path = self._cut(events.paths[kept]) if present & _PATH_KINDS else nothing
        address_codes, address_names = pd.factorize(ev_addr)
        info = [self._address_info(a) for a in address_names.tolist()]
        ev_type = np.array([i[0] for i in info], dtype=np.int64)[address_codes]
        ev_net = np.array([i[1] for i in info], dtype=object)[address_codes]

        # Rows: every event under its address, IPv6 ones also under their network,
        # and those with a user name also under the user.
        n = len(kept)
        parts = [np.arange(n)]
        types = [ev_type]
        keys = [ev_addr]
        has_net = np.flatnonzero(~pd.isna(ev_net))
        if len(has_net):
            parts.append(has_net)
            types.append(np.full(len(has_net), _KT_NET))
            keys.append(ev_net[has_net])
        has_user = np.flatnonzero(~pd.isna(ev_user)) if cfg.user_keys else np.empty(0, int)
        if len(has_user):
            parts.append(has_user)
            types.append(np.full(len(has_user), _KT_USER))
            keys.append(ev_user[has_user])
        row = np.concatenate(parts)
        row_type = np.concatenate(types)
        key_codes, key_names = pd.factorize(np.concatenate(keys), sort=True)
        # One sortable code per (window, key type, key): the order windows are handed over in.
        row_wi = ev_wi[row]
        lowest = int(row_wi.min())
        composite = ((row_wi - lowest) * len(KEY_TYPES) + row_type) * max(
            len(key_names), 1
        ) + key_codes
        gid, group_codes = pd.factorize(composite, sort=True)
        n_groups = len(group_codes)
        frame = pd.DataFrame(
            {
                "count": ev_count[row],
                "fail": ev_fail[row],
                "succ": ev_succ[row],
                "late": ev_late[row],
                "t": ev_ts[row],
                "seq": row,
            }
        )
        grouped = frame.groupby(gid, sort=True)
        sums = grouped[["count", "fail", "succ", "late"]].sum()
        first_seen = grouped["t"].min().to_numpy()
        last_seen = grouped["t"].max().to_numpy()
        last_seq = grouped["seq"].max().to_numpy()
        g_kc = group_codes % max(len(key_names), 1)
        g_kt = (group_codes // max(len(key_names), 1)) % len(KEY_TYPES)
        g_wi = group_codes // (max(len(key_names), 1) * len(KEY_TYPES)) + lowest
        g_key = key_names[g_kc]

        kind_codes, kind_names = pd.factorize(ev_kind[row], sort=True)
        n_kinds = len(kind_names)
        by_kind = np.bincount(
            gid * n_kinds + kind_codes, weights=ev_count[row], minlength=n_groups * n_kinds
        ).reshape(n_groups, n_kinds)
        kind_list = kind_names.tolist()

        user_rows = row_type != _KT_USER
        multi_rows = (row_type == _KT_NET) | (row_type == _KT_USER)
        distinct = {
            "users": _pairs(gid, ev_user[row], user_rows, n_groups),
            "ports": _pairs(gid, ev_port[row], None, n_groups),
            "paths": _pairs(gid, ev_path[row], None, n_groups),
            "sources": _pairs(gid, ev_addr[row], multi_rows, n_groups),
        }

        # Which groups add to a window already open, and which the batch closes itself.
        below = self._closable_below()
        direct = g_wi < below
        if self._open:
            lowest = min(self._by_index)
            for g in np.flatnonzero(direct & (g_wi >= lowest)).tolist():
                if (int(g_kt[g]), g_key[g], int(g_wi[g])) in self._open:
                    direct[g] = False
        columns = [
            *(sums[c].tolist() for c in ("count", "fail", "succ", "late")),
            first_seen.tolist(),
            last_seen.tolist(),
            last_seq.tolist(),
        ]
        kinds_of = _nonzero_rows(by_kind, kind_list)
        chosen = np.flatnonzero(direct)
        cap = cfg.max_distinct
        users = distinct["users"].samples(chosen, cfg.sample_users, cap)
        ports = distinct["ports"].samples(chosen, cfg.sample_ports, cap)
        paths = distinct["paths"].samples(chosen, cfg.sample_paths, cap)
        sources = distinct["sources"].samples(chosen, cfg.sample_sources, cap)
        stats.distinct_overflow += users[2] + ports[2] + paths[2] + sources[2]
        # Positional: keyword arguments cost three times as much per row
        # (field order: soc.events.WindowStats, pinned by a test).
        events_, failures, successes, late_sum, first, last = columns[:6]
        direct_groups = chosen.tolist()
        starts = (g_wi[chosen] * width).tolist()
        out = list(
            map(
                WindowStats,
                g_key[chosen].tolist(),
                np.array(KEY_TYPES, dtype=object)[g_kt[chosen]].tolist(),
                starts,
                [start + width for start in starts],
                [events_[g] for g in direct_groups],
                [failures[g] for g in direct_groups],
                [successes[g] for g in direct_groups],
                users[0],
                users[1],
                ports[0],
                ports[1],
                paths[0],
                paths[1],
                [first[g] for g in direct_groups],
                [last[g] for g in direct_groups],
                [kinds_of[g] for g in direct_groups],
                sources[0],
                sources[1],
                [late_sum[g] for g in direct_groups],
                itertools.repeat(False),
            )
        )
        # The rest join (or open) windows that stay open.
        overflow = 0
        touched: list[tuple[int, tuple[int, str]]] = []
        for g in np.flatnonzero(~direct).tolist():
            events_, failures, successes, late_, first, last, seq = (col[g] for col in columns)
            kt, key, index = int(g_kt[g]), g_key[g], int(g_wi[g])
            wkey = (kt, key, index)
            window = self._open.get(wkey)
            if window is None:
                window = self._open[wkey] = _Window()
                self._by_index.setdefault(index, set()).add(wkey)
                self._keys.setdefault((kt, key), set()).add(index)
            window.events += int(events_)
            window.failures += int(failures)
            window.successes += int(successes)
            window.late += int(late_)
            window.first = min(window.first, float(first))
            window.last = max(window.last, float(last))
            for kind, count in kinds_of[g].items():
                window.by_kind[kind] = window.by_kind.get(kind, 0) + count
            for name, d in distinct.items():
                for value in d.values(g):
                    overflow += window.distinct(name).add(value, cap)
            touched.append((int(seq), (kt, key)))
        stats.distinct_overflow += overflow
        # Least recently seen first: keys move to the end in the order of their last event.
        touched.sort(key=lambda item: item[0])
        for _, key_ in touched:
            self._keys.move_to_end(key_)
        return out

    def _cut(self, values: np.ndarray) -> np.ndarray:
        """Attacker-controlled text with overlong values cut (checked once per distinct value)."""
        limit = self.config.max_value_length
        codes, names = pd.factorize(values)
        long = [i for i, name in enumerate(names.tolist()) if len(name) > limit]
        if not long:
            return values
        names = names.copy()
        for i in long:
            names[i] = names[i][: limit - 1] + "…"
        self.stats.values_cut += int(np.isin(codes, long).sum())
        return _where(codes >= 0, names[np.maximum(codes, 0)])

    def _address_info(self, address: str) -> tuple[int, str | None]:
        """The address's key type and its IPv6 network key (None for IPv4 and names)."""
        found = self._memo.get(address)
        if found is not None:
            return found
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            found = (_KT_HOST, None)
        else:
            prefix = self.config.ipv6_prefix
            net = None
            if prefix and isinstance(ip, ipaddress.IPv6Address):
                net = str(ipaddress.IPv6Network((ip, prefix), strict=False))
            found = (_KT_IP, net)
        self._memo[address] = found
        return found

    # --- closing ------------------------------------------------------------------------
    def _closable_below(self) -> float:
        """Windows with an index below this are closed by the watermark."""
        if self.watermark is None:
            return -math.inf
        cfg = self.config
        # Window i closes when (i + 1) * seconds + late_seconds <= watermark.
        return math.floor((self.watermark - cfg.late_seconds) / cfg.seconds)

    def _close(self, below: float) -> list[WindowStats]:
        out: list[WindowStats] = []
        for index in sorted(i for i in self._by_index if i < below):
            for wkey in self._by_index.pop(index):
                out.append(self._emit(wkey, partial=False))
                held = self._keys[(wkey[0], wkey[1])]
                held.discard(index)
                if not held:
                    del self._keys[(wkey[0], wkey[1])]
        return out

    def _evict(self) -> list[WindowStats]:
        out: list[WindowStats] = []
        while len(self._keys) > self.config.max_keys:
            (kt, key), indexes = self._keys.popitem(last=False)
            self.stats.evicted_keys += 1
            for index in sorted(indexes):
                wkey = (kt, key, index)
                held = self._by_index[index]
                held.discard(wkey)
                if not held:
                    del self._by_index[index]
                out.append(self._emit(wkey, partial=True))
        return out

    def _emit(self, wkey: WindowKey, *, partial: bool) -> WindowStats:
        cfg = self.config
        window = self._open.pop(wkey)
        start = wkey[2] * cfg.seconds
        return WindowStats(
            key=wkey[1],
            key_type=KEY_TYPES[wkey[0]],
            window_start=start,
            window_end=start + cfg.seconds,
            events=window.events,
            failures=window.failures,
            successes=window.successes,
            distinct_users=len(window.values("users")),
            users=_first(window.values("users"), cfg.sample_users),
            distinct_ports=len(window.values("ports")),
            ports=[int(p) for p in _first(window.values("ports"), cfg.sample_ports)],
            distinct_paths=len(window.values("paths")),
            paths=_first(window.values("paths"), cfg.sample_paths),
            first_seen=window.first,
            last_seen=window.last,
            by_kind=dict(sorted(window.by_kind.items())),
            distinct_sources=len(window.values("sources")),
            sources=_first(window.values("sources"), cfg.sample_sources),
            late=window.late,
            partial=partial,
        )

    def _finish(self, out: list[WindowStats]) -> list[WindowStats]:
        # Mostly sorted already (a batch's own windows come out in order).
        out.sort(key=operator.attrgetter("window_start", "key_type", "key"))
        self.stats.windows_emitted += len(out)
        self.stats.partial_windows += sum(1 for w in out if w.partial)
        self.stats.open_windows = len(self._open)
        self.stats.open_keys = len(self._keys)
        return out


def _first(values: dict[Any, None], n: int) -> list[Any]:
    return list(itertools.islice(values, n))


def _where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask`` holds, else None (object arrays)."""
    out = np.array(values, dtype=object)
    out[~mask] = None
    return out


__all__ = ["KEY_HOST", "KEY_IP", "KEY_IPV6_NET", "KEY_USER", "Windower"]
