"""Intake (ECS and Elastic webhook bodies) into the spool, /metrics against the store."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from soc.events import AUTH_FAILURE, WEB_REQUEST, Event
from soc.parse.base import ParseConfig
from soc.parse.jsonl import EcsJsonParser
from soc.store.api import ApiLog
from tests.api.conftest import Api, logged_requests, make_settings, serve

SSH = {
    "@timestamp": "2025-11-21T10:00:01Z",
    "event": {
        "id": "e-1",
        "category": ["authentication"],
        "outcome": "failure",
        "action": "ssh_login",
        "kind": "event",
    },
    "source": {"ip": "203.0.113.9"},
    "user": {"name": "root"},
    "host": {"name": "web-1"},
    "secret_field": "not copied",
}
WEB = {
    "_id": "w-1",
    "@timestamp": "2025-11-21T10:00:02Z",
    "event.category": ["web"],
    "source.ip": "198.51.100.7",
    "url": {"path": "/.env"},
    "http": {"request": {"method": "GET"}, "response": {"status_code": 404}},
}
ALERT = {
    "kibana.alert.uuid": "a-1",
    "kibana.alert.original_time": "2025-11-21T10:00:03Z",
    "@timestamp": "2025-11-21T10:05:00Z",
    "event": {"kind": "signal", "category": ["authentication"], "outcome": "failure"},
    "source": {"ip": "192.0.2.10"},
    "user": {"name": "admin"},
}


def spooled(api: Api) -> list[str]:
    path = Path(api.settings.api.intake_path)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def parsed(lines: list[str]) -> list[Event]:
    parser = EcsJsonParser(ParseConfig(timezone="UTC"), 0.0)
    events = [parser.parse(line) for line in lines]
    assert all(isinstance(e, Event) for e in events), events
    return [e for e in events if isinstance(e, Event)]


def test_ecs_intake_is_idempotent_and_parses_into_events(api: Api) -> None:
    first = api.call("POST", "/intake/ecs", who="intake", json_body=[SSH, WEB])
    assert first.status == 200, first.body
    assert first.json() == {"accepted": 2, "duplicates": 0, "rejected": 0, "reasons": {}}
    again = api.call("POST", "/intake/ecs", who="intake", json_body=[SSH])
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": 0, "reasons": {}}
    lines = spooled(api)
    assert len(lines) == 2
    assert "not copied" not in lines[0] and '"kind"' not in lines[0]
    ssh, web = parsed(lines)
    assert (ssh.kind, ssh.source_ip, ssh.user, ssh.hostname) == (
        AUTH_FAILURE,
        "203.0.113.9",
        "root",
        "web-1",
    )
    assert ssh.timestamp == 1_763_719_201.0
    assert (web.kind, web.url_path, web.http_status, web.http_method) == (
        WEB_REQUEST,
        "/.env",
        404,
        "GET",
    )


def test_ndjson_and_refusals_by_reason(api: Api) -> None:
    body = "\n".join(
        json.dumps(d)
        for d in [SSH, {"@timestamp": "2025-11-21T10:00:00Z"}, {"event": {"id": "x"}}, [1]]
    )
    answer = api.call("POST", "/intake/ecs", who="intake", data=body.encode())
    assert answer.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 3,
        "reasons": {"no_id": 1, "no_timestamp": 1, "not_an_object": 1},
    }


def test_elastic_webhook_body(api: Api) -> None:
    body = {"rule": {"name": "SSH brute force"}, "alerts": [ALERT, ALERT]}
    answer = api.call("POST", "/intake/elastic", who="intake", json_body=body)
    assert answer.json() == {"accepted": 1, "duplicates": 1, "rejected": 0, "reasons": {}}
    as_string = {"alerts": json.dumps([ALERT])}  # {{context.alerts}} in double braces
    answer = api.call("POST", "/intake/elastic", who="intake", json_body=as_string)
    assert answer.json()["duplicates"] == 1
    (event,) = parsed(spooled(api))
    # The event the rule matched, at its own time, not a second alert.
    assert (event.kind, event.source_ip, event.user) == (AUTH_FAILURE, "192.0.2.10", "admin")
    assert event.timestamp == 1_763_719_203.0
    assert api.call("POST", "/intake/elastic", who="intake", json_body={"x": 1}).status == 400


def test_limits_and_malformed_bodies(api: Api) -> None:
    many = [dict(SSH, event={"id": f"e-{i}"}) for i in range(51)]
    answer = api.call("POST", "/intake/ecs", who="intake", json_body=many)
    assert (answer.status, answer.json()) == (413, {"detail": "more than 50 alerts in one request"})
    big = b"[" + b" " * (64 * 1024) + b"]"
    answer = api.call("POST", "/intake/ecs", who="intake", data=big)
    assert answer.status == 413 and set(answer.json()) == {"detail"}
    for bad in (b"{not json", b"[1,", b"\xff\xfe", b""):
        answer = api.call("POST", "/intake/ecs", who="intake", data=bad)
        assert answer.status == 400 and set(answer.json()) == {"detail"}, bad
    assert spooled(api) == []


def metrics(api: Api) -> dict[str, list[tuple[dict[str, str], float]]]:
    answer = api.call("GET", "/metrics", who="read")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_metrics_match_the_store(api: Api) -> None:
    with api.store.transaction(now=0) as tx:
        tx.add_counters(
            "auth.log", {"lines": 10, "events": 7, "unparsed.no_match": 3, "kind.auth_failure": 7}
        )
    brute = api.ids["brute"]
    with api.store.transaction(now=0) as tx:
        failing = tx.enqueue_export("siem", brute, {"a": 1})
        tx.enqueue_export("siem", brute, {"b": 2}, replace_pending=False)
    assert api.store.mark_export_failed(failing, "HTTP 503", next_attempt_at=60.0)
    for fallback in ("gemini: quota exhausted", None):
        api.store.add_analysis(
            brute,
            provider="offline",
            model="rules",
            created_at=1.0,
            markdown="#",
            fallback_reason=fallback,
        )
    api.call("POST", f"/incidents/{brute}/playbooks/block-source", json_body={})
    assert api.call("GET", "/metrics", who=None).status == 401
    logged_requests(api, 2)
    m = metrics(api)
    by_kind: dict[str, float] = {}
    for labels, value in m["soc_incidents"]:
        by_kind[labels["kind"]] = by_kind.get(labels["kind"], 0) + value
    for kind, value in by_kind.items():
        assert value == api.store.count_incidents(kind=kind)
    assert sum(by_kind.values()) == api.store.count_incidents() == 4
    assert m["soc_lines_total"] == [({"source": "auth.log"}, 10.0)]
    assert m["soc_unparsed_lines_total"] == [({"source": "auth.log", "reason": "no_match"}, 3.0)]
    assert m["soc_events_by_kind_total"] == [({"source": "auth.log", "kind": "auth_failure"}, 7.0)]
    assert m["soc_export_queue_depth"] == [({}, 2.0)]
    assert m["soc_export_failing"] == [({"sink": "siem"}, 1.0)]
    assert m["soc_model_fallbacks_total"] == [({"provider": "offline"}, 1.0)]
    assert m["soc_active_blocks"] == [({}, 0.0)]
    assert m["soc_playbook_runs"] == [({"status": "dry_run"}, 1.0)]
    requests = {labels["status"]: v for labels, v in m["soc_api_requests_total"]}
    assert requests["200"] >= 1 and requests["401"] == 1


def test_metrics_can_be_public(tmp_path: Path) -> None:
    served, store, _ = serve(tmp_path, settings=make_settings(tmp_path, metrics_public=True))
    try:
        answer = served.call("GET", "/metrics")
        assert answer.status == 200 and b"soc_active_blocks 0.0" in answer.body
    finally:
        served.stop()
        store.close()


def test_alert_ids_are_recorded_once(api: Api) -> None:
    log = ApiLog(api.store)
    assert log.seen_or_record("ecs", "z-1", 1.0) is False
    assert log.seen_or_record("ecs", "z-1", 2.0) is True
    assert log.seen_or_record("elastic", "z-1", 2.0) is False
