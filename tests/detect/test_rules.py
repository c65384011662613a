"""Each rule on its own: what raises it, what stays below, and its edges."""

from __future__ import annotations

import pytest

from soc.config import build_dataclass
from soc.detect import DetectConfig, Detector, severity
from soc.detect.logins import near_miss
from soc.detect.rules import techniques
from soc.errors import ConfigError
from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
    Event,
    Incident,
)
from tests.detect.builders import (
    T0,
    announce,
    closed,
    drop,
    failure,
    pam_echo,
    run_batches,
    success,
    web,
)

A = "203.0.113.45"
B = "198.51.100.23"


def detect(events: list[Event], **config: object) -> list[Incident]:
    detector = Detector(build_dataclass(DetectConfig, config, "test"))
    return list(run_batches(detector, [events]).values())


def kinds(incidents: list[Incident]) -> list[tuple[str, str]]:
    return sorted((i.kind, i.key) for i in incidents)


# --- brute force -------------------------------------------------------------------
def test_threshold_minus_one_stays_local_and_threshold_raises() -> None:
    four = [failure(T0 + i, A) for i in range(4)]
    assert detect(four) == []
    five = [*four, failure(T0 + 4, A)]
    [incident] = detect(five)
    assert incident.kind == BRUTE_FORCE
    assert incident.failures == 5
    assert incident.opened_at == T0 + 4
    assert incident.technique == techniques()[BRUTE_FORCE][0] == "T1110.001"


def test_brute_force_window_slides_across_window_boundaries() -> None:
    # 10:00:12 … 10:00:16: 3 before the 15 s boundary, 2 after.
    events = [failure(T0 + s, A) for s in (12, 13, 14, 15, 16)]
    [incident] = detect(events)
    assert incident.kind == BRUTE_FORCE
    # Five failures 15 s apart in total span more than the window: nothing.
    spread = [failure(T0 + 4 * i, A) for i in range(5)]  # 0 … 16 s
    assert detect(spread) == []


def test_failures_exactly_window_seconds_apart_are_not_in_one_window() -> None:
    # The window is (t - 15 s, t]: a failure exactly 15 s earlier is outside it.
    events = [failure(T0, A), *(failure(T0 + 15, A) for _ in range(4))]
    assert detect(events) == []
    events = [failure(T0 + 0.001, A), *(failure(T0 + 15, A) for _ in range(4))]
    assert kinds(detect(events)) == [(BRUTE_FORCE, A)]


def test_count_weights_repeated_messages() -> None:
    # "message repeated 4 times": one line standing for four attempts.
    events = [failure(T0, A), failure(T0 + 1, A, count=4)]
    [incident] = detect(events)
    assert incident.failures == 5


def test_echo_lines_are_not_counted_twice() -> None:
    # Each attempt as sshd + PAM log it: an announcement, a PAM line, the failure.
    events: list[Event] = []
    for i in range(4):
        events += [announce(T0 + i, A, "admin"), pam_echo(T0 + i, A), failure(T0 + i, A, "admin")]
        events.append(closed(T0 + i, A))
    assert detect(events) == []  # 4 attempts, not 12
    events.append(failure(T0 + 5, A, "admin", invalid=True))
    [incident] = detect(events)
    assert incident.failures == 5
    assert incident.events == len(events)  # every line is still counted as an event


def test_threshold_changes_apply_to_the_next_batch() -> None:
    detector = Detector()
    assert detector.threshold == 5
    assert detector.process([failure(T0 + i, A) for i in range(3)]) == []
    detector.set_threshold(3)
    assert detector.threshold == 5  # not yet
    [incident] = detector.process([failure(T0 + 3, A)])
    assert detector.threshold == 3
    assert incident.kind == BRUTE_FORCE
    detector.set_threshold(50)
    assert detector.process([failure(T0 + 100 + i, B) for i in range(9)]) == []
    with pytest.raises(ConfigError):
        detector.set_threshold(0)
    with pytest.raises(ConfigError):
        detector.set_threshold(10**9)


