"""Tests for the replay source: real plain and gzip files, globs, checkpoints, pacing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.acquire import source_classes
from soc.acquire.base import MAX_LINE_BYTES, AcquireStats, decode_line
from soc.acquire.replay import ReplaySource, ReplaySourceConfig
from soc.clock import ManualClock
from soc.errors import ConfigError, SourceError
from soc.events import Line


def make(paths: list[str], **kwargs: object) -> ReplaySource:
    return ReplaySource("r", ReplaySourceConfig(paths=paths, **kwargs), ManualClock())  # type: ignore[arg-type]


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def drain(source: ReplaySource) -> list[Line]:
    out: list[Line] = []
    while not source.exhausted:
        out.extend(source.read())
    return out


def test_registry_names_the_classes() -> None:
    config_class, source_class = source_classes("replay")
    assert config_class is ReplaySourceConfig
    assert source_class is ReplaySource


def test_plain_gzip_and_glob_in_given_order(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "auth.log.2.gz", "wb") as f:
        f.write(b"g1\ng2\n")
    (tmp_path / "auth.log.1").write_bytes(b"p1\n")
    (tmp_path / "b.log").write_bytes(b"b1\n")
    (tmp_path / "a.log").write_bytes(b"a1\na2")  # no final newline
    source = make(
        [str(tmp_path / "auth.log.2.gz"), str(tmp_path / "auth.log.1"), str(tmp_path / "?.log")]
    )
    assert source.files == [
        str(tmp_path / "auth.log.2.gz"),
        str(tmp_path / "auth.log.1"),
        str(tmp_path / "a.log"),
        str(tmp_path / "b.log"),
    ]
    lines = drain(source)
    assert texts(lines) == ["g1", "g2", "p1", "a1", "a2", "b1"]
    assert [(Path(x.stream).name, x.line_no) for x in lines] == [
        ("auth.log.2.gz", 1),
        ("auth.log.2.gz", 2),
        ("auth.log.1", 1),
        ("a.log", 1),
        ("a.log", 2),
        ("b.log", 1),
    ]
    assert all(x.source == "r" for x in lines)
    assert source.stats.lines == 6
    assert source.exhausted
    assert list(source.read()) == []


def test_gzip_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "rotated.1"
    path.write_bytes(gzip.compress(b"inside gzip\n"))
    assert texts(drain(make([str(path)]))) == ["inside gzip"]


def test_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"one\n")
    assert texts(drain(make([str(path), str(tmp_path / "*.log")]))) == ["one"]


def test_decoding_anomalies_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    long_line = b"x" * (MAX_LINE_BYTES + 500)
    path.write_bytes(b"crlf\r\n\nbad \xff byte\n" + long_line + b"\nafter\n")
    source = make([str(path)])
    lines = drain(source)
    assert texts(lines)[:3] == ["crlf", "", "bad \ufffd byte"]
    assert len(lines[3].text) == MAX_LINE_BYTES
    assert lines[4].text == "after"
    assert source.stats.anomalies["invalid_utf8"] == 1
    assert source.stats.anomalies["truncated"] == 1
    # Positions are byte offsets just after each line, the long one included.
    assert lines[3].position == 6 + 1 + 11 + len(long_line) + 1
    assert lines[4].position == path.stat().st_size


def test_max_batch_gives_control_back(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {i}\n" for i in range(120)))
    source = make([str(path)], max_batch=50)
    sizes = []
    while not source.exhausted:
        sizes.append(len(list(source.read())))
    assert sizes == [50, 50, 20]


@pytest.mark.parametrize("compress", [False, True])
def test_checkpoint_and_restore_resume_after_last_yielded(tmp_path: Path, compress: bool) -> None:
    first = tmp_path / "1.log"
    second = tmp_path / "2.log"
    body1 = "".join(f"first {i}\n" for i in range(10)).encode()
    body2 = "".join(f"second {i}\n" for i in range(5)).encode()
    if compress:
        first = first.with_suffix(".gz")
        first.write_bytes(gzip.compress(body1))
    else:
        first.write_bytes(body1)
    second.write_bytes(body2)
    paths = [str(first), str(second)]
    source = make(paths)
    got: list[Line] = []
    for line in source.read():  # the engine may stop consuming mid-batch
        got.append(line)
        if len(got) == 7:
            break
    state = source.checkpoint()
    assert state is not None
    assert state["path"] == str(first) and state["line_no"] == 7
    if compress:
        assert "offset" not in state
    else:
        assert state["offset"] == len("".join(f"first {i}\n" for i in range(7)))
    source.close()

    resumed = make(paths)
    resumed.restore(json.loads(json.dumps(state)))
    rest = drain(resumed)
    assert texts(got) + texts(rest) == [f"first {i}" for i in range(10)] + [
        f"second {i}" for i in range(5)
    ]
    assert rest[0].line_no == 8
    end_state = resumed.checkpoint()
    assert end_state == {"path": str(second), "line_no": 5, "offset": len(body2)}

    finished = make(paths)
    finished.restore(end_state)
    assert list(finished.read()) == []
    assert finished.exhausted


def test_checkpoint_before_any_line_is_the_start(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"a\n")
    assert make([str(path)]).checkpoint() == {"path": str(path), "line_no": 0, "offset": 0}


def test_restore_refuses_bad_state(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"a\nb\n")
    source = make([str(path)])
    with pytest.raises(SourceError, match="not in this replay"):
        source.restore({"path": str(tmp_path / "other.log"), "line_no": 1, "offset": 2})
    with pytest.raises(SourceError, match="past the end"):
        source.restore({"path": str(path), "line_no": 1, "offset": 999})
    with pytest.raises(SourceError, match="bad offset"):
        source.restore({"path": str(path), "line_no": 1})
    with pytest.raises(SourceError, match="bad line_no"):
        source.restore({"path": str(path), "line_no": "1", "offset": 2})


def test_missing_files_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        make([str(tmp_path / "nope.log")])
    with pytest.raises(SourceError, match="glob matches no file"):
        make([str(tmp_path / "*.nothing")])


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"paths": []}, "paths"),
        ({"paths": "x.log"}, "paths"),
        ({"paths": [""]}, "paths"),
        ({"paths": ["x"], "speed": -1}, "speed"),
        ({"paths": ["x"], "speed": float("nan")}, "speed"),
        ({"paths": ["x"], "speed": True}, "speed"),
        ({"paths": ["x"], "max_batch": 0}, "max_batch"),
        ({"paths": ["x"], "max_batch": 1.5}, "max_batch"),
    ],
)
def test_config_validation_names_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ReplaySourceConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.where == key


def test_corrupt_gzip_is_counted_and_the_replay_goes_on(tmp_path: Path) -> None:
    data = gzip.compress("".join(f"z{i}\n" for i in range(50_000)).encode())
    broken = tmp_path / "1.gz"
    broken.write_bytes(data[: len(data) // 2])  # cut mid-stream
    good = tmp_path / "2.log"
    good.write_bytes(b"still here\n")
    source = make([str(broken), str(good)])
    lines = drain(source)
    assert source.stats.anomalies["read_error"] == 1
    assert source.last_error is not None and "1.gz" in source.last_error
    assert lines[-1].text == "still here"


def timestamp_of(text: str) -> float | None:
    """Test extractor: a leading number is the event time."""
    head = text.split(" ", 1)[0]
    try:
        return float(head)
    except ValueError:
        return None


def test_speed_paces_on_event_time_without_sleeping(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    # speed 4: one event second is 0.25 wall seconds (exact in binary floating point).
    path.write_text("1000 a\n1001 b\nno timestamp c\n1004 d\n1002 e\n1008 f\n")
    clock = ManualClock(start=5_000.0)
    source = ReplaySource(
        "r", ReplaySourceConfig(paths=[str(path)], speed=4.0), clock, timestamp_of=timestamp_of
    )

    def step(advance: float) -> list[str]:
        clock.advance(advance)
        before = clock.monotonic()
        out = texts(list(source.read()))
        assert clock.monotonic() == before  # read() never sleeps
        return out

    assert step(0) == ["1000 a"]  # the first timestamped line anchors the pacing
    assert step(0.125) == []
    assert step(0.125) == ["1001 b", "no timestamp c"]  # c inherits b's time
    assert step(0.5) == []
    assert step(0.25) == ["1004 d", "1002 e"]  # e went back in time: due at once
    assert not source.exhausted
    assert step(0.999) == []
    assert step(0.001) == ["1008 f"]
    assert source.exhausted


def test_speed_pacing_checkpoint_excludes_the_held_line(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("10 a\n20 b\n")
    clock = ManualClock()
    source = ReplaySource(
        "r", ReplaySourceConfig(paths=[str(path)], speed=1.0), clock, timestamp_of=timestamp_of
    )
    assert texts(list(source.read())) == ["10 a"]
    assert source.checkpoint() == {"path": str(path), "line_no": 1, "offset": 5}
    resumed = ReplaySource(
        "r", ReplaySourceConfig(paths=[str(path)], speed=1.0), clock, timestamp_of=timestamp_of
    )
    resumed.restore({"path": str(path), "line_no": 1, "offset": 5})
    # After a restore the pacing anchors again on the first line read.
    assert texts(list(resumed.read())) == ["20 b"]


def test_paced_lines_without_any_timestamp_come_at_once(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("a\nb\nc\n")
    source = ReplaySource(
        "r",
        ReplaySourceConfig(paths=[str(path)], speed=2.0),
        ManualClock(),
        timestamp_of=timestamp_of,
    )
    assert texts(list(source.read())) == ["a", "b", "c"]
    assert source.exhausted


def test_full_speed_does_not_extract_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("1 a\n99999 b\n")
    calls: list[str] = []

    def spy(text: str) -> float | None:
        calls.append(text)
        return timestamp_of(text)

    source = ReplaySource(
        "r", ReplaySourceConfig(paths=[str(path)]), ManualClock(), timestamp_of=spy
    )
    assert texts(list(source.read())) == ["1 a", "99999 b"]
    assert calls == []


def _expected(body: bytes, limit: int) -> list[tuple[str, int, int]]:
    """(text, line number, offset after) of each line, read line by line on its own."""
    out = []
    offset = 0
    parts = body.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    for number, raw in enumerate(parts, 1):
        offset = min(offset + len(raw) + 1, len(body))
        stats = AcquireStats()
        cut = raw[: limit + 1]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("soc.acquire.base.MAX_LINE_BYTES", limit)
            out.append((decode_line(cut, stats), number, offset))
    return out


_LINE_BYTES = st.lists(
    st.sampled_from([b"a", b"Z", b" ", b"\r", b"\xc3\xa9", b"\xff", b"\xe2\x82\xac", b"\n"]),
    max_size=120,
).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(body=_LINE_BYTES, chunk=st.integers(1, 17), batch=st.integers(1, 9), stop=st.integers(0, 40))
def test_lines_cut_from_chunks_are_the_lines_of_the_file(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, chunk: int, batch: int, stop: int
) -> None:
    """Whatever the chunk size, CRs, non-ASCII or overlong lines: each line once, its
    text, number and end offset as reading it alone gives them; and a checkpoint
    taken anywhere resumes just after the last line taken."""
    limit = 10
    path = tmp_path_factory.mktemp("chunks") / "x.log"
    path.write_bytes(body)
    expected = _expected(body, limit)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("soc.acquire.replay._CHUNK_BYTES", chunk)
        patch.setattr("soc.acquire.replay.MAX_LINE_BYTES", limit)
        patch.setattr("soc.acquire.base.MAX_LINE_BYTES", limit)
        source = make([str(path)], max_batch=batch)
        got = [(x.text, x.line_no, x.position) for x in drain(source)]
        assert got == expected
        assert source.stats.lines == len(expected)
        taken: list[Line] = []
        first = make([str(path)], max_batch=batch)
        while not first.exhausted and len(taken) < stop:
            for line in first.read():
                taken.append(line)
                if len(taken) >= stop:
                    break
        state = first.checkpoint()
        resumed = make([str(path)], max_batch=batch)
        resumed.restore(state)  # type: ignore[arg-type]
        rest = [(x.text, x.line_no, x.position) for x in drain(resumed)]
    assert [(x.text, x.line_no, x.position) for x in taken] + rest == expected


@settings(max_examples=150, deadline=None)
@given(
    bodies=st.lists(_LINE_BYTES, min_size=1, max_size=3),
    chunk=st.integers(1, 17),
    batch=st.integers(1, 9),
    size=st.integers(1, 7),
    stop=st.integers(0, 12),
)
def test_batches_are_the_lines_of_read_and_checkpoint_after_their_last_line(
    tmp_path_factory: pytest.TempPathFactory,
    bodies: list[bytes],
    chunk: int,
    batch: int,
    size: int,
    stop: int,
) -> None:
    """``read_batches`` (what the engine reads) gives ``read()``'s lines, across chunks
    and files, in lists of ``size`` (a shorter one only where a read call ends), with
    the same counts; a checkpoint taken after any list resumes just after its last line."""
    folder = tmp_path_factory.mktemp("batches")
    paths = []
    for i, body in enumerate(bodies):
        path = folder / f"{i}.log"
        path.write_bytes(body)
        paths.append(str(path))

    def seen(lines: list[Line]) -> list[tuple[str, str, int, int | None]]:
        return [(x.text, x.stream, x.line_no, x.position) for x in lines]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("soc.acquire.replay._CHUNK_BYTES", chunk)
        one_by_one = make(paths, max_batch=batch)
        expected = seen(drain(one_by_one))
        source = make(paths, max_batch=batch)
        got: list[Line] = []
        while not source.exhausted:
            lists = list(source.read_batches(size))
            assert all(len(x) == size for x in lists[:-1])
            assert all(0 < len(x) <= size for x in lists)
            got.extend(line for x in lists for line in x)
        assert seen(got) == expected
        assert source.stats.as_dict() == one_by_one.stats.as_dict()
        first = make(paths, max_batch=batch)
        taken: list[Line] = []
        for _ in range(stop):
            if first.exhausted:
                break
            for x in first.read_batches(size):
                taken.extend(x)
                break  # the checkpoint is taken while suspended after this list
        state = first.checkpoint()
        resumed = make(paths, max_batch=batch)
        resumed.restore(state)  # type: ignore[arg-type]
        rest = seen(drain(resumed))
    assert seen(taken) + rest == expected
