"""Tests for the file follower: real files, real renames, truncations and deletions.

Most tests poll (``use_watchdog=False``) on a ``ManualClock`` so that when a
check happens is decided by the test; ``test_watchdog_*`` use the real observer.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.acquire import source_classes
from soc.acquire.base import MAX_LINE_BYTES, AcquireStats, decode_line
from soc.acquire.file import FileSource, FileSourceConfig, rotated_siblings
from soc.clock import ManualClock, SystemClock
from soc.errors import ConfigError, SourceError
from soc.events import Line

POLL = 1.0
WAIT = 5.0  # rotate_wait


class Tail:
    """A FileSource on a manual clock, plus helpers to drive it."""

    def __init__(self, paths: list[Path | str], **options: object) -> None:
        options.setdefault("use_watchdog", False)
        options.setdefault("start_at", "beginning")
        options.setdefault("poll_interval", POLL)
        options.setdefault("rotate_wait", WAIT)
        self.config = FileSourceConfig(paths=[str(p) for p in paths], **options)  # type: ignore[arg-type]
        self.clock = ManualClock(start=1_700_000_000.0)
        self.source = FileSource("files", self.config, self.clock)

    def read(self) -> list[Line]:
        return list(self.source.read())

    def texts(self) -> list[str]:
        return [line.text for line in self.read()]

    def poll(self, seconds: float = POLL) -> list[str]:
        """Let ``seconds`` pass (a poll is due after POLL), then read."""
        self.clock.advance(seconds)
        return self.texts()

    def restart(self, **options: object) -> Tail:
        """A new source in a new "process", resumed from this one's checkpoint."""
        state = json.loads(json.dumps(self.source.checkpoint()))
        self.source.close()
        merged = {
            "use_watchdog": self.config.use_watchdog,
            "start_at": self.config.start_at,
            "poll_interval": self.config.poll_interval,
            "rotate_wait": self.config.rotate_wait,
            "read_history": self.config.read_history,
            **options,
        }
        other = Tail(list(self.config.paths), **merged)
        other.source.restore(state)
        return other

    @property
    def anomalies(self) -> dict[str, int]:
        return dict(self.source.stats.anomalies)


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    """Collects the sources a test makes and closes them after it."""
    made: list[Tail] = []
    yield made
    for tail in made:
        tail.source.close()


def follow(tails: list[Tail], *paths: Path | str, **options: object) -> Tail:
    tail = Tail(list(paths), **options)
    tails.append(tail)
    return tail


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def copytruncate(path: Path, to: Path) -> None:
    shutil.copyfile(path, to)
    with path.open("r+b") as f:
        f.truncate(0)


# --- configuration ------------------------------------------------------------------
def test_registry_names_the_classes() -> None:
    assert source_classes("file") == (FileSourceConfig, FileSource)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"paths": []}, "paths"),
        ({"paths": "a.log"}, "paths"),
        ({"paths": ["ok", ""]}, "paths[1]"),
        ({"start_at": "middle"}, "start_at"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"poll_interval": True}, "poll_interval"),
        ({"rotate_wait": -1}, "rotate_wait"),
        ({"use_watchdog": "yes"}, "use_watchdog"),
        ({"read_history": 1}, "read_history"),
        ({"fingerprint_bytes": 4}, "fingerprint_bytes"),
        ({"fingerprint_bytes": 256.0}, "fingerprint_bytes"),
    ],
)
def test_config_refuses_bad_values_naming_the_key(options: dict[str, object], key: str) -> None:
    values: dict[str, object] = {"paths": ["/var/log/auth.log"], **options}
    with pytest.raises(ConfigError) as info:
        FileSourceConfig(**values)  # type: ignore[arg-type]
    assert info.value.where == key


def test_config_defaults() -> None:
    config = FileSourceConfig(paths=["~/x.log"])
    assert (config.start_at, config.poll_interval, config.use_watchdog) == ("end", 1.0, True)
    assert (config.read_history, config.fingerprint_bytes) == (False, 256)


