"""Tests for the stdin source: real pipes, a real file, and a real producer | consumer pair."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from soc.acquire import source_classes
from soc.acquire.base import MAX_LINE_BYTES
from soc.acquire.stdin import StdinSource, StdinSourceConfig
from soc.clock import ManualClock
from soc.errors import ConfigError, SourceError
from soc.events import Line

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pipe() -> Iterator[tuple[IO[bytes], int]]:
    """A pipe: the read end as a binary stream, the write end as a descriptor."""
    r, w = os.pipe()
    reader = open(r, "rb", buffering=0)  # noqa: SIM115
    yield reader, w
    reader.close()
    with contextlib.suppress(OSError):  # the test closed it
        os.close(w)


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def exhausted(source: StdinSource) -> bool:
    """The property, read through a call so that the type checker does not pin it."""
    return source.exhausted


def test_registry_names_the_classes() -> None:
    assert source_classes("stdin") == (StdinSourceConfig, StdinSource)


@pytest.mark.timeout(10)  # a blocking read would hang here
def test_pipe_lines_as_they_come_never_blocking(pipe: tuple[IO[bytes], int]) -> None:
    reader, w = pipe
    source = StdinSource("in", StdinSourceConfig(), ManualClock(start=42.0), stream=reader)
    try:
        assert list(source.read()) == []  # nothing written yet: returns at once
        os.write(w, b"first\nsec")
        lines = list(source.read())
        assert texts(lines) == ["first"]
        assert (lines[0].stream, lines[0].line_no, lines[0].received) == ("stdin", 1, 42.0)
        assert list(source.read()) == []  # half a line waits for its end
        os.write(w, b"ond\r\n\nbad \xfe\n")
        assert texts(list(source.read())) == ["second", "", "bad \ufffd"]
        os.write(w, b"no newline at the end")
        assert list(source.read()) == []
        assert not exhausted(source)
        os.close(w)
        last = list(source.read())
        assert texts(last) == ["no newline at the end"]
        assert last[0].line_no == 5
        assert exhausted(source)
        assert list(source.read()) == []
        assert source.stats.lines == 5
        assert source.stats.anomalies["invalid_utf8"] == 1
        assert source.checkpoint() is None
    finally:
        source.close()


def test_overlong_line_is_cut_and_counted(pipe: tuple[IO[bytes], int]) -> None:
    reader, w = pipe
    source = StdinSource("in", StdinSourceConfig(), ManualClock(), stream=reader)
    try:
        got: list[Line] = []
        for _ in range(5):  # 200 KiB of one line, written in pieces
            os.write(w, b"x" * 40_000)
            got.extend(source.read())
        os.write(w, b"\nnext\n")
        got.extend(source.read())
        assert [len(x.text) for x in got] == [MAX_LINE_BYTES, 4]
        assert got[1].text == "next"
        assert source.stats.anomalies["truncated"] == 1
    finally:
        source.close()


def test_max_batch_gives_control_back(pipe: tuple[IO[bytes], int]) -> None:
    reader, w = pipe
    source = StdinSource("in", StdinSourceConfig(max_batch=50), ManualClock(), stream=reader)
    try:
        os.write(w, b"".join(b"line %d\n" % i for i in range(120)))
        os.close(w)
        sizes = []
        while not source.exhausted:
            sizes.append(len(list(source.read())))
        assert sizes == [50, 50, 20]
    finally:
        source.close()


def test_close_gives_back_the_blocking_mode(pipe: tuple[IO[bytes], int]) -> None:
    reader, _ = pipe
    assert os.get_blocking(reader.fileno())
    source = StdinSource("in", StdinSourceConfig(), ManualClock(), stream=reader)
    assert not os.get_blocking(reader.fileno())
    source.close()
    assert os.get_blocking(reader.fileno())


def test_regular_file_is_read_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "in.log"
    path.write_bytes(b"a\nb\nc")
    with path.open("rb") as f:
        source = StdinSource("in", StdinSourceConfig(), ManualClock(), stream=f)
        assert texts(list(source.read())) == ["a", "b", "c"]
        assert source.exhausted
        source.close()


def test_unusable_stdin_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(SourceError, match="no standard input"):
        StdinSource("in", StdinSourceConfig(), ManualClock())
    with pytest.raises(SourceError, match="cannot be read"):
        StdinSource("in", StdinSourceConfig(), ManualClock(), stream=io.BytesIO(b"x"))


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_config_validation_names_the_key(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        StdinSourceConfig(max_batch=value)  # type: ignore[arg-type]
    assert info.value.where == "max_batch"


CONSUMER = """
import json, os, sys, time
from soc.acquire.stdin import StdinSource, StdinSourceConfig
from soc.clock import SystemClock

source = StdinSource("in", StdinSourceConfig(), SystemClock())
lines, idle = [line.text for line in source.read()], 0
if not lines:
    idle += 1
    # Tell the test that a read() with nothing to read came back.
    sys.stderr.write("ready\\n")
    sys.stderr.flush()
deadline = time.monotonic() + 20
while not source.exhausted and time.monotonic() < deadline:
    got = [line.text for line in source.read()]
    if not got:
        idle += 1
        time.sleep(0.01)
    lines.extend(got)
source.close()
json.dump({"lines": lines, "idle": idle, "exhausted": source.exhausted,
           "blocking_after_close": os.get_blocking(0)}, sys.stdout)
"""

PRODUCER = """
import sys, time
out = sys.stdout.buffer
out.write(b"Nov 14 22:13:20 web1 sshd[1]: one\\nNov 14 22:13:21 web1 sshd[1]: two\\n")
out.flush()
time.sleep(0.5)
out.write(b"three\\nfour without newline")
out.flush()
"""


def test_real_process_reads_its_piped_stdin() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r, w = os.pipe()
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER],
        stdin=r,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(r)
    try:
        assert consumer.stderr is not None
        # The consumer's first read() found an empty pipe and came back.
        assert consumer.stderr.readline() == b"ready\n"
        producer = subprocess.Popen([sys.executable, "-c", PRODUCER], stdout=w)
    finally:
        os.close(w)
    assert producer.wait(timeout=30) == 0
    out, err = consumer.communicate(timeout=30)
    assert consumer.returncode == 0, err
    result = json.loads(out)
    assert result["lines"] == [
        "Nov 14 22:13:20 web1 sshd[1]: one",
        "Nov 14 22:13:21 web1 sshd[1]: two",
        "three",
        "four without newline",
    ]
    assert result["exhausted"] is True
    assert result["idle"] >= 2  # before the producer, and during its pause
    assert result["blocking_after_close"] is True


def test_real_process_with_stdin_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    with path.open("rb") as f:
        consumer = subprocess.run(
            [sys.executable, "-c", CONSUMER],
            stdin=f,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=30,
            check=True,
        )
    result = json.loads(consumer.stdout)
    assert result["lines"] == [f"line {i}" for i in range(1000)]
    assert result["exhausted"] is True
    assert result["idle"] == 0
