"""The ECS alert document: the fields External Alerts and analysts rely on."""

from __future__ import annotations

import json

import pytest

from soc.config import build_dataclass
from soc.detect.rules import techniques
from soc.errors import ConfigError
from soc.events import (
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    INCIDENT_KINDS,
    PASSWORD_SPRAY,
    PORT_SCAN,
    WEB_SCAN,
)
from soc.export import alert_id, sink_classes, to_ecs_alert
from soc.export.base import (
    SEVERITY_SCORES,
    DeliveryResult,
    DocumentResult,
    RetryPolicy,
    content_digest,
)
from soc.export.elastic import ElasticConfig
from soc.export.webhook import WebhookConfig
from tests.export.conftest import T0, make_incident


def test_brute_force_alert_has_ecs_mitre_and_counts() -> None:
    incident = make_incident(
        "203.0.113.9",
        id=42,
        users=["root", "admin", "root"],
        distinct_users=2,
        failures=1234,
        successes=0,
        events=1240,
        severity="high",
        first_seen=T0,
        last_seen=T0 + 75.5,
        facts={"peak_15s": 90, "ratio": 0.5, "nested": {"x": 1}, "nan": float("nan")},
        evidence=["Nov 21 10:00:00 h sshd[1]: Failed password for root from 203.0.113.9"],
    )
    doc = to_ecs_alert(incident, host_name="web-1")

    assert doc["_id"] == "soc-42" == alert_id(42)
    assert doc["@timestamp"] == "2025-11-21T10:01:15.500000Z"  # last seen
    event = doc["event"]
    assert event["kind"] == "alert"
    assert event["category"] == ["authentication"]
    assert event["type"] == ["info"]
    assert event["start"] == "2025-11-21T10:00:00.000000Z"
    assert event["end"] == "2025-11-21T10:01:15.500000Z"
    assert event["duration"] == 75_500_000_000
    assert event["severity"] == 73 == SEVERITY_SCORES["high"]
    assert event["risk_score"] == 73.0
    assert event["module"] == "soc"
    assert doc["rule"]["id"] == "soc.brute_force"
    assert doc["rule"]["name"] == "Brute force"
    assert doc["rule"]["category"] == "Credential Access"
    assert doc["rule"]["reference"] == "https://attack.mitre.org/techniques/T1110/001/"
    assert doc["rule"]["description"]
    assert doc["threat"] == {
        "framework": "MITRE ATT&CK",
        "technique": {
            "id": ["T1110"],
            "name": ["Brute Force"],
            "reference": ["https://attack.mitre.org/techniques/T1110/"],
            "subtechnique": {
                "id": ["T1110.001"],
                "name": ["Password Guessing"],
                "reference": ["https://attack.mitre.org/techniques/T1110/001/"],
            },
        },
        "tactic": {
            "id": ["TA0006"],
            "name": ["Credential Access"],
            "reference": ["https://attack.mitre.org/tactics/TA0006/"],
        },
    }
    assert doc["source"] == {"ip": "203.0.113.9"}
    assert doc["related"] == {"ip": ["203.0.113.9"], "user": ["root", "admin"]}
    assert "user" not in doc  # two users: no single user.name
    assert doc["host"] == {"name": "web-1", "hostname": "web-1"}
    assert doc["message"] == (
        "Brute force from 203.0.113.9: 1234 failed logins against 2 users (T1110.001)"
    )
    soc = doc["soc"]
    assert soc["incident"] == {"id": 42, "key": "203.0.113.9", "status": "new"}
    assert (soc["kind"], soc["severity"], soc["status"]) == ("brute_force", "high", "new")
    assert (soc["failures"], soc["successes"], soc["events"]) == (1234, 0, 1240)
    assert soc["distinct_users"] == 2
    assert soc["facts"] == {"peak_15s": 90, "ratio": 0.5}  # nested and NaN left out
    assert soc["evidence"] == incident.evidence
    # plain JSON: survives the outbox's JSON column unchanged
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc


def test_every_kind_maps_to_a_technique_and_tactic() -> None:
    tactic_of = {
        "T1110": "TA0006",
        "T1078": "TA0001",
        "T1595": "TA0043",
        "T1046": "TA0007",
    }
    for i, kind in enumerate(INCIDENT_KINDS):
        technique, name = techniques()[kind]
        doc = to_ecs_alert(
            make_incident(kind=kind, id=i + 1, technique=technique, technique_name=name)
        )
        parent = technique.split(".")[0]
        assert doc["threat"]["technique"]["id"] == [parent], kind
        assert doc["threat"]["tactic"]["id"][0] == tactic_of[parent], kind
        assert doc["event"]["kind"] == "alert"
        assert set(doc["event"]["category"]) <= {
            "authentication",
            "intrusion_detection",
            "network",
            "web",
        }
        assert ("subtechnique" in doc["threat"]["technique"]) == ("." in technique), kind


def test_compromise_is_valid_accounts_initial_access_and_persistence() -> None:
    doc = to_ecs_alert(
        make_incident(
            kind=CREDENTIAL_COMPROMISE,
            technique="T1078",
            technique_name="Valid Accounts",
            users=["deploy"],
            failures=57,
            successes=1,
            severity="critical",
        )
    )
    technique = doc["threat"]["technique"]
    assert technique == {
        "id": ["T1078"],
        "name": ["Valid Accounts"],
        "reference": ["https://attack.mitre.org/techniques/T1078/"],
    }
    assert doc["threat"]["tactic"]["id"] == ["TA0001", "TA0003"]
    assert doc["threat"]["tactic"]["name"] == ["Initial Access", "Persistence"]
    assert doc["event"]["severity"] == 99
    assert doc["event"]["type"] == ["start"]
    assert doc["user"] == {"name": "deploy"}
    assert doc["message"] == (
        'Credential compromise: 203.0.113.9 logged in as "deploy" after 57 failed logins (T1078)'
    )


def test_an_incident_without_a_technique_exports_no_threat() -> None:
    """The detector's rule names the technique; an incident without one claims none."""
    doc = to_ecs_alert(make_incident(kind=PASSWORD_SPRAY, technique="", technique_name=""))
    assert "threat" not in doc
    assert doc["message"].endswith('against user "root"')  # no "(T…)" suffix


def test_source_ip_only_when_valid_and_related_ip_deduplicated() -> None:
    distributed = make_incident(
        "user:root",
        kind=DISTRIBUTED_BRUTE_FORCE,
        source_ips=["198.51.100.1", "not-an-ip", "2001:db8::1", "198.51.100.1", "2001:DB8::1"],
    )
    doc = to_ecs_alert(distributed)
    assert doc["source"] == {"ip": "198.51.100.1"}
    assert doc["related"]["ip"] == ["198.51.100.1", "2001:db8::1"]
    assert doc["message"] == (
        'Distributed brute force from 2 addresses: 10 failed logins against user "root" (T1110.001)'
    )
    assert doc["soc"]["source_ip_count"] == 2
    assert "source" not in to_ecs_alert(make_incident("user:root", source_ips=[]))
    keyed_by_user = make_incident("john.doe", kind=DISTRIBUTED_BRUTE_FORCE, source_ips=[])
    assert "source" not in to_ecs_alert(keyed_by_user)
    assert "source" not in to_ecs_alert(make_incident("2001:db8:1:2::/64", source_ips=[]))

    by_name = make_incident(
        "scanner.example.net",
        kind=WEB_SCAN,
        source_ips=[],
        events=500,
        technique="T1595.003",
        technique_name="Active Scanning: Wordlist Scanning",
    )
    doc = to_ecs_alert(by_name)
    assert "ip" not in doc.get("source", {})
    assert doc["source"] == {"address": "scanner.example.net", "domain": "scanner.example.net"}
    assert "ip" not in doc.get("related", {})
    assert doc["message"] == "Web content scan from scanner.example.net: 500 requests (T1595.003)"
    assert doc["event"]["category"] == ["web", "intrusion_detection"]


def test_attacker_controlled_usernames_stay_data_and_message_one_line() -> None:
    evil = 'root"}\n{"index":{}}\r\x1b[31m<script>'
    doc = to_ecs_alert(make_incident(users=[evil]))
    assert doc["user"] == {"name": evil}
    assert doc["related"]["user"] == [evil]
    assert "\n" not in doc["message"] and "\r" not in doc["message"]
    assert "\x1b" not in doc["message"]
    assert "\\n" in doc["message"]  # shown escaped, not hidden
    assert json.loads(json.dumps(doc))["user"]["name"] == evil


