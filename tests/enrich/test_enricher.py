"""The enricher: the severity rule, idempotency, hit order and cap, lookup speed, refreshing."""

from __future__ import annotations

import ipaddress
import threading
import time
from pathlib import Path

import pytest

from soc.clock import ManualClock
from soc.enrich import MAX_HITS, Enricher, IntelRefresher, IntelSet, IntelSpec, raised_severity
from soc.enrich.base import Indicator
from soc.enrich.intelset import parse_address
from soc.errors import ConfigError
from soc.events import Incident
from tests.enrich.intel_data import ATTACKER, NOW, bundle_json, indicator


@pytest.mark.parametrize(
    ("severity", "confidence", "expected"),
    [
        ("low", 80, "medium"),
        ("medium", 80, "high"),
        ("high", 100, "critical"),
        ("critical", 95, "critical"),
        ("low", 79, "medium"),
        ("low", 50, "medium"),
        ("medium", 79, "medium"),
        ("high", 60, "high"),
        ("low", 49, "low"),
        ("medium", 0, "medium"),
    ],
)
def test_the_severity_rule(severity: str, confidence: int, expected: str) -> None:
    assert raised_severity(severity, confidence) == expected


def _incident(*ips: str, severity: str = "medium") -> Incident:
    return Incident(
        key=ips[0],
        kind="brute_force",
        first_seen=NOW,
        last_seen=NOW,
        source_ips=list(ips),
        severity=severity,
    )


def _list_feed(tmp_path: Path, name: str, lines: str, **options: object) -> IntelSpec:
    path = tmp_path / f"{name}.txt"
    path.write_text(lines, encoding="utf-8")
    return IntelSpec(name=name, type="blocklist", path=str(path), **options)  # type: ignore[arg-type]


def test_enriching_again_never_escalates_twice(stix_enricher: Enricher) -> None:
    incident = _incident(ATTACKER, severity="low")
    for _ in range(3):
        stix_enricher.enrich([incident], NOW)
        assert incident.severity == "medium"  # 85: one level up from the detector's low
    assert incident.facts["intel_severity"] == {"before": "low", "after": "medium"}
    assert len(incident.facts["intel"]) == 1


def test_when_the_hits_are_gone_the_detector_s_severity_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    short = indicator(
        f"[ipv4-addr:value = '{ATTACKER}']",
        name="Short-lived",
        confidence=90,
        valid_until="2025-12-01T00:00:00Z",
    )
    path.write_text(bundle_json([short]), encoding="utf-8")
    enricher = Enricher([IntelSpec(name="f", type="stix", path=str(path))])
    enricher.refresh_now()
    incident = _incident(ATTACKER)
    enricher.enrich([incident], NOW)
    assert incident.severity == "high"
    later = short.valid_until.timestamp() + 1
    enricher.enrich([incident], later)  # the same incident, after the indicator expired
    assert incident.severity == "medium"
    assert not {"intel", "intel_severity", "intel_not_listed"} & set(incident.facts)


def test_a_detector_severity_change_is_respected(stix_enricher: Enricher) -> None:
    incident = _incident(ATTACKER)
    stix_enricher.enrich([incident], NOW)
    assert incident.severity == "high"
    incident.severity = "critical"  # the detector re-rated it (a compromise)
    stix_enricher.enrich([incident], NOW)
    assert incident.severity == "critical"
    assert incident.facts["intel_severity"] == {"before": "critical", "after": "critical"}


def test_confidence_bands(tmp_path: Path) -> None:
    weak = _list_feed(tmp_path, "weak", "192.0.2.1\n", confidence=40)
    fair = _list_feed(tmp_path, "fair", "192.0.2.2\n", confidence=50)
    enricher = Enricher([weak, fair])
    enricher.refresh_now()
    low_weak, low_fair, medium_fair = (
        _incident("192.0.2.1", severity="low"),
        _incident("192.0.2.2", severity="low"),
        _incident("192.0.2.2", severity="medium"),
    )
    enricher.enrich([low_weak, low_fair, medium_fair], NOW)
    assert low_weak.severity == "low"  # recorded, not raised
    assert low_weak.facts["intel"][0]["confidence"] == 40
    assert low_fair.severity == "medium"  # at least medium
    assert medium_fair.severity == "medium"  # not past medium


