"""The replay summary's top lists: exact when small, bounded and honest when not."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.events import AUTH_SUCCESS, Event, failure_count
from soc.findings import Findings, TopCounts
from soc.parse import make_parser
from soc.parse.base import ParseConfig

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _reference(events: list[Event]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """The top lists counted event by event, without bounds (what the summary meant)."""
    failures: Counter[str] = Counter()
    successes: Counter[str] = Counter()
    users: Counter[str] = Counter()
    for event in events:
        address = event.key_address
        if address is None:
            continue
        failed = failure_count(event)
        if failed:
            failures[address] += failed
            if event.user is not None:
                users[event.user] += failed
        elif event.kind == AUTH_SUCCESS:
            successes[address] += event.count
    return failures, successes, users


@pytest.mark.parametrize("name", ["auth.log", "auth-rfc3339.log", "nginx-access.log"])
def test_findings_count_what_the_events_say(name: str) -> None:
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines()
    config = ParseConfig(format="auto", timezone="UTC", year=2025)
    parser = make_parser(config, reference_time=0.0, sample=lines[:50])
    events = [
        e for e in (parser.parse(t, i) for i, t in enumerate(lines, 1)) if isinstance(e, Event)
    ]
    assert events
    findings = Findings()
    for start in range(0, len(events), 7):  # in batches, as the engine adds them
        findings.add(events[start : start + 7])
    failures, successes, users = _reference(events)
    assert failures, "the sample has failures"
    n = len(failures) + len(users) + len(successes)
    assert findings.failures_by_address.most_common(n) == failures.most_common(n)
    assert findings.successes_by_address.most_common(n) == successes.most_common(n)
    assert findings.targeted_users.most_common(n) == users.most_common(n)
    assert findings.undercount == 0
    times = [e.timestamp for e in events if e.timestamp is not None]
    assert (findings.first_seen, findings.last_seen) == (min(times), max(times))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from([f"v{i}" for i in range(40)]), st.integers(1, 9)),
        max_size=30,
    ),
    st.integers(1, 12),
)
def test_top_counts_are_never_high_and_low_by_at_most_the_undercount(
    batches: list[dict[str, int]], capacity: int
) -> None:
    top = TopCounts(capacity)
    truth: Counter[str] = Counter()
    for batch in batches:
        top.add(batch)
        truth.update(batch)
        assert len(top) < 2 * capacity
    assert top.total == sum(truth.values())
    assert top.undercount <= top.total / (capacity + 1)
    for value, n in truth.items():
        assert n - top.undercount <= top.get(value) <= n
        if n > top.undercount:
            assert top.get(value) > 0, "a value counted more than the undercount is kept"
    if len(truth) <= capacity:
        assert top.undercount == 0
        assert top.most_common(len(truth)) == truth.most_common(len(truth))


def test_a_new_name_per_attempt_does_not_grow_the_lists() -> None:
    """A brute force with a fresh user name each time, around a few heavy hitters."""
    rng = random.Random(17)
    top = TopCounts(1_000)
    truth: Counter[str] = Counter()
    for batch_no in range(200):
        batch: Counter[str] = Counter(f"user{batch_no}-{i}" for i in range(500))
        batch.update(rng.choice(["root", "admin", "oracle"]) for _ in range(100))
        top.add(dict(batch))
        truth.update(batch)
    assert len(truth) > 100_000
    assert len(top) < 2_000
    assert [value for value, _ in top.most_common(3)] == [v for v, _ in truth.most_common(3)]
    for value, n in truth.most_common(3):
        assert n - top.undercount <= top.get(value) <= n
    assert 0 < top.undercount <= top.total / 1_001


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        TopCounts(0)
