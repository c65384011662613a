"""A replay's summary, its incidents read from the store a page at a time: the JSON is
exactly what ``json.dumps(indent=2)`` writes, and the printed top is the same ranking."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from soc.cli import main
from soc.cli_summary import INCIDENTS_SHOWN, STAGE_LABELS, ReplayIncidents, write_summary_json
from soc.engine import COMMIT_PARTS, STAGES
from soc.events import SEVERITIES
from soc.store import SqlStore
from tests.store.builders import T0, make_incident

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def _stored(store: SqlStore, n: int) -> list[int]:
    ids = []
    with store.transaction(now=T0) as tx:
        for i in range(n):
            incident = make_incident(
                f"192.0.2.{i}",
                first_seen=T0 + (i * 11) % 17,
                failures=10 + (i * 37) % 50,
                severity=SEVERITIES[i % len(SEVERITIES)],
                users=["root", f"u{i}\u00e9"],
            )
            ids.append(tx.upsert_incident(incident, f"brute_force:192.0.2.{i}:1"))
    return ids


@pytest.mark.parametrize("count", [0, 1, 45])
def test_the_streamed_json_is_what_json_dumps_writes(store: SqlStore, count: int) -> None:
    ids = _stored(store, count)
    summary = {
        "lines": 3,
        "incidents": ReplayIncidents(store, ids),
        "by_kind": {"auth_failure": 2, "k\u00e9y\n": 1},
        "empty": {},
        "d\u00e9j\u00e0 vu": 1,
        "nothing": [],
        "first_seen": None,
    }
    out = io.StringIO()
    write_summary_json(summary, out)
    text = out.getvalue()
    whole = dict(summary, incidents=list(ReplayIncidents(store, ids).rows()))
    assert text == json.dumps(whole, indent=2, ensure_ascii=False) + "\n"
    assert len(json.loads(text)["incidents"]) == count


def test_the_printed_top_is_the_most_severe_then_largest(store: SqlStore) -> None:
    ids = _stored(store, 45)
    count, top = ReplayIncidents(store, ids).ranked(INCIDENTS_SHOWN)
    rows = list(ReplayIncidents(store, ids).rows())
    ranked = sorted(rows, key=lambda i: (-SEVERITIES.index(i["severity"]), -i["failures"], i["id"]))
    assert count == 45
    assert top == ranked[:INCIDENTS_SHOWN]
    assert [r["first_seen"] for r in rows] == sorted(r["first_seen"] for r in rows)


def test_a_replay_writes_its_summary_file_and_prints_the_same_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "summary.json"
    log = str(SAMPLES / "auth.log")
    common = ["--analyst", "none", "--timezone", "UTC", "--year", "2025"]
    assert main(["replay", log, *common, "--summary-json", str(path)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(path.read_text(encoding="utf-8"))
    count = len(summary["incidents"])
    assert count >= 3
    assert f"\n{count} incidents (threshold" in printed
    assert (
        path.read_text(encoding="utf-8") == json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    )


def test_a_replay_says_where_its_time_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every stage is timed, none twice: together they fit in the replay's own time."""
    path = tmp_path / "summary.json"
    logs = [str(SAMPLES / name) for name in ("auth.log", "nginx-access.log")]
    common = ["--analyst", "none", "--timezone", "UTC", "--year", "2025"]
    db = ["--db", f"sqlite:///{tmp_path / 'soc.db'}"]
    started = time.perf_counter()
    assert main(["replay", *logs, *common, *db, "--summary-json", str(path)]) == 0
    elapsed = time.perf_counter() - started
    printed = capsys.readouterr().out
    seconds = json.loads(path.read_text(encoding="utf-8"))["stage_seconds"]
    assert list(seconds) == [*STAGES, *COMMIT_PARTS]
    assert all(spent > 0 for spent in seconds.values()), seconds
    assert sum(seconds[name] for name in STAGES) <= elapsed
    assert seconds["commit"] >= seconds["commit_windows"] + seconds["commit_incidents"]
    assert list(STAGE_LABELS) == list(STAGES)
    line = next(text for text in printed.splitlines() if text.startswith("seconds by stage: "))
    for name, label in STAGE_LABELS.items():
        assert f"{label} {seconds[name]:.2f}" in line
    assert f"(windows {seconds['commit_windows']:.2f}, incidents" in line