def test_hits_are_ordered_strongest_first_and_capped(tmp_path: Path) -> None:
    addresses = [f"192.0.2.{n}" for n in range(1, 9)]
    feeds = [
        _list_feed(tmp_path, "wide", "192.0.2.0/24\n", confidence=60),
        _list_feed(tmp_path, "hosts", "".join(f"{a}\n" for a in addresses), confidence=60),
        _list_feed(tmp_path, "sure", "192.0.2.8\n", confidence=95),
    ]
    enricher = Enricher(feeds)
    enricher.refresh_now()
    incident = _incident(*reversed(addresses))
    enricher.enrich([incident], NOW)
    hits = incident.facts["intel"]
    assert len(hits) == MAX_HITS
    assert incident.facts["intel_not_listed"] == 8 * 2 + 1 - MAX_HITS
    # confidence first, then the most specific network, then feed, name, address
    assert [(h["feed"], h["address"]) for h in hits] == [
        ("sure", "192.0.2.8"),
        ("hosts", "192.0.2.1"),
        ("hosts", "192.0.2.2"),
        ("hosts", "192.0.2.3"),
        ("hosts", "192.0.2.4"),
    ]
    assert incident.severity == "high"  # decided by the strongest hit (95)
    again = _incident(*addresses)
    enricher.enrich([again], NOW)
    assert again.facts == incident.facts  # the order of the sources does not matter


def test_an_intel_set_finds_an_address_among_100k_networks_quickly() -> None:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    networks = tuple(ipaddress.IPv4Network((base + i * 256, 24)) for i in range(50_000)) + tuple(
        ipaddress.IPv4Network((base + i * 256 + 7, 32)) for i in range(50_000)
    )
    wide = Indicator(
        id="w", name="w", feed="f", source="f", confidence=50, labels=(), networks=networks
    )
    v6 = Indicator(
        id="v6",
        name="v6",
        feed="f",
        source="f",
        confidence=50,
        labels=(),
        networks=(ipaddress.IPv6Network("2001:db8::/32"), ipaddress.IPv6Network("2001:db8::7/128")),
    )
    intel = IntelSet([wide, v6])
    assert (len(intel), intel.networks) == (2, 100_002)
    probes = [parse_address(f"10.{(i >> 8) & 255}.{i & 255}.7") for i in range(20_000)]
    started = time.perf_counter()
    found = [intel.lookup(a) for a in probes if a is not None]
    elapsed = time.perf_counter() - started
    assert all(str(hits[0][1]).endswith("/32") for hits in found)  # longest first
    assert all(len(hits) == 2 for hits in found)  # the /32 and its /24
    # a scan over 100,002 networks per address would take minutes for 20,000 addresses
    assert elapsed < 2.0, elapsed
    six = parse_address("2001:db8::7")
    assert six is not None
    assert [str(n) for _, n in intel.lookup(six)] == ["2001:db8::7/128", "2001:db8::/32"]
    other = parse_address("2001:db9::7")
    assert other is not None and intel.lookup(other) == []


def test_status_reports_every_feed_and_a_disabled_one_is_not_read(
    tmp_path: Path, bundle_path: Path
) -> None:
    clock = ManualClock(NOW)
    feeds = [
        IntelSpec(name="cert", type="stix", path=str(bundle_path)),
        _list_feed(tmp_path, "off", "192.0.2.1\n", enabled=False),
    ]
    enricher = Enricher(feeds, clock=clock)
    assert enricher.refresh_now() == enricher.status()[:1]
    cert, off = enricher.status()
    assert cert.as_dict() == {
        "name": "cert",
        "type": "stix",
        "enabled": True,
        "indicators": 4,
        "networks": 5,
        "expired": 1,
        "skipped": {
            "not an IP indicator": 2,
            "not an indicator": 1,
            "revoked": 1,
            "unsupported IP pattern": 1,
        },
        "last_refresh": NOW,
        "last_attempt": NOW,
        "last_error": None,
        "failures": 0,
        "next_refresh": NOW + 3600,
    }
    assert (off.enabled, off.indicators, off.last_attempt, off.next_refresh) == (
        False,
        0,
        None,
        None,
    )
    # read on request, a disabled feed shows its state but never matches
    (off,) = enricher.refresh_now(["off"])
    assert (off.indicators, off.next_refresh) == (1, None)
    assert enricher.lookup("192.0.2.1", NOW) == []
    with pytest.raises(ConfigError, match=r"unknown intel feed 'nope'"):
        enricher.refresh_now(["nope"])