def test_tilde_is_expanded(
    tails: list[Tail], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "home.log").write_bytes(b"hi\n")
    tail = follow(tails, "~/home.log")
    [line] = tail.read()
    assert (line.text, line.stream) == ("hi", str(tmp_path / "home.log"))


# --- lines --------------------------------------------------------------------------
def test_lines_carry_source_stream_number_position_and_time(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"one\ntwo\n")
    tail = follow(tails, log)
    lines = tail.read()
    assert [(x.text, x.source, x.stream, x.line_no, x.position) for x in lines] == [
        ("one", "files", str(log), 1, 4),
        ("two", "files", str(log), 2, 8),
    ]
    assert all(x.received == tail.clock.now() for x in lines)
    assert tail.source.stats.lines == 2
    assert tail.source.stats.bytes == 8
    assert tail.source.exhausted is False


def test_partial_line_is_held_until_its_newline(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a\nhalf")
    tail = follow(tails, log)
    assert tail.texts() == ["a"]
    assert tail.texts() == []
    append(log, b"-way")
    assert tail.poll() == []  # still no newline: never yielded early
    append(log, b" done\nb\n")
    lines = tail.read()
    assert [(x.text, x.line_no, x.position) for x in lines] == [
        ("half-way done", 2, 16),
        ("b", 3, 18),
    ]


def test_crlf_lines(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "win.log"
    log.write_bytes(b"one\r\ntwo\r\n\r\nthree\r")
    tail = follow(tails, log)
    assert [(x.text, x.position) for x in tail.read()] == [("one", 5), ("two", 10), ("", 12)]
    append(log, b"\n")
    assert tail.texts() == ["three"]


def test_invalid_utf8_is_replaced_and_counted(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "bin.log"
    log.write_bytes(b"ok \xc3\xa9\nbad \xff\xfe end\nfine\n")
    tail = follow(tails, log)
    assert tail.texts() == ["ok é", "bad \ufffd\ufffd end", "fine"]
    assert tail.anomalies == {"invalid_utf8": 1}


def test_70k_line_is_truncated_counted_and_the_next_line_is_intact(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "long.log"
    long = b"L" * (70 * 1024)
    log.write_bytes(b"before\n" + long + b"\nafter\n")
    tail = follow(tails, log)
    lines = tail.read()
    assert [len(x.text) for x in lines] == [6, MAX_LINE_BYTES, 5]
    assert lines[1].text == "L" * MAX_LINE_BYTES
    assert [(x.text, x.line_no, x.position) for x in (lines[0], lines[2])] == [
        ("before", 1, 7),
        ("after", 3, 7 + len(long) + 1 + 6),
    ]
    assert tail.anomalies == {"truncated": 1}


def test_huge_line_arriving_in_pieces_uses_bounded_memory(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "huge.log"
    log.write_bytes(b"start\n")
    tail = follow(tails, log)
    assert tail.texts() == ["start"]
    piece = b"\xe2\x82\xac" * (1 << 20)  # 3 MiB of euro signs, no newline
    tracemalloc.start()
    try:
        for _ in range(10):  # a 30 MiB line
            append(log, piece)
            assert tail.poll() == []
        append(log, b"\nnext\n")
        lines = tail.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20)
    assert [x.line_no for x in lines] == [2, 3]
    # Cut on a character boundary: 21845 whole euro signs, no replacement character.
    assert lines[0].text == "€" * (MAX_LINE_BYTES // 3)
    assert lines[0].position == 6 + 10 * len(piece) + 1
    assert lines[1].text == "next"
    assert tail.anomalies == {"truncated": 1}


def test_decode_line_cuts_on_a_character_boundary() -> None:
    stats = AcquireStats()
    raw = b"a" * (MAX_LINE_BYTES - 1) + "é".encode() + b"tail"
    text = decode_line(raw, stats)
    assert text == "a" * (MAX_LINE_BYTES - 1)
    assert dict(stats.anomalies) == {"truncated": 1}
    exact = b"b" * (MAX_LINE_BYTES - 2) + "€".encode()  # ends exactly at the limit + 1
    assert decode_line(exact, stats) == "b" * (MAX_LINE_BYTES - 2)
    assert decode_line(b"c" * MAX_LINE_BYTES + b"\r", stats) == "c" * MAX_LINE_BYTES
    assert dict(stats.anomalies) == {"truncated": 2}


# --- where to start -----------------------------------------------------------------
def test_start_at_end_skips_existing_lines_but_not_a_partial_one(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"old1\nold2\npart")
    tail = follow(tails, log, start_at="end")
    assert tail.read() == []
    append(log, b"ial\nnew\n")
    lines = tail.read()
    assert [(x.text, x.line_no, x.position) for x in lines] == [
        ("partial", 3, 18),
        ("new", 4, 22),
    ]


def test_start_at_beginning_reads_existing_lines(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"old1\nold2\n")
    tail = follow(tails, log, start_at="beginning")
    assert tail.texts() == ["old1", "old2"]


def test_a_missing_file_is_counted_and_read_from_its_start_when_it_appears(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "late.log"
    tail = follow(tails, log, start_at="end")
    assert tail.read() == []
    assert tail.anomalies == {"file_missing": 1}
    log.write_bytes(b"first\nsecond\n")
    assert tail.poll() == ["first", "second"]


def test_glob_follows_new_files_from_their_start_and_ignores_rotated_ones(
    tails: list[Tail], tmp_path: Path
) -> None:
    (tmp_path / "a.log").write_bytes(b"a-old\n")
    (tmp_path / "a.log.1").write_bytes(b"rotated\n")
    _write_gz(tmp_path / "a.log.2.gz", b"compressed\n")
    (tmp_path / "a.log-20240101").write_bytes(b"dated\n")
    tail = follow(tails, tmp_path / "*.log*", start_at="end")
    assert tail.read() == []
    append(tmp_path / "a.log", b"a-new\n")
    assert tail.texts() == ["a-new"]
    (tmp_path / "b.log.1").write_bytes(b"b rotated\n")
    (tmp_path / "b.log").write_bytes(b"b1\nb2\n")
    assert tail.texts() == []  # no poll yet
    polled = [(Path(x.stream).name, x.text) for x in _poll_lines(tail)]
    assert polled == [("b.log", "b1"), ("b.log", "b2")]


def _poll_lines(tail: Tail) -> list[Line]:
    tail.clock.advance(POLL)
    return tail.read()


def test_a_directory_or_fifo_is_skipped_without_blocking(tails: list[Tail], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    (tmp_path / "dir.log").mkdir()
    tail = follow(tails, fifo, tmp_path / "dir.log")
    assert tail.read() == []
    assert tail.poll() == []
    assert tail.anomalies == {"not_regular_file": 2}


# --- history ------------------------------------------------------------------------
def _write_gz(path: Path, data: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(data)


def test_read_history_reads_rotated_siblings_oldest_first(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    _write_gz(tmp_path / "auth.log.3.gz", b"g3-1\ng3-2\n")
    _write_gz(tmp_path / "auth.log.2.gz", b"g2-1\ng2-partial")
    (tmp_path / "auth.log.1").write_bytes(b"p1-1\n")
    log.write_bytes(b"live-1\n")
    (tmp_path / "other.log.1").write_bytes(b"not ours\n")
    tail = follow(tails, log, read_history=True)
    lines = tail.read()
    assert [(Path(x.stream).name, x.line_no, x.text) for x in lines] == [
        ("auth.log.3.gz", 1, "g3-1"),
        ("auth.log.3.gz", 2, "g3-2"),
        ("auth.log.2.gz", 1, "g2-1"),
        ("auth.log.2.gz", 2, "g2-partial"),
        ("auth.log.1", 1, "p1-1"),
        ("auth.log", 1, "live-1"),
    ]
    append(log, b"live-2\n")
    assert tail.texts() == ["live-2"]


def test_history_is_not_read_with_start_at_end(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    (tmp_path / "auth.log.1").write_bytes(b"old\n")
    log.write_bytes(b"live\n")
    tail = follow(tails, log, read_history=True, start_at="end")
    assert tail.read() == []


def test_rotated_siblings_order(tmp_path: Path) -> None:
    base = tmp_path / "x.log"
    for name in [
        "x.log.1",
        "x.log.2.gz",
        "x.log.10.gz",
        "x.log.2",  # compression in progress: the plain one wins
        "x.log-20240102",
        "x.log-20240101.gz",
        "x.logger",
        "x.log.bak",
    ]:
        (tmp_path / name).write_bytes(b"")
    names = [Path(p).name for p in rotated_siblings(str(base))]
    assert names == [
        "x.log.10.gz",
        "x.log.2",
        "x.log.1",
        "x.log-20240101.gz",
        "x.log-20240102",
    ]


def test_history_is_resumed_after_a_restart(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    _write_gz(tmp_path / "auth.log.2.gz", b"a\nb\nc\n")
    (tmp_path / "auth.log.1").write_bytes(b"d\ne\n")
    log.write_bytes(b"f\n")
    tail = follow(tails, log, read_history=True)
    first = list(itertools.islice(tail.source.read(), 2))
    assert [x.text for x in first] == ["a", "b"]
    again = tail.restart()
    tails.append(again)
    assert again.texts() == ["c", "d", "e", "f"]


# --- rotation -----------------------------------------------------------------------
def test_rename_rotation_finishes_the_old_file_through_its_descriptor(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    writer = log.open("ab", buffering=0)
    writer.write(b"1\n2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["1", "2"]
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"new-1\n")
    # The daemon writes to the old file until it reopens its log; a partial last line.
    writer.write(b"3\n4-partial")
    writer.close()
    lines = tail.read()  # no check yet: still reading the old file only
    assert [x.text for x in lines] == ["3"]
    lines = _poll_lines(tail)
    assert [(x.text, x.line_no) for x in lines] == [("new-1", 1)]
    assert tail.anomalies == {"rotation": 1}
    # The old file's partial last line comes out as a line once the old file is done.
    tail.clock.advance(WAIT)
    lines = tail.read()
    assert [(x.text, x.line_no, x.stream) for x in lines] == [("4-partial", 4, str(log))]
    assert len(tail.source.checkpoint()["files"]) == 1  # type: ignore[index]


def test_copytruncate_finishes_the_copy_from_our_offset_first(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(1, 6)))
    tail = follow(tails, log)
    # The reader is behind: it has consumed 3 of the 5 lines when logrotate runs.
    got = list(itertools.islice(tail.source.read(), 3))
    copytruncate(log, tmp_path / "app.log.1")
    append(log, b"after 1\nafter 2\n")
    lines = _poll_lines(tail)
    assert [(x.text, x.line_no) for x in got + lines] == [
        ("line 1", 1),
        ("line 2", 2),
        ("line 3", 3),
        ("line 4", 4),
        ("line 5", 5),
        ("after 1", 1),
        ("after 2", 2),
    ]
    assert tail.anomalies == {"truncation": 1}


def test_copytruncate_rewritten_past_our_offset_is_detected_by_fingerprint(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old 1\nold 2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["old 1", "old 2"]
    append(log, b"old 3\n")
    copytruncate(log, tmp_path / "app.log.1")
    # Refilled beyond our offset before we look: a size check alone would read
    # the new file from the middle.
    append(log, b"".join(b"new %d\n" % i for i in range(1, 20)))
    lines = tail.read()  # no poll: found by the fingerprint check after the read
    assert [x.text for x in lines] == ["old 3"] + [f"new {i}" for i in range(1, 20)]
    assert tail.anomalies == {"truncation": 1}


def test_truncation_without_a_copy_reads_the_file_again_from_zero(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"aaaa\nbbbb\n")
    tail = follow(tails, log)
    assert tail.texts() == ["aaaa", "bbbb"]
    with log.open("r+b") as f:
        f.truncate(0)
    assert tail.read() == []
    log.write_bytes(b"c\n")
    assert [(x.text, x.line_no) for x in tail.read()] == [("c", 1)]
    assert tail.anomalies == {"truncation": 1}


def test_delete_and_recreate_drains_the_old_descriptor_first(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    writer = log.open("ab", buffering=0)
    writer.write(b"1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["1"]
    log.unlink()
    writer.write(b"2\n")
    writer.close()
    log.write_bytes(b"new\n")
    assert tail.poll() == ["2", "new"]
    assert tail.anomalies == {"recreated": 1}


def test_a_deleted_file_is_released_after_rotate_wait(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "gone.log"
    log.write_bytes(b"x\n")
    tail = follow(tails, log)
    assert tail.texts() == ["x"]
    log.unlink()
    assert tail.poll() == []
    assert _open_deleted(log) == 1
    tail.clock.advance(WAIT)
    assert tail.texts() == []
    assert _open_deleted(log) == 0
    log.write_bytes(b"back\n")
    assert tail.poll() == ["back"]


def _open_deleted(path: Path) -> int:
    """How many of our descriptors point at ``path`` after it was deleted."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target == f"{path} (deleted)":
            count += 1
    return count


def test_generations_rotated_away_between_two_checks_are_read_whole(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"a1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1"]
    append(log, b"a2\n")
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"b1\nb2\n")
    (tmp_path / "auth.log.1").rename(tmp_path / "auth.log.2")
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"c1\n")
    lines = _poll_lines(tail)
    assert [(x.text, x.line_no) for x in lines] == [("a2", 2), ("b1", 1), ("b2", 2), ("c1", 1)]


def test_polling_only_sees_rotation_at_the_next_poll(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "nfs.log"
    log.write_bytes(b"1\n")
    tail = follow(tails, log, use_watchdog=False, poll_interval=2.0)
    assert tail.texts() == ["1"]
    log.rename(tmp_path / "nfs.log.1")
    log.write_bytes(b"2\n")
    assert tail.texts() == []
    tail.clock.advance(1.0)
    assert tail.texts() == []
    tail.clock.advance(1.0)
    assert tail.texts() == ["2"]


def test_a_new_read_ends_the_previous_iterator(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"1\n2\n3\n")
    tail = follow(tails, log)
    first = tail.source.read()
    assert next(first).text == "1"
    assert tail.texts() == ["2", "3"]
    assert list(first) == []


def test_many_files_are_read_round_robin(tails: list[Tail], tmp_path: Path) -> None:
    big = b"".join(b"%07d\n" % i for i in range(200_000))  # 1.6 MB: two chunks each
    (tmp_path / "a.log").write_bytes(big)
    (tmp_path / "b.log").write_bytes(big)
    tail = follow(tails, tmp_path / "*.log")
    streams = [Path(x.stream).name for x in itertools.islice(tail.source.read(), 200_000)]
    assert "b.log" in streams  # b did not wait for all of a
    rest = tail.read()
    assert len(streams) + len(rest) == 400_000


# --- watchdog -----------------------------------------------------------------------
def _read_until(tail: Tail, want: int, timeout: float = 5.0) -> list[Line]:
    got: list[Line] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(tail.read())
        time.sleep(0.01)
    return got


def test_watchdog_notices_rotation_and_new_files_without_a_poll(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"1\n")
    tail = follow(tails, log, tmp_path / "*.json", use_watchdog=True, poll_interval=1000.0)
    assert tail.texts() == ["1"]
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"2\n")
    (tmp_path / "new.json").write_bytes(b"{}\n")
    # The manual clock never moves: only a notification can trigger the check.
    got = _read_until(tail, 2)
    assert sorted((Path(x.stream).name, x.text) for x in got) == [
        ("auth.log", "2"),
        ("new.json", "{}"),
    ]
    assert tail.anomalies == {"rotation": 1}


def test_close_stops_the_observer_thread(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"x\n")
    before = set(threading.enumerate())
    source = FileSource("f", FileSourceConfig(paths=[str(log)]), SystemClock())
    assert [x.text for x in source.read()] == []  # start_at end
    started = [t for t in threading.enumerate() if t not in before]
    assert started, "watchdog should run an observer thread"
    source.close()
    assert all(not t.is_alive() for t in started)
    assert list(source.read()) == []


# --- checkpoints --------------------------------------------------------------------
def test_checkpoint_names_identity_fingerprint_and_offset(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"one\ntwo\nthr")
    tail = follow(tails, log, fingerprint_bytes=16)
    assert tail.source.checkpoint() is None  # nothing read yet
    reader = tail.source.read()
    next(reader)
    state = tail.source.checkpoint()
    assert state is not None
    st = log.stat()
    [entry] = state["files"]
    assert entry["path"] == str(log)
    assert (entry["device"], entry["inode"]) == (st.st_dev, st.st_ino)
    assert (entry["offset"], entry["line_no"]) == (4, 1)  # just after "one", not "two"
    assert entry["fingerprint_bytes"] == 11
    assert len(entry["fingerprint"]) == 64
    json.dumps(state)


def test_restore_resumes_after_the_last_line_yielded(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"".join(b"%d\n" % i for i in range(10)))
    tail = follow(tails, log)
    got = [x.text for x in itertools.islice(tail.source.read(), 4)]
    again = tail.restart()
    tails.append(again)
    append(log, b"10\n")
    lines = again.read()
    assert got + [x.text for x in lines] == [str(i) for i in range(11)]
    assert lines[0].line_no == 5


def test_restore_overrides_start_at_end(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"a\n")
    tail = follow(tails, log, start_at="end")
    assert tail.read() == []
    append(log, b"b\n")
    assert tail.texts() == ["b"]
    state = tail.source.checkpoint()
    tail.source.close()
    append(log, b"c\n")  # written while we were down
    again = follow(tails, log, start_at="end")
    assert state is not None
    again.source.restore(state)
    assert again.texts() == ["c"]


def test_restore_after_rename_rotation_while_down(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"1\n2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["1", "2"]
    state = tail.source.checkpoint()
    tail.source.close()
    append(log, b"3\n")
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"4\n")
    again = follow(tails, log)
    assert state is not None
    again.source.restore(state)
    assert [(x.text, x.line_no) for x in again.read()] == [("3", 3), ("4", 1)]


def test_restore_after_copytruncate_while_down(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"1\n2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["1", "2"]
    append(log, b"3\n")
    again = tail.restart()
    tails.append(again)
    copytruncate(log, tmp_path / "app.log.1")
    append(log, b"4\n5\n6\n")
    assert again.texts() == ["3", "4", "5", "6"]


def test_restore_from_a_copy_that_was_rotated_and_compressed_while_down(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"1\n2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["1", "2"]
    state = tail.source.checkpoint()
    tail.source.close()
    append(log, b"3\n")
    _write_gz(tmp_path / "auth.log.1.gz", log.read_bytes())
    log.unlink()
    log.write_bytes(b"4\n")
    again = follow(tails, log)
    assert state is not None
    again.source.restore(state)
    assert again.texts() == ["3", "4"]


def test_restore_reads_generations_missed_while_down(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"a1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1"]
    state = tail.source.checkpoint()
    tail.source.close()
    # Two rotations while we were down: generation b was never opened by us.
    append(log, b"a2\n")
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"b1\nb2\n")
    (tmp_path / "auth.log.1").rename(tmp_path / "auth.log.2")
    log.rename(tmp_path / "auth.log.1")
    log.write_bytes(b"c1\n")
    again = follow(tails, log)
    assert state is not None
    again.source.restore(state)
    assert [(x.text, x.line_no) for x in again.read()] == [
        ("a2", 2),
        ("b1", 1),
        ("b2", 2),
        ("c1", 1),
    ]


def test_restore_with_a_vanished_file_counts_it_and_reads_the_new_one(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"old\n")
    tail = follow(tails, log)
    assert tail.texts() == ["old"]
    state = tail.source.checkpoint()
    tail.source.close()
    log.unlink()
    log.write_bytes(b"brand new\n")
    again = follow(tails, log)
    assert state is not None
    again.source.restore(state)
    assert again.texts() == ["brand new"]
    # (The new file may reuse the old inode number: then it also counts as rewritten.)
    assert again.anomalies["file_missing"] == 1


def test_new_glob_match_while_down_is_read_from_the_start(
    tails: list[Tail], tmp_path: Path
) -> None:
    (tmp_path / "a.log").write_bytes(b"a\n")
    tail = follow(tails, tmp_path / "*.log", start_at="end")
    assert tail.read() == []
    state = tail.source.checkpoint()
    tail.source.close()
    (tmp_path / "b.log").write_bytes(b"b1\n")
    again = follow(tails, tmp_path / "*.log", start_at="end")
    assert state is not None
    again.source.restore(state)
    assert again.texts() == ["b1"]


def test_restore_refuses_a_malformed_checkpoint(tails: list[Tail], tmp_path: Path) -> None:
    tail = follow(tails, tmp_path / "x.log")
    with pytest.raises(SourceError):
        tail.source.restore({"version": 99, "files": []})
    with pytest.raises(SourceError):
        tail.source.restore({"version": 1, "patterns": [], "files": [{"path": 3}]})


def test_restore_finds_the_copy_of_a_file_not_read_yet_at_the_checkpoint(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tail = follow(tails, log)
    assert tail.read() == []
    append(log, b"g1\ng2\n")  # written, not read yet, when the checkpoint is taken
    state = tail.source.checkpoint()
    tail.source.close()
    copytruncate(log, tmp_path / "app.log.1")
    append(log, b"h1\n")
    again = follow(tails, log)
    assert state is not None
    again.source.restore(state)
    assert [(x.text, x.line_no) for x in again.read()] == [("g1", 1), ("g2", 2), ("h1", 1)]


def test_copytruncate_then_rename_before_we_look(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    writer = log.open("ab", buffering=0)
    writer.write(b"a1\na2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1", "a2"]
    writer.write(b"a3\n")
    copytruncate(log, tmp_path / "app.log.1")
    writer.write(b"b1\nb2\n")
    # The next rotation is a rename: the truncated file moves away with b in it.
    (tmp_path / "app.log.1").rename(tmp_path / "app.log.2")
    log.rename(tmp_path / "app.log.1")
    writer.close()
    log.write_bytes(b"c1\n")
    lines = _poll_lines(tail)
    assert [(x.text, x.line_no) for x in lines] == [
        ("a3", 3),
        ("b1", 1),
        ("b2", 2),
        ("c1", 1),
    ]
    assert tail.anomalies == {"rotation": 1, "truncation": 1}


def test_copytruncate_of_lines_not_read_yet_reads_the_copy_whole(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tail = follow(tails, log)
    assert tail.read() == []
    append(log, b"g1\ng2\n")  # never read before logrotate copies and truncates
    copytruncate(log, tmp_path / "app.log.1")
    append(log, b"h1\n")
    lines = _poll_lines(tail)
    assert [(x.text, x.line_no) for x in lines] == [("g1", 1), ("g2", 2), ("h1", 1)]


def test_copytruncate_seen_while_the_copy_is_still_empty_is_read_once(
    tails: list[Tail], tmp_path: Path
) -> None:
    # copytruncate caught between creating the copy and filling it: the empty new
    # sibling is no new generation (it once was read whole as one: 3 lines twice).
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\na2\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1", "a2"]
    append(log, b"a3\n")
    copy = tmp_path / "app.log.1"
    copy.write_bytes(b"")  # the copy exists, nothing copied yet
    assert tail.poll() == ["a3"]
    shutil.copyfile(log, copy)  # now filled ...
    with log.open("r+b") as f:
        f.truncate(0)  # ... and the original truncated
    append(log, b"b1\n")
    assert [(x.text, x.line_no) for x in _poll_lines(tail)] == [("b1", 1)]
    assert tail.poll(WAIT) == []


def test_an_empty_sibling_that_fills_with_other_lines_is_read_at_the_next_rotation(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1"]
    other = tmp_path / "app.log.1"
    other.write_bytes(b"")  # deferred: it may be a copy being made
    assert tail.poll() == []
    append(other, b"x1\n")  # it was not: something else wrote it
    append(log, b"a2\n")
    other.rename(tmp_path / "app.log.2")  # then a plain rename rotation
    log.rename(other)
    log.write_bytes(b"c1\n")
    texts = [x.text for x in _poll_lines(tail)] + tail.poll(WAIT)
    assert sorted(texts) == ["a2", "c1", "x1"]  # each once, none lost


def test_logrotate_copy_without_truncate_is_not_read_twice(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1"]
    append(log, b"a2\n")
    shutil.copyfile(log, tmp_path / "app.log.1")  # logrotate's "copy": a snapshot only
    append(log, b"a3\n")
    assert [x.text for x in _poll_lines(tail)] == ["a2", "a3"]
    assert tail.poll() == []
    # Had it been the copy step of copytruncate, the truncate finds the copy then.
    with log.open("r+b") as f:
        f.truncate(0)
    append(log, b"b1\n")
    assert tail.poll() == ["b1"]


def test_delete_recreate_then_rename_before_we_look(tails: list[Tail], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1"]
    log.unlink()  # we still hold it
    log.write_bytes(b"b1\nb2\n")
    log.rename(tmp_path / "app.log.1")  # b is rotated away before we ever saw it
    log.write_bytes(b"c1\n")
    lines = _poll_lines(tail)
    assert [(x.text, x.line_no) for x in lines] == [("b1", 1), ("b2", 2), ("c1", 1)]


def test_restore_when_no_file_was_open_still_finds_files_rotated_while_down(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\n")
    tail = follow(tails, log)
    assert tail.texts() == ["a1"]
    log.unlink()
    tail.clock.advance(WAIT)
    assert tail.poll() == []  # deleted and quiet: released
    state = tail.source.checkpoint()
    assert state is not None and state["files"] == []
    tail.source.close()
    log.write_bytes(b"b1\n")
    log.rename(tmp_path / "app.log.1")
    log.write_bytes(b"c1\n")
    again = follow(tails, log)
    again.source.restore(state)
    assert again.texts() == ["b1", "c1"]


def test_restore_of_an_empty_file_filled_and_copytruncated_while_down(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tail = follow(tails, log)
    assert tail.read() == []
    state = tail.source.checkpoint()  # knows nothing of the content to come
    tail.source.close()
    append(log, b"g1\n")
    copytruncate(log, tmp_path / "app.log.1")
    append(log, b"h1\n")
    again = follow(tails, log)
    assert state is not None
    again.source.restore(state)
    assert again.texts() == ["g1", "h1"]


def test_deleting_a_rotated_file_by_hand_does_not_make_older_ones_new(
    tails: list[Tail], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    (tmp_path / "app.log.2").write_bytes(b"older\n")
    (tmp_path / "app.log.1").write_bytes(b"old\n")
    log.write_bytes(b"live\n")
    tail = follow(tails, log)
    assert tail.texts() == ["live"]
    (tmp_path / "app.log.1").unlink()
    assert tail.poll() == []
    append(log, b"more\n")
    assert tail.poll() == ["more"]
