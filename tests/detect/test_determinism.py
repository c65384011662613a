"""Replay equals live: the same events in the same order give the same incidents and
windows however they are cut into batches, and whenever ``close_quiet`` runs."""

from __future__ import annotations

import random
from typing import Any

import pytest

from soc.detect import DetectConfig, Detector
from soc.events import Event, Incident, WindowStats
from soc.window import WindowConfig, Windower
from tests.detect.builders import (
    SAMPLES,
    T0,
    comparable,
    drop,
    failure,
    final,
    parse_events,
    random_batches,
    run_batches,
    success,
    web,
)

MIXED = (
    ("auth.log", "syslog"),
    ("nginx-access.log", "web_access"),
    ("ufw.log", "syslog"),
    ("apache-error.log", "web_error"),
)


def sample_stream() -> list[Event]:
    """Several sample files as one time-ordered stream (as a collector would see them)."""
    events: list[Event] = []
    for name, fmt in MIXED:
        events.extend(parse_events(SAMPLES / name, fmt)[0])
    events.sort(key=lambda e: e.timestamp or 0.0)
    return events


def synthetic_stream(seed: int) -> list[Event]:
    """Every kind of campaign, noise and quiet spells, slightly out of order, over hours."""
    rng = random.Random(seed)
    users = ["root", "admin", "oracle", "test", "deploy", *(f"u{i}" for i in range(30))]
    events: list[Event] = []
    for round_ in range(3):
        base = T0 + round_ * 5400 + rng.uniform(0, 600)
        for k in range(4):  # bursts, some straddling quiet gaps
            ip, t = f"203.0.113.{k + 1}", base + rng.uniform(0, 3000)
            for _ in range(rng.randint(3, 40)):
                t += rng.expovariate(1.0)
                events.append(failure(t, ip, rng.choice(users[:4]), count=rng.choice((1, 1, 3))))
            if rng.random() < 0.5:
                events.append(success(t + rng.uniform(1, 100), ip, "deploy"))
        t = base
        for user in rng.sample(users, 15):  # a spray
            t += rng.uniform(5, 40)
            events.append(failure(t, "198.51.100.23", user, invalid=True))
        for i in range(rng.randint(8, 14)):  # a slow one
            events.append(failure(base + 200 * i + rng.uniform(0, 50), "192.0.2.77", "root"))
        for i in range(rng.randint(8, 30)):  # a botnet on one user, each source quiet
            events.append(failure(base + rng.uniform(0, 900), f"100.64.{round_}.{i}", "admin"))
        for i in range(rng.randint(3, 12)):  # an IPv6 rotation
            events.append(failure(base + 2 * i, f"2001:db8:bad:{round_:x}::{i + 1:x}", "root"))
        t = base + rng.uniform(0, 3000)
        for i in range(rng.randint(5, 30)):  # a web scanner and a basic-auth guesser
            events.append(web(t + i, "203.0.113.150", f"/p{rng.randrange(60)}", 404))
            events.append(web(t + 3 * i, "198.51.100.77", "/admin/", 401, rng.choice(users)))
        for i in range(rng.randint(5, 40)):  # a port scan
            events.append(drop(t + i * 0.5, "203.0.113.99", rng.randrange(1, 65536)))
        for _ in range(300):  # noise
            ip = f"198.18.{rng.randrange(4)}.{rng.randrange(256)}"
            at = base + rng.uniform(0, 5400)
            events.append(
                rng.choice(
                    (
                        failure(at, ip, rng.choice(users)),
                        web(at, ip, "/", rng.choice((200, 404))),
                        drop(at, ip, 23),
                        success(at, ip, "alice"),
                    )
                )
            )
    events.sort(key=lambda e: e.timestamp or 0.0)
    for i in range(1, len(events)):  # a little disorder
        if rng.random() < 0.05:
            events[i - 1], events[i] = events[i], events[i - 1]
    return events


def incidents_of(events: list[Event], batches: list[list[Event]], **kw: Any) -> dict[str, Any]:
    config = DetectConfig(allow_list=["198.51.100.7"], evidence_lines=8)
    found = run_batches(Detector(config), batches, **kw)
    return {key: comparable(incident) for key, incident in found.items()}


