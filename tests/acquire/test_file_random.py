"""Randomized runs of the file follower against a model of logrotate, on a manual clock.

Each run interleaves, at random: appends (some split mid-line), rename rotation
(with late writes to the renamed file), copytruncate, delete-and-recreate,
polls, rotate_wait expiring, partially consumed reads, and restarts from the
checkpoint. Whatever the order, every number must come out exactly once, in
order within its file, with its line number in that file. The one loss that is
inherent is kept out of the model: delete-and-recreate only happens once the
reader has opened the current file, and no restart happens while a deleted file
may still hold lines not read (a closed descriptor was its only way in).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
import shutil
from pathlib import Path

import pytest

from soc.acquire.file import FileSource, FileSourceConfig
from soc.clock import ManualClock

POLL = 1.0
WAIT = 3.0


class Logrotate:
    """The writer side: a daemon appending numbered lines, and logrotate."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.path = path
        self.rng = rng
        self.fd = self._open()
        self.next = 0
        self.generations: list[list[int]] = [[0, 0]]
        self.reader_holds_current = False
        self.deleted_unread = False

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, count: int) -> None:
        if count == 0:
            return
        data = b"".join(
            b"%06d %s\n" % (self.next + i, b"x" * self.rng.randrange(0, 30)) for i in range(count)
        )
        cut = self.rng.randrange(0, len(data))
        os.write(self.fd, data[:cut])
        os.write(self.fd, data[cut:])
        self.next += count
        self.generations[-1][1] = self.next

    def _shift(self) -> None:
        n = 1
        while Path(f"{self.path}.{n}").exists():
            n += 1
        for i in range(n - 1, 0, -1):
            Path(f"{self.path}.{i}").rename(f"{self.path}.{i + 1}")

    def rotate(self, kind: str) -> None:
        if kind == "rename":
            self._shift()
            self.path.rename(f"{self.path}.1")
            self.write(self.rng.randrange(0, 3))  # before the daemon reopens
            os.close(self.fd)
            self.fd = self._open()
        elif kind == "copytruncate":
            self._shift()
            shutil.copyfile(self.path, f"{self.path}.1")
            os.ftruncate(self.fd, 0)
        else:
            self.path.unlink()
            self.deleted_unread = True
            self.write(self.rng.randrange(0, 3))
            os.close(self.fd)
            self.fd = self._open()
        self.generations.append([self.next, self.next])
        self.reader_holds_current = False


def _source(path: Path, clock: ManualClock) -> FileSource:
    config = FileSourceConfig(
        paths=[str(path)],
        start_at="beginning",
        use_watchdog=False,
        poll_interval=POLL,
        rotate_wait=WAIT,
        fingerprint_bytes=64,
    )
    return FileSource("model", config, clock)


@pytest.mark.parametrize("seed", range(40))
def test_random_rotation_sequences_lose_and_repeat_nothing(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "app.log"
    world = Logrotate(path, rng)
    clock = ManualClock(start=1_700_000_000.0)
    source = _source(path, clock)
    got: list[tuple[str, int]] = []

    def read(limit: int | None = None) -> None:
        lines = source.read()
        taken = lines if limit is None else itertools.islice(lines, limit)
        got.extend((x.text, x.line_no) for x in taken)
        if limit is None:
            world.deleted_unread = False

    try:
        read()  # the source opens the file before the daemon writes to it
        world.reader_holds_current = True
        for _ in range(80):
            op = rng.choices(
                ["write", "rotate", "poll", "wait", "read", "partial", "restart"],
                weights=[30, 8, 12, 3, 10, 6, 4],
            )[0]
            if op == "write":
                world.write(rng.randrange(1, 40))
            elif op == "rotate":
                kinds = ["rename", "copytruncate"]
                if world.reader_holds_current:
                    kinds.append("recreate")
                world.rotate(rng.choice(kinds))
            elif op == "poll":
                clock.advance(POLL)
                read(rng.choice([None, rng.randrange(1, 20)]))
                world.reader_holds_current = path.exists()
            elif op == "wait":
                clock.advance(WAIT)
                read()
            elif op == "read":
                read()
            elif op == "partial":
                read(rng.randrange(0, 10))
            elif not world.deleted_unread:
                state = json.loads(json.dumps(source.checkpoint()))
                source.close()
                source = _source(path, clock)
                if state is not None:
                    source.restore(state)
        for _ in range(3):
            clock.advance(WAIT + POLL)
            read()
    finally:
        source.close()
        os.close(world.fd)
    _assert_exactly_once(got, world.next, world.generations)


def _assert_exactly_once(
    got: list[tuple[str, int]], total: int, generations: list[list[int]]
) -> None:
    numbers = [int(text[:6]) for text, _ in got]
    assert sorted(numbers) == list(range(total)), _difference(numbers, total)
    starts = [g[0] for g in generations]
    last: dict[int, int] = {}
    for (text, line_no), n in zip(got, numbers, strict=True):
        assert text[6:].strip("x ") == "", text
        g = bisect.bisect_right(starts, n) - 1
        # Empty generations share a start with the next: find the one holding n.
        while generations[g][1] <= n:
            g += 1
        assert n > last.get(g, -1), f"{n} after {last.get(g)} in generation {g}"
        last[g] = n
        assert line_no == n - generations[g][0] + 1, (n, line_no, generations[g])


def _difference(numbers: list[int], total: int) -> str:
    seen = set(numbers)
    missing = [n for n in range(total) if n not in seen][:10]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})[:10]
    return f"missing {missing}, twice {twice}"
