"""The detector: rules over micro-batches of events, campaigns kept as incidents.

Each source key (an address; an IPv6 address's network; a host name) has one
*tracker* per family of activity: ``auth`` (logins: sshd, PAM…), ``web`` (HTTP)
and ``net`` (firewall drops). A tracker's *campaign* is its activity with no gap
longer than ``quiet_seconds``; when a rule fires, the campaign becomes an incident
carrying everything the campaign did since it started, and every later batch
updates that same incident (its ``detector_key`` stays the same) until the key goes
quiet. Distributed attacks are tracked the same way per targeted user name.

How a batch is processed, and why it is deterministic
-----------------------------------------------------
The batch's events become columns (numpy), sorted by tracker. Each tracker's
clock only moves forward: an event older than the tracker's latest is taken at the
latest time (``stats.reordered``), so per tracker the times are sorted in arrival
order. Sliding counts ("failures within the 15 s before this one") are then one
``searchsorted`` over all trackers at once, with each tracker's previous failures
(a bounded tail) in front of its new ones. Distinct counts (users, paths, ports,
sources) are per campaign. Every rule is evaluated at every event as if events
came one at a time, and an incident's content depends only on its campaign's
events, so the same events in the same order give the same incidents whether they
come in one batch or in many.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd

from soc.detect.allow import AllowList
from soc.detect.base import DetectConfig, DetectorStats, severity
from soc.errors import ConfigError
from soc.events import (
    ACCESS_DENIED,
    AUTH_FAILURE,
    AUTH_SUCCESS,
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    FIREWALL_DROP,
    INVALID_USER,
    PASSWORD_SPRAY,
    PORT_SCAN,
    PREAUTH,
    SLOW_BRUTE_FORCE,
    TECHNIQUES,
    WEB_AUTH_BRUTE_FORCE,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    WEB_SCAN,
    Event,
    Incident,
    failure_counts,
)

#: Families of activity a source key is tracked for, each with its own campaigns.
AUTH, WEB, NET = 0, 1, 2
FAMILIES: Final = ("auth", "web", "net")
USERS_FAMILY: Final = "users"  # distributed attacks, tracked per targeted user
FAMILY_OF_KIND: Final[dict[str, int]] = {
    AUTH_FAILURE: AUTH,
    INVALID_USER: AUTH,
    ACCESS_DENIED: AUTH,
    PREAUTH: AUTH,
    AUTH_SUCCESS: AUTH,
    WEB_REQUEST: WEB,
    WEB_AUTH_FAILURE: WEB,
    FIREWALL_DROP: NET,
}
KEY_IP, KEY_IPV6_NET, KEY_HOST, KEY_USER = "ip", "ipv6_64", "host", "user"
_KEY_TYPES = (KEY_IP, KEY_IPV6_NET, KEY_HOST)

#: Rules of each family, in the order their columns are computed.
_RULES_BY_FAMILY: Final = (
    (BRUTE_FORCE, SLOW_BRUTE_FORCE, PASSWORD_SPRAY, CREDENTIAL_COMPROMISE),
    (WEB_AUTH_BRUTE_FORCE, WEB_SCAN),
    (PORT_SCAN,),
)
_ALLOWED: Final = (True, "", 0, False)
_MEMO_SIZE = 65_536
_NEVER: Final = 2**62  # a batch position no event reaches

AddressInfo = tuple[bool, str, int, bool]  # (allow-listed, key, key type index, is an IP)


# --- campaign state ------------------------------------------------------------------------
class _Distinct:
    """Distinct values in first-seen order, tracked up to a cap; the rest counted."""

    __slots__ = ("overflow", "values")

    def __init__(self) -> None:
        self.values: dict[Any, None] = {}
        self.overflow = 0

    def add(self, value: Any, cap: int) -> bool:
        """Track ``value``; True when it is new and tracked."""
        values = self.values
        if value in values:
            return False
        if len(values) >= cap:
            self.overflow += 1
            return False
        values[value] = None
        return True

    def first(self, n: int) -> list[Any]:
        return list(itertools.islice(self.values, n))


class _Evidence:
    """Raw lines of a campaign: the first ``half`` and the latest ``size - half``."""

    __slots__ = ("head", "half", "tail")

    def __init__(self, size: int) -> None:
        self.half = size // 2
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=size - self.half)

    def extend(self, lines: Sequence[str]) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head.extend(lines[:room])
            lines = lines[room:]
        if lines and self.tail.maxlen:
            self.tail.extend(lines)

    def lines(self) -> list[str]:
        return [*self.head, *self.tail]


class _Campaign:
    """One key's (or one targeted user's) activity with no gap longer than quiet_seconds."""

    __slots__ = (
        "closed_at",
        "closed_reason",
        "detector_key",
        "events",
        "evidence",
        "failures",
        "fired",
        "first",
        "last",
        "last_t",
        "linked",
        "opened_at",
        "peak",
        "horizon_peak",
        "sources",
        "start",
        "successes",
        "users",
        "values",
    )

    def __init__(self, start: float, evidence_lines: int) -> None:
        self.start = start  # the tracker's clock at the first event: fixed, names the campaign
        self.last_t = start
        self.detector_key = ""
        self.events = 0
        self.failures = 0
        self.successes = 0
        self.first = math.inf
        self.last = -math.inf
        self.peak = 0  # most failures within window_seconds
        self.horizon_peak = 0  # most failures within slow_horizon_seconds, earlier ones included
        self.users = _Distinct()  # user names seen in the campaign
        self.values = _Distinct()  # what the family's distinct rule counts
        self.sources = _Distinct()  # source addresses (IPv6 networks, distributed attacks)
        self.evidence = _Evidence(evidence_lines)
        self.fired: dict[str, float] = {}  # rule → clock time it first fired
        self.opened_at: float | None = None
        self.linked: _Distributed | None = None
        self.closed_reason: str | None = None
        self.closed_at: float | None = None


class _Tracker:
    """One source key's state in one family: its clock, failure tail and campaign."""

    __slots__ = ("campaign", "clock", "due", "family", "key", "key_type", "stream", "tail")

    def __init__(self, family: int, key: str, key_type: str) -> None:
        self.family = family
        self.key = key
        self.key_type = key_type
        self.clock = math.nan
        self.stream = ""  # the stream whose event time it goes quiet in (its latest)
        self.due: int | None = None  # its entry in the detector's schedule, if any
        # The latest failures' clock times and weights (what sliding counts look back on).
        self.tail: tuple[np.ndarray, np.ndarray] | None = None
        self.campaign: _Campaign | None = None


class _UserTracker:
    """One targeted user name's state for distributed detection."""

    __slots__ = ("campaign", "clock", "due", "stream", "user")

    def __init__(self, user: str) -> None:
        self.user = user
        self.clock = math.nan
        self.stream = ""
        self.due: int | None = None  # its entry in the detector's schedule, if any
        self.campaign: _Campaign | None = None