def test_raised_as_soon_as_crossed_within_the_batch() -> None:
    detector = Detector()
    events = [failure(T0 + i, A) for i in range(5)] + [failure(T0 + 100 + i, A) for i in range(3)]
    [incident] = detector.process(events)
    assert incident.opened_at == T0 + 4  # the fifth failure, not the end of the batch
    assert incident.failures == 8
    assert not incident.closed


# --- campaigns ----------------------------------------------------------------------
def test_a_campaign_updates_one_incident_until_quiet() -> None:
    detector = Detector()
    first = detector.process([failure(T0 + i, A) for i in range(6)])
    later = detector.process([failure(T0 + 600 + i, A, "admin") for i in range(3)])
    assert [i.detector_key for i in later] == [first[0].detector_key]
    assert later[0].failures == 9
    assert later[0].users == ["root", "admin"]
    assert later[0].first_seen == T0 and later[0].last_seen == T0 + 602
    # Quiet for more than quiet_seconds: the next burst is another incident.
    again = detector.process([failure(T0 + 602 + 901 + i, A) for i in range(5)])
    assert len(again) == 2
    old, new = sorted(again, key=lambda i: i.first_seen)
    assert old.detector_key == first[0].detector_key and old.closed
    assert old.facts["closed_reason"] == "quiet"
    assert old.facts["closed_at"] == T0 + 602 + 900
    assert new.detector_key != old.detector_key and not new.closed


def test_close_quiet_closes_in_event_time() -> None:
    detector = Detector()
    [incident] = detector.process([failure(T0 + i, A) for i in range(5)])
    assert detector.close_quiet(T0 + 4 + 899) == []
    [closed_incident] = detector.close_quiet(T0 + 4 + 900)
    assert closed_incident.detector_key == incident.detector_key
    assert closed_incident.closed
    assert detector.open_incidents() == []
    assert detector.flush() == []


def test_below_threshold_keys_never_become_incidents_and_are_forgotten() -> None:
    detector = Detector()
    quiet = [failure(T0 + i * 60, f"192.0.2.{i}", f"user{i}") for i in range(50)]
    assert detector.process(quiet) == []
    assert detector.stats.keys == 50
    detector.close_quiet(T0 + 10 * 3600)
    assert detector.stats.open_incidents == 0
    detector.process([])
    assert len(detector._trackers) == 0  # every horizon passed: forgotten


def test_evidence_keeps_the_first_and_the_latest_lines() -> None:
    events = [failure(T0 + i * 0.5, A, f"user{i}") for i in range(100)]
    [incident] = detect(events, evidence_lines=6)
    assert len(incident.evidence) == 6
    assert incident.evidence[:3] == [e.raw for e in events[:3]]
    assert incident.evidence[3:] == [e.raw for e in events[-3:]]


# --- spray, slow, distributed, compromise -------------------------------------------
def test_password_spray_many_users_few_tries() -> None:
    events = [failure(T0 + 30 * i, B, f"user{i}", invalid=True) for i in range(10)]
    [incident] = detect(events)
    assert incident.kind == PASSWORD_SPRAY
    assert incident.distinct_users == 10
    assert incident.technique == "T1110.003"
    assert detect(events[:9]) == []


def test_many_tries_per_user_is_a_brute_force_not_a_spray() -> None:
    events = [failure(T0 + i, A, f"user{i % 10}") for i in range(60)]
    [incident] = detect(events)
    assert incident.kind == BRUTE_FORCE
    assert set(incident.facts["rules"]) >= {BRUTE_FORCE, PASSWORD_SPRAY}


def test_slow_brute_force_over_the_horizon() -> None:
    events = [failure(T0 + 300 * i, A) for i in range(10)]  # 45 minutes
    [incident] = detect(events)
    assert incident.kind == SLOW_BRUTE_FORCE
    assert incident.opened_at == T0 + 2700
    assert incident.severity == "low"
    # Spread over more than the horizon, nothing.
    assert detect([failure(T0 + 420 * i, A) for i in range(10)], quiet_seconds=600) == []