def test_port_scan_and_unknown_severity() -> None:
    doc = to_ecs_alert(
        make_incident(
            kind=PORT_SCAN,
            technique="T1046",
            technique_name="Network Service Discovery",
            events=300,
            severity="bogus",
        )
    )
    assert doc["event"]["category"] == ["network", "intrusion_detection"]
    assert doc["threat"]["tactic"]["name"] == ["Discovery"]
    assert doc["event"]["severity"] == 47 and doc["soc"]["severity"] == "medium"
    assert doc["message"] == "Port scan from 203.0.113.9: 300 blocked connections (T1046)"


def test_id_is_stable_across_updates_and_digest_tracks_content() -> None:
    first = to_ecs_alert(make_incident(id=7, failures=10))
    second = to_ecs_alert(make_incident(id=7, failures=500, last_seen=T0 + 900))
    assert first["_id"] == second["_id"] == "soc-7"
    assert content_digest(first) != content_digest(second)
    again = to_ecs_alert(make_incident(id=7, failures=10))
    assert content_digest(first) == content_digest(again)
    stamped = json.loads(json.dumps(first))
    stamped["event"]["ingested"] = "2030-01-01T00:00:00Z"  # set at send time: not content
    assert content_digest(stamped) == content_digest(first)


def test_unstored_incident_is_refused() -> None:
    with pytest.raises(ValueError, match="stored"):
        to_ecs_alert(make_incident(id=None))


def test_evidence_is_capped() -> None:
    doc = to_ecs_alert(make_incident(evidence=[f"line {i}" for i in range(50)]), max_evidence=3)
    assert doc["soc"]["evidence"] == ["line 0", "line 1", "line 2"]
    assert "evidence" not in to_ecs_alert(make_incident(evidence=["x"]), max_evidence=0)["soc"]


def test_retry_policy_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_base=2.0, backoff_max=60.0)
    assert [policy.delay(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(10_000) == 60
    assert policy.delay(0, retryable=False) == 60


def test_delivery_result_counts() -> None:
    result = DeliveryResult((DocumentResult(True, 201), DocumentResult(False, 429, "x")))
    assert (result.delivered, result.failed, result.ok) == (1, 1, False)


@pytest.mark.parametrize(
    ("cls", "values", "where", "message"),
    [
        (ElasticConfig, {"hosts": []}, "hosts", "at least one"),
        (ElasticConfig, {"hosts": ["localhost:9200"]}, "hosts", "http"),
        (ElasticConfig, {"index": "Logs-SOC"}, "index", "lowercase"),
        (ElasticConfig, {"index": "_bad"}, "index", "start"),
        (ElasticConfig, {"op_type": "upsert"}, "op_type", "one of"),
        (ElasticConfig, {"request_timeout": 0}, "request_timeout", "positive"),
        (ElasticConfig, {"backoff_max": 0.5}, "backoff_max", "at least backoff_base"),
        (ElasticConfig, {"backoff_base": -1}, "backoff_base", "positive"),
        (ElasticConfig, {"batch_size": 0}, "batch_size", "between"),
        (ElasticConfig, {"max_retries": "3"}, "max_retries", "integer"),
        (ElasticConfig, {"api_key": "inline"}, "", "unknown key 'api_key'"),
        (WebhookConfig, {"url": "file:///etc/passwd"}, "url", "http"),
        (WebhookConfig, {"url": "https://u:p@example.net/h"}, "url", "credentials"),
        (WebhookConfig, {"url": "http://h/x", "timeout": 0}, "timeout", "between"),
        (WebhookConfig, {"url": "http://h/x", "token_header": "X Bad"}, "token_header", "header"),
    ],
)
def test_config_validation_names_the_key(
    cls: type[object], values: dict[str, object], where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_dataclass(cls, values, "soc.toml: [[exports]]")
    assert message in info.value.message
    assert (info.value.where or "").startswith("soc.toml: [[exports]]")
    assert (info.value.where or "").endswith(where)


def test_registry() -> None:
    assert sink_classes("elasticsearch")[0] is ElasticConfig
    assert sink_classes("webhook")[0] is WebhookConfig
    with pytest.raises(KeyError, match="known: elasticsearch, webhook"):
        sink_classes("kafka")
