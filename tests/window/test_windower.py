"""The windower: per-key 15-second windows, event time, bounded state, nothing lost."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from soc.config import build_dataclass
from soc.errors import ConfigError
from soc.events import Event, WindowStats
from soc.window import WindowConfig, Windower
from tests.detect.builders import (
    T0,
    announce,
    closed,
    drop,
    failure,
    pam_echo,
    parse_events,
    random_batches,
    success,
    web,
)

A = "203.0.113.45"


def rows_of(events: list[Event], config: WindowConfig | None = None) -> list[WindowStats]:
    windower = Windower(config)
    return windower.add(events) + windower.flush()


def by_key(rows: list[WindowStats], key_type: str = "ip") -> dict[tuple[str, float], WindowStats]:
    return {(r.key, r.window_start): r for r in rows if r.key_type == key_type}


def test_thousands_of_lines_from_one_address_become_one_row_per_window() -> None:
    events = [failure(T0 + i * 0.01, A, "root") for i in range(3000)]  # 30 s
    rows = by_key(rows_of(events))
    assert sorted(rows) == [(A, T0), (A, T0 + 15)]
    first = rows[(A, T0)]
    assert first.events == first.failures == 1500
    assert first.window_end == T0 + 15
    assert first.first_seen == T0 and first.last_seen == pytest.approx(T0 + 14.99)
    assert first.users == ["root"] and first.distinct_users == 1
    assert first.by_kind == {"auth_failure": 1500}
    assert not first.partial and first.late == 0


def test_windows_are_aligned_on_the_epoch() -> None:
    rows = rows_of([failure(T0 + 7, A), failure(T0 + 22, A)])
    assert [r.window_start % 15 for r in rows] == [0.0] * len(rows)
    assert {r.window_start for r in rows if r.key_type == "ip"} == {T0, T0 + 15}
    rows = rows_of([failure(T0 + 7, A)], WindowConfig(seconds=60))
    assert rows[0].window_start == T0 and rows[0].window_end == T0 + 60


def test_keys_address_network_and_user() -> None:
    v6 = [f"2001:db8:bad:cafe::{i}" for i in range(1, 4)]
    events = [failure(T0 + i, ip, "root") for i, ip in enumerate(v6)]
    events.append(Event(T0, "auth_failure", "failure", "pam_auth", source_address="evil.example"))
    rows = rows_of(events)
    types = sorted({(r.key_type, r.key) for r in rows})
    assert types == sorted(
        [("ip", ip) for ip in v6]
        + [("host", "evil.example"), ("ipv6_64", "2001:db8:bad:cafe::/64"), ("user", "root")]
    )
    net = next(r for r in rows if r.key_type == "ipv6_64")
    assert net.events == 3 and net.distinct_sources == 3 and net.sources == v6
    user = next(r for r in rows if r.key_type == "user")
    assert user.distinct_sources == 3 and user.users == []
    assert {r.key_type for r in rows_of(events, WindowConfig(ipv6_prefix=0, user_keys=False))} == {
        "ip",
        "host",
    }


def test_failures_count_attempts_not_echo_lines() -> None:
    events = [
        announce(T0, A, "admin"),
        pam_echo(T0, A, "admin"),
        failure(T0, A, "admin", invalid=True),
        closed(T0 + 1, A),
        failure(T0 + 2, A, "root", count=3),
        success(T0 + 3, A, "root"),
    ]
    [row] = [r for r in rows_of(events) if r.key_type == "ip"]
    assert row.events == 8  # every line, weighted by its count
    assert row.failures == 4  # the failed password for admin, and three for root
    assert row.successes == 1
    assert row.by_kind == {"auth_failure": 4, "auth_success": 1, "invalid_user": 2, "preauth": 1}


def test_failures_from_real_lines(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(
        "Nov 21 10:00:00 web01 sshd[1]: Invalid user admin from 203.0.113.45 port 4000\n"
        "Nov 21 10:00:00 web01 sshd[1]: pam_unix(sshd:auth): authentication failure; "
        "logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.45\n"
        "Nov 21 10:00:01 web01 sshd[1]: Failed password for invalid user admin "
        "from 203.0.113.45 port 4000 ssh2\n"
        "Nov 21 10:00:02 web01 sshd[1]: Failed password for invalid user admin "
        "from 203.0.113.45 port 4000 ssh2\n"
        "Nov 21 10:00:03 web01 sshd[1]: error: maximum authentication attempts exceeded "
        "for invalid user admin from 203.0.113.45 port 4000 ssh2 [preauth]\n"
        "Nov 21 10:00:03 web01 sshd[1]: PAM 1 more authentication failure; logname= uid=0 "
        "euid=0 tty=ssh ruser= rhost=203.0.113.45\n",
        encoding="utf-8",
    )
    events, unparsed = parse_events(log, "syslog")
    assert not unparsed and len(events) == 6
    [row] = [r for r in rows_of(events) if r.key_type == "ip"]
    assert row.events == 6
    assert row.failures == 2  # the two "Failed password" lines: one per attempt


def test_ports_and_paths() -> None:
    events = [drop(T0 + i * 0.1, A, 1000 + i % 30) for i in range(100)]
    events += [web(T0 + 1, A, f"/p{i}", 404) for i in range(3)]
    [row] = [r for r in rows_of(events, WindowConfig(sample_ports=5)) if r.key_type == "ip"]
    assert row.distinct_ports == 30 and row.ports == [1000, 1001, 1002, 1003, 1004]
    assert row.distinct_paths == 3 and row.paths == ["/p0", "/p1", "/p2"]
    assert row.failures == 3  # 404s; firewall drops are not failures
    assert row.by_kind == {"firewall_drop": 100, "web_request": 3}


def test_windows_close_in_event_time_after_the_late_allowance() -> None:
    windower = Windower(WindowConfig(late_seconds=30))
    assert windower.add([failure(T0 + 1, A)]) == []
    assert windower.add([failure(T0 + 44, "192.0.2.1")]) == []  # 15 + 30 not passed yet
    closed_rows = windower.add([failure(T0 + 45, "192.0.2.2")])
    assert [(r.key, r.window_start) for r in closed_rows if r.key_type == "ip"] == [(A, T0)]
    assert windower.watermark == T0 + 45
    # A quiet source: the engine moves event time on without events.
    moved = windower.advance(T0 + 200)
    assert {r.key for r in moved if r.key_type == "ip"} == {"192.0.2.1", "192.0.2.2"}
    assert windower.flush() == []
    assert windower.stats.open_windows == 0


def test_late_lines_are_counted_and_accounted_never_dropped() -> None:
    windower = Windower(WindowConfig(late_seconds=10))
    rows = windower.add([failure(T0 + 100, A)])
    # 8 s late: within the allowance, in its own window.
    rows += windower.add([failure(T0 + 92, A)])
    # 60 s late: its window closed long ago; counted and put in the oldest open window.
    rows += windower.add([failure(T0 + 40, A)])
    rows += windower.flush()
    ip_rows = by_key(rows)
    assert windower.stats.late == 1
    # All three in the window [T0+90, T0+105): two on time, one late (taken at the
    # watermark minus the allowance, T0+90: the oldest time still open).
    assert list(ip_rows) == [(A, T0 + 90)]
    row = ip_rows[(A, T0 + 90)]
    assert row.events == 3 and row.late == 1
    assert row.first_seen == T0 + 90 and row.last_seen == T0 + 100


def test_untimed_unkeyed_and_timeless_events_are_counted() -> None:
    windower = Windower()
    no_time = failure(T0, A)
    no_time.timestamp = None
    windower.add([no_time])  # no event time known yet
    assert windower.stats.no_time == 1
    windower.add([failure(T0 + 5, A), no_time, Event(T0, "auth_failure", "failure", "pam")])
    rows = windower.flush()
    assert windower.stats.untimed == 1
    assert windower.stats.unkeyed == 1
    assert windower.stats.windowed == 2
    assert sum(r.events for r in rows if r.key_type == "ip") == 2


def test_tracked_keys_are_capped_with_evictions_counted() -> None:
    windower = Windower(WindowConfig(max_keys=3, user_keys=False))
    events = [failure(T0 + i * 0.1, f"192.0.2.{i}") for i in range(10)]
    events += [failure(T0 + 2 + i * 0.1, f"192.0.2.{i}") for i in range(10)]
    rows = windower.add(events) + windower.flush()
    assert windower.stats.evicted_keys == 7
    assert windower.stats.partial_windows == 7
    assert sum(r.partial for r in rows) == 7
    assert sum(r.events for r in rows) == 20  # nothing lost: early rows, then the rest
    assert len(windower._open) == 0


def test_hostile_values_are_bounded() -> None:
    names = [f"{i}-" + "x" * 5000 for i in range(300)]
    events = [failure(T0 + i * 0.01, A, name, invalid=True) for i, name in enumerate(names)]
    config = WindowConfig(max_distinct=50, sample_users=4, max_value_length=64)
    windower = Windower(config)
    rows = windower.add(events[:150]) + windower.add(events[150:]) + windower.flush()
    [row] = [r for r in rows if r.key_type == "ip"]
    assert row.distinct_users == 50  # tracked up to the cap: a lower bound
    assert len(row.users) == 4 and all(len(u) == 64 and u.endswith("…") for u in row.users)
    assert windower.stats.values_cut == 300
    assert windower.stats.distinct_overflow > 0
    user_rows = [r for r in rows if r.key_type == "user"]
    assert len(user_rows) == 300 and all(len(r.key) == 64 for r in user_rows)


def test_rows_do_not_depend_on_batch_boundaries() -> None:
    events = [
        failure(T0 + i * 0.7 - (5 if i % 9 == 0 else 0), f"192.0.2.{i % 7}") for i in range(400)
    ]
    config = WindowConfig(late_seconds=3)
    whole = rows_of(events, config)
    assert any(r.late for r in whole)
    for seed in range(4):
        windower = Windower(config)
        rows: list[WindowStats] = []
        for batch in random_batches(events, seed, most=20):
            rows.extend(windower.add(batch))
        rows.extend(windower.flush())
        assert sorted(rows, key=_order) == sorted(whole, key=_order)


def _order(row: WindowStats) -> tuple[float, str, str]:
    return (row.window_start, row.key_type, row.key)


def test_window_stats_field_order_is_what_the_windower_builds_positionally() -> None:
    # Windower builds rows positionally (speed); a reordered dataclass must fail here.
    assert [f.name for f in dataclasses.fields(WindowStats)] == [
        "key",
        "key_type",
        "window_start",
        "window_end",
        "events",
        "failures",
        "successes",
        "distinct_users",
        "users",
        "distinct_ports",
        "ports",
        "distinct_paths",
        "paths",
        "first_seen",
        "last_seen",
        "by_kind",
        "distinct_sources",
        "sources",
        "late",
        "partial",
    ]


def test_config_is_validated_with_the_key_named() -> None:
    assert build_dataclass(WindowConfig, {"seconds": 30, "late_seconds": 5}, "x").seconds == 30.0
    for values, key in (
        ({"seconds": 0}, "seconds"),
        ({"ipv6_prefix": 129}, "ipv6_prefix"),
        ({"late_seconds": -1}, "late_seconds"),
        ({"max_keys": 0}, "max_keys"),
        ({"sample_users": 5000}, "sample_users"),
        ({"window": 15}, "unknown key"),
    ):
        with pytest.raises(ConfigError, match=key):
            build_dataclass(WindowConfig, values, "soc.toml: [window]")


def test_distinct_counts_are_capped_alike_however_the_window_closes() -> None:
    names = [f"user{i}" for i in range(300)]
    events = [failure(T0 + i * 0.01, A, name) for i, name in enumerate(names)]
    later = failure(T0 + 100, "192.0.2.1")
    config = WindowConfig(max_distinct=50, user_keys=False)
    # Closed within the batch that opened it (built straight from the batch)…
    at_once = Windower(config)
    [direct] = [r for r in at_once.add([*events, later]) if r.key == A]
    # … or kept open across batches.
    piecewise = Windower(config)
    rows = piecewise.add(events[:100]) + piecewise.add(events[100:]) + piecewise.add([later])
    [accumulated] = [r for r in rows if r.key == A]
    assert direct == accumulated
    assert direct.distinct_users == 50
    assert at_once.stats.distinct_overflow == 250
