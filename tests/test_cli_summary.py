"""A replay's summary, its incidents read from the store a page at a time: the JSON is
exactly what ``json.dumps(indent=2)`` writes, and the printed top is the same ranking."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from soc.cli import main
from soc.cli_summary import INCIDENTS_SHOWN, ReplayIncidents, write_summary_json
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
