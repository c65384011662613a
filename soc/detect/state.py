"""The detector's state as plain data, so that a restarted engine continues its campaigns.

:func:`dump` gives everything a later batch depends on: every tracker (its clock,
failure tail, recent names and logins, campaign), the targeted users' trackers,
the open distributed incidents, the schedule of when each tracker is looked at
again, the logins remembered, the names of campaigns handed over, the arrival
position and the watermarks; :func:`load` puts it into a new detector. Campaigns
shared between a user's tracker and a distributed incident are written once and
referred to by number. Only JSON types are used (lists, strings, numbers, None),
never pickle: the state is read back from the database.

The state is bounded as the detector is (``max_keys`` trackers, ``max_users``
users, ``max_distinct`` values per set, ``evidence_lines`` lines per campaign).
Continuing from it gives the same incidents as if the detector had never
stopped: the same campaigns, counts and names.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from soc.detect.base import DetectConfig
from soc.detect.campaign import (
    CampaignState,
    Distinct,
    Distributed,
    Evidence,
    Tracker,
    UserTracker,
)
from soc.detect.detector import Detector
from soc.detect.sums import Tail
from soc.events import Event, Incident

#: Bumped whenever the layout below changes; :func:`load` refuses other versions.
VERSION: Final = 1
#: A campaign's fields, in the order :func:`dump` writes them.
_CAMPAIGN: Final = (
    "start",
    "last_t",
    "detector_key",
    "events",
    "failures",
    "successes",
    "first",
    "last",
    "peak",
    "horizon_peak",
    "fired",
    "opened_at",
    "botnet",
)


class StateError(ValueError):
    """Saved state this version cannot continue from (the reason is the message)."""


def dump(detector: Detector) -> dict[str, Any]:
    """The detector's state (see the module's docstring)."""
    campaigns: list[list[Any]] = []
    numbers: dict[int, int] = {}
    distributed = {id(d): n for n, d in enumerate(detector._distributed)}

    def number(campaign: CampaignState | None) -> int | None:
        if campaign is None:
            return None
        found = numbers.get(id(campaign))
        if found is None:
            found = numbers[id(campaign)] = len(campaigns)
            linked = campaign.linked
            campaigns.append(
                [
                    *(getattr(campaign, name) for name in _CAMPAIGN),
                    _distinct(campaign.users),
                    _distinct(campaign.values),
                    _distinct(campaign.sources),
                    [campaign.evidence.head, list(campaign.evidence.tail)],
                    sorted(campaign.forgiven),
                    None if linked is None else distributed.get(id(linked)),
                ]
            )
        return found

    due = _due_entries(detector)
    trackers = [
        [
            t.family,
            t.key,
            t.key_type,
            t.clock,
            t.stream,
            due.get(t.due),
            _tail(t.tail),
            None if t.names is None else list(t.names.items()),
            None if t.logged_in is None else list(t.logged_in.items()),
            number(t.campaign),
        ]
        for t in detector._trackers.values()
    ]
    users = [
        [
            u.user,
            u.clock,
            u.stream,
            due.get(u.due),
            number(u.campaign),
        ]
        for u in detector._users.values()
    ]
    incidents = [
        [
            d.detector_key,
            d.opened_at,
            d.opened_position,
            [number(m) for m in d.members],
            d.members_overflow,
        ]
        for d in detector._distributed
    ]
    return {
        "version": VERSION,
        "generation": detector.generation,
        "ordinal": detector._ordinal,
        "watermark": detector.watermark,
        "watermarks": dict(detector.watermarks),
        "campaigns": campaigns,
        "trackers": trackers,
        "users": users,
        "distributed": incidents,
        "ended": [[f, k, millis] for (f, k), millis in detector._ended.items()],
        "logins": [[f, k, u, t, at] for (f, k, u), (t, at) in detector._logins._known.items()],
        "stats": detector.stats.as_dict(),
    }


def load(detector: Detector, state: Mapping[str, Any]) -> None:
    """Continue ``state`` (from :func:`dump`) in ``detector``, a new one.

    Raises :class:`StateError` for another version or malformed state; the
    detector is then left as it was.
    """
    if state.get("version") != VERSION:
        raise StateError(f"detector state version {state.get('version')!r}, not {VERSION}")
    try:
        restored = _restore(detector, state)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StateError(f"malformed detector state: {exc!r}") from None
    (
        detector._trackers,
        detector._users,
        detector._distributed,
        detector._due,
        detector._ended,
        known,
    ) = restored
    detector._logins._known = known
    detector._tiebreak = itertools.count(sum(len(heap) for heap in detector._due.values()))
    detector.generation = int(state["generation"])
    detector._ordinal = int(state["ordinal"])
    watermark = state["watermark"]
    detector.watermark = None if watermark is None else float(watermark)
    detector.watermarks = {str(k): float(v) for k, v in state["watermarks"].items()}
    stats = detector.stats
    for name, value in state["stats"].items():
        if name == "opened_by_kind":
            stats.opened_by_kind = {str(k): int(n) for k, n in value.items()}
        elif hasattr(stats, name):
            setattr(stats, name, int(value))


def _restore(detector: Detector, state: Mapping[str, Any]) -> tuple[Any, ...]:
    evidence_lines = detector.config.evidence_lines
    incidents: list[Distributed] = [
        Distributed(str(key), float(opened_at), int(position))
        for key, opened_at, position, _, _ in state["distributed"]
    ]
    campaigns: list[CampaignState] = []
    for row in state["campaigns"]:
        fields = dict(zip(_CAMPAIGN, row, strict=False))
        names, values, sources, (head, tail), forgiven, linked = row[len(_CAMPAIGN) :]
        campaign = CampaignState(float(fields["start"]), evidence_lines)
        for name in ("last_t", "first", "last"):
            setattr(campaign, name, float(fields[name]))
        for name in ("events", "failures", "successes", "peak", "horizon_peak"):
            setattr(campaign, name, int(fields[name]))
        campaign.detector_key = str(fields["detector_key"])
        campaign.fired = {str(k): float(v) for k, v in fields["fired"].items()}
        opened_at = fields["opened_at"]
        campaign.opened_at = None if opened_at is None else float(opened_at)
        campaign.botnet = str(fields["botnet"])
        campaign.users = _set(names)
        campaign.values = _set(values)
        campaign.sources = _set(sources)
        campaign.evidence = _evidence(evidence_lines, head, tail)
        campaign.forgiven = set(forgiven)
        campaign.linked = None if linked is None else incidents[int(linked)]
        campaigns.append(campaign)

    def campaign_of(n: int | None) -> CampaignState | None:
        return None if n is None else campaigns[int(n)]

    for incident, (_, _, _, members, overflow) in zip(incidents, state["distributed"], strict=True):
        incident.members = [campaigns[int(n)] for n in members]
        incident.members_overflow = int(overflow)
    schedule: list[tuple[int, str, float, bool, Any, Tracker | UserTracker]] = []
    trackers: OrderedDict[tuple[int, str], Tracker] = OrderedDict()
    for family, key, key_type, clock, stream, due, tail, names, logged_in, n in state["trackers"]:
        tracker = Tracker(int(family), str(key), str(key_type))
        tracker.clock = float(clock)
        tracker.stream = str(stream)
        tracker.tail = _untail(tail)
        tracker.names = None if names is None else OrderedDict((str(u), float(t)) for u, t in names)
        tracker.logged_in = (
            None if logged_in is None else OrderedDict((str(u), float(t)) for u, t in logged_in)
        )
        tracker.campaign = campaign_of(n)
        trackers[(tracker.family, tracker.key)] = tracker
        if due is not None:
            schedule.append(
                (
                    int(due[0]),
                    tracker.stream,
                    float(due[1]),
                    True,
                    (tracker.family, tracker.key),
                    tracker,
                )
            )
    users: OrderedDict[str, UserTracker] = OrderedDict()
    for user, clock, stream, due, n in state["users"]:
        user_tracker = UserTracker(str(user))
        user_tracker.clock = float(clock)
        user_tracker.stream = str(stream)
        user_tracker.campaign = campaign_of(n)
        users[user_tracker.user] = user_tracker
        if due is not None:
            schedule.append(
                (
                    int(due[0]),
                    user_tracker.stream,
                    float(due[1]),
                    False,
                    user_tracker.user,
                    user_tracker,
                )
            )
    # The schedule in its old order (entries are tie-breakers), renumbered from 0.
    heaps: dict[str, list[tuple[float, int, bool, Any]]] = {}
    for entry, (_, stream, when, is_key, target, owner) in enumerate(
        sorted(schedule, key=lambda s: s[0])
    ):
        owner.due = entry
        heapq.heappush(heaps.setdefault(stream, []), (when, entry, is_key, target))
    ended: OrderedDict[tuple[int, str], int] = OrderedDict(
        ((int(f), str(k)), int(millis)) for f, k, millis in state["ended"]
    )
    known: OrderedDict[tuple[int, str, str], tuple[float, int]] = OrderedDict(
        ((int(f), str(k), str(u)), (float(t), int(at))) for f, k, u, t, at in state["logins"]
    )
    return trackers, users, incidents, heaps, ended, known


def _due_entries(detector: Detector) -> dict[int | None, list[Any]]:
    """Every schedule entry by number: [entry, event time] (stale ones too: a tracker
    looks up only its own, ``due``; None, not scheduled, finds nothing)."""
    out: dict[int | None, list[Any]] = {}
    for heap in detector._due.values():
        for when, entry, _, _ in heap:
            out[entry] = [entry, when]
    return out


def _distinct(d: Distinct) -> list[Any]:
    return [list(d.values), list(d.values.values()), d.overflow]


def _set(data: list[Any]) -> Distinct:
    values, at, overflow = data
    d = Distinct()
    d.values = dict(zip(values, at, strict=True))
    d.overflow = int(overflow)
    return d


def _evidence(size: int, head: list[str], tail: list[str]) -> Evidence:
    evidence = Evidence(size)
    lines = [str(line) for line in (*head, *tail)]
    evidence.head = lines[: evidence.half]
    evidence.extend(lines[evidence.half :])
    return evidence


def _tail(tail: Tail | None) -> list[Any] | None:
    if tail is None:
        return None
    t, weight, users = tail
    return [t.tolist(), weight.tolist(), weight.dtype.str, users.tolist()]


def _untail(data: list[Any] | None) -> Tail | None:
    if data is None:
        return None
    t, weight, dtype, users = data
    return (
        np.array(t, dtype=float),
        np.array(weight, dtype=np.dtype(dtype)),
        np.array(users, dtype=object),
    )


__all__ = ["VERSION", "StateError", "dump", "load"]


def detect_batch(
    config: DetectConfig,
    events: Sequence[Event],
    state: Mapping[str, Any] | None,
    *,
    stream: str = "",
    host_addresses: Iterable[str] = (),
    flush: bool = False,
) -> tuple[list[Incident], dict[str, Any]]:
    """The detection stage as a pure function: (batch, carried state) → (incidents, state).

    ``state`` is what the previous call returned (None at the start); with
    ``flush`` every open campaign is closed after the batch (the end of a stream).
    The same incidents come out as from one :class:`Detector` fed batch after
    batch: the shape a distributed engine's per-key-group operator runs.
    """
    detector = Detector(config, host_addresses=host_addresses)
    if state is not None:
        load(detector, state)
    out = detector.process(events, stream) if events else []
    if flush:
        out.extend(detector.flush())
    return out, dump(detector)