def test_distributed_counts_only_sources_below_the_threshold() -> None:
    loud = [failure(T0 + i * 0.5, A, "root") for i in range(6)]
    quiet = [failure(T0 + 10 + 5 * i, f"198.51.100.{100 + i}", "root") for i in range(9)]
    # The loud source raised its own incident: it is not one of the ten.
    assert kinds(detect(loud + quiet)) == [(BRUTE_FORCE, A)]
    tenth = [failure(T0 + 60, "198.51.100.200", "root")]
    got = detect(loud + quiet + tenth)
    assert kinds(got) == [(BRUTE_FORCE, A), (DISTRIBUTED_BRUTE_FORCE, "root")]
    distributed = next(i for i in got if i.kind == DISTRIBUTED_BRUTE_FORCE)
    # Its failures after it crossed the threshold are not the distributed campaign's.
    assert distributed.failures == 4 + 10
    assert set(distributed.source_ips) == {A, *(e.source_ip for e in quiet + tenth)}
    assert detect(quiet) == []


def test_distributed_users_attacked_by_the_same_sources_share_one_incident() -> None:
    sources = [f"198.51.100.{100 + i}" for i in range(12)]
    events = [failure(T0 + 2 * i, ip, "root") for i, ip in enumerate(sources)]
    events += [failure(T0 + 100 + 2 * i, ip, "admin") for i, ip in enumerate(sources)]
    others = [f"203.0.113.{100 + i}" for i in range(12)]
    events += [failure(T0 + 200 + 2 * i, ip, "oracle") for i, ip in enumerate(others)]
    got = detect(events)
    assert kinds(got) == [(DISTRIBUTED_BRUTE_FORCE, "oracle"), (DISTRIBUTED_BRUTE_FORCE, "root")]
    root = next(i for i in got if i.key == "root")
    assert root.users == ["root", "admin"]
    assert sorted(root.source_ips) == sorted(sources)
    assert root.failures == 24


def test_compromise_is_a_login_after_an_attack_from_the_same_source() -> None:
    burst = [failure(T0 + 2 * i, A, "root") for i in range(6)]
    events = [*burst, success(T0 + 40, A, "root")]
    [incident] = detect(events)
    assert incident.kind == CREDENTIAL_COMPROMISE
    assert incident.severity == "critical"
    assert incident.technique == "T1078"
    assert incident.successes == 1
    assert incident.facts["compromise_evidence"] == [BRUTE_FORCE]
    assert incident.evidence[-1] == events[-1].raw  # the login itself is evidence
    # The brute force alone, without the login: a brute force.
    [alone] = detect(burst)
    assert alone.kind == BRUTE_FORCE


def test_typos_then_a_login_are_no_compromise_from_any_address() -> None:
    # Three (or four) mistyped passwords, then the login: the false compromise.
    for n in (3, 4):
        typos = [failure(T0 + 8 * i, A, "alice") for i in range(n)]
        assert detect([*typos, success(T0 + 40, A, "alice")]) == []
    # Offered keys before the accepted one are no failures at all (soc.events.is_key_offer).
    offers = [failure(T0, A, "alice") for _ in range(3)]
    for event in offers:
        event.reason = "failed publickey"
    assert detect([*offers, success(T0 + 1, A, "alice")]) == []


def test_guessing_other_names_then_a_login_is_a_compromise() -> None:
    guesses = [failure(T0 + 60 * i, A, name) for i, name in enumerate(["admin", "test", "oracle"])]
    [incident] = detect([*guesses, success(T0 + 300, A, "ubuntu")])
    assert incident.kind == CREDENTIAL_COMPROMISE
    assert incident.facts["compromise_evidence"] == ["failures for other user names"]
    # Two other names (a user who mistyped their name twice): nothing; nor names an hour old.
    assert detect([*guesses[:2], success(T0 + 300, A, "ubuntu")]) == []
    assert detect([*guesses, success(T0 + 120 + 3600, A, "ubuntu")], quiet_seconds=4000) == []


def test_mistyped_names_behind_a_shared_address_are_no_evidence() -> None:
    # An office: alice logged in from it earlier; three people then mistype their user
    # names (names that do not exist, never forgiven) and yara logs in: a user, not a
    # compromise. The same from an address nobody logged in from is one (above).
    typos = [
        failure(T0 + 600 + 60 * i, A, name, invalid=True)
        for i, name in enumerate(["Ulopez", "ufereira", "yar.ahansen"])
    ]
    assert detect([success(T0, A, "alice"), *typos, success(T0 + 900, A, "yara.hansen")]) == []


