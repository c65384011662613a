"""``soc policy train|eval|recommend|feedback``: what each prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soc.cli import main
from soc.events import BRUTE_FORCE, Incident
from soc.respond.policy.recommend import Recommender
from soc.respond.policy.train import HELD_OUT_SEED, compare
from soc.store import open_store
from soc.store.policy import PolicyFeedback

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "policy"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "soc.toml"
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store holding incident 1: a brute force from a listed address."""
    url = f"sqlite:///{tmp_path / 'soc.db'}"
    store = open_store(url)
    incident = Incident(
        key="203.0.113.9", kind=BRUTE_FORCE, first_seen=0.0, last_seen=60.0,
        source_ips=["203.0.113.9"], users=["root"], distinct_users=1, failures=800,
        events=800, severity="high", facts={"intel": [{"indicator": "listed"}]},
    )  # fmt: skip
    with store.transaction() as tx:
        assert tx.upsert_incident(incident, "bf:203.0.113.9") == 1
    store.close()
    return url


def test_eval_prints_policy_rule_and_random(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "policy", "eval", "--episodes", "10"]) == 0
    figures = compare(Recommender.load(SHIPPED).model, 10, HELD_OUT_SEED)
    seeds = f"{HELD_OUT_SEED}-{HELD_OUT_SEED + 9}"
    assert capsys.readouterr().out.splitlines() == [
        f"mean reward per shift (20 incidents) over 10 held-out episodes (seeds {seeds}):",
        *(
            f"{name:<7} {figures[name]['mean']:8.2f} ± {figures[name]['std']:.2f}"
            for name in ("policy", "rule", "random")
        ),
    ]
    assert main(["--config", str(config), "policy", "eval", "--episodes", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 3 and set(out) >= {"policy", "rule", "random"}


def test_recommend_and_feedback(config: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recommender.load(SHIPPED)
    store = open_store(db)
    incident = store.get_incident(1)
    store.close()
    assert incident is not None
    expected = rec.recommend(incident)
    base = ["--config", str(config), "policy"]
    assert main([*base, "recommend", "1", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"incident 1 (brute_force, high): {expected.playbook or 'no playbook'} "
        f"(action {expected.action}, probability {expected.probability:.2f})"
    )
    assert lines[1].split()[::2] == list(rec.probabilities(incident))
    if expected.playbook is not None:
        assert lines[2] == f"a recommendation only; to run it: soc respond 1 {expected.playbook}"

    assert main([*base, "recommend", "1", "--db", db, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["playbook"], out["action"]) == (expected.playbook, expected.action)

    assert main([*base, "feedback", "1", "--db", db, "--chose", "ignore", "--actor", "eve"]) == 0
    verdict = "accepted" if expected.action == "ignore" else "rejected for ignore"
    assert capsys.readouterr().out == f"feedback 1: incident 1, {expected.action} {verdict}\n"
    store = open_store(db)
    (row,) = PolicyFeedback(store).list()
    store.close()
    assert (row.actor, row.kind, row.recommended) == ("eve", BRUTE_FORCE, expected.action)
    assert row.chosen == "ignore" and len(row.features) == 17


def test_errors_are_one_line(
    config: Path, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(config), "policy"]
    assert main([*base, "recommend", "99", "--db", db]) == 2
    assert capsys.readouterr().err == "soc: error: soc policy: no incident 99\n"
    assert main([*base, "eval", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"soc: error: {tmp_path / 'policy.zip'}: no trained policy here "
        "(train one with `soc policy train`)\n"
    )
    assert main([*base, "feedback", "1", "--db", db, "--chose", "reboot"]) == 2
    assert "unknown action" in capsys.readouterr().err


def test_train_writes_a_model_and_its_card(
    config: Path, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(db)
    PolicyFeedback(store).record(
        incident_id=1, at=1.0, actor="eve", kind=BRUTE_FORCE, recommended="block_1h",
        probability=0.6, accepted=False, chosen="ignore",
    )  # fmt: skip
    store.close()
    out = tmp_path / "policy"
    args = ["--timesteps", "256", "--episodes", "2", "--seed", "3", "--out", str(out)]
    assert main(["--config", str(config), "policy", "train", *args, "--feedback", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["feedback: 1 answers (0 unreadable)", "  brute_force: false alarms 38%"]
    assert lines[2].startswith("trained 256 timesteps (seed 3) in ")
    assert [line.split()[0] for line in lines[3:6]] == ["policy", "rule", "random"]
    assert lines[6] == f"saved {out / 'policy.zip'} and {out / 'policy.json'}"
    card = json.loads((out / "policy.json").read_text(encoding="utf-8"))
    assert (card["seed"], card["timesteps"]) == (3, 256)
    assert card["feedback"]["answers"] == 1
    assert card["config"]["env"]["false_alarms"]["brute_force"] == pytest.approx(
        (0.35 * 20 + 1) / 21, abs=1e-4
    )