def windows_of(batches: list[list[Event]]) -> list[WindowStats]:
    windower = Windower(WindowConfig(late_seconds=2.0))
    rows: list[WindowStats] = []
    for batch in batches:
        rows.extend(windower.add(batch))
    rows.extend(windower.flush())
    return sorted(rows, key=lambda w: (w.window_start, w.key_type, w.key))


@pytest.mark.parametrize("source", ["samples", "synthetic-1", "synthetic-2"])
def test_incidents_do_not_depend_on_batch_boundaries(source: str) -> None:
    events = sample_stream() if source == "samples" else synthetic_stream(int(source[-1]))
    whole = incidents_of(events, [events])
    assert whole, "the stream must raise something for the comparison to mean anything"
    for seed, most in ((1, 3), (2, 40), (3, 500)):
        batches = random_batches(events, seed, most=most)
        assert incidents_of(events, batches) == whole, f"seed {seed}"
        # The engine closing quiet campaigns after every batch changes nothing either.
        assert incidents_of(events, batches, close_quiet=True) == whole, f"seed {seed} (quiet)"


@pytest.mark.parametrize("source", ["samples", "synthetic-1"])
def test_windows_do_not_depend_on_batch_boundaries(source: str) -> None:
    events = sample_stream() if source == "samples" else synthetic_stream(1)
    whole = windows_of([events])
    by_address = [w for w in whole if w.key_type in ("ip", "host")]
    assert sum(w.events for w in by_address) == sum(e.count for e in events if e.key_address)
    if source != "samples":
        assert any(w.late for w in whole), "the synthetic stream has late lines"
    for seed, most in ((1, 8), (2, 60), (3, 700)):
        assert windows_of(random_batches(events, seed, most=most)) == whole, f"seed {seed}"


def test_sources_read_one_after_another_give_the_time_merged_incidents() -> None:
    # A replay of several files reads them one after the other; named streams keep
    # each file's campaigns in that file's event time.
    files = (("auth.log", "syslog"), ("nginx-access.log", "web_access"), ("ufw.log", "syslog"))
    per_file = [(name, parse_events(SAMPLES / name, fmt)[0]) for name, fmt in files]
    merged = sorted((e for _, evs in per_file for e in evs), key=lambda e: e.timestamp or 0.0)
    config = DetectConfig(allow_list=["198.51.100.7"])
    expected = {k: comparable(v) for k, v in run_batches(Detector(config), [merged]).items()}

    def sequential(named: bool) -> dict[str, Any]:
        detector = Detector(config)
        seen: list[Incident] = []
        for name, events in per_file:
            for i in range(0, len(events), 50):
                seen.extend(detector.process(events[i : i + 50], stream=name if named else ""))
        seen.extend(detector.flush())
        return {k: comparable(v) for k, v in final(seen).items()}

    assert sequential(named=True) == expected
    # One stream for all: the web file's campaigns look quiet at the auth file's
    # latest time and break into pieces.
    assert len(sequential(named=False)) > len(expected)


def test_windows_of_sources_read_one_after_another_are_not_late() -> None:
    files = (("auth.log", "syslog"), ("nginx-access.log", "web_access"))
    per_file = [(name, parse_events(SAMPLES / name, fmt)[0]) for name, fmt in files]
    merged = sorted((e for _, evs in per_file for e in evs), key=lambda e: e.timestamp or 0.0)

    def totals(rows: list[WindowStats]) -> dict[tuple[str, str, float], tuple[int, int]]:
        # What the store keeps: rows for the same key and window added together.
        out: dict[tuple[str, str, float], tuple[int, int]] = {}
        for r in rows:
            events, failures = out.get((r.key_type, r.key, r.window_start), (0, 0))
            out[(r.key_type, r.key, r.window_start)] = (events + r.events, failures + r.failures)
        return out

    windower = Windower()
    expected = totals(windower.add(merged) + windower.flush())
    for named in (True, False):
        windower = Windower()
        rows: list[WindowStats] = []
        for name, events in per_file:
            rows.extend(windower.add(events, stream=name if named else ""))
        rows.extend(windower.flush())
        if named:
            assert windower.stats.late == 0
            assert totals(rows) == expected
        else:
            # One stream: the second file is all late, lumped into the last windows.
            assert windower.stats.late > 0
            assert totals(rows) != expected
