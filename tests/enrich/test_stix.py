"""STIX 2.1 bundles: which indicators load, how they match, and what is skipped and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import stix2

from soc.enrich import Enricher, IntelSpec
from soc.enrich.stix import indicators_from_objects
from soc.events import Incident
from tests.enrich.intel_data import (
    ATTACKER,
    BRUTE_FORCER,
    CERT,
    EXPIRED,
    EXPIRED_HOST,
    IPV6_HOST,
    NOW,
    OR_IPV4,
    REVOKED_HOST,
    SCANNER_NET,
    SUBNET_HOST,
    as_dicts,
    bundle_json,
    indicator,
)

SPEC = IntelSpec(name="cert", type="stix", path="unused.json", confidence=40)


def _incident(*ips: str, severity: str = "medium") -> Incident:
    return Incident(
        key=ips[0],
        kind="brute_force",
        first_seen=NOW - 60,
        last_seen=NOW,
        source_ips=list(ips),
        severity=severity,
    )


def test_bundle_loads_ip_indicators_and_counts_the_rest_by_reason(
    stix_enricher: Enricher,
) -> None:
    (status,) = stix_enricher.status()
    assert (status.name, status.type, status.indicators, status.networks) == ("cert", "stix", 4, 5)
    assert status.skipped == {
        "not an IP indicator": 2,  # the domain and the file hash
        "not an indicator": 1,  # the malware object
        "revoked": 1,
        "unsupported IP pattern": 1,  # two addresses that must both be seen
    }
    assert status.last_error is None
    assert status.last_refresh is not None


def test_an_incident_from_a_listed_address_gets_the_hit_and_a_raised_severity(
    stix_enricher: Enricher,
) -> None:
    incident = _incident(ATTACKER, "10.9.9.9")
    stix_enricher.enrich([incident], NOW)
    assert incident.facts["intel"] == [
        {
            "indicator": "Known SSH brute-forcer",
            "feed": "cert",
            "source": "cert / ACME CERT",  # the identity named by created_by_ref
            "confidence": 85,
            "labels": ["brute-force", "ssh"],
            "valid_until": "2099-01-01T00:00:00Z",
            "address": ATTACKER,
            "network": f"{ATTACKER}/32",
            "id": BRUTE_FORCER.id,
        }
    ]
    assert incident.severity == "high"  # confidence 85: one level up from medium
    assert incident.facts["intel_severity"] == {"before": "medium", "after": "high"}


@pytest.mark.parametrize(
    ("address", "network", "name", "confidence", "labels"),
    [
        (SUBNET_HOST, "198.51.100.0/24", "Scanner network", 60, ["scanner"]),  # ISSUBSET
        (IPV6_HOST, "2001:db8:bad::/48", "Botnet C2", 70, ["malicious-activity"]),  # OR, IPv6
        (OR_IPV4, f"{OR_IPV4}/32", "Botnet C2", 70, ["malicious-activity"]),  # OR, IPv4
        (f"::ffff:{OR_IPV4}", f"{OR_IPV4}/32", "Botnet C2", 70, ["malicious-activity"]),
    ],
)
def test_cidr_ipv6_and_or_patterns_match(
    stix_enricher: Enricher,
    address: str,
    network: str,
    name: str,
    confidence: int,
    labels: list[str],
) -> None:
    (hit,) = stix_enricher.lookup(address, NOW)
    assert (hit["network"], hit["indicator"], hit["confidence"], hit["labels"]) == (
        network,
        name,
        confidence,  # the botnet indicator has none: the feed's default (70)
        labels,  # no labels: its indicator_types
    )


def test_unlisted_addresses_and_non_addresses_do_not_match(stix_enricher: Enricher) -> None:
    for address in ("198.51.101.1", "2001:db8:bae::1", "10.0.0.1", "web01", ""):
        assert stix_enricher.lookup(address, NOW) == [], address
    incident = _incident("10.0.0.1", "web01")
    stix_enricher.enrich([incident], NOW)
    assert "intel" not in incident.facts
    assert incident.severity == "medium"


def test_an_expired_indicator_is_loaded_but_never_matches_after_valid_until(
    stix_enricher: Enricher,
) -> None:
    assert stix_enricher.lookup(EXPIRED_HOST, NOW) == []
    # judged at match time: while it was valid, the same indicator matched
    while_valid = stix_enricher.lookup(EXPIRED_HOST, EXPIRED.valid_from.timestamp() + 86400)
    assert [h["indicator"] for h in while_valid] == ["Old campaign"]
    assert stix_enricher.status()[0].expired >= 1
    incident = _incident(EXPIRED_HOST)
    stix_enricher.enrich([incident], NOW)
    assert "intel" not in incident.facts
    assert incident.severity == "medium"


def test_an_indicator_not_yet_valid_does_not_match(tmp_path: Path) -> None:
    future = indicator(
        "[ipv4-addr:value = '192.0.2.9']", name="Soon", valid_from="2099-01-01T00:00:00Z"
    )
    path = tmp_path / "b.json"
    path.write_text(bundle_json([future]), encoding="utf-8")
    enricher = Enricher([IntelSpec(name="f", type="stix", path=str(path))])
    enricher.refresh_now()
    assert enricher.status()[0].indicators == 1
    assert enricher.lookup("192.0.2.9", NOW) == []


def test_a_revoked_indicator_is_ignored_and_the_latest_version_counts(tmp_path: Path) -> None:
    stays = indicator("[ipv4-addr:value = '192.0.2.10']", name="v1", confidence=50)
    moved = stays.new_version(name="v2", pattern="[ipv4-addr:value = '192.0.2.11']")
    withdrawn = indicator("[ipv4-addr:value = '192.0.2.12']", name="w1")
    revoked = withdrawn.revoke()
    path = tmp_path / "b.json"
    # newest first and oldest last: the order in the bundle must not matter
    path.write_text(bundle_json([moved, revoked, stays, withdrawn]), encoding="utf-8")
    enricher = Enricher([IntelSpec(name="f", type="stix", path=str(path))])
    (status,) = enricher.refresh_now()
    assert status.skipped == {"older version": 2, "revoked": 1}
    assert enricher.lookup("192.0.2.10", NOW) == []  # its older version's address
    assert [h["indicator"] for h in enricher.lookup("192.0.2.11", NOW)] == ["v2"]
    assert enricher.lookup("192.0.2.12", NOW) == []
    assert enricher.lookup(REVOKED_HOST, NOW) == []


@pytest.mark.parametrize(
    ("pattern", "networks", "reason"),
    [
        ("[ipv4-addr:value = '10.1.2.3/16']", ["10.1.0.0/16"], None),  # host bits tolerated
        ("[ipv4-addr:value IN ('192.0.2.1', '192.0.2.2')]", ["192.0.2.1/32", "192.0.2.2/32"], None),
        (
            "[ipv4-addr:value = '192.0.2.3'] OR [domain-name:value = 'evil.example']",
            ["192.0.2.3/32"],
            None,
        ),
        (
            "([ipv6-addr:value ISSUBSET '2001:db8::/32'] OR [ipv4-addr:value = '192.0.2.4'])",
            ["2001:db8::/32", "192.0.2.4/32"],
            None,
        ),
        ("[ipv4-addr:value != '192.0.2.5']", [], "unsupported IP pattern"),
        ("[ipv4-addr:value = '192.0.2.6'] WITHIN 300 SECONDS", [], "unsupported IP pattern"),
        (
            "[ipv4-addr:value = '192.0.2.7' AND ipv4-addr:value = '192.0.2.8']",
            [],
            "unsupported IP pattern",
        ),
        ("[ipv4-addr:value = '0.0.0.0/0']", [], "network too broad"),
        ("[ipv4-addr:value = 'not-an-ip']", [], "not an address"),
        ("[url:value = 'http://evil.example/x']", [], "not an IP indicator"),
    ],
)
def test_patterns_give_exactly_the_networks_they_match(
    pattern: str, networks: list[str], reason: str | None
) -> None:
    result = indicators_from_objects(as_dicts([indicator(pattern, name="p")]), SPEC)
    assert [str(n) for i in result.indicators for n in i.networks] == networks
    assert dict(result.skipped) == ({reason: 1} if reason else {})


def test_malformed_objects_are_skipped_and_the_rest_loads() -> None:
    good = as_dicts([BRUTE_FORCER])[0]
    bad_confidence = good | {
        "id": "indicator--00000000-0000-4000-8000-000000000001",
        "confidence": 150,
    }
    bad_pattern = good | {
        "id": "indicator--00000000-0000-4000-8000-000000000002",
        "pattern": "[ipv4-addr:value = '192.0.2.1'",
    }
    other_type = good | {
        "pattern_type": "sigma",
        "id": "indicator--00000000-0000-4000-8000-000000000003",
    }
    objects: list[Any] = [good, bad_confidence, bad_pattern, other_type, "text", 7]
    result = indicators_from_objects(objects, SPEC)
    assert [i.name for i in result.indicators] == ["Known SSH brute-forcer"]
    assert dict(result.skipped) == {
        "invalid STIX object": 2,
        "not a STIX pattern": 1,
        "not a STIX object": 2,
    }
    # no identity in these objects: the source is the feed alone
    assert result.indicators[0].source == "cert"


def test_a_folder_of_bundles_loads_every_bundle_and_counts_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "a.json").write_text(bundle_json([CERT, BRUTE_FORCER]), encoding="utf-8")
    (folder / "b.json").write_text(bundle_json([SCANNER_NET]), encoding="utf-8")
    (folder / "c.json").write_text("{not json", encoding="utf-8")
    (folder / "d.json").write_text(json.dumps({"type": "report"}), encoding="utf-8")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    enricher = Enricher([IntelSpec(name="dir", type="stix", path=str(folder))])
    (status,) = enricher.refresh_now()
    assert status.indicators == 2
    assert status.skipped == {"unreadable bundle file": 1, "not a STIX bundle": 1}
    assert enricher.lookup(ATTACKER, NOW)[0]["source"] == "dir / ACME CERT"
    assert enricher.lookup(SUBNET_HOST, NOW)[0]["indicator"] == "Scanner network"


def test_an_unreadable_feed_keeps_its_previous_indicators(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(bundle_json(), encoding="utf-8")
    enricher = Enricher([IntelSpec(name="cert", type="stix", path=str(path))])
    enricher.refresh_now()
    path.write_text("{broken", encoding="utf-8")
    (status,) = enricher.refresh_now()
    assert status.last_error is not None
    assert "no readable STIX bundle" in status.last_error
    assert (status.indicators, status.failures) == (4, 1)
    assert enricher.lookup(ATTACKER, NOW) != []
    path.unlink()
    (status,) = enricher.refresh_now()
    assert status.last_error is not None
    assert "no such file or folder" in status.last_error
    assert (status.indicators, status.failures) == (4, 2)


def test_stix2_objects_of_another_spec_version_are_refused_cleanly() -> None:
    # A STIX 2.0 indicator (labels required, no pattern_type) is not a 2.1 one.
    v20 = stix2.v20.Indicator(
        pattern="[ipv4-addr:value = '192.0.2.1']", labels=["malicious-activity"]
    )
    result = indicators_from_objects([json.loads(v20.serialize())], SPEC)
    assert result.indicators == []
    assert dict(result.skipped) == {"not a STIX pattern": 1}
