"""The detector: rules over micro-batches of events, campaigns kept as incidents.

(Why this file is long: it is one state machine, the batch loop over source keys
and targeted users, their campaigns, expiry and bounds, all sharing the same
trackers and arrival positions. What stands on its own lives beside it: the rules
(``soc/detect/rules/``), campaign state (``campaign.py``), logins and forgiveness
(``logins.py``), sliding sums (``sums.py``), the rules' view of a batch
(``view.py``) and incident snapshots (``snapshots.py``).)

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
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from soc.columns import columns_of
from soc.detect import rules as rule_registry
from soc.detect.allow import AllowList
from soc.detect.arrays import first_per_unit, where
from soc.detect.base import DetectConfig, DetectorStats
from soc.detect.campaign import (
    AUTH,
    FAMILIES,
    FAMILY_OF_KIND,
    KEY_HOST,
    KEY_IP,
    KEY_IPV6_NET,
    NET,
    USERS_FAMILY,
    WEB,
    CampaignState,
    Distinct,
    Distributed,
    Tracker,
    UserTracker,
)
from soc.detect.logins import FirstLogin, Logins, near_miss, other_names
from soc.detect.rules.base import Campaign, Rule
from soc.detect.snapshots import snapshot, snapshot_distributed
from soc.detect.sums import SlidingSums, Tail
from soc.detect.view import Columns
from soc.errors import ConfigError
from soc.events import (
    AUTH_SUCCESS,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_FAILURE,
    WEB_REQUEST,
    Event,
    Incident,
)

_KEY_TYPES = (KEY_IP, KEY_IPV6_NET, KEY_HOST)

_ALLOWED: Final = (True, "", 0, False)
_MEMO_SIZE = 65_536
_NEVER: Final = 2**62  # a batch position no event reaches

AddressInfo = tuple[bool, str, int, bool]  # (allow-listed, key, key type index, is an IP)


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
        self._rules = rule_registry.rules()
        self._params: dict[str, Any] = {r.name: r.params_from(cfg) for r in self._rules}
        #: Rules evaluated per source key (the distributed rule is the users trackers').
        self._key_rules: tuple[Rule, ...] = tuple(r for r in self._rules if r.hits is not None)
        self._family_rules: dict[int, list[Rule]] = {
            i: [r for r in self._key_rules if r.family == name] for i, name in enumerate(FAMILIES)
        }
        self._keeps: dict[int, Callable[[str], bool]] = {
            FAMILIES.index(r.family): r.keeps for r in self._key_rules if r.keeps is not None
        }
        self._logins = Logins(
            known_seconds=cfg.known_login_seconds,
            forgive_seconds=cfg.forgive_seconds,
            max_known=cfg.max_keys,
        )
        self._ordinal = 0  # events before the batch being processed (global positions)
        self._techniques = rule_registry.techniques()
        # Logins from the batch no rule of their key made a compromise (_botnet_logins).
        self._unproven: list[tuple[Tracker, CampaignState, int, float]] = []
        self._trackers: OrderedDict[tuple[int, str], Tracker] = OrderedDict()
        # The start (ms) of each key's latest campaign handed over: see _name.
        self._ended: OrderedDict[tuple[int, str], int] = OrderedDict()
        self._users: OrderedDict[str, UserTracker] = OrderedDict()
        self._distributed: list[Distributed] = []
        # Per stream, when to look at a tracker again: (event time, entry, is a source
        # key, its key), in that stream's event time.
        self._due: dict[str, list[tuple[float, int, bool, Any]]] = {}
        self._tiebreak = itertools.count()
        self._memo: dict[str, AddressInfo] = {}
        self._batch: Sequence[Event] = ()  # the batch being processed (evidence lines)
        self._stream = ""  # and the stream it came from
        self._escalated: dict[str, list[tuple[int, int]]] = {}  # per batch: see _detect_keys
        #: Set when the engine could not continue an earlier detector's state (see _name).
        self.generation = 0

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
                self._botnet_logins(out)
        finally:
            self._batch = ()
            self._unproven = []
            self._ordinal += len(events)
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
        self._logins.clear()
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
        batch = columns_of(events)
        kinds = batch.kinds
        kind_codes, kind_names = pd.factorize(kinds)
        families = [FAMILY_OF_KIND.get(name, -1) for name in kind_names.tolist()]
        fam_all = np.array([*families, -1], dtype=np.int64)[kind_codes]
        address_codes, addresses = pd.factorize(batch.addresses)
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
        codes = address_codes[seq]
        fam = fam_all[seq]
        kind = kinds[seq]
        count = batch.counts[seq]
        fail = batch.failures[seq]
        auth = fam == AUTH
        web = fam == WEB
        net = fam == NET
        counted = pd.Series(kind).isin(self._failure_kinds).to_numpy()
        weight = np.where(auth & counted, fail, 0)
        weight = np.where(web & (kind == WEB_AUTH_FAILURE), count, weight)
        succ = np.where(kind == AUTH_SUCCESS, count, 0)
        fail = np.where(auth, weight, np.where(net, count, fail))
        users = self._cut(batch.users[seq])
        value = where(auth & (weight > 0), users)
        # Logins: sshd's and PAM's successes; an HTTP request with a user name let in.
        login = succ
        web_paths = web & (kind == WEB_REQUEST)
        if web_paths.any():
            failed_path = web_paths & (fail > 0)
            paths = self._cut(batch.paths[seq])
            keeps = self._keeps.get(WEB)
            if keeps is not None and failed_path.any():
                failed_path &= self._kept(paths, keeps)
            value = np.where(failed_path, paths, value)
            status = batch.statuses[seq]
            let_in = web_paths & ~pd.isna(users) & (status >= 200) & (status < 400)
            login = np.where(let_in, count, login)
        if net.any():
            ports = batch.ports[seq]
            value = np.where(net, ports, value)
        # Evidence: the attempts and logins of a login campaign; everything else.
        # (The lines themselves are read only for the few rows kept.)
        evidence = ~auth | (weight > 0) | (succ > 0)
        times = batch.timestamps[seq]
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
            "addr": where(is_ip, addresses[codes]),
            "count": count,
            "weight": weight,
            "fail": fail,
            "succ": succ,
            "login": login,
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

    def _kept(self, paths: np.ndarray, keeps: Callable[[str], bool]) -> np.ndarray:
        """Which ``paths`` a family's rule counts (judged once per distinct path)."""
        codes, names = pd.factorize(paths)
        judged = np.array([keeps(str(name)) for name in names.tolist()] + [False], dtype=bool)
        out: np.ndarray = judged[codes]
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
        return where(codes >= 0, names[np.maximum(codes, 0)])

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
        trackers: list[Tracker] = []
        clock = np.full(n_groups, np.nan)
        active = np.zeros(n_groups, dtype=bool)
        pre_fired = np.zeros(n_groups, dtype=bool)
        ktype_first = s["ktype"][group_starts]
        for g, group_id in enumerate(group_ids.tolist()):
            key_code, family = divmod(group_id, 3)
            name = key_names[key_code]
            tracker = self._trackers.get((family, name))
            if tracker is None:
                tracker = Tracker(family, name, _KEY_TYPES[ktype_first[g]])
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
        auth = fam == AUTH
        users = s["user"]
        logins = s["login"]

        # Logins: a known user's failures weigh nothing, a first login forgives the typos
        # before it (soc.detect.logins).
        weight, first_logins = self._logins.apply(
            trackers, code, t, users, s["weight"], logins, s["seq"] + self._ordinal
        )
        has_weight = weight > 0
        value = s["value"]
        if first_logins or not np.array_equal(weight, s["weight"]):
            value = where(~auth | has_weight, value)
        sums = self._sliding_sums(trackers, code, t, weight, users)
        self._logins.forgive(sums, first_logins)

        # Campaigns: the tracker's own when it goes on, else new ones.
        campaigns: list[CampaignState] = []
        for u in range(n_units):
            g = unit_group[u]
            tracker = trackers[g]
            ongoing = tracker.campaign
            if unit_new[u] or ongoing is None:
                campaign = CampaignState(float(t[unit_starts[u]]), cfg.evidence_lines)
                campaign.detector_key = self._name(tracker, campaign.start)
            else:
                campaign = ongoing
            campaigns.append(campaign)

        # Distinct values per campaign: users failed (auth), probed paths (web), ports (net);
        # user names that logged in from the key since are no guesses.
        distinct, new_value = self._distinct_counts(campaigns, units, unit_starts, value, "values")
        distinct = distinct - self._forgiven_names(
            campaigns, units, unit_starts, value, new_value, first_logins, auth
        )
        self._distinct_counts(campaigns, units, unit_starts, users, "users")
        ipv6 = s["ktype"] == _KEY_TYPES.index(KEY_IPV6_NET)
        if ipv6.any():
            self._distinct_counts(campaigns, units, unit_starts, s["addr"], "sources", ipv6)

        # Every rule, in registry order (a rule may ask whether earlier ones held).
        view = Columns(
            fam=fam,
            families=(AUTH, WEB, NET),
            weight=weight,
            logins=logins,
            threshold=self._threshold,
            window_seconds=cfg.window_seconds,
            sums=sums,
            distinct=distinct,
            units=units,
            fired_before=[{} if unit_new[u] else campaigns[u].fired for u in range(n_units)],
            other_names=lambda horizon: other_names(
                trackers,
                code,
                t,
                users,
                weight,
                logins * auth,
                horizon=horizon,
                known_seconds=cfg.known_login_seconds,
                cap=cfg.max_distinct,
            ),
        )
        for rule in self._key_rules:
            mask = rule.hits(view, self._params[rule.name])  # type: ignore[misc]
            view.first_hits[rule.name] = first_per_unit(mask, units)
        first_hit = view.first_hits
        window = view.within(cfg.window_seconds)
        peak = np.where(has_weight, window, 0)
        horizon_peak = np.zeros(m, dtype=peak.dtype)
        slow = self._params.get(SLOW_BRUTE_FORCE)
        if slow is not None and auth.any():
            # Exact up to slow_failures whatever the batches (the trackers' tails keep at
            # least that many), so counted up to it.
            horizon_peak = np.where(
                auth & has_weight,
                np.minimum(view.within(slow.slow_horizon_seconds), slow.slow_failures),
                0,
            )

        # Which failures come from a source that has not raised anything (distributed).
        escalation = np.full(n_units, m, dtype=np.int64)
        for u, campaign in enumerate(campaigns):
            if not unit_new[u] and campaign.fired:
                escalation[u] = -1
        for rule in self._family_rules[AUTH]:
            for u, j in first_hit.get(rule.name, {}).items():
                escalation[u] = min(escalation[u], j)
        position = np.arange(m)
        candidate = auth & has_weight & ~pd.isna(value) & (position < escalation[units])
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

        # Logins no rule of their key made a compromise: one from a source of a
        # distributed attack is one (checked once that attack is known: _botnet_logins).
        if CREDENTIAL_COMPROMISE in self._params:
            unproven = np.flatnonzero(auth & (logins > 0))
            compromised = first_hit.get(CREDENTIAL_COMPROMISE, {})
            for j in unproven.tolist():
                u = int(units[j])
                if u in compromised and compromised[u] <= j:
                    continue
                self._unproven.append(
                    (trackers[int(code[j])], campaigns[u], int(seq[j]) + self._ordinal, float(t[j]))
                )

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

        touched: dict[int, tuple[Tracker, CampaignState]] = {}
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
            for rule in self._family_rules[tracker.family]:
                hit = first_hit.get(rule.name, {}).get(u)
                if hit is not None and rule.name not in campaign.fired:
                    campaign.fired[rule.name] = float(t[hit])
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
            "user": value[pick],
            "source": s["key"][pick],
            "addr": s["addr"][pick],
            "weight": weight[pick],
            "evidence": s["evidence"][pick],
        }

    def _forgiven_names(
        self,
        campaigns: list[CampaignState],
        units: np.ndarray,
        unit_starts: np.ndarray,
        value: np.ndarray,
        new_value: np.ndarray,
        first_logins: Sequence[FirstLogin],
        auth: np.ndarray,
    ) -> np.ndarray:
        """Per row: user names of its campaign's failures that logged in from the key since.

        A name (or a near miss of it) counts as tried (password spray) until its
        user logs in; the names forgiven before the batch are subtracted from every
        row of their campaign.
        """
        m = len(units)
        less = np.zeros(m + 1, dtype=np.int64)
        for u, campaign in enumerate(campaigns):
            if campaign.forgiven:
                less[unit_starts[u]] += len(campaign.forgiven)
                end = unit_starts[u + 1] if u + 1 < len(unit_starts) else m
                less[end] -= len(campaign.forgiven)
        if first_logins:
            added = {(int(units[j]), value[j]): j for j in np.flatnonzero(new_value > 0).tolist()}
            for login in first_logins:
                j = login.row
                if not auth[j]:
                    continue
                u = int(units[j])
                campaign = campaigns[u]
                # The user's name, and near misses of it (soc.detect.logins.near_miss).
                typed = [
                    name
                    for name in campaign.values.values
                    if name not in campaign.forgiven
                    and near_miss(str(name), login.user)
                    and added.get((u, name), -1) < j  # failed before this login
                ]
                if not typed:
                    continue
                campaign.forgiven.update(typed)
                end = unit_starts[u + 1] if u + 1 < len(unit_starts) else m
                less[j + 1] += len(typed)
                less[end] -= len(typed)
        return np.cumsum(less[:-1])

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
        self,
        trackers: list[Tracker],
        code: np.ndarray,
        t: np.ndarray,
        weight: np.ndarray,
        users: np.ndarray,
    ) -> SlidingSums:
        parts_code = [code]
        parts_t = [t]
        parts_w = [weight]
        parts_u = [users]
        tail_length = 0
        for g, tracker in enumerate(trackers):
            if tracker.tail is not None:
                tail_t, tail_w, tail_u = tracker.tail
                parts_code.append(np.full(len(tail_t), g, dtype=code.dtype))
                parts_t.append(tail_t)
                parts_w.append(tail_w)
                parts_u.append(tail_u)
                tail_length += len(tail_t)
        return SlidingSums(
            np.concatenate(parts_code),
            np.concatenate(parts_t),
            np.concatenate(parts_w),
            np.concatenate(parts_u),
            len(code),
            tail_length,
            longest=self._longest_horizon(),
            tail_size=self._tail_size(),
            window=self.config.window_seconds,
            window_cap=self.config.max_threshold,
        )

    def _distinct_counts(
        self,
        campaigns: list[CampaignState],
        units: np.ndarray,
        unit_starts: np.ndarray,
        values: np.ndarray,
        attribute: str,
        mask: np.ndarray | None = None,
        positions: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add each event's value to its campaign's distinct set.

        Returns the running distinct count at each event, and whether the event
        added a new value. ``positions``: each event's global arrival position,
        remembered with the values it adds.
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
            sets: list[Distinct] = [getattr(c, attribute) for c in campaigns]
            base[:] = [len(c_set.values) for c_set in sets]
            before = sum(c_set.overflow for c_set in sets)
            at = [None] * len(firsts) if positions is None else positions[firsts].tolist()
            for j, u, v, a in zip(
                firsts.tolist(), units[firsts].tolist(), values[firsts].tolist(), at, strict=True
            ):
                if sets[u].add(v, cap, a):
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

    def _keep_tails(self, trackers: list[Tracker], tails: dict[int, Tail]) -> None:
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
        trackers: list[UserTracker] = []
        clock = np.full(len(user_names), np.nan)
        active = np.zeros(len(user_names), dtype=bool)
        for g, name in enumerate(user_names.tolist()):
            tracker = self._users.get(name)
            if tracker is None:
                tracker = self._users[name] = UserTracker(name)
            trackers.append(tracker)
            clock[g] = tracker.clock
            active[g] = tracker.campaign is not None
        t, units, unit_starts, unit_new = self._clock_and_units(
            s["ts"], code, first_in_group, clock, active, count_reordered=False
        )
        unit_group = code[unit_starts]
        n_units = len(unit_starts)
        campaigns: list[CampaignState] = []
        for u in range(n_units):
            tracker = trackers[unit_group[u]]
            ongoing = tracker.campaign
            if unit_new[u] or ongoing is None:
                campaign = CampaignState(float(t[unit_starts[u]]), cfg.evidence_lines)
                campaign.users.add(tracker.user, 1)
            else:
                campaign = ongoing
            campaigns.append(campaign)
        distinct, new = self._distinct_counts(
            campaigns, units, unit_starts, s["source"], "values", positions=s["seq"] + self._ordinal
        )
        fire_at = self._distributed_fires(campaigns, units, distinct, new, s["seq"])
        self._distinct_counts(campaigns, units, unit_starts, s["addr"], "sources")
        fail_sum = np.add.reduceat(s["weight"], unit_starts)
        first_ts = np.minimum.reduceat(s["ts"], unit_starts)
        last_ts = np.maximum.reduceat(s["ts"], unit_starts)
        unit_ends = np.append(unit_starts[1:], m)
        last_t = t[unit_ends - 1]
        evidence = self._evidence_rows(s["evidence"], s["seq"], units, n_units)
        touched: dict[int, Distributed] = {}
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
            incident = self._join(campaign, now, out, int(s["seq"][j]) + self._ordinal)
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
        campaigns: list[CampaignState],
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
        needed = self._params[DISTRIBUTED_BRUTE_FORCE].distributed_sources
        reached = distinct >= needed
        if not reached.any():
            return {}
        # Where the count could newly hold: where it is first reached, and where a
        # source is added after that, in campaigns that have not fired yet.
        first_reached = first_per_unit(reached, units)
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

        knows = self._logins.knows
        out: dict[int, int] = {}
        for j in checks.tolist():
            u = int(units[j])
            if u in out:
                continue
            at = int(seq[j])
            user = next(iter(campaigns[u].users.values))
            sources = itertools.islice(campaigns[u].values.values, int(distinct[j]))
            # A source the user logged in from is the user's own, not an attacker.
            attackers = sum(
                1
                for source in sources
                if not loud(source, at) and not knows(AUTH, source, user, at + self._ordinal)
            )
            if attackers >= needed:
                out[u] = j
        return out

    def _join(
        self, campaign: CampaignState, now: float, out: dict[str, Incident], position: int
    ) -> Distributed:
        """The open distributed incident the campaign's sources attack, or a new one."""
        cfg = self.config
        for stale in [d for d in self._distributed if d.last_t + cfg.quiet_seconds < now]:
            self._close_distributed(stale, "quiet", stale.last_t + cfg.quiet_seconds, out)
        share = self._params[DISTRIBUTED_BRUTE_FORCE].distributed_overlap
        mine = campaign.values.values
        best: Distributed | None = None
        best_overlap = 0
        for incident in self._distributed:
            theirs: set[Any] = set()
            for member in incident.members:
                theirs.update(member.values.values)
            overlap = sum(1 for source in mine if source in theirs)
            if overlap >= share * len(mine) and overlap > best_overlap:
                best, best_overlap = incident, overlap
        if best is None:
            user = next(iter(campaign.users.values))
            best = Distributed(
                f"{USERS_FAMILY}:{user}:{round(campaign.start * 1000)}{self._suffix()}",
                now,
                position,
            )
            self._distributed.append(best)
            self._count_opened(DISTRIBUTED_BRUTE_FORCE)
        if len(best.members) < cfg.sample_size:
            best.members.append(campaign)
        else:
            best.members_overflow += 1
        campaign.linked = best
        return best

    # --- incidents ---------------------------------------------------------------------
    def _kind(self, family: int, campaign: CampaignState) -> str:
        """The kind of a campaign that fired: the first rule, by precedence, that claims it."""
        fired = sorted(
            (r for r in self._family_rules[family] if r.name in campaign.fired),
            key=lambda r: r.precedence,
        )
        # Past max_distinct the untracked tries count as new names (a spray of millions of
        # names must still read as a spray).
        facts = Campaign(
            failures=campaign.failures,
            tried=len(campaign.values.values) + campaign.values.overflow,
        )
        for rule in fired:
            if rule.claims is None or rule.claims(facts, self._params[rule.name]):
                return rule.name
        return fired[0].name

    def _botnet_logins(self, out: dict[str, Incident]) -> None:
        """A login from a source of an open distributed attack is a compromise.

        Checked after the batch's users are tracked, in arrival order: the attack must
        have been raised, and the source counted in it, before the login.
        """
        if not self._unproven or not self._distributed or CREDENTIAL_COMPROMISE not in self._params:
            return
        for tracker, campaign, position, when in self._unproven:
            if CREDENTIAL_COMPROMISE in campaign.fired or tracker.campaign is not campaign:
                continue
            for incident in self._distributed:
                if incident.opened_position > position:
                    continue
                counted = (member.values.values.get(tracker.key) for member in incident.members)
                if not any(at is not None and at <= position for at in counted):
                    continue
                was_open = bool(campaign.fired)
                campaign.fired[CREDENTIAL_COMPROMISE] = when
                campaign.botnet = incident.detector_key
                if not was_open:
                    campaign.opened_at = when
                    self._count_opened(CREDENTIAL_COMPROMISE)
                out[campaign.detector_key] = self._snapshot(tracker, campaign)
                break

    def _snapshot(self, tracker: Tracker, campaign: CampaignState) -> Incident:
        kind = self._kind(tracker.family, campaign)
        slow = self._params.get(SLOW_BRUTE_FORCE)
        return snapshot(
            tracker,
            campaign,
            kind=kind,
            config=self.config,
            technique=self._techniques[kind],
            slow_horizon=None if slow is None else slow.slow_horizon_seconds,
        )

    def _snapshot_distributed(self, incident: Distributed) -> Incident:
        return snapshot_distributed(
            incident, config=self.config, technique=self._techniques[DISTRIBUTED_BRUTE_FORCE]
        )

    def _name(self, tracker: Tracker, start: float) -> str:
        """The detector key of a campaign: family, key and start (milliseconds).

        A key forgotten and seen again with older lines (a replay of another file)
        could start a campaign at the same millisecond as one already handed over:
        the start is then moved just past it, so no two incidents share a name.
        Names of a ``generation`` past 0 end in ``@`` and it: a detector that had
        to start afresh over a store holding an earlier one's incidents (saved
        state lost or unreadable) cannot take their names.
        """
        millis = round(start * 1000)
        ended = self._ended.get((tracker.family, tracker.key))
        if ended is not None and millis <= ended:
            millis = ended + 1
        return f"{FAMILIES[tracker.family]}:{tracker.key}:{millis}{self._suffix()}"

    def _suffix(self) -> str:
        return f"@{self.generation}" if self.generation else ""

    def _close(self, tracker: Tracker, reason: str, at: float, out: dict[str, Incident]) -> None:
        """End the tracker's campaign; an incident it raised is handed over closed."""
        campaign = tracker.campaign
        tracker.campaign = None
        if campaign is None or not campaign.fired:
            return
        ended = self._ended
        millis = campaign.detector_key.rpartition(":")[2].partition("@")[0]
        ended[(tracker.family, tracker.key)] = int(millis)
        ended.move_to_end((tracker.family, tracker.key))
        while len(ended) > self.config.max_keys:
            ended.popitem(last=False)
        campaign.closed_reason = reason
        campaign.closed_at = at
        out[campaign.detector_key] = self._snapshot(tracker, campaign)
        self.stats.incidents_closed += 1

    def _close_distributed(
        self, incident: Distributed, reason: str, at: float, out: dict[str, Incident]
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

    def _schedule(self, when: float, tracker: Tracker | UserTracker) -> None:
        """Look at ``tracker`` again when its stream reaches ``when`` (one entry each)."""
        entry = next(self._tiebreak)
        tracker.due = entry
        target = (tracker.family, tracker.key) if isinstance(tracker, Tracker) else tracker.user
        due = self._due.setdefault(tracker.stream, [])
        heapq.heappush(due, (when, entry, isinstance(tracker, Tracker), target))

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
            if isinstance(tracker, Tracker) and tracker.campaign is not None:
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
        spans: list[float] = [h for params in self._params.values() for h in params.horizons()]
        return max([self.config.window_seconds, *spans])

    def _tail_size(self) -> int:
        counts: list[int] = [c for params in self._params.values() for c in params.counts()]
        return max([self._threshold, *counts])

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


__all__ = ["FAMILIES", "FAMILY_OF_KIND", "USERS_FAMILY", "Detector"]
