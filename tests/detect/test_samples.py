"""The committed sample logs: every documented campaign comes out as its incident.

For each sample file (year 2025, UTC, the office 198.51.100.7 allow-listed), every
campaign the samples README lists for that file must give an incident of the
documented kind with the documented addresses, benign actors and the spoofed
address in a hostile user name must give nothing, and no incident may be keyed
by an address no campaign uses.
"""

from __future__ import annotations

import pytest

from soc.detect import DetectConfig, Detector
from soc.events import (
    BRUTE_FORCE,
    DISTRIBUTED_BRUTE_FORCE,
    SLOW_BRUTE_FORCE,
    WEB_REQUEST,
    WEB_SCAN,
    Incident,
)
from soc.samples import CAMPAIGNS, SAMPLE_FILES, SPOOFED_IP, Campaign, SampleFile
from tests.detect.builders import SAMPLES, parse_events, run_batches

OFFICE = "198.51.100.7"

#: Campaigns a file carries too thinly for the rule its README names, with the reason
#: (each is checked to stay true, so the exception cannot hide a regression).
THIN = {
    # The Apache error log only records the scanner's denied requests: 5 paths.
    ("apache-error.log", "web_scan"),
}


def sample_incidents(name: str, fmt: str) -> list[Incident]:
    events, unparsed = parse_events(SAMPLES / name, fmt)
    assert not unparsed
    detector = Detector(DetectConfig(allow_list=[OFFICE]))
    return list(run_batches(detector, [events]).values())


def expected_kinds(campaign: Campaign) -> set[str]:
    if campaign.name == "ipv6_rotation":
        # 2 to 3 attempts a minute from the /64 at most 4 within any 15 s: by the
        # rules' own definitions a slow brute force (same technique, T1110.001).
        return {BRUTE_FORCE, SLOW_BRUTE_FORCE}
    return {campaign.kind}


def campaign_incident(campaign: Campaign, incidents: list[Incident]) -> Incident | None:
    kinds = expected_kinds(campaign)
    for incident in incidents:
        if incident.kind not in kinds:
            continue
        if campaign.kind == DISTRIBUTED_BRUTE_FORCE:
            if set(campaign.sources) <= set(incident.source_ips):
                return incident
        elif campaign.name == "ipv6_rotation":
            if incident.key == "2001:db8:bad:cafe::/64":
                return incident
        elif incident.key == campaign.sources[0]:
            return incident
    return None


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda s: s.name)
def test_documented_campaigns_come_out(sample: SampleFile) -> None:
    name, fmt = sample.name, sample.format
    incidents = sample_incidents(name, fmt)
    attacks = [c for c in CAMPAIGNS if name in c.files and c.kind != "benign"]
    for campaign in attacks:
        found = campaign_incident(campaign, incidents)
        if (name, campaign.name) in THIN:
            assert found is None, f"{name}: {campaign.name} is detected now: drop it from THIN"
            continue
        assert found is not None, f"{name}: no {campaign.kind} for {campaign.name}"
        assert set(campaign.sources) <= set(found.source_ips)
        assert found.technique
        if campaign.users and campaign.kind != DISTRIBUTED_BRUTE_FORCE:
            assert set(found.users) <= set(campaign.users) | {""}
    # Nothing for benign actors, the spoofed address, or addresses of no campaign.
    benign = {a for c in CAMPAIGNS if c.kind == "benign" for a in c.sources}
    attackers = {a for c in attacks for a in c.sources}
    for incident in incidents:
        assert not benign & set(incident.source_ips), incident
        assert SPOOFED_IP not in incident.source_ips and incident.key != SPOOFED_IP
        if incident.kind == DISTRIBUTED_BRUTE_FORCE:
            continue
        assert set(incident.source_ips) <= attackers, incident
        assert campaign_incident_for_key(incident, attacks), incident


def campaign_incident_for_key(incident: Incident, attacks: list[Campaign]) -> bool:
    return any(
        incident.key in c.sources
        or (c.name == "ipv6_rotation" and incident.key == "2001:db8:bad:cafe::/64")
        for c in attacks
    )


def test_thin_campaigns_really_are_below_the_rule() -> None:
    events, _ = parse_events(SAMPLES / "apache-error.log", "web_error")
    scanner = next(c for c in CAMPAIGNS if c.name == "web_scan").sources[0]
    paths = {
        e.url_path
        for e in events
        if e.key_address == scanner and e.kind == WEB_REQUEST and e.outcome == "failure"
    }
    assert 0 < len(paths) < DetectConfig().params(WEB_SCAN).web_scan_paths
    assert ("apache-error.log", WEB_SCAN) in THIN


def test_lines_per_incident_on_auth_log() -> None:
    # The guardrail's point: thousands of lines become a handful of incidents.
    lines = (SAMPLES / "auth.log").read_text(encoding="utf-8").count("\n")
    incidents = sample_incidents("auth.log", "syslog")
    assert 1 <= len(incidents) <= 8
    assert lines / len(incidents) > 100
