"""STIX 2.1 content for the intel tests, built with the ``stix2`` library itself.

The bundle mixes what real feeds carry: an identity that created the
indicators, IP indicators of every supported shape (an address, a CIDR with
``ISSUBSET``, an OR of IPv6 and IPv4), an expired one, a revoked one, and
indicators the product must skip (a domain, a file hash, an AND of two
addresses), plus an object that is no indicator at all.
"""

from __future__ import annotations

from typing import Any

import stix2

#: A moment the tests call "now": 2025-11-21T10:00:00Z.
NOW = 1_763_719_200.0
VALID_FROM = "2025-01-01T00:00:00Z"
VALID_UNTIL = "2099-01-01T00:00:00Z"

ATTACKER = "203.0.113.9"  # listed by the high-confidence indicator
SUBNET_HOST = "198.51.100.77"  # in the /24 of the medium-confidence indicator
IPV6_HOST = "2001:db8:bad::15"  # in the /48 of the OR indicator
OR_IPV4 = "192.0.2.66"  # the IPv4 half of the OR indicator
EXPIRED_HOST = "192.0.2.200"  # listed only by an expired indicator
REVOKED_HOST = "192.0.2.201"  # listed only by a revoked indicator

CERT = stix2.Identity(name="ACME CERT", identity_class="organization")


def indicator(pattern: str, **kwargs: Any) -> Any:
    """A STIX 2.1 indicator with a ``stix`` pattern (valid from 2025 unless told)."""
    values: dict[str, Any] = {
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": VALID_FROM,
        **kwargs,
    }
    return stix2.Indicator(**values)


BRUTE_FORCER = indicator(
    f"[ipv4-addr:value = '{ATTACKER}']",
    name="Known SSH brute-forcer",
    labels=["brute-force", "ssh"],
    confidence=85,
    created_by_ref=CERT.id,
    valid_until=VALID_UNTIL,
)
SCANNER_NET = indicator(
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    name="Scanner network",
    labels=["scanner"],
    confidence=60,
    created_by_ref=CERT.id,
)
BOTNET = indicator(
    f"[ipv6-addr:value = '2001:db8:bad::/48' OR ipv4-addr:value = '{OR_IPV4}']",
    name="Botnet C2",
    indicator_types=["malicious-activity"],
)
EXPIRED = indicator(
    f"[ipv4-addr:value = '{EXPIRED_HOST}']",
    name="Old campaign",
    confidence=90,
    valid_from="2024-01-01T00:00:00Z",
    valid_until="2024-06-01T00:00:00Z",
)
REVOKED = indicator(f"[ipv4-addr:value = '{REVOKED_HOST}']", name="Withdrawn", revoked=True)
DOMAIN = indicator("[domain-name:value = 'evil.example']", name="Phishing domain")
HASH = indicator(
    "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
    name="Dropper",
)
BOTH_REQUIRED = indicator(
    "[ipv4-addr:value = '192.0.2.1'] AND [ipv4-addr:value = '192.0.2.2']", name="Pair"
)
MALWARE = stix2.Malware(name="SSHdoor", is_family=True)

ALL_OBJECTS = [
    CERT,
    BRUTE_FORCER,
    SCANNER_NET,
    BOTNET,
    EXPIRED,
    REVOKED,
    DOMAIN,
    HASH,
    BOTH_REQUIRED,
    MALWARE,
]


def bundle_json(objects: list[Any] | None = None) -> str:
    """A STIX 2.1 bundle of ``objects`` (default: all of the above) as JSON text."""
    return str(stix2.Bundle(objects=ALL_OBJECTS if objects is None else objects).serialize())


def as_dicts(objects: list[Any] | None = None) -> list[dict[str, Any]]:
    """The objects as plain JSON dicts (what a TAXII server serves)."""
    import json

    found: list[dict[str, Any]] = json.loads(bundle_json(objects))["objects"]
    return found