def test_a_known_users_failures_count_for_no_rule() -> None:
    # alice logs in, then fails 12 times within 20 s from the same address: no brute force
    # (she is known there); the same failures from another address are one.
    events = [success(T0, A, "alice")] + [failure(T0 + 100 + i, A, "alice") for i in range(12)]
    assert detect(events) == []
    [incident] = detect([failure(T0 + 100 + i, B, "alice") for i in range(12)])
    assert incident.kind == BRUTE_FORCE
    # Another name from alice's address is not alice: it still counts.
    others = [failure(T0 + 100 + i, A, "root") for i in range(6)]
    [incident] = detect([success(T0, A, "alice"), *others])
    assert incident.kind == BRUTE_FORCE


def test_a_login_forgives_the_typos_before_it_for_later_counts() -> None:
    # Each of 12 users behind one address fails once and logs in: 12 failures within the
    # hour, 12 names, yet no slow brute force and no spray.
    events: list[Event] = []
    for i in range(12):
        user = f"user{i}"
        events += [failure(T0 + 240 * i, A, user), success(T0 + 240 * i + 20, A, user)]
    assert detect(events) == []
    assert detect(events, forgive_seconds=0) != []  # not forgiven: a slow brute force
    # Without the logins, the same failures are a spray.
    [incident] = detect([e for e in events if e.outcome == "failure"])
    assert incident.kind == PASSWORD_SPRAY


# --- web and firewall ----------------------------------------------------------------
def test_web_scan_counts_distinct_probing_paths() -> None:
    probes = [
        "/.env",
        "/.git/config",
        "/wp-login.php",
        "/phpmyadmin/",
        "/admin/",
        "/backup.zip",
        "/cgi-bin/test.cgi",
        "/config.php.bak",
        "/shell.php",
        "/server-status",
    ]
    events = [web(T0 + i, A, path, 404) for i, path in enumerate(probes)]
    [incident] = detect(events)
    assert incident.kind == WEB_SCAN
    assert incident.facts["distinct_paths"] == 10
    repeated = [web(T0 + i, A, "/.env", 404) for i in range(50)]
    assert detect(repeated) == []
    fine = [web(T0 + i, A, f"/page{i}", 200) for i in range(50)]
    assert detect(fine) == []
    # A crawler's stale links: 50 distinct 404s on ordinary pages are no scan.
    stale = [web(T0 + i, A, f"/blog/2019/post-{i}", 404) for i in range(50)]
    assert detect(stale) == []


def test_a_users_wrong_password_at_a_basic_auth_prompt_is_forgiven() -> None:
    # Three wrong passwords, then the page with the right one; then 12 more refusals
    # within ten minutes of her own (a stale saved password): none counts, she is known.
    events = [web(T0 + i, A, "/private/", 401, "alice") for i in range(3)]
    events.append(web(T0 + 5, A, "/private/", 200, "alice"))
    events += [web(T0 + 30 + 20 * i, A, "/private/", 401, "alice") for i in range(12)]
    assert detect(events) == []


def test_web_auth_brute_force_in_a_window_or_over_the_horizon() -> None:
    burst = [web(T0 + i, A, "/admin/", 401, "admin") for i in range(5)]
    [incident] = detect(burst)
    assert incident.kind == WEB_AUTH_BRUTE_FORCE
    slow = [web(T0 + 50 * i, B, "/admin/", 401, "admin") for i in range(10)]
    [incident] = detect(slow)
    assert incident.kind == WEB_AUTH_BRUTE_FORCE
    assert detect(slow[:9]) == []


def test_port_scan_counts_distinct_ports() -> None:
    events = [drop(T0 + i * 0.1, A, 1000 + i) for i in range(15)]
    [incident] = detect(events)
    assert incident.kind == PORT_SCAN
    assert incident.facts["distinct_ports"] == 15
    assert incident.technique == "T1046"
    assert detect(events[:14]) == []
    assert detect([drop(T0 + i, A, 445) for i in range(500)]) == []


