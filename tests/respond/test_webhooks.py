"""``notify`` and ``open_ticket`` through a real local HTTP server: bodies, inert names, secrets.

A webhook URL is a secret (Slack and Discord put the token in its path): the
plan, its description and the audit log show only its scheme and host.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from soc.clock import ManualClock
from soc.config import settings_from_dict
from soc.errors import ConfigError
from soc.respond import Responder
from soc.store import SqlStore
from tests.fake_http import FakeService, TrackingHandler
from tests.respond.conftest import add_incident, all_blocks, make_responder, playbooks_with
from tests.store.builders import T0

NOW = T0 + 60
TOKEN = "T0001/B0002/SeCrEtToKeN0123456789"  # noqa: S105 (the secret in a webhook's path)
HOSTILE_USERS = ["<!channel>", "@everyone", "`rm -rf`", "\u202eevil", "root"]


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver(FakeService):
    """Records every POST and answers with the next scripted status (200 when none is left)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.record_lock = threading.Lock()

    def handler(self) -> type[TrackingHandler]:
        return _Handler

    def hook(self, path: str) -> str:
        return f"{self.url}/{path}"

    @property
    def shown(self) -> str:
        """What the product may show of any URL on this server."""
        return f"{self.url}/…"


class _Handler(TrackingHandler):
    server_fake: Receiver

    def do_POST(self) -> None:
        fake = self.server_fake
        path, _, headers, body = self.request_parts()
        with fake.record_lock:
            fake.received.append(Received(path, headers, body))
            status = fake.statuses.pop(0) if fake.statuses else 200
        answer = b'{"ok": true}' if status < 300 else b'{"error": "nope"}'
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1."""
    with Receiver() as fake:
        yield fake


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """The shipped playbooks plus ones that only notify (each format) or only open a ticket."""
    extra = {
        f"notify_{fmt}": f"name: notify-{fmt}\nsteps:\n  - action: notify\n    format: {fmt}\n"
        for fmt in ("slack", "discord", "json")
    }
    extra["ticket"] = "name: ticket\nsteps:\n  - action: open_ticket\n"
    return playbooks_with(tmp_path / "playbooks", **extra)


def _responder(store: SqlStore, books: Path, **respond: Any) -> Responder:
    return make_responder(
        store,
        ManualClock(NOW),
        playbooks_dir=books,
        modes={"notify": "enforce", "open_ticket": "enforce", "annotate": "enforce"},
        **respond,
    )


def _message(playbook: str, users: str, link: str = "") -> str:
    return (
        f"SOC incident #1: brute_force (medium), 10 failures from 203.0.113.9; users {users}. "
        f"Playbook: {playbook}.{link}"
    )


INERT = "`<!channel>`, `@everyone`, `'rm -rf'`, `⟨U+202E⟩evil`, `root`"


def test_slack_gets_escaped_inert_text(store: SqlStore, books: Path, receiver: Receiver) -> None:
    incident = add_incident(store, users=HOSTILE_USERS)
    assert incident == 1
    responder = _responder(store, books, notify_url=receiver.hook(f"services/{TOKEN}"))
    result = responder.run(incident, "notify-slack", actor="alice", enforce=True)
    assert result.status == "ok"
    assert [(r.result, r.exit_status, r.output) for r in result.steps] == [
        ("ok", 200, '{"ok": true}')
    ]

    (got,) = receiver.received
    assert got.path == f"/services/{TOKEN}"
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {
        "text": _message(
            "notify-slack", "`&lt;!channel&gt;`, `@everyone`, `'rm -rf'`, `⟨U+202E⟩evil`, `root`"
        )
    }
    text = got.json()["text"]
    assert "<!channel>" not in text and "<" not in text
    assert "`rm -rf`" not in text
    assert "\u202e" not in text
    assert b"\\u202e" not in got.body.lower()


def test_discord_is_told_to_parse_no_mentions(
    store: SqlStore, books: Path, receiver: Receiver
) -> None:
    incident = add_incident(store, users=HOSTILE_USERS)
    responder = _responder(
        store,
        books,
        notify_url=receiver.hook(f"api/webhooks/{TOKEN}"),
        console_url="https://soc.example.org/",
    )
    assert responder.run(incident, "notify-discord", actor="alice", enforce=True).status == "ok"
    (got,) = receiver.received
    assert got.json() == {
        "content": _message(
            "notify-discord", INERT, " https://soc.example.org/incidents?incident=1"
        ),
        "allowed_mentions": {"parse": []},
    }
    assert "`rm -rf`" not in got.json()["content"]


def test_a_json_webhook_gets_the_facts_as_data(
    store: SqlStore, books: Path, receiver: Receiver
) -> None:
    incident = add_incident(
        store,
        users=HOSTILE_USERS,
        source_ips=["203.0.113.9", "not-an-address", "::ffff:198.51.100.7"],
    )
    responder = _responder(store, books, notify_url=receiver.hook("hook"))
    assert responder.run(incident, "notify-json", actor="alice", enforce=True).status == "ok"
    (got,) = receiver.received
    assert got.json() == {
        "event": "soc.response",
        "text": _message("notify-json", INERT).replace(
            "from 203.0.113.9;", "from 203.0.113.9, ::ffff:c633:6407 and 1 more;"
        ),
        "incident": {
            "incident_id": 1,
            "kind": "brute_force",
            "severity": "medium",
            "technique": "T1110.001",
            "first_seen": T0,
            "last_seen": T0 + 10,
            "failures": 10,
            "successes": 0,
            "source_ips": ["203.0.113.9", "::ffff:c633:6407"],
            "source_count": 3,
            "users": ["<!channel>", "@everyone", "`rm -rf`", "⟨U+202E⟩evil", "root"],
            "distinct_users": 1,
            "playbook": "notify-json",
            "link": "",
        },
    }


def test_the_configured_format_is_the_default(
    store: SqlStore, books: Path, receiver: Receiver
) -> None:
    incident = add_incident(store)
    responder = _responder(store, books, notify_url=receiver.hook("x"), notify_format="discord")
    assert responder.run(incident, "notify-team", actor="alice", enforce=True).status == "ok"
    (got,) = receiver.received
    assert set(got.json()) == {"content", "allowed_mentions"}


def test_open_ticket_posts_the_incident(store: SqlStore, books: Path, receiver: Receiver) -> None:
    incident = add_incident(store, users=HOSTILE_USERS, severity="high")
    responder = _responder(store, books, ticket_url=receiver.hook(f"rest/{TOKEN}?key=abc123"))
    result = responder.run(incident, "ticket", actor="alice", enforce=True)
    assert [(r.step.action, r.result, r.exit_status) for r in result.steps] == [
        ("open_ticket", "ok", 200)
    ]
    (got,) = receiver.received
    assert got.path == f"/rest/{TOKEN}"
    body = got.json()
    assert body["event"] == "soc.ticket"
    assert body["title"] == "SOC incident #1: brute_force (high)"
    assert body["priority"] == "high"  # from the severity
    assert body["description"] == _message("ticket", INERT).replace("(medium)", "(high)")
    assert body["incident"]["users"] == [
        "<!channel>",
        "@everyone",
        "`rm -rf`",
        "⟨U+202E⟩evil",
        "root",
    ]
    assert body["incident"]["severity"] == "high"

    # the contain-account playbook asks for an urgent ticket
    second = add_incident(store, "198.51.100.7", kind="credential_compromise", users=["deploy"])
    assert second == 2
    responder.run(second, "contain-account", actor="alice", enforce=True)
    assert receiver.received[-1].json()["priority"] == "urgent"
    assert (
        receiver.received[-1].json()["title"] == "SOC incident #2: credential_compromise (medium)"
    )


def test_the_url_never_shows_beyond_its_host(
    store: SqlStore, books: Path, receiver: Receiver
) -> None:
    incident = add_incident(store)
    notify_url = receiver.hook(f"services/{TOKEN}?token=QueryS3cret")
    ticket_url = receiver.hook(f"tickets/{TOKEN}")
    responder = _responder(store, books, notify_url=notify_url, ticket_url=ticket_url)

    plan = responder.plan(incident, "escalate", actor="alice", enforce=True)
    notify = responder.plan(incident, "notify-slack", actor="alice", enforce=True)
    assert plan.steps[0].argv() == [["POST", receiver.shown]]
    assert plan.steps[0].describe == f"open a ticket at {receiver.shown}"
    assert notify.steps[0].argv() == [["POST", receiver.shown]]
    assert notify.steps[0].describe == f"post a slack message to {receiver.shown}"
    shown_plans = json.dumps([plan.as_dict(), notify.as_dict()])
    assert "SeCrEt" not in shown_plans and "QueryS3cret" not in shown_plans

    receiver.statuses = [200, 500]
    results = [responder.execute(plan), responder.execute(notify)]
    assert [r.status for r in results] == ["ok", "failed"]
    shown_results = json.dumps([r.as_dict() for r in results])
    assert "SeCrEt" not in shown_results and "QueryS3cret" not in shown_results
    audit = responder.log.audit_log()
    assert len(audit) == 4
    kept = json.dumps([[a.actor, a.target, a.argv, a.output, a.playbook] for a in audit])
    assert "SeCrEt" not in kept and "QueryS3cret" not in kept
    assert [a.argv for a in audit if a.backend == "webhook"] == [[["POST", receiver.shown]]] * 2
    # the secret was used all the same
    assert [r.path for r in receiver.received] == [f"/tickets/{TOKEN}", f"/services/{TOKEN}"]


def test_a_server_error_fails_the_step(store: SqlStore, books: Path, receiver: Receiver) -> None:
    incident = add_incident(store)
    responder = _responder(store, books, notify_url=receiver.hook(f"services/{TOKEN}"))
    receiver.statuses = [500, 500]

    only = responder.run(incident, "notify-slack", actor="alice", enforce=True)
    assert only.status == "failed"
    (step,) = only.steps
    assert (step.result, step.exit_status, step.output) == (
        "failed",
        500,
        f"HTTP 500 from {receiver.shown}",
    )

    # notify fails, export is refused (none configured), the note is added: partial
    team = responder.run(incident, "notify-team", actor="alice", enforce=True)
    assert [(r.step.action, r.result, r.exit_status) for r in team.steps] == [
        ("notify", "failed", 500),
        ("export_to_elastic", "refused", None),
        ("annotate", "ok", None),
    ]
    assert team.status == "partial"
    assert [r.status for r in store.playbook_runs(incident)] == ["failed", "partial"]
    (failed, _) = responder.log.audit_log(result="failed")
    assert (failed.exit_status, failed.output) == (500, f"HTTP 500 from {receiver.shown}")
    assert all_blocks(store) == []


def test_a_redirect_is_not_followed(store: SqlStore, books: Path, receiver: Receiver) -> None:
    incident = add_incident(store)
    responder = _responder(store, books, notify_url=receiver.hook(f"services/{TOKEN}"))
    receiver.statuses = [302]
    (step,) = responder.run(incident, "notify-slack", actor="alice", enforce=True).steps
    assert (step.result, step.exit_status) == ("failed", 302)
    assert [r.path for r in receiver.received] == [f"/services/{TOKEN}"]


def test_an_unreachable_server_fails_the_step(
    store: SqlStore, books: Path, receiver: Receiver
) -> None:
    incident = add_incident(store)
    responder = _responder(store, books, notify_url=receiver.hook(f"services/{TOKEN}"))
    receiver.stop()
    (step,) = responder.run(incident, "notify-slack", actor="alice", enforce=True).steps
    assert (step.result, step.exit_status) == ("failed", None)
    assert step.output.startswith(f"cannot reach {receiver.shown}: ")
    assert "SeCrEt" not in step.output


def test_a_dry_run_posts_nothing(store: SqlStore, books: Path, receiver: Receiver) -> None:
    incident = add_incident(store)
    responder = make_responder(
        store, ManualClock(NOW), playbooks_dir=books, notify_url=receiver.hook("x")
    )
    result = responder.run(incident, "block-and-notify", actor="alice", enforce=True)
    assert result.status == "dry_run"
    assert receiver.received == []
    (notify,) = [r for r in result.steps if r.step.action == "notify"]
    assert notify.step.request is not None
    assert notify.step.request.body["text"].startswith("SOC incident #1: brute_force")
    assert notify.step.as_dict()["body"] == notify.step.request.body


def test_without_a_url_the_step_is_refused(store: SqlStore, books: Path) -> None:
    incident = add_incident(store)
    responder = _responder(store, books)
    result = responder.run(incident, "contain-account", actor="alice", enforce=True)
    refused = {r.step.action: r.output for r in result.steps if r.result == "refused"}
    assert refused["notify"] == "no webhook configured ([respond] notify_url)"
    assert refused["open_ticket"] == "no ticket webhook configured ([respond] ticket_url)"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.org/x",
        "hooks.example.org/x",
        "http:///x",
        "http://127.0.0.1:99999/x",
        "http://[::1/x",
        "http://exa mple.org/x",
        "http://hooks.example.org/a\tb",
        "http://hooks.example.org/\x00",
    ],
)
def test_a_webhook_url_must_be_usable(url: str) -> None:
    with pytest.raises(ConfigError, match=r"must be an http:// or https:// URL"):
        settings_from_dict({"respond": {"notify_url": url}})
    with pytest.raises(ConfigError, match=r"must be an http:// or https:// URL"):
        settings_from_dict({"respond": {"ticket_url": url}})