def test_feeds_are_read_on_their_schedule_and_failures_back_off(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    spec = _list_feed(tmp_path, "drop", "192.0.2.1\n", refresh_minutes=10)
    once = _list_feed(tmp_path, "once", "192.0.2.2\n", refresh_minutes=0)
    enricher = Enricher([spec, once], clock=clock)
    assert enricher.seconds_until_due() == 0.0
    assert enricher.refresh_due() == 2
    assert enricher.seconds_until_due() == 600.0  # "once" is never due again
    clock.advance(599)
    assert enricher.refresh_due() == 0
    Path(spec.path).unlink()
    clock.advance(1)
    assert enricher.refresh_due() == 1
    (drop, _) = enricher.status()
    assert drop.failures == 1
    assert drop.next_refresh == clock.now() + 30  # retried soon, then less and less often
    clock.advance(30)
    enricher.refresh_due()
    assert enricher.status()[0].next_refresh == clock.now() + 60
    Path(spec.path).write_text("192.0.2.3\n", encoding="utf-8")
    clock.advance(60)
    assert enricher.refresh_due() == 1
    (drop, _) = enricher.status()
    assert (drop.failures, drop.last_error, drop.next_refresh) == (0, None, clock.now() + 600)
    assert enricher.lookup("192.0.2.3", clock.now()) != []


def test_the_refresher_thread_reads_and_re_reads_feeds(tmp_path: Path) -> None:
    spec = _list_feed(tmp_path, "drop", "192.0.2.1\n", refresh_minutes=0.005)  # 0.3 s
    enricher = Enricher([spec])
    refresher = IntelRefresher(enricher, idle_seconds=0.1)
    refresher.start()
    try:
        assert _running(refresher)
        _wait_for(lambda: enricher.lookup("192.0.2.1", time.time()) != [])
        Path(spec.path).write_text("192.0.2.2\n", encoding="utf-8")
        _wait_for(lambda: enricher.lookup("192.0.2.2", time.time()) != [])
        assert enricher.lookup("192.0.2.1", time.time()) == []
    finally:
        refresher.stop()
    assert not _running(refresher)
    idle = IntelRefresher(Enricher([]))
    idle.start()  # no feed: no thread
    assert not _running(idle)


def _running(refresher: IntelRefresher) -> bool:
    return refresher.running


def test_enriching_while_feeds_are_swapped_is_safe(tmp_path: Path) -> None:
    spec = _list_feed(tmp_path, "drop", "".join(f"192.0.2.{n}\n" for n in range(1, 200)))
    enricher = Enricher([spec])
    enricher.refresh_now()
    stop = threading.Event()
    errors: list[BaseException] = []

    def reload() -> None:
        try:
            while not stop.is_set():
                enricher.refresh_now()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=reload)
    thread.start()
    try:
        for n in range(300):
            incident = _incident(f"192.0.2.{n % 199 + 1}")
            enricher.enrich([incident], NOW)
            assert incident.severity == "medium"
            assert len(incident.facts["intel"]) == 1
    finally:
        stop.set()
        thread.join()
    assert errors == []


def test_without_feeds_nothing_happens() -> None:
    enricher = Enricher([])
    assert not enricher.active
    incident = _incident(ATTACKER)
    enricher.enrich([incident], NOW)
    assert (incident.severity, incident.facts) == ("medium", {})
    assert enricher.status() == []
    assert enricher.refresh_now() == []


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
