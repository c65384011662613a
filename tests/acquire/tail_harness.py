"""Helper processes for the file source's stress and kill -9 tests.

``write``: appends numbered lines to a log at a steady pace while rotating it
the ways logrotate does (rename with shifting, copytruncate, delete and
recreate), then writes a JSON manifest of the generations: the contiguous
ranges of numbers each file received, so a test can check line numbers too.

``follow``: follows a log with ``FileSource`` and, for every batch, inserts the
numbers it read into a table of its own and saves the source's checkpoint in
ONE store transaction, restoring the checkpoint at start. Killed with SIGKILL
at any moment, it must resume with every number committed exactly once.

Run with ``sys.executable tests/acquire/tail_harness.py write|follow ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from soc.acquire.file import FileSource, FileSourceConfig
from soc.clock import SystemClock
from soc.store import SqlStore, open_store

SOURCE_NAME = "tail"

metadata = sa.MetaData()
seen = sa.Table(
    "seen",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("stream", sa.String(500), nullable=False),
)


def number_line(n: int, rng: random.Random) -> bytes:
    """One numbered line, padded to a random length so chunk edges fall anywhere."""
    return b"%08d %s\n" % (n, b"x" * rng.randrange(0, 120))


class Writer:
    """Writes numbered lines to ``path`` and rotates it; records the generations."""

    def __init__(self, path: Path, keep: int, rng: random.Random) -> None:
        self.path = path
        self.keep = keep
        self.rng = rng
        self.fd = self._open()
        self.generations: list[list[int]] = [[0, 0]]  # [first number, last number + 1]
        self.next = 0

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def lines(self, count: int) -> bytes:
        """The next ``count`` lines (numbered: a reader can tell which it got)."""
        return b"".join(number_line(self.next + i, self.rng) for i in range(count))

    def write(self, count: int) -> None:
        chunk = self.lines(count)
        if self.rng.random() < 0.2 and len(chunk) > 4:
            # A line split across two writes: the reader must hold the partial line.
            cut = self.rng.randrange(1, len(chunk) - 1)
            os.write(self.fd, chunk[:cut])
            time.sleep(0.0005)
            os.write(self.fd, chunk[cut:])
        else:
            os.write(self.fd, chunk)
        self.next += count
        self.generations[-1][1] = self.next

    def _shift(self) -> None:
        # logrotate's numbering: drop the oldest, path.N -> path.N+1, newest last.
        oldest = Path(f"{self.path}.{self.keep}")
        oldest.unlink(missing_ok=True)
        for n in range(self.keep - 1, 0, -1):
            src = Path(f"{self.path}.{n}")
            if src.exists():
                src.rename(f"{self.path}.{n + 1}")

    def _new_generation(self) -> None:
        self.generations.append([self.next, self.next])

    def rotate(self, kind: str) -> None:
        if kind == "rename":
            self._shift()
            self.path.rename(f"{self.path}.1")
            if self.rng.random() < 0.5:
                # A daemon keeps writing to the renamed file until it reopens (HUP).
                self.write(self.rng.randrange(1, 20))
            os.close(self.fd)
            self.fd = self._open()
        elif kind == "copytruncate":
            self._shift()
            shutil.copyfile(self.path, f"{self.path}.1")
            os.ftruncate(self.fd, 0)
        elif kind == "recreate":
            self.path.unlink()
            if self.rng.random() < 0.5:
                self.write(self.rng.randrange(1, 20))
            os.close(self.fd)
            self.fd = self._open()
        else:
            raise ValueError(kind)
        self._new_generation()


def run_writer(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    path = Path(args.path)
    writer = Writer(path, args.keep, rng)
    kinds = args.kinds.split(",")
    total, rotations = args.lines, args.rotations
    # Rotation points spread over the run, each jittered around its even spot.
    step = total / (rotations + 1)
    points = sorted(int(step * (i + 1) + rng.uniform(-0.3, 0.3) * step) for i in range(rotations))
    batch = args.batch
    pause = args.seconds / max(1, total // batch)
    started = time.monotonic()
    done_rotations: list[str] = []
    while writer.next < total:
        count = min(batch, total - writer.next)
        if points and writer.next + count > points[0]:
            count = max(1, points[0] - writer.next)
        writer.write(count)
        while points and writer.next >= points[0]:
            points.pop(0)
            kind = kinds[len(done_rotations) % len(kinds)] if args.cycle else rng.choice(kinds)
            writer.rotate(kind)
            done_rotations.append(kind)
        # Pace against the clock, not per batch, so the run takes about --seconds.
        ahead = started + pause * (writer.next / batch) - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    os.close(writer.fd)
    gens = [g for g in writer.generations if g[1] > g[0]]
    manifest = {"lines": total, "generations": gens, "rotations": done_rotations}
    Path(args.manifest).write_text(json.dumps(manifest))


def run_follower(args: argparse.Namespace) -> None:
    store = open_store(args.db)
    with store.transaction() as tx:
        metadata.create_all(tx.connection)
    config = FileSourceConfig(
        paths=[args.path],
        start_at="beginning",
        # Killed before its first commit, a fresh start must still find the lines
        # already rotated away.
        read_history=True,
        poll_interval=args.poll,
        use_watchdog=not args.no_watchdog,
        rotate_wait=args.rotate_wait,
    )
    source = FileSource(SOURCE_NAME, config, SystemClock())
    state = store.load_checkpoint(SOURCE_NAME)
    if state is not None:
        source.restore(state)
    print("ready", flush=True)
    while True:
        rows: list[dict[str, object]] = []
        for line in source.read():
            rows.append(_row(line.text, line.line_no, line.stream))
            if len(rows) >= args.batch:
                _commit(store, source, rows)
                rows = []
        if rows:
            _commit(store, source, rows)
        else:
            time.sleep(0.005)


def _row(text: str, line_no: int, stream: str) -> dict[str, object]:
    head = text.split(" ", 1)[0]
    n = int(head) if head.isdigit() else -1
    return {"n": n, "line_no": line_no, "stream": stream}


def _commit(store: SqlStore, source: FileSource, rows: list[dict[str, object]]) -> None:
    with store.transaction() as tx:
        tx.connection.execute(seen.insert(), rows)
        tx.save_checkpoint(SOURCE_NAME, source.checkpoint())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("--path", required=True)
    w.add_argument("--manifest", required=True)
    w.add_argument("--lines", type=int, default=200_000)
    w.add_argument("--rotations", type=int, default=50)
    w.add_argument("--kinds", default="rename,copytruncate,recreate")
    w.add_argument("--cycle", action="store_true", help="use the kinds in turn, not at random")
    w.add_argument("--keep", type=int, default=10)
    w.add_argument("--seconds", type=float, default=20.0)
    w.add_argument("--batch", type=int, default=50)
    w.add_argument("--seed", type=int, default=1)
    f = sub.add_parser("follow")
    f.add_argument("--path", required=True)
    f.add_argument("--db", required=True)
    f.add_argument("--batch", type=int, default=500)
    f.add_argument("--poll", type=float, default=0.2)
    f.add_argument("--rotate-wait", type=float, default=1.0)
    f.add_argument("--no-watchdog", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "write":
        run_writer(args)
    else:
        run_follower(args)


if __name__ == "__main__":
    main(sys.argv[1:])