def test_families_are_separate_campaigns() -> None:
    events = [failure(T0 + i, A) for i in range(5)] + [drop(T0 + i, A, 2000 + i) for i in range(20)]
    assert kinds(detect(events)) == [(BRUTE_FORCE, A), (PORT_SCAN, A)]


# --- keys and the allow-list -------------------------------------------------------------
def test_allow_list_addresses_networks_and_host_addresses() -> None:
    events = [failure(T0 + i * 0.1, "198.51.100.7") for i in range(50)]
    events += [failure(T0 + i * 0.1, "2001:db8:1::7") for i in range(50)]
    events += [failure(T0 + i * 0.1, "192.0.2.10") for i in range(50)]
    detector = Detector(
        DetectConfig(allow_list=["198.51.100.0/24", "2001:db8:1::/64"]),
        host_addresses=["192.0.2.10", "127.0.0.1"],
    )
    assert run_batches(detector, [events]) == {}
    assert detector.stats.allow_listed == 150
    # include_host_addresses = false: the host's own address is an address like others.
    detector = Detector(
        DetectConfig(
            allow_list=["198.51.100.0/24", "2001:db8:1::/64"], include_host_addresses=False
        ),
        host_addresses=["192.0.2.10"],
    )
    assert [i.key for i in run_batches(detector, [events]).values()] == ["192.0.2.10"]


def test_ipv6_addresses_are_keyed_by_their_network() -> None:
    events = [failure(T0 + i, f"2001:db8:bad:cafe::{i + 1:x}") for i in range(5)]
    [incident] = detect(events)
    assert incident.key == "2001:db8:bad:cafe::/64"
    assert incident.facts["key_type"] == "ipv6_64"
    assert len(incident.source_ips) == 5
    assert detect(events, ipv6_prefix=0) == []
    [incident] = detect(events, ipv6_prefix=48)
    assert incident.key == "2001:db8:bad::/48"


def test_host_name_sources_are_keys_too() -> None:
    events = [
        Event(
            T0 + i,
            "auth_failure",
            "failure",
            "pam_auth",
            source_address="evil.example",
            user="root",
        )
        for i in range(5)
    ]
    [incident] = detect(events)
    assert incident.key == "evil.example"
    assert incident.source_ips == []
    assert incident.facts["key_type"] == "host"


def test_events_without_address_or_time_are_counted_not_lost() -> None:
    detector = Detector()
    no_address = Event(T0, "auth_failure", "failure", "pam_auth", user="root")
    no_time = failure(T0, A)
    no_time.timestamp = None
    alert = Event(T0, "alert", "unknown", "alert", source_ip=A)
    detector.process([no_time, no_address, alert])
    assert detector.stats.unkeyed == 1
    assert detector.stats.ignored == 1
    assert detector.stats.no_time == 1  # no event time known yet
    detector.process([failure(T0, A), no_time])
    assert detector.stats.no_time == 1  # now taken at the current event time
    assert detector.stats.detected_on == 2


def test_out_of_order_events_are_taken_at_their_keys_latest_time() -> None:
    detector = Detector()
    detector.process([failure(T0 + 100, A)])
    detector.process([failure(T0 + 10 + i, A) for i in range(4)])
    assert detector.stats.reordered == 4
    [incident] = detector.flush()
    assert incident.first_seen == T0 + 10  # the facts keep the real times


# --- bounds --------------------------------------------------------------------------------
def test_hostile_user_names_are_bounded() -> None:
    detector = Detector(DetectConfig(max_distinct=100, sample_size=20))
    long = "x" * 10_000
    events = [failure(T0 + i * 0.01, B, f"{i}{long}", invalid=True) for i in range(2_000)]
    [incident] = run_batches(detector, [events]).values()
    assert incident.kind == PASSWORD_SPRAY  # more names than are tracked: still a spray
    assert incident.distinct_users == 100
    assert len(incident.users) == 20
    assert all(len(u) == 256 and u.endswith("…") for u in incident.users)
    assert detector.stats.values_cut == 2_000  # each event once
    assert detector.stats.distinct_overflow > 0
    assert incident.facts["distinct_overflow"] > 0


