"""The REST API through a real uvicorn server and a real HTTP client: auth, routes, audit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from soc.store.response import ResponseLog
from tests.api.conftest import Api, logged_requests, serve


# --- auth ----------------------------------------------------------------------------------
def test_no_bad_or_revoked_token_is_401_with_nothing_else(api: Api) -> None:
    for who in (None, "soc_not-a-token", "x" * 5000):
        answer = api.call("GET", "/incidents", who=who)
        assert answer.status == 401
        assert answer.json() == {"detail": "unauthorized"}
        assert answer.headers["www-authenticate"] == "Bearer"
    # Basic credentials are not a bearer token.
    answer = api.call("GET", "/incidents", who=None, headers={"Authorization": "Basic YTpi"})
    assert (answer.status, answer.json()) == (401, {"detail": "unauthorized"})
    assert api.call("GET", "/incidents", who="read").status == 200
    assert api.log.revoke("reader", now=time.time())
    answer = api.call("GET", "/incidents", who="read")
    assert (answer.status, answer.json()) == (401, {"detail": "unauthorized"})


def test_a_token_without_the_scope_is_403(api: Api) -> None:
    iid = api.ids["brute"]
    answer = api.call("PATCH", f"/incidents/{iid}", who="read", json_body={"status": "triaged"})
    assert (answer.status, answer.json()) == (403, {"detail": "forbidden"})
    answer = api.call("POST", "/intake/ecs", who="read", json_body=[])
    assert (answer.status, answer.json()) == (403, {"detail": "forbidden"})
    answer = api.call("GET", "/incidents", who="intake")
    assert (answer.status, answer.json()) == (403, {"detail": "forbidden"})
    answer = api.call("POST", f"/incidents/{iid}/playbooks/block-source", who="read", json_body={})
    assert (answer.status, answer.json()) == (403, {"detail": "forbidden"})
    assert api.store.get_incident(iid).status == "new"  # type: ignore[union-attr]


def test_auth_is_checked_before_the_request_is_validated(api: Api) -> None:
    """A caller without a valid token learns nothing about what a route would accept."""
    iid = api.ids["brute"]
    bad = {"status": "closed", "other": 1}
    cases = [
        ("PATCH", f"/incidents/{iid}", bad, None),
        ("PATCH", f"/incidents/{iid}", None, b"{not json"),
        ("PATCH", "/incidents/0", {"status": "new"}, None),
        ("POST", f"/incidents/{iid}/playbooks/block-source", {"enforce": "maybe"}, None),
        ("GET", "/incidents?limit=0", None, None),
    ]
    for method, path, body, raw in cases:
        kw: dict[str, Any] = {"json_body": body}
        if raw is not None:
            kw = {"data": raw, "headers": {"Content-Type": "application/json"}}
        answer = api.call(method, path, who=None, **kw)
        assert (answer.status, answer.json()) == (401, {"detail": "unauthorized"}), path
        assert answer.headers["www-authenticate"] == "Bearer"
        answer = api.call(method, path, who="intake", **kw)
        assert (answer.status, answer.json()) == (403, {"detail": "forbidden"}), path
        answer = api.call(method, path, who="all", **kw)
        assert answer.status == 422, path
    rows = logged_requests(api, 3 * len(cases))
    assert {r.token_name for r in rows} >= {"elastic", "admin"}


def test_last_use_is_recorded(api: Api) -> None:
    assert api.call("GET", "/playbooks", who="read").status == 200
    used = {t.name: t.last_used_at for t in api.log.tokens()}
    assert used["reader"] is not None
    assert used["elastic"] is None


# --- incidents -----------------------------------------------------------------------------
def test_list_filters_and_pages(api: Api) -> None:
    page = api.call("GET", "/incidents", who="read").json()
    assert page["total"] == 4 and len(page["items"]) == 4
    assert (page["limit"], page["offset"]) == (50, 0)
    assert page["items"][0]["id"] == api.ids["scan"]  # last seen first
    kinds = api.call("GET", "/incidents?kind=password_spray&kind=web_scan").json()
    assert {i["kind"] for i in kinds["items"]} == {"password_spray", "web_scan"}
    assert kinds["total"] == 2
    found = api.call("GET", "/incidents?search=ALICE").json()
    assert [i["id"] for i in found["items"]] == [api.ids["spray"]]
    paged = api.call("GET", "/incidents?limit=1&offset=1").json()
    assert (paged["total"], len(paged["items"])) == (4, 1)
    assert api.call("GET", "/incidents?status=resolved").json()["total"] == 0
    for bad in ("limit=0", "limit=501", "offset=-1", "status=bogus"):
        assert api.call("GET", f"/incidents?{bad}").status == 422, bad


def test_one_incident_with_evidence_analyses_and_runs(api: Api) -> None:
    iid = api.ids["brute"]
    detail = api.call("GET", f"/incidents/{iid}", who="read").json()
    assert detail["incident"]["key"] == "203.0.113.9"
    assert detail["evidence"] == ["evidence of brute"]
    assert detail["analyses"] == [] and detail["playbook_runs"] == []
    assert (detail["similar"], detail["similar_error"]) == ([], None)  # no memory given
    missing = api.call("GET", "/incidents/99999", who="read")
    assert (missing.status, missing.json()) == (404, {"detail": "no incident 99999"})


def test_patch_status_and_notes(api: Api) -> None:
    iid = api.ids["spray"]
    out = api.call("PATCH", f"/incidents/{iid}", who="respond", json_body={"status": "triaged"})
    assert out.status == 200 and out.json()["status"] == "triaged"
    out = api.call("PATCH", f"/incidents/{iid}", who="respond", json_body={"notes": "seen <b>"})
    assert out.json()["status"] == "triaged" and out.json()["notes"] == "seen <b>"
    stored = api.store.get_incident(iid)
    assert stored is not None and (stored.status, stored.notes) == ("triaged", "seen <b>")
    assert api.call("PATCH", f"/incidents/{iid}", json_body={"status": "closed"}).status == 422
    assert api.call("PATCH", f"/incidents/{iid}", json_body={"other": 1}).status == 422
    empty = api.call("PATCH", f"/incidents/{iid}", json_body={})
    assert empty.status == 400 and set(empty.json()) == {"detail"}
    assert api.call("PATCH", "/incidents/424242", json_body={"status": "new"}).status == 404


def test_analyse_queues_through_the_injected_callable(api: Api, tmp_path: Path) -> None:
    iid = api.ids["owned"]
    answer = api.call("POST", f"/incidents/{iid}/analyse", who="respond")
    assert answer.status == 202
    assert answer.json() == {"queued": True, "poll": f"/incidents/{iid}"}
    assert api.analysed == [iid]
    assert api.call("POST", "/incidents/777/analyse").status == 404
    served, store, _ = serve(tmp_path / "other")
    try:
        from soc.store.api import ApiLog

        token = ApiLog(store).create_token("t", ["respond"], now=time.time())
        answer = served.call("POST", f"/incidents/{iid}/analyse", token=token)
        # No incident in that store: 404 first; with one, 503.
        assert answer.status == 404
        from tests.api.conftest import seed

        other = seed(store)["owned"]
        answer = served.call("POST", f"/incidents/{other}/analyse", token=token)
        assert (answer.status, answer.json()) == (503, {"detail": "analysis not available"})
    finally:
        served.stop()
        store.close()


# --- playbooks -----------------------------------------------------------------------------
def test_playbooks_are_listed_with_their_kinds(api: Api) -> None:
    books = {b["name"]: b for b in api.call("GET", "/playbooks", who="read").json()}
    assert {"block-source", "contain-account", "notify-team", "release"} <= set(books)
    assert "credential_compromise" in books["contain-account"]["recommended_for"]
    assert (books["block-source"]["ttl"], books["block-source"]["ttl_seconds"]) == ("1d", 86400)
    assert books["block-source"]["steps"][0] == {"action": "block_ip"}


def test_a_dry_run_shows_argv_and_is_audited_as_the_token(api: Api) -> None:
    iid = api.ids["brute"]
    answer = api.call(
        "POST", f"/incidents/{iid}/playbooks/block-source", who="respond", json_body={}
    )
    assert answer.status == 200, answer.body
    run = answer.json()
    assert (run["actor"], run["mode"], run["status"]) == ("api:responder", "dry_run", "dry_run")
    block = run["steps"][0]
    assert block["action"] == "block_ip" and block["result"] == "dry_run"
    assert any("203.0.113.9" in " ".join(argv) for argv in block["argv"])
    audit = ResponseLog(api.store).audit_log(incident_id=iid)
    assert audit and {a.actor for a in audit} == {"api:responder"}
    assert {a.client for a in audit} == {"127.0.0.1"}
    runs = api.call("GET", f"/incidents/{iid}").json()["playbook_runs"]
    assert [(r["playbook"], r["actor"], r["status"]) for r in runs] == [
        ("block-source", "api:responder", "dry_run")
    ]


def test_playbook_refusals(api: Api) -> None:
    iid = api.ids["brute"]
    unknown = api.call("POST", f"/incidents/{iid}/playbooks/nope", json_body={})
    assert (unknown.status, unknown.json()) == (404, {"detail": "unknown playbook 'nope'"})
    gone = api.call("POST", "/incidents/5555/playbooks/block-source", json_body={})
    assert gone.status == 404
    enforce = api.call(
        "POST", f"/incidents/{iid}/playbooks/block-source", json_body={"enforce": True}
    )
    assert enforce.status == 409 and "dry_run" in enforce.json()["detail"]
    assert ResponseLog(api.store).audit_log(incident_id=iid) == []


# --- health and the request log ------------------------------------------------------------
def test_healthz_needs_no_token_and_says_no_secret(api: Api) -> None:
    answer = api.call("GET", "/healthz", who=None)
    assert answer.status == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["checks"]["store"] == "ok" and body["checks"]["export_queue"] == 0
    assert "sqlite" not in answer.body.decode() and "soc.db" not in answer.body.decode()


def test_every_request_is_logged_without_its_query_string(api: Api) -> None:
    calls = [
        ("GET", "/incidents?search=s3cret", "read", 200),
        ("GET", "/incidents", None, 401),
        ("PATCH", f"/incidents/{api.ids['brute']}", "read", 403),
        ("GET", "/healthz", None, 200),
        ("GET", "/nowhere", "read", 404),
    ]
    for method, path, who, status in calls:
        kw = {"json_body": {"status": "new"}} if method == "PATCH" else {}
        assert api.call(method, path, who=who, **kw).status == status
    logged = list(reversed(logged_requests(api, len(calls))))
    assert [(r.method, r.path, r.status, r.token_name) for r in logged] == [
        ("GET", "/incidents", 200, "reader"),
        ("GET", "/incidents", 401, None),
        ("PATCH", f"/incidents/{api.ids['brute']}", 403, "reader"),
        ("GET", "/healthz", 200, None),
        ("GET", "/nowhere", 404, None),
    ]
    assert {r.client for r in logged} == {"127.0.0.1"}
    assert all(r.latency_ms >= 0 for r in logged)