class _Distributed:
    """A distributed incident: the campaigns of the users the same sources attack."""

    __slots__ = (
        "closed_at",
        "closed_reason",
        "detector_key",
        "members",
        "members_overflow",
        "opened_at",
    )

    def __init__(self, detector_key: str, opened_at: float) -> None:
        self.detector_key = detector_key
        self.opened_at = opened_at
        self.members: list[_Campaign] = []  # up to sample_size targeted users' campaigns
        self.members_overflow = 0  # campaigns that joined past that (not in the facts)
        self.closed_reason: str | None = None
        self.closed_at: float | None = None

    @property
    def last_t(self) -> float:
        return max(m.last_t for m in self.members)


class _Times(NamedTuple):
    """When an incident's campaign started, was seen, opened and closed."""

    start: float
    first: float
    last: float
    opened_at: float | None
    closed_reason: str | None
    closed_at: float | None


# --- the detector ----------------------------------------------------------------------------
class Detector:
    """Turns batches of events into incidents: opened, updated, closed.

    ``host_addresses``: this machine's own addresses, allow-listed when
    ``config.include_host_addresses`` (see
    :func:`soc.detect.allow.discover_host_addresses`); the library never looks
    them up itself.
    """

    def __init__(
        self, config: DetectConfig | None = None, *, host_addresses: Iterable[str] = ()
    ) -> None:
        self.config = config or DetectConfig()
        cfg = self.config
        entries = list(cfg.allow_list)
        if cfg.include_host_addresses:
            entries.extend(host_addresses)
        self.allow_list = AllowList(entries)
        self.stats = DetectorStats()
        #: The latest event time seen (None before the first timed event), and per stream.
        self.watermark: float | None = None
        self.watermarks: dict[str, float] = {}
        self._threshold = cfg.threshold
        self._pending_threshold: int | None = None
        self._failure_kinds = frozenset(cfg.failure_kinds)
        self._trackers: OrderedDict[tuple[int, str], _Tracker] = OrderedDict()
        # The start (ms) of each key's latest campaign handed over: see _name.
        self._ended: OrderedDict[tuple[int, str], int] = OrderedDict()
        self._users: OrderedDict[str, _UserTracker] = OrderedDict()
        self._distributed: list[_Distributed] = []
        # Per stream, when to look at a tracker again: (event time, entry, is a source
        # key, its key), in that stream's event time.
        self._due: dict[str, list[tuple[float, int, bool, Any]]] = {}
        self._tiebreak = itertools.count()
        self._memo: dict[str, AddressInfo] = {}
        self._batch: Sequence[Event] = ()  # the batch being processed (evidence lines)
        self._stream = ""  # and the stream it came from
        self._escalated: dict[str, list[tuple[int, int]]] = {}  # per batch: see _detect_keys

    # --- public API --------------------------------------------------------------------
    @property
    def threshold(self) -> int:
        """The brute-force threshold in force (failures within ``window_seconds``)."""
        return self._threshold

    @property
    def next_threshold(self) -> int:
        """The threshold the next batch is judged by (a change waiting, else the one in force)."""
        pending = self._pending_threshold
        return self._threshold if pending is None else pending

    def set_threshold(self, n: int) -> None:
        """Change the threshold; it takes effect with the next batch."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"must be a whole number of at least 1, got {n!r}", "threshold")
        if n > self.config.max_threshold:
            raise ConfigError(
                f"must be at most max_threshold ({self.config.max_threshold})", "threshold"
            )
        self._pending_threshold = n

    def process(self, events: Sequence[Event], stream: str = "") -> list[Incident]:
        """Run every rule over one batch; returns the incidents it opened, updated or closed.

        Each incident appears at most once, as it stands after the batch.
        ``stream`` names where the batch came from when several sources are read
        one after the other (a replay of several files): campaigns go quiet in the
        event time of the stream that last fed them, so one file's late hours do
        not close another file's campaigns early.
        """
        if self._pending_threshold is not None:
            self._threshold, self._pending_threshold = self._pending_threshold, None
        out: dict[str, Incident] = {}
        self.stats.events += len(events)
        self._batch = events
        self._stream = stream
        try:
            columns = self._columns(events)
            if columns is not None:
                candidates = self._detect_keys(columns, out)
                if candidates is not None:
                    self._detect_users(candidates, out)
        finally:
            self._batch = ()
        now = self.watermarks.get(stream)
        if now is not None:
            # Campaigns the batch's event time left quiet close now.
            self._expire(stream, now, out)
        self._evict(out)
        return self._finish(out)

    def close_quiet(self, now: float) -> list[Incident]:
        """Close the campaigns quiet for ``quiet_seconds`` at event time ``now``.

        Returns the incidents closed. Trackers whose every horizon has passed are
        forgotten. :meth:`process` does this at the batch's latest event time
        already; call it when event time moves on without events (a quiet live
        source: the engine's clock).
        """
        out: dict[str, Incident] = {}
        for stream in list(self._due):
            self._expire(stream, now, out)
        quiet = self.config.quiet_seconds
        for incident in [d for d in self._distributed if d.last_t + quiet <= now]:
            self._close_distributed(incident, "quiet", incident.last_t + quiet, out)
        return self._finish(out)

    def flush(self) -> list[Incident]:
        """End of input: close every open incident and forget all state.

        Campaigns already quiet at the latest event time close as ``quiet`` (as
        :meth:`close_quiet` would have closed them), the others as
        ``end_of_input``; so the result does not depend on whether or when
        :meth:`close_quiet` was called.
        """
        out: dict[str, Incident] = {}
        quiet = self.config.quiet_seconds
        now = math.inf if self.watermark is None else self.watermark
        for tracker in self._trackers.values():
            campaign = tracker.campaign
            if campaign is not None:
                if campaign.last_t + quiet <= self.watermarks.get(tracker.stream, now):
                    self._close(tracker, "quiet", campaign.last_t + quiet, out)
                else:
                    self._close(tracker, "end_of_input", campaign.last_t, out)
        for incident in list(self._distributed):
            last = incident.last_t
            if last + quiet <= now:
                self._close_distributed(incident, "quiet", last + quiet, out)
            else:
                self._close_distributed(incident, "end_of_input", last, out)
        self._trackers.clear()
        self._users.clear()
        self._due.clear()
        return self._finish(out)

    def open_incidents(self) -> list[Incident]:
        """The incidents open now, as they stand."""
        out = [
            self._snapshot(t, t.campaign)
            for t in self._trackers.values()
            if t.campaign is not None and t.campaign.fired
        ]
        out.extend(self._snapshot_distributed(d) for d in self._distributed)
        out.sort(key=lambda i: (i.first_seen, i.detector_key))
        return out

    # --- columns ----------------------------------------------------------------------
    def _columns(self, events: Sequence[Event]) -> dict[str, np.ndarray] | None:
        """The batch's detection-relevant events as columns (numpy arrays)."""
        stats = self.stats
        if not events:
            return None
        kinds = np.array([e.kind for e in events], dtype=object)
        kind_codes, kind_names = pd.factorize(kinds)
        families = [FAMILY_OF_KIND.get(name, -1) for name in kind_names.tolist()]
        fam_all = np.array([*families, -1], dtype=np.int64)[kind_codes]
        # Event.key_address, inlined (a property call per event costs more).
        address_codes, addresses = pd.factorize(
            np.array(
                [e.source_ip if e.source_ip is not None else e.source_address for e in events],
                dtype=object,
            )
        )
        memo = self._memo
        info = [memo.get(a) or self._address_info(a) for a in addresses.tolist()]
        allowed = np.array([i[0] for i in info] + [False], dtype=bool)[address_codes]
        relevant = fam_all >= 0
        keyed = address_codes >= 0
        stats.ignored += int(np.count_nonzero(~relevant))
        stats.unkeyed += int(np.count_nonzero(relevant & ~keyed))
        stats.allow_listed += int(np.count_nonzero(relevant & keyed & allowed))
        seq = np.flatnonzero(relevant & keyed & ~allowed)
        if not len(seq):
            return None
        pick = [events[i] for i in seq.tolist()] if len(seq) < len(events) else events
        codes = address_codes[seq]
        fam = fam_all[seq]
        kind = kinds[seq]
        count = np.array([e.count for e in pick], dtype=np.int64)
        fail = np.array(failure_counts(pick), dtype=np.int64)
        auth = fam == AUTH
        web = fam == WEB
        net = fam == NET
        counted = pd.Series(kind).isin(self._failure_kinds).to_numpy()
        weight = np.where(auth & counted, fail, 0)
        weight = np.where(web & (kind == WEB_AUTH_FAILURE), count, weight)
        succ = np.where(kind == AUTH_SUCCESS, count, 0)
        fail = np.where(auth, weight, np.where(net, count, fail))
        users = self._cut(np.array([e.user for e in pick], dtype=object))
        value = _where(auth & (weight > 0), users)
        web_paths = web & (kind == WEB_REQUEST)
        if web_paths.any():
            failed_path = web & (kind == WEB_REQUEST) & (fail > 0)
            paths = self._cut(np.array([e.url_path for e in pick], dtype=object))
            value = np.where(failed_path, paths, value)
        if net.any():
            ports = np.array([e.destination_port for e in pick], dtype=object)
            value = np.where(net, ports, value)
        # Evidence: the attempts and logins of a login campaign; everything else.
        # (The lines themselves are read only for the few rows kept.)
        evidence = ~auth | (weight > 0) | (succ > 0)
        times = np.array([e.timestamp for e in pick], dtype=float)
        previous = self.watermarks.get(self._stream, np.nan)
        running = np.fmax.accumulate(np.concatenate(([previous], times)))
        if not np.isnan(running[-1]):
            self.watermarks[self._stream] = float(running[-1])
            self.watermark = max(self.watermarks.values())
        missing = np.isnan(times)
        if missing.any():
            # No timestamp: the event time the event arrived at.
            before = running[:-1]
            known = times[~missing]
            fill = np.where(np.isnan(before), known[0] if len(known) else np.nan, before)
            times = np.where(missing, fill, times)
        key_of = np.array([i[1] for i in info], dtype=object)
        ktype_of = np.array([i[2] for i in info], dtype=np.int64)
        is_ip = np.array([i[3] for i in info], dtype=bool)[codes]
        columns = {
            "seq": seq,
            "ts": times,
            "fam": fam,
            "key": key_of[codes],
            "ktype": ktype_of[codes],
            "addr": _where(is_ip, addresses[codes]),
            "count": count,
            "weight": weight,
            "fail": fail,
            "succ": succ,
            "user": users,
            "value": value,
            "evidence": evidence,
        }
        keep = ~np.isnan(times)
        if not keep.all():
            stats.no_time += int(np.count_nonzero(~keep))
            columns = {name: column[keep] for name, column in columns.items()}
            if not len(columns["seq"]):
                return None
        stats.detected_on += len(columns["seq"])
        return columns

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

    def _address_info(self, address: str) -> AddressInfo:
        """Whether ``address`` is allow-listed, and the key it is tracked under."""
        memo = self._memo
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        if address in self.allow_list:
            memo[address] = _ALLOWED
            return _ALLOWED
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            info: AddressInfo = (False, address, _KEY_TYPES.index(KEY_HOST), False)
        else:
            prefix = self.config.ipv6_prefix
            if isinstance(ip, ipaddress.IPv6Address) and prefix:
                network = str(ipaddress.IPv6Network((ip, prefix), strict=False))
                info = (False, network, _KEY_TYPES.index(KEY_IPV6_NET), True)
            else:
                info = (False, address, _KEY_TYPES.index(KEY_IP), True)
        memo[address] = info
        return info

    # --- source keys -------------------------------------------------------------------
    def _detect_keys(
        self, col: dict[str, np.ndarray], out: dict[str, Incident]
    ) -> dict[str, np.ndarray] | None:
        """Every source-key rule over the batch; returns the distributed candidates."""
        cfg = self.config
        key_codes, key_names = pd.factorize(col["key"])
        group_codes, group_ids = pd.factorize(key_codes * 3 + col["fam"])
        order = np.argsort(group_codes, kind="stable")
        s = {name: column[order] for name, column in col.items()}
        code = group_codes[order]
        m = len(code)
        n_groups = len(group_ids)
        first_in_group = np.empty(m, dtype=bool)
        first_in_group[0] = True
        np.not_equal(code[1:], code[:-1], out=first_in_group[1:])
        group_starts = np.flatnonzero(first_in_group)

        # Trackers, their clocks and whether a campaign is going on.
        trackers: list[_Tracker] = []
        clock = np.full(n_groups, np.nan)
        active = np.zeros(n_groups, dtype=bool)
        pre_fired = np.zeros(n_groups, dtype=bool)
        ktype_first = s["ktype"][group_starts]
        for g, group_id in enumerate(group_ids.tolist()):
            key_code, family = divmod(group_id, 3)
            name = key_names[key_code]
            tracker = self._trackers.get((family, name))
            if tracker is None:
                tracker = _Tracker(family, name, _KEY_TYPES[ktype_first[g]])
                self._trackers[(family, name)] = tracker
            trackers.append(tracker)
            clock[g] = tracker.clock
            active[g] = tracker.campaign is not None
            pre_fired[g] = active[g] and bool(tracker.campaign and tracker.campaign.fired)

        t, units, unit_starts, unit_new = self._clock_and_units(
            s["ts"], code, first_in_group, clock, active
        )
        n_units = len(unit_starts)
        unit_group = code[unit_starts]
        fam = s["fam"]
        weight = s["weight"]

        # Sliding sums of failures, each tracker's earlier failures in front.
        sums = self._sliding_sums(trackers, code, t, weight)
        hits: dict[str, np.ndarray] = {}
        has_weight = weight > 0
        auth = fam == AUTH
        web = fam == WEB
        window = sums(cfg.window_seconds)
        threshold = self._threshold
        hits[BRUTE_FORCE] = auth & has_weight & (window >= threshold)
        peak = np.where(has_weight, window, 0)
        horizon_peak = np.zeros(m, dtype=peak.dtype)
        if auth.any():
            slow = sums(cfg.slow_horizon_seconds)
            hits[SLOW_BRUTE_FORCE] = auth & has_weight & (slow >= cfg.slow_failures)
            # Exact up to slow_failures whatever the batches (the trackers' tails
            # keep at least that many), so counted up to it.
            horizon_peak = np.where(auth & has_weight, np.minimum(slow, cfg.slow_failures), 0)
            lookback = sums(cfg.compromise_lookback_seconds)
            hits[CREDENTIAL_COMPROMISE] = (
                auth & (s["succ"] > 0) & (lookback >= cfg.compromise_failures)
            )
        if web.any():
            horizon = sums(cfg.web_auth_horizon_seconds)
            hits[WEB_AUTH_BRUTE_FORCE] = (
                web & has_weight & ((window >= threshold) | (horizon >= cfg.web_auth_failures))
            )

        # Campaigns: the tracker's own when it goes on, else new ones.
        campaigns: list[_Campaign] = []
        for u in range(n_units):
            g = unit_group[u]
            tracker = trackers[g]
            ongoing = tracker.campaign
            if unit_new[u] or ongoing is None:
                campaign = _Campaign(float(t[unit_starts[u]]), cfg.evidence_lines)
                campaign.detector_key = self._name(tracker, campaign.start)
            else:
                campaign = ongoing
            campaigns.append(campaign)

        # Distinct values per campaign: users failed (auth), error paths (web), ports (net).
        distinct, _ = self._distinct_counts(campaigns, units, unit_starts, s["value"], "values")
        needed = np.array([cfg.spray_users, cfg.web_scan_paths, cfg.port_scan_ports])[fam]
        reached = distinct >= needed
        hits[PASSWORD_SPRAY] = auth & reached
        hits[WEB_SCAN] = web & reached
        hits[PORT_SCAN] = (fam == NET) & reached
        self._distinct_counts(campaigns, units, unit_starts, s["user"], "users")
        ipv6 = s["ktype"] == _KEY_TYPES.index(KEY_IPV6_NET)
        if ipv6.any():
            self._distinct_counts(campaigns, units, unit_starts, s["addr"], "sources", ipv6)

        first_hit = {rule: _first_per_unit(mask, units) for rule, mask in hits.items()}

        # Which failures come from a source that has not raised anything (distributed).
        escalation = np.full(n_units, m, dtype=np.int64)
        for u, campaign in enumerate(campaigns):
            if not unit_new[u] and campaign.fired:
                escalation[u] = -1
        for rule in (BRUTE_FORCE, SLOW_BRUTE_FORCE, PASSWORD_SPRAY, CREDENTIAL_COMPROMISE):
            for u, j in first_hit.get(rule, {}).items():
                escalation[u] = min(escalation[u], j)
        position = np.arange(m)
        candidate = auth & has_weight & ~pd.isna(s["value"]) & (position < escalation[units])
        # For each source, its login campaigns over the batch: (from, raised), where
        # both are arrival positions in the batch (-1: before it; never: _NEVER).
        escalated: dict[str, list[tuple[int, int]]] = {}
        seq = s["seq"]
        for u in range(n_units):
            g = int(unit_group[u])
            tracker = trackers[g]
            if tracker.family != AUTH:
                continue
            spans = escalated.setdefault(tracker.key, [])
            if not spans and unit_new[u]:
                spans.append((-1, -1 if pre_fired[g] else _NEVER))
            start = int(seq[unit_starts[u]]) if unit_new[u] else -1
            raised = int(escalation[u])
            spans.append((start, -1 if raised < 0 else int(seq[raised]) if raised < m else _NEVER))

        # Totals per campaign.
        events_sum = np.add.reduceat(s["count"], unit_starts)
        fail_sum = np.add.reduceat(s["fail"], unit_starts)
        succ_sum = np.add.reduceat(s["succ"], unit_starts)
        first_ts = np.minimum.reduceat(s["ts"], unit_starts)
        last_ts = np.maximum.reduceat(s["ts"], unit_starts)
        peak_max = np.maximum.reduceat(peak, unit_starts)
        horizon_max = np.maximum.reduceat(horizon_peak, unit_starts)
        unit_ends = np.append(unit_starts[1:], m)
        last_t = t[unit_ends - 1]
        evidence = self._evidence_rows(s["evidence"], s["seq"], units, n_units)

        touched: dict[int, tuple[_Tracker, _Campaign]] = {}
        for u in range(n_units):
            tracker = trackers[unit_group[u]]
            campaign = campaigns[u]
            if unit_new[u]:
                old = tracker.campaign
                if old is not None:
                    self._close(tracker, "quiet", old.last_t + cfg.quiet_seconds, out)
                    touched.pop(id(old), None)
                tracker.campaign = campaign
            campaign.events += int(events_sum[u])
            campaign.failures += int(fail_sum[u])
            campaign.successes += int(succ_sum[u])
            campaign.first = min(campaign.first, float(first_ts[u]))
            campaign.last = max(campaign.last, float(last_ts[u]))
            campaign.peak = max(campaign.peak, int(peak_max[u]))
            campaign.horizon_peak = max(campaign.horizon_peak, int(horizon_max[u]))
            campaign.last_t = float(last_t[u])
            lines = evidence.get(u)
            if lines:
                campaign.evidence.extend(lines)
            was_open = bool(campaign.fired)
            for rule in _RULES_BY_FAMILY[tracker.family]:
                hit = first_hit.get(rule, {}).get(u)
                if hit is not None and rule not in campaign.fired:
                    campaign.fired[rule] = float(t[hit])
            if campaign.fired and not was_open:
                campaign.opened_at = min(campaign.fired.values())
            if campaign.fired:
                if not was_open:
                    self._count_opened(self._kind(tracker.family, campaign))
                touched[id(campaign)] = (tracker, campaign)

        # Tracker clocks, failure tails, recency, and when each goes quiet.
        group_ends = np.append(group_starts[1:], m)
        group_clock = t[group_ends - 1]
        group_last_seq = s["seq"][group_ends - 1]
        self._keep_tails(trackers, sums.tails())
        for g in np.argsort(group_last_seq, kind="stable").tolist():
            tracker = trackers[g]
            tracker.clock = float(group_clock[g])
            self._trackers.move_to_end((tracker.family, tracker.key))
            if tracker.due is None or tracker.stream != self._stream:
                tracker.stream = self._stream
                self._schedule(tracker.clock + cfg.quiet_seconds, tracker)
        for tracker, campaign in touched.values():
            out[campaign.detector_key] = self._snapshot(tracker, campaign)

        if not candidate.any():
            return None
        self._escalated = escalated
        pick = np.flatnonzero(candidate)
        # Back to arrival order: users are tracked in the order their attempts came.
        pick = pick[np.argsort(s["seq"][pick], kind="stable")]
        return {
            "seq": s["seq"][pick],
            "ts": s["ts"][pick],
            "user": s["value"][pick],
            "source": s["key"][pick],
            "addr": s["addr"][pick],
            "weight": weight[pick],
            "evidence": s["evidence"][pick],
        }

    def _clock_and_units(
        self,
        ts: np.ndarray,
        code: np.ndarray,
        first_in_group: np.ndarray,
        clock: np.ndarray,
        active: np.ndarray,
        *,
        count_reordered: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-tracker clock times, and the campaign unit of every (tracker-sorted) event.

        Returns ``(t, units, unit_starts, unit_new)``: ``unit_new[u]`` is True when
        unit ``u`` is a new campaign rather than the tracker's ongoing one.
        """
        quiet = self.config.quiet_seconds
        t = pd.Series(ts).groupby(code, sort=False).cummax().to_numpy()
        t = np.fmax(t, clock[code])
        if count_reordered:
            self.stats.reordered += int(np.count_nonzero(t > ts))
        previous = np.empty_like(t)
        previous[1:] = t[:-1]
        previous[first_in_group] = clock[code[first_in_group]]
        with np.errstate(invalid="ignore"):
            gap = t - previous > quiet
        new = gap | (first_in_group & ~active[code])
        starts_mask = first_in_group | new
        units = np.cumsum(starts_mask) - 1
        unit_starts = np.flatnonzero(starts_mask)
        return t, units, unit_starts, new[unit_starts]

    def _sliding_sums(
        self, trackers: list[_Tracker], code: np.ndarray, t: np.ndarray, weight: np.ndarray
    ) -> _SlidingSums:
        parts_code = [code]
        parts_t = [t]
        parts_w = [weight]
        tail_length = 0
        for g, tracker in enumerate(trackers):
            if tracker.tail is not None:
                tail_t, tail_w = tracker.tail
                parts_code.append(np.full(len(tail_t), g, dtype=code.dtype))
                parts_t.append(tail_t)
                parts_w.append(tail_w)
                tail_length += len(tail_t)
        return _SlidingSums(
            np.concatenate(parts_code),
            np.concatenate(parts_t),
            np.concatenate(parts_w),
            len(code),
            tail_length,
            self._longest_horizon(),
            self._tail_size(),
            self.config.window_seconds,
            self.config.max_threshold,
        )

    def _distinct_counts(
        self,
        campaigns: list[_Campaign],
        units: np.ndarray,
        unit_starts: np.ndarray,
        values: np.ndarray,
        attribute: str,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add each event's value to its campaign's distinct set.

        Returns the running distinct count at each event, and whether the event
        added a new value.
        """
        cap = self.config.max_distinct
        present = ~pd.isna(values)
        if mask is not None:
            present &= mask
        rows = np.flatnonzero(present)
        new = np.zeros(len(values), dtype=np.int64)
        base = np.zeros(len(campaigns), dtype=np.int64)
        if len(rows):
            value_codes, names = pd.factorize(values[rows])
            pairs = units[rows] * len(names) + value_codes
            _, first_index = np.unique(pairs, return_index=True)
            firsts = rows[np.sort(first_index)]
            sets: list[_Distinct] = [getattr(c, attribute) for c in campaigns]
            base[:] = [len(c_set.values) for c_set in sets]
            before = sum(c_set.overflow for c_set in sets)
            for j, u, v in zip(
                firsts.tolist(), units[firsts].tolist(), values[firsts].tolist(), strict=True
            ):
                if sets[u].add(v, cap):
                    new[j] = 1
            self.stats.distinct_overflow += sum(c_set.overflow for c_set in sets) - before
        running = np.cumsum(new)
        at_start = running[unit_starts] - new[unit_starts]
        counts: np.ndarray = base[units] + running - at_start[units]
        return counts, new

    def _evidence_rows(
        self, eligible: np.ndarray, seq: np.ndarray, units: np.ndarray, n_units: int
    ) -> dict[int, list[str]]:
        """Per campaign unit, the raw lines that may become evidence (at most as many as kept)."""
        size = self.config.evidence_lines
        rows = np.flatnonzero(eligible)
        if not size or not len(rows):
            return {}
        row_units = units[rows]
        bounds = np.searchsorted(row_units, np.arange(n_units + 1)).tolist()
        out: dict[int, list[str]] = {}
        half = size // 2
        events = self._batch
        for u in np.unique(row_units).tolist():
            lo, hi = bounds[u], bounds[u + 1]
            if hi - lo > size:
                picked = np.concatenate((rows[lo : lo + half], rows[hi - (size - half) : hi]))
            else:
                picked = rows[lo:hi]
            lines = [events[i].raw for i in seq[picked].tolist()]
            out[u] = [line for line in lines if line is not None]
        return out

    def _keep_tails(
        self, trackers: list[_Tracker], tails: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        for g, tracker in enumerate(trackers):
            tracker.tail = tails.get(g)

    # --- targeted users -------------------------------------------------------------------
    def _detect_users(self, col: dict[str, np.ndarray], out: dict[str, Incident]) -> None:
        """The distributed rule: many sources below the threshold against the same user."""
        cfg = self.config
        user_codes, user_names = pd.factorize(col["user"])
        order = np.argsort(user_codes, kind="stable")
        s = {name: column[order] for name, column in col.items()}
        code = user_codes[order]
        m = len(code)
        first_in_group = np.empty(m, dtype=bool)
        first_in_group[0] = True
        np.not_equal(code[1:], code[:-1], out=first_in_group[1:])
        group_starts = np.flatnonzero(first_in_group)
        trackers: list[_UserTracker] = []
        clock = np.full(len(user_names), np.nan)
        active = np.zeros(len(user_names), dtype=bool)
        for g, name in enumerate(user_names.tolist()):
            tracker = self._users.get(name)
            if tracker is None:
                tracker = self._users[name] = _UserTracker(name)
            trackers.append(tracker)
            clock[g] = tracker.clock
            active[g] = tracker.campaign is not None
        t, units, unit_starts, unit_new = self._clock_and_units(
            s["ts"], code, first_in_group, clock, active, count_reordered=False
        )
        unit_group = code[unit_starts]
        n_units = len(unit_starts)
        campaigns: list[_Campaign] = []
        for u in range(n_units):
            tracker = trackers[unit_group[u]]
            ongoing = tracker.campaign
            if unit_new[u] or ongoing is None:
                campaign = _Campaign(float(t[unit_starts[u]]), cfg.evidence_lines)
                campaign.users.add(tracker.user, 1)
            else:
                campaign = ongoing
            campaigns.append(campaign)
        distinct, new = self._distinct_counts(campaigns, units, unit_starts, s["source"], "values")
        fire_at = self._distributed_fires(campaigns, units, distinct, new, s["seq"])
        self._distinct_counts(campaigns, units, unit_starts, s["addr"], "sources")
        fail_sum = np.add.reduceat(s["weight"], unit_starts)
        first_ts = np.minimum.reduceat(s["ts"], unit_starts)
        last_ts = np.maximum.reduceat(s["ts"], unit_starts)
        unit_ends = np.append(unit_starts[1:], m)
        last_t = t[unit_ends - 1]
        evidence = self._evidence_rows(s["evidence"], s["seq"], units, n_units)
        touched: dict[int, _Distributed] = {}
        for u in range(n_units):
            tracker = trackers[unit_group[u]]
            campaign = campaigns[u]
            if unit_new[u]:
                tracker.campaign = campaign
            campaign.events += int(fail_sum[u])
            campaign.failures += int(fail_sum[u])
            campaign.first = min(campaign.first, float(first_ts[u]))
            campaign.last = max(campaign.last, float(last_ts[u]))
            campaign.last_t = float(last_t[u])
            lines = evidence.get(u)
            if lines:
                campaign.evidence.extend(lines)
            if campaign.linked is not None:
                touched[id(campaign.linked)] = campaign.linked
        # Join incidents in the order the users crossed the rule, as one by one.
        fires = sorted((int(s["seq"][j]), u, j) for u, j in fire_at.items())
        for _, u, j in fires:
            campaign = campaigns[u]
            if campaign.fired:
                continue
            now = float(t[j])
            campaign.fired[DISTRIBUTED_BRUTE_FORCE] = now
            campaign.opened_at = now
            incident = self._join(campaign, now, out)
            touched[id(incident)] = incident
        group_ends = np.append(group_starts[1:], m)
        group_last_seq = s["seq"][group_ends - 1]
        for g in np.argsort(group_last_seq, kind="stable").tolist():
            tracker = trackers[g]
            tracker.clock = float(t[group_ends[g] - 1])
            self._users.move_to_end(tracker.user)
            if tracker.due is None or tracker.stream != self._stream:
                tracker.stream = self._stream
                self._schedule(tracker.clock + self._forget_after(), tracker)
        for incident in touched.values():
            if incident.closed_reason is None:
                out[incident.detector_key] = self._snapshot_distributed(incident)

    def _distributed_fires(
        self,
        campaigns: list[_Campaign],
        units: np.ndarray,
        distinct: np.ndarray,
        new: np.ndarray,
        seq: np.ndarray,
    ) -> dict[int, int]:
        """Per user campaign, where enough sources below the threshold have failed.

        The running distinct count includes sources that have since raised an
        incident of their own; at each point where it could fire, those are taken
        out as they stand at that point (a source counts only while it is quiet).
        """
        needed = self.config.distributed_sources
        reached = distinct >= needed
        if not reached.any():
            return {}
        # Where the count could newly hold: where it is first reached, and where a
        # source is added after that, in campaigns that have not fired yet.
        first_reached = _first_per_unit(reached, units)
        at_first = np.zeros(len(units), dtype=bool)
        at_first[list(first_reached.values())] = True
        fired = np.array([bool(c.fired) for c in campaigns], dtype=bool)
        checks = np.flatnonzero(reached & (at_first | (new > 0)) & ~fired[units])
        escalated = self._escalated
        trackers = self._trackers

        def loud(source: str, at: int) -> bool:
            spans = escalated.get(source)
            if spans is not None:
                for start, raised in reversed(spans):
                    if start <= at:
                        return raised <= at
                return False
            tracker = trackers.get((AUTH, source))
            return (
                tracker is not None
                and tracker.campaign is not None
                and bool(tracker.campaign.fired)
            )

        out: dict[int, int] = {}
        for j in checks.tolist():
            u = int(units[j])
            if u in out:
                continue
            at = int(seq[j])
            sources = itertools.islice(campaigns[u].values.values, int(distinct[j]))
            if sum(1 for source in sources if not loud(source, at)) >= needed:
                out[u] = j
        return out

    def _join(self, campaign: _Campaign, now: float, out: dict[str, Incident]) -> _Distributed:
        """The open distributed incident the campaign's sources attack, or a new one."""
        cfg = self.config
        for stale in [d for d in self._distributed if d.last_t + cfg.quiet_seconds < now]:
            self._close_distributed(stale, "quiet", stale.last_t + cfg.quiet_seconds, out)
        mine = campaign.values.values
        best: _Distributed | None = None
        best_overlap = 0
        for incident in self._distributed:
            theirs: set[Any] = set()
            for member in incident.members:
                theirs.update(member.values.values)
            overlap = sum(1 for source in mine if source in theirs)
            if overlap >= cfg.distributed_overlap * len(mine) and overlap > best_overlap:
                best, best_overlap = incident, overlap
        if best is None:
            user = next(iter(campaign.users.values))
            best = _Distributed(f"{USERS_FAMILY}:{user}:{round(campaign.start * 1000)}", now)
            self._distributed.append(best)
            self._count_opened(DISTRIBUTED_BRUTE_FORCE)
        if len(best.members) < cfg.sample_size:
            best.members.append(campaign)
        else:
            best.members_overflow += 1
        campaign.linked = best
        return best

    # --- incidents ---------------------------------------------------------------------
    def _kind(self, family: int, campaign: _Campaign) -> str:
        """The incident kind of a campaign that fired, from what fired and its facts."""
        fired = campaign.fired
        if family == AUTH:
            if CREDENTIAL_COMPROMISE in fired:
                return CREDENTIAL_COMPROMISE
            # Past max_distinct the untracked tries count as new names (a spray of
            # millions of names must still read as a spray).
            tried = len(campaign.values.values) + campaign.values.overflow
            spray = PASSWORD_SPRAY in fired
            if spray and campaign.failures <= self.config.spray_tries_per_user * tried:
                return PASSWORD_SPRAY
            if BRUTE_FORCE in fired:
                return BRUTE_FORCE
            if SLOW_BRUTE_FORCE in fired:
                return SLOW_BRUTE_FORCE
            return PASSWORD_SPRAY
        if family == WEB:
            return WEB_AUTH_BRUTE_FORCE if WEB_AUTH_BRUTE_FORCE in fired else WEB_SCAN
        return PORT_SCAN

    def _snapshot(self, tracker: _Tracker, campaign: _Campaign) -> Incident:
        cfg = self.config
        n = cfg.sample_size
        kind = self._kind(tracker.family, campaign)
        if tracker.key_type == KEY_IP:
            source_ips = [tracker.key]
        elif tracker.key_type == KEY_IPV6_NET:
            source_ips = campaign.sources.first(n)
        else:
            source_ips = []
        facts: dict[str, Any] = {
            "family": FAMILIES[tracker.family],
            "key_type": tracker.key_type,
            # In time order, as if the events had come one by one.
            "rules": dict(sorted(campaign.fired.items(), key=lambda kv: (kv[1], kv[0]))),
            # Exact up to max_threshold (the most a tracker keeps per window).
            "peak_failures_in_window": campaign.peak,
            "window_seconds": cfg.window_seconds,
        }
        if tracker.key_type == KEY_IPV6_NET:
            facts["distinct_sources"] = len(campaign.sources.values)
        if tracker.key_type == KEY_HOST:
            facts["source_address"] = tracker.key
        if tracker.family == AUTH:
            facts["distinct_failed_users"] = len(campaign.values.values)
            # What the slow rule counts: this key's failures within the horizon,
            # those of its earlier (closed) campaigns included, up to slow_failures.
            facts["peak_failures_in_horizon"] = campaign.horizon_peak
            facts["horizon_seconds"] = cfg.slow_horizon_seconds
        elif tracker.family == WEB:
            facts["distinct_paths"] = len(campaign.values.values)
            facts["paths"] = campaign.values.first(n)
        else:
            facts["distinct_ports"] = len(campaign.values.values)
            facts["ports"] = [int(p) for p in campaign.values.first(n)]
        overflow = campaign.values.overflow + campaign.users.overflow + campaign.sources.overflow
        if overflow:
            facts["distinct_overflow"] = overflow
        distinct_users = len(campaign.users.values)
        return self._incident(
            _Times(
                campaign.start,
                campaign.first,
                campaign.last,
                campaign.opened_at,
                campaign.closed_reason,
                campaign.closed_at,
            ),
            detector_key=campaign.detector_key,
            key=tracker.key,
            kind=kind,
            source_ips=source_ips,
            users=campaign.users.first(n),
            distinct_users=distinct_users,
            failures=campaign.failures,
            successes=campaign.successes,
            events=campaign.events,
            breadth=distinct_users if tracker.family != NET else 0,
            evidence=campaign.evidence.lines(),
            facts=facts,
        )

    def _snapshot_distributed(self, incident: _Distributed) -> Incident:
        cfg = self.config
        n = cfg.sample_size
        users: dict[str, None] = {}
        sources: dict[Any, None] = {}
        addresses: dict[str, None] = {}
        failures = 0
        first, last = math.inf, -math.inf
        lines: list[str] = []
        overflow = 0
        for member in incident.members:
            users.update(member.users.values)
            sources.update(member.values.values)
            addresses.update(member.sources.values)
            failures += member.failures
            first = min(first, member.first)
            last = max(last, member.last)
            lines.extend(member.evidence.lines())
            overflow += member.values.overflow + member.sources.overflow
        size = cfg.evidence_lines
        if len(lines) > size:
            lines = lines[: size // 2] + lines[len(lines) - (size - size // 2) :] if size else []
        lead = incident.members[0]
        facts: dict[str, Any] = {
            "family": USERS_FAMILY,
            "key_type": KEY_USER,
            "rules": {DISTRIBUTED_BRUTE_FORCE: incident.opened_at},
            "distinct_sources": len(sources),
            "sources": sorted(map(str, sources))[:n],
        }
        if overflow:
            facts["distinct_overflow"] = overflow
        if incident.members_overflow:
            facts["users_overflow"] = incident.members_overflow
        return self._incident(
            _Times(
                lead.start,
                first,
                last,
                incident.opened_at,
                incident.closed_reason,
                incident.closed_at,
            ),
            detector_key=incident.detector_key,
            key=next(iter(lead.users.values)),
            kind=DISTRIBUTED_BRUTE_FORCE,
            source_ips=sorted(addresses)[:n],
            users=list(users)[:n],
            distinct_users=len(users),
            failures=failures,
            successes=0,
            events=failures,
            breadth=len(sources),
            evidence=lines,
            facts=facts,
        )

    def _incident(
        self,
        times: _Times,
        *,
        detector_key: str,
        key: str,
        kind: str,
        source_ips: list[str],
        users: list[str],
        distinct_users: int,
        failures: int,
        successes: int,
        events: int,
        breadth: int,
        evidence: list[str],
        facts: dict[str, Any],
    ) -> Incident:
        technique, technique_name = TECHNIQUES[kind]
        facts["campaign_start"] = times.start
        if times.closed_reason is not None:
            facts["closed_reason"] = times.closed_reason
            facts["closed_at"] = times.closed_at
        return Incident(
            key=key,
            kind=kind,
            first_seen=times.first,
            last_seen=times.last,
            source_ips=source_ips,
            users=users,
            distinct_users=distinct_users,
            failures=failures,
            successes=successes,
            events=events,
            severity=severity(
                kind,
                failures=failures,
                breadth=breadth,
                successes=successes,
                config=self.config,
            ),
            technique=technique,
            technique_name=technique_name,
            evidence=evidence,
            facts=facts,
            opened_at=times.opened_at,
            updated_at=times.last,
            closed=times.closed_reason is not None,
            detector_key=detector_key,
        )

    def _name(self, tracker: _Tracker, start: float) -> str:
        """The detector key of a campaign: family, key and start (milliseconds).

        A key forgotten and seen again with older lines (a replay of another file)
        could start a campaign at the same millisecond as one already handed over:
        the start is then moved just past it, so no two incidents share a name.
        """
        millis = round(start * 1000)
        ended = self._ended.get((tracker.family, tracker.key))
        if ended is not None and millis <= ended:
            millis = ended + 1
        return f"{FAMILIES[tracker.family]}:{tracker.key}:{millis}"

    def _close(self, tracker: _Tracker, reason: str, at: float, out: dict[str, Incident]) -> None:
        """End the tracker's campaign; an incident it raised is handed over closed."""
        campaign = tracker.campaign
        tracker.campaign = None
        if campaign is None or not campaign.fired:
            return
        ended = self._ended
        ended[(tracker.family, tracker.key)] = int(campaign.detector_key.rpartition(":")[2])
        ended.move_to_end((tracker.family, tracker.key))
        while len(ended) > self.config.max_keys:
            ended.popitem(last=False)
        campaign.closed_reason = reason
        campaign.closed_at = at
        out[campaign.detector_key] = self._snapshot(tracker, campaign)
        self.stats.incidents_closed += 1

    def _close_distributed(
        self, incident: _Distributed, reason: str, at: float, out: dict[str, Incident]
    ) -> None:
        incident.closed_reason = reason
        incident.closed_at = at
        out[incident.detector_key] = self._snapshot_distributed(incident)
        self._distributed.remove(incident)
        for member in incident.members:
            member.linked = None
        self.stats.incidents_closed += 1

    # --- bounds ------------------------------------------------------------------------
    def _evict(self, out: dict[str, Incident]) -> None:
        cfg = self.config
        while len(self._trackers) > cfg.max_keys:
            _, tracker = self._trackers.popitem(last=False)
            self.stats.evicted_keys += 1
            campaign = tracker.campaign
            if campaign is not None and campaign.fired:
                self.stats.incidents_evicted += 1
                self._close(tracker, "evicted", campaign.last_t, out)
        while len(self._users) > cfg.max_users:
            self._users.popitem(last=False)
            self.stats.evicted_users += 1

    def _schedule(self, when: float, tracker: _Tracker | _UserTracker) -> None:
        """Look at ``tracker`` again when its stream reaches ``when`` (one entry each)."""
        entry = next(self._tiebreak)
        tracker.due = entry
        target = (tracker.family, tracker.key) if isinstance(tracker, _Tracker) else tracker.user
        due = self._due.setdefault(tracker.stream, [])
        heapq.heappush(due, (when, entry, isinstance(tracker, _Tracker), target))

    def _expire(self, stream: str, now: float, out: dict[str, Incident]) -> None:
        """Close campaigns quiet at ``now`` in ``stream``; forget trackers past every horizon."""
        quiet = self.config.quiet_seconds
        forget = self._forget_after()
        due = self._due.get(stream, [])
        while due and due[0][0] <= now:
            _, entry, is_key, target = heapq.heappop(due)
            tracker = self._trackers.get(target) if is_key else self._users.get(target)
            if tracker is None or tracker.due != entry:
                continue  # forgotten or evicted since
            tracker.due = None
            if isinstance(tracker, _Tracker) and tracker.campaign is not None:
                if tracker.clock + quiet > now:
                    self._schedule(tracker.clock + quiet, tracker)
                    continue
                self._close(tracker, "quiet", tracker.clock + quiet, out)
            if tracker.clock + forget > now:
                self._schedule(tracker.clock + forget, tracker)
            elif is_key:
                del self._trackers[target]
            else:
                del self._users[target]

    def _forget_after(self) -> float:
        return max(self.config.quiet_seconds, self._longest_horizon())

    def _longest_horizon(self) -> float:
        cfg = self.config
        return max(
            cfg.window_seconds,
            cfg.slow_horizon_seconds,
            cfg.compromise_lookback_seconds,
            cfg.web_auth_horizon_seconds,
        )

    def _tail_size(self) -> int:
        cfg = self.config
        return max(
            self._threshold, cfg.slow_failures, cfg.compromise_failures, cfg.web_auth_failures
        )

    def _count_opened(self, kind: str) -> None:
        self.stats.incidents_opened += 1
        self.stats.opened_by_kind[kind] = self.stats.opened_by_kind.get(kind, 0) + 1

    def _finish(self, out: dict[str, Incident]) -> list[Incident]:
        stats = self.stats
        stats.keys = len(self._trackers)
        stats.users = len(self._users)
        stats.open_incidents = sum(
            1 for t in self._trackers.values() if t.campaign is not None and t.campaign.fired
        ) + len(self._distributed)
        return sorted(out.values(), key=lambda i: (i.first_seen, i.detector_key))


class _SlidingSums:
    """Failures within a horizon before each event, each tracker's tail in front.

    The batch's events (sorted by tracker, clock times ascending within each)
    and every tracker's earlier failures are laid out on one axis, tracker after
    tracker, so that one ``searchsorted`` finds every window's start at once.
    """

    def __init__(
        self,
        code: np.ndarray,
        t: np.ndarray,
        weight: np.ndarray,
        batch_length: int,
        tail_length: int,
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
            code, t, weight, is_batch = code[order], t[order], weight[order], is_batch[order]
            self.batch_at = np.flatnonzero(is_batch)
        else:
            self.batch_at = np.arange(batch_length)
        self.code = code
        self.t = t
        self.weight = weight
        self.cum = np.concatenate(([0], np.cumsum(weight)))
        base = float(np.min(t)) if len(t) else 0.0
        spread = (float(np.max(t)) - base) if len(t) else 0.0
        # Trackers laid end to end, each further along than any horizon reaches back.
        self.axis = (t - base) + code.astype(float) * (spread + longest + 1.0)
        self.tail_size = tail_size
        self.longest = longest
        self.window = window
        self.window_cap = window_cap

    def __call__(self, horizon: float) -> np.ndarray:
        """For each batch event, the failures within ``(t - horizon, t]`` up to it."""
        at = self.batch_at
        start = np.searchsorted(self.axis, self.axis[at] - horizon, side="right")
        return self.cum[at + 1] - self.cum[start]

    def tails(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each tracker's failures later sums may look back on.

        The latest ``tail_size`` (enough to tell whether any count threshold is
        reached) and every one within ``window`` of the latest, up to
        ``window_cap`` (so the peak per window is exact up to that), all within
        the longest horizon.
        """
        rows = np.flatnonzero(self.weight > 0)
        if not len(rows):
            return {}
        codes = self.code[rows]
        axis = self.axis[rows]
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        change = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [len(rows)]))
        in_window = np.searchsorted(axis, axis[ends - 1] - self.window, side="right")
        for lo, hi, w in zip(starts.tolist(), ends.tolist(), in_window.tolist(), strict=True):
            first = min(max(lo, hi - self.tail_size), max(w, hi - self.window_cap))
            picked = rows[first:hi]
            times = self.t[picked]
            recent = times > times[-1] - self.longest
            out[int(codes[lo])] = (times[recent].copy(), self.weight[picked][recent].copy())
        return out


def _first_per_unit(mask: np.ndarray, units: np.ndarray) -> dict[int, int]:
    """For each unit where ``mask`` holds somewhere, the first such position."""
    positions = np.flatnonzero(mask)
    if not len(positions):
        return {}
    found, index = np.unique(units[positions], return_index=True)
    return dict(zip(found.tolist(), positions[index].tolist(), strict=True))


def _where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask`` holds, else None (object arrays)."""
    out = np.array(values, dtype=object)
    out[~mask] = None
    return out


__all__ = ["FAMILIES", "FAMILY_OF_KIND", "USERS_FAMILY", "Detector"]