def test_tracked_keys_are_capped_and_evictions_counted() -> None:
    detector = Detector(DetectConfig(max_keys=10, max_users=5))
    opened = detector.process([failure(T0 + i * 0.1, A) for i in range(5)])
    assert len(opened) == 1
    evicted = detector.process([failure(T0 + 10 + i, f"192.0.2.{i}", f"u{i}") for i in range(30)])
    assert [i.detector_key for i in evicted] == [opened[0].detector_key]
    assert evicted[0].closed and evicted[0].facts["closed_reason"] == "evicted"
    assert detector.stats.keys == 10
    assert detector.stats.evicted_keys == 21
    assert detector.stats.incidents_evicted == 1
    assert detector.stats.users <= 5
    assert detector.stats.evicted_users > 0


# --- configuration and severity ------------------------------------------------------------
def test_config_is_validated_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        build_dataclass(DetectConfig, {"threshold": 0}, "soc.toml: [detect]")
    with pytest.raises(ConfigError, match="allow_list"):
        build_dataclass(DetectConfig, {"allow_list": ["not-an-address"]}, "soc.toml")
    with pytest.raises(ConfigError, match="failure_kinds"):
        build_dataclass(DetectConfig, {"failure_kinds": ["nope"]}, "soc.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        build_dataclass(DetectConfig, {"thresold": 3}, "soc.toml")
    config = build_dataclass(
        DetectConfig, {"allow_list": ["10.0.0.0/8", "::ffff:192.0.2.1"], "threshold": 7}, "x"
    )
    assert config.threshold == 7


def test_severity_from_the_facts() -> None:
    config = DetectConfig()
    assert severity(CREDENTIAL_COMPROMISE, failures=1, breadth=1, successes=1, config=config) == (
        "critical"
    )
    assert severity(PORT_SCAN, failures=20, breadth=0, successes=0, config=config) == "low"
    assert severity(BRUTE_FORCE, failures=5, breadth=1, successes=0, config=config) == "medium"
    assert severity(SLOW_BRUTE_FORCE, failures=100, breadth=1, successes=0, config=config) == (
        "medium"
    )
    assert severity(BRUTE_FORCE, failures=1000, breadth=1, successes=0, config=config) == "high"
    assert severity(PASSWORD_SPRAY, failures=60, breadth=60, successes=0, config=config) == "high"
    assert severity(WEB_SCAN, failures=5, breadth=0, successes=0, config=config) == "low"
    assert severity(BRUTE_FORCE, failures=5, breadth=1, successes=1, config=config) == "high"


@pytest.mark.parametrize(
    ("typed", "name", "miss"),
    [
        ("Gschmidt", "gschmidt", True),  # case
        ("nmurhy", "nmurphy", True),  # a letter left out
        ("ubernadr", "ubernard", True),  # two swapped
        ("iines.weber", "ines.weber", True),  # one added
        ("yar.ahansen", "yara.hansen", True),  # two slips in a long name
        ("admn", "admin", True),
        ("amir.zhang.work", "amir.zhang", False),
        ("user", "ubernard", False),
        ("root", "admin", False),
        ("oracle", "orcl", False),
        ("git", "gin", True),
        ("git", "ftp", False),  # short names: one slip at most
    ],
)
def test_near_miss(typed: str, name: str, miss: bool) -> None:
    assert near_miss(typed, name) is miss


def test_mistyped_user_names_are_forgiven_by_the_login_they_miss() -> None:
    # Twelve people behind one address each mistype their user name once (a name that
    # does not exist), then log in: no spray. Twelve unrelated names are one.
    events: list[Event] = []
    for i in range(12):
        name = f"employee{i:02d}"
        typo = name[:3] + name[4:]  # a letter left out
        events += [
            failure(T0 + 300 * i, A, typo, invalid=True),
            success(T0 + 300 * i + 15, A, name),
        ]
    assert detect(events) == []
    [spray] = detect([e for e in events if e.outcome == "failure"])
    assert spray.kind == PASSWORD_SPRAY
