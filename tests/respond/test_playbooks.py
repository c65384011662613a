"""Playbook files: the shipped ones load and cover every rule; bad ones are refused clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soc.detect.rules import playbooks_by_kind
from soc.respond import RespondError, load_playbooks
from soc.respond.actions import ACTIONS
from soc.respond.playbooks import PlaybookStep
from tests.respond.conftest import PLAYBOOKS, write_playbook

SHIPPED = {
    "block-15m": (900, ["block_ip", "annotate"]),
    "block-1h": (3600, ["block_ip", "annotate", "set_status"]),
    "block-and-notify": (86400, ["block_ip", "notify", "annotate", "set_status"]),
    "block-source": (86400, ["block_ip", "annotate", "set_status"]),
    "contain-account": (
        604800,
        [
            "disable_user",
            "block_ip",
            "notify",
            "open_ticket",
            "export_to_elastic",
            "annotate",
            "set_status",
        ],
    ),
    "escalate": (3600, ["open_ticket", "export_to_elastic", "annotate"]),
    "notify-team": (3600, ["notify", "export_to_elastic", "annotate"]),
    "release": (3600, ["unblock_ip", "enable_user", "annotate"]),
}


def test_every_shipped_playbook_loads() -> None:
    books = load_playbooks(PLAYBOOKS, max_ttl=30 * 86400)
    assert {name: (b.ttl, [s.action for s in b.steps]) for name, b in books.items()} == SHIPPED
    for name, book in books.items():
        assert book.name == name
        assert book.path == str(PLAYBOOKS / f"{name}.yaml")
        assert book.description.strip() and "\n" not in book.description
    assert books["block-source"].steps[2] == PlaybookStep("set_status", {"status": "triaged"})
    assert books["contain-account"].steps[3] == PlaybookStep("open_ticket", {"priority": "urgent"})
    summary = books["block-source"].summary()
    assert summary == "block-source: block_ip, annotate, set_status (TTL 1d)"


def test_every_rule_recommends_a_shipped_playbook() -> None:
    books = load_playbooks(PLAYBOOKS)
    recommended = playbooks_by_kind()
    assert recommended  # every detection rule is listed
    missing = {kind: name for kind, name in recommended.items() if name not in books}
    assert missing == {}
    assert recommended["credential_compromise"] == "contain-account"
    assert recommended["brute_force"] == "block-source"


def test_every_action_is_used_by_a_shipped_playbook() -> None:
    used = {s.action for b in load_playbooks(PLAYBOOKS).values() for s in b.steps}
    assert used == set(ACTIONS)


def test_a_step_may_set_its_own_ttl_and_yml_files_load(tmp_path: Path) -> None:
    (tmp_path / "short.yml").write_text(
        "name: short\nttl: 90\nsteps:\n  - action: block_ip\n    ttl: 15m\n", encoding="utf-8"
    )
    (book,) = load_playbooks(tmp_path).values()
    assert (book.name, book.description, book.ttl) == ("short", "", 90)
    assert book.steps == (PlaybookStep("block_ip", {"ttl": "15m"}),)
    # A step's ttl may be seconds, like the playbook's.
    (tmp_path / "short.yml").write_text(
        "name: short\nsteps:\n  - action: block_ip\n    ttl: 900\n", encoding="utf-8"
    )
    (book,) = load_playbooks(tmp_path, default_ttl=1800).values()
    assert book.steps == (PlaybookStep("block_ip", {"ttl": 900}),)
    assert book.ttl == 1800  # no ttl of its own: [respond] default_ttl


GOOD_STEP = "steps:\n  - action: block_ip\n"

BAD = [
    pytest.param(
        "name: bad\ntll: 1h\n" + GOOD_STEP,
        "bad.yaml",
        "unknown key 'tll' (known keys: name, description, ttl, steps)",
        id="unknown key",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: rm_rf\n",
        "bad.yaml: step 1",
        "unknown action 'rm_rf' (known: annotate, block_ip, disable_user, enable_user, "
        "export_to_elastic, notify, open_ticket, set_status, unblock_ip)",
        id="unknown action",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: annotate\n    note: hi\n  - action: block_ip\n"
        "    duration: 1h\n",
        "bad.yaml: step 2",
        "unknown parameter 'duration' for block_ip (known: ttl)",
        id="unknown parameter",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: unblock_ip\n    ttl: 1h\n",
        "bad.yaml: step 1",
        "unknown parameter 'ttl' for unblock_ip (known: none)",
        id="parameter of an action that takes none",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: block_ip\n    ttl: [1h]\n",
        "bad.yaml: step 1",
        "ttl must be str or int, got ['1h']",
        id="wrong type",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: annotate\n    note: yes\n",
        "bad.yaml: step 1",
        "note must be str, got True",
        id="a YAML boolean",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: set_status\n    status: [triaged]\n",
        "bad.yaml: step 1",
        "status must be str, got ['triaged']",
        id="a list for a text",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: set_status\n    status: done\n",
        "bad.yaml: step 1",
        "status must be one of new, triaged, resolved, false_positive",
        id="unknown status",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: annotate\n    note: 'by {actor} with {secret}'\n",
        "bad.yaml: step 1",
        "note: unknown placeholder 'secret' (known: playbook, ttl, actor)",
        id="unknown placeholder",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: annotate\n",
        "bad.yaml: step 1",
        "note must not be empty",
        id="missing note",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: notify\n    format: teams\n",
        "bad.yaml: step 1",
        "format must be slack, discord or json",
        id="unknown notify format",
    ),
    pytest.param(
        "name: bad\nttl: soon\n" + GOOD_STEP,
        "bad.yaml: ttl",
        "not a duration (say 90s, 30m, 1h, 7d): 'soon'",
        id="bad ttl",
    ),
    pytest.param(
        "name: bad\nttl: 0s\n" + GOOD_STEP,
        "bad.yaml: ttl",
        "must be at least one second: '0s'",
        id="zero ttl",
    ),
    pytest.param(
        "name: bad\nttl: -5\n" + GOOD_STEP,
        "bad.yaml: ttl",
        "must be at least one second: -5",
        id="negative ttl",
    ),
    pytest.param(
        "name: bad\nttl: 60d\n" + GOOD_STEP,
        "bad.yaml",
        "ttl 60d is longer than max_ttl 30d",
        id="ttl over max_ttl",
    ),
    pytest.param(
        "name: bad\nsteps:\n  - action: block_ip\n    ttl: forever\n",
        "bad.yaml: step 1",
        "ttl: not a duration (say 90s, 30m, 1h, 7d): 'forever'",
        id="bad step ttl",
    ),
    pytest.param(
        "name: bad\nsteps: []\n", "bad.yaml", "steps must be a non-empty list", id="empty steps"
    ),
    pytest.param("name: bad\n", "bad.yaml", "steps must be a non-empty list", id="no steps"),
    pytest.param(
        "name: bad\nsteps:\n  - block_ip\n",
        "bad.yaml: step 1",
        "a step is a mapping with an action",
        id="a step that is text",
    ),
    pytest.param(
        "- action: block_ip\n",
        "bad.yaml",
        "a playbook must be a mapping (name, description, ttl, steps)",
        id="a list",
    ),
    pytest.param(
        "", "bad.yaml", "a playbook must be a mapping (name, description, ttl, steps)", id="empty"
    ),
    pytest.param(
        "name: Bad Name\n" + GOOD_STEP,
        "bad.yaml",
        "name: lower-case letters, digits, - and _",
        id="bad name",
    ),
    pytest.param(
        "name: bad\ndescription: [a]\n" + GOOD_STEP,
        "bad.yaml",
        "description must be text",
        id="description not text",
    ),
    pytest.param(
        "name: block-source\n" + GOOD_STEP,
        "bad.yaml",
        "name 'block-source' does not match the file name",
        id="name mismatch",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD)
def test_a_bad_playbook_is_refused_naming_the_file_and_step(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    write_playbook(tmp_path, "good", "name: good\n" + GOOD_STEP)
    write_playbook(tmp_path, "bad", text)
    with pytest.raises(RespondError) as caught:
        load_playbooks(tmp_path, max_ttl=30 * 86400)
    assert caught.value.message == message
    assert caught.value.where == f"{tmp_path}/{where}"
    assert str(caught.value) == f"{tmp_path}/{where}: {message}"


def test_yaml_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_playbook(
        tmp_path,
        "evil",
        f'name: evil\nsteps: !!python/object/apply:os.system ["touch {marker}"]\n',
    )
    with pytest.raises(RespondError) as caught:
        load_playbooks(tmp_path)
    assert caught.value.where == str(tmp_path / "evil.yaml")
    assert caught.value.message == (
        "not valid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'"
    )
    assert not marker.exists()


def test_a_python_object_tag_is_refused(tmp_path: Path) -> None:
    write_playbook(tmp_path, "evil", "!!python/object:soc.respond.playbooks.Playbook {}\n")
    with pytest.raises(RespondError, match=re.escape("python/object:soc.respond")):
        load_playbooks(tmp_path)


def test_yaml_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    write_playbook(tmp_path, "broken", "name: broken\nsteps: [\n")
    with pytest.raises(RespondError) as caught:
        load_playbooks(tmp_path)
    assert caught.value.where == str(tmp_path / "broken.yaml")
    assert caught.value.message.startswith("not valid YAML: ")


def test_a_name_defined_twice_is_refused(tmp_path: Path) -> None:
    write_playbook(tmp_path, "twice", "name: twice\n" + GOOD_STEP)
    (tmp_path / "twice.yml").write_text("name: twice\n" + GOOD_STEP, encoding="utf-8")
    with pytest.raises(RespondError) as caught:
        load_playbooks(tmp_path)
    assert str(caught.value) == f"{tmp_path}/twice.yml: playbook 'twice' defined twice"


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RespondError) as caught:
        load_playbooks(tmp_path / "nowhere")
    assert str(caught.value) == f"{tmp_path}/nowhere: playbook folder not found"


def test_a_folder_without_playbooks_loads_none(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("name: readme\n", encoding="utf-8")
    assert load_playbooks(tmp_path) == {}
