"""The engine with threat intel: a replayed attack from a listed address is stored enriched."""

from __future__ import annotations

from pathlib import Path

from soc.clock import SystemClock
from soc.config import load_settings
from soc.engine import Engine
from soc.enrich import Enricher
from soc.events import SEVERITIES
from soc.store import open_store
from tests.enrich.intel_data import ATTACKER, CERT, bundle_json, indicator

UNLISTED = "198.51.100.23"


def _auth_log(path: Path) -> None:
    """Two attackers with the same brute force: one listed by the feed, one not."""
    lines = []
    for second in range(30):
        for port, address in ((40000, ATTACKER), (50000, UNLISTED)):
            lines.append(
                f"Nov 21 10:00:{second:02d} web01 sshd[{100 + second}]: Failed password for "
                f"root from {address} port {port + second} ssh2"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _settings(tmp_path: Path, *, with_intel: bool) -> Path:
    feed = tmp_path / "intel" / "cert.json"
    feed.parent.mkdir(exist_ok=True)
    listed = indicator(
        f"[ipv4-addr:value = '{ATTACKER}']",
        name="Known SSH brute-forcer",
        labels=["brute-force"],
        confidence=85,
        created_by_ref=CERT.id,
        valid_from="2020-01-01T00:00:00Z",
        valid_until="2099-01-01T00:00:00Z",
    )
    feed.write_text(bundle_json([CERT, listed]), encoding="utf-8")
    intel = f'\n[[intel]]\nname = "cert"\ntype = "stix"\npath = "{feed}"\n' if with_intel else ""
    config = tmp_path / f"soc-{with_intel}.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path}/soc-{with_intel}.db"

[parse]
timezone = "UTC"
year = 2025

[[sources]]
name = "sample"
type = "replay"
paths = ["{tmp_path}/auth.log"]
{intel}""",
        encoding="utf-8",
    )
    return config


def _replay(tmp_path: Path, *, with_intel: bool) -> dict[str, tuple[str, dict[str, object]]]:
    settings = load_settings(_settings(tmp_path, with_intel=with_intel), environ={})
    enricher = Enricher(settings.intel, secrets=settings.secrets)
    statuses = enricher.refresh_now()
    assert all(s.last_error is None for s in statuses)
    store = open_store(settings.store.url)
    try:
        engine = Engine(settings, store, SystemClock(), host_addresses=[], intel=enricher)
        assert (engine.intel is not None) == with_intel
        engine.run(until_exhausted=True)
        engine.finish()
        engine.close()
        found = store.list_incidents(kind="brute_force")
    finally:
        store.close()
    return {i.source_ips[0]: (i.severity, i.facts) for i in found if len(i.source_ips) == 1}


def test_a_replayed_attack_from_a_listed_address_is_stored_enriched(tmp_path: Path) -> None:
    _auth_log(tmp_path / "auth.log")
    plain = _replay(tmp_path, with_intel=False)
    enriched = _replay(tmp_path, with_intel=True)
    assert set(plain) == set(enriched) == {ATTACKER, UNLISTED}
    base = plain[ATTACKER][0]
    assert plain[UNLISTED][0] == base  # the same attack from both addresses
    assert "intel" not in plain[ATTACKER][1]

    severity, facts = enriched[ATTACKER]
    assert severity == SEVERITIES[SEVERITIES.index(base) + 1]  # confidence 85: one level up
    hits = facts["intel"]
    assert isinstance(hits, list)
    assert [(h["indicator"], h["source"], h["confidence"], h["address"]) for h in hits] == [
        ("Known SSH brute-forcer", "cert / ACME CERT", 85, ATTACKER)
    ]
    assert facts["intel_severity"] == {"before": base, "after": severity}
    # the unlisted attacker is untouched
    assert enriched[UNLISTED][0] == base
    assert "intel" not in enriched[UNLISTED][1]
