"""Restart means continue: a detector (and a windower) rebuilt from its saved state at any
batch boundary gives the same incidents and windows as one that never stopped."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from soc.detect import DetectConfig, Detector
from soc.detect import state as detect_state
from soc.events import Event, Incident, WindowStats
from soc.window import WindowConfig, Windower
from soc.window import state as window_state
from tests.detect.builders import comparable, failure, final, random_batches
from tests.detect.test_determinism import sample_stream, synthetic_stream

CONFIG = DetectConfig(allow_list=["198.51.100.7"], evidence_lines=8)
WINDOWS = WindowConfig(late_seconds=2.0)


def _through_json(state: dict[str, Any]) -> dict[str, Any]:
    # What the store keeps: JSON text (the engine compresses it, which changes nothing).
    loaded: dict[str, Any] = json.loads(json.dumps(state))
    return loaded


def _run(
    batches: list[list[Event]], restarts: set[int], *, close_quiet: bool = False
) -> tuple[dict[str, Any], list[WindowStats]]:
    """The batches through a detector and a windower rebuilt from state before each of
    ``restarts`` (batch indexes); returns the final incidents and every window."""
    detector, windower = Detector(CONFIG), Windower(WINDOWS)
    seen: list[Incident] = []
    rows: list[WindowStats] = []
    for i, batch in enumerate(batches):
        if i in restarts:
            saved = _through_json(detect_state.dump(detector))
            detector = Detector(CONFIG)
            detect_state.load(detector, saved)
            saved = _through_json(window_state.dump(windower))
            windower = Windower(WINDOWS)
            window_state.load(windower, saved)
        seen.extend(detector.process(batch))
        rows.extend(windower.add(batch))
        if close_quiet and detector.watermark is not None:
            seen.extend(detector.close_quiet(detector.watermark))
            rows.extend(windower.advance(detector.watermark))
    seen.extend(detector.flush())
    rows.extend(windower.flush())
    incidents = {key: comparable(incident) for key, incident in final(seen).items()}
    return incidents, sorted(rows, key=lambda w: (w.window_start, w.key_type, w.key))


@pytest.mark.parametrize("source", ["samples", "synthetic-1", "synthetic-2"])
def test_a_restart_at_any_batch_boundary_changes_nothing(source: str) -> None:
    events = sample_stream() if source == "samples" else synthetic_stream(int(source[-1]))
    for seed, most in ((1, 40), (2, 400)):
        batches = random_batches(events, seed, most=most)
        whole, whole_rows = _run(batches, set())
        kinds = {incident["kind"] for incident in whole.values()}
        assert len(kinds) >= 3, kinds  # campaigns of several rules are cut by restarts
        rng = random.Random(seed)
        restarts = set(rng.sample(range(len(batches)), min(len(batches), 12)))
        assert _run(batches, restarts) == (whole, whole_rows), f"seed {seed}"
        if seed == 1:
            quiet = _run(batches, set(), close_quiet=True)
            assert _run(batches, restarts, close_quiet=True) == quiet


def test_a_restart_after_every_batch_changes_nothing() -> None:
    events = synthetic_stream(3)
    batches = random_batches(events, 4, most=400)
    assert _run(batches, set(range(len(batches)))) == _run(batches, set())
    distributed = [i for i in _run(batches, set())[0].values() if i["kind"].startswith("dist")]
    assert distributed, "the synthetic stream has a botnet"


def test_state_is_plain_json_and_bounded_by_the_open_campaigns() -> None:
    detector = Detector(CONFIG)
    t = 1_700_000_000.0
    for i in range(200):
        detector.process([failure(t + i, "203.0.113.5", f"user{i}")])
    text = json.dumps(detect_state.dump(detector), allow_nan=False)
    # One campaign: its distinct names and a bounded failure tail, not 200 events.
    assert len(text) < 20_000, len(text)
    restored = Detector(CONFIG)
    detect_state.load(restored, json.loads(text))
    assert restored.open_incidents() == detector.open_incidents()
    assert len(restored.open_incidents()) == 1


def test_state_of_another_version_is_refused_and_changes_nothing() -> None:
    detector = Detector(CONFIG)
    detector.process([failure(1_700_000_000.0 + i, "203.0.113.5", "root") for i in range(20)])
    saved = detect_state.dump(detector)
    fresh = Detector(CONFIG)
    with pytest.raises(detect_state.StateError, match=r"version 99"):
        detect_state.load(fresh, saved | {"version": 99})
    with pytest.raises(detect_state.StateError, match="malformed"):
        detect_state.load(fresh, saved | {"trackers": [["not", "a", "tracker"]]})
    assert fresh.open_incidents() == [] and fresh.watermark is None
    windower = Windower(WINDOWS)
    windower.add([failure(1_700_000_000.0, "203.0.113.5", "root")])
    with pytest.raises(window_state.StateError, match=r"15\.0 s saved, 60 s configured"):
        window_state.load(Windower(WindowConfig(seconds=60)), window_state.dump(windower))


def test_a_later_generation_never_takes_an_earlier_ones_names() -> None:
    # Same key, same second: a detector that lost its state names its campaign apart.
    events = [failure(1_700_000_000.0 + i / 10, "203.0.113.5", "root") for i in range(20)]
    first = Detector(CONFIG).process(events)
    later = Detector(CONFIG)
    later.generation = 2
    second = later.process(events)
    assert [i.detector_key for i in first] == ["auth:203.0.113.5:1700000000000"]
    assert [i.detector_key for i in second] == ["auth:203.0.113.5:1700000000000@2"]
    # Closing it still records where the key's last campaign started.
    assert [(i.detector_key, i.closed) for i in later.flush()] == [
        ("auth:203.0.113.5:1700000000000@2", True)
    ]
    assert later._ended == {(0, "203.0.113.5"): 1700000000000}
