"""Vectorised or per line? The parser's regular expressions against RE2's and polars'.

The columnar hot path (issue 17) asked whether parsing should extract columns with
vectorised regular expressions (``pyarrow.compute`` with RE2, or polars) instead of
matching line by line. This measures it on the cached 1,000,000-line sshd auth.log
(``.bench/``, shared with ``bench_parse.py``), in this process, pinned to one core
(polars and Arrow limited to one thread):

- ``re``, per line: the parser's syslog framing expression alone, each match
  dropped; the same framing with its five groups made into columns, batch by batch
  (16,384 lines, the engine's batch), which is what a columnar parser needs and
  what the vectorised rows below do; one lane (the framing and sshd's ``Failed``
  family in one expression, as the parser reads the lines of a brute force); the
  whole parser (``SyslogParser.parse``: framing, family, builder, event).
- pyarrow, vectorised: the lines into an Arrow array (from Python strings, and
  split out of the file's bytes by Arrow itself); RE2 ``extract_regex`` of the
  same framing (RE2 has no look-behind or possessive quantifiers, so the host group
  is the plain version); the ``Failed`` family's groups out of the messages.
- polars (Rust's ``regex``, the same dialect as RE2): ``str.extract_groups`` of the
  framing, batch by batch from Python strings and over the whole Arrow array at
  once; the ``Failed`` family out of the messages.

Prints lines/s for each. Exit status is non-zero only on errors.

Run: ``python bench/bench_regex.py`` (``make bench``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one core, as every other row

import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from bench.common import CACHE, sample_file  # noqa: E402
from soc.parse.base import ParseConfig  # noqa: E402
from soc.parse.sshd import _FAILED_ANY_RE  # noqa: E402
from soc.parse.syslog import _TRADITIONAL_FRAME_RE, SyslogParser, _lane  # noqa: E402

#: Lines per batch where a row works batch by batch (the engine's batch size).
BATCH = 16_384

# The same framing and family in RE2's dialect (no look-behind, no possessive).
RE2_FRAME = (
    r"^(?P<stamp>[A-Z][a-z][a-z] [ 0-9]?[0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9])"
    r" (?P<host>[^\s\[\]<][^\s\[\]]*) (?P<program>[^\s\[\]:]+)(?:\[(?P<pid>[0-9]{1,10})\])?: "
    r"(?P<message>.*)$"
)
RE2_FAILED = (
    r"^(?:Failed|Accepted) (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*)"
    r" from (?P<address>\S+)(?: port (?P<port>\d+))?(?: ssh\d*)?(?::\s.*)?$"
)


def _each(read: Callable[[str], object], lines: list[str]) -> None:
    """Every line through ``read``, each result dropped (as the engine's batches free
    theirs; a million kept alive would time the garbage collector instead)."""
    for text in lines:
        read(text)


def _framed_columns(lines: list[str]) -> None:
    """The framing's five groups as columns, batch by batch (``re``, per line)."""
    match = _TRADITIONAL_FRAME_RE.match
    empty = (None,) * _TRADITIONAL_FRAME_RE.groups
    for start in range(0, len(lines), BATCH):
        rows = [m.groups() if (m := match(t)) else empty for t in lines[start : start + BATCH]]
        list(zip(*rows, strict=True))


def _polars_batches(lines: list[str]) -> None:
    """The framing extracted by polars, batch by batch from Python strings."""
    for start in range(0, len(lines), BATCH):
        pl.Series(lines[start : start + BATCH], dtype=pl.String).str.extract_groups(RE2_FRAME)


def _timed(what: Callable[[], object]) -> float:
    started = time.perf_counter()
    what()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000, help="log size (default 1,000,000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last)")
    args = p.parse_args(argv)
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    path, _ = sample_file(CACHE, args.lines, args.seed)
    lines = path.read_text(encoding="utf-8").splitlines()
    n = len(lines)
    print(f"{n:,} lines of {path.name}, pinned to core {cpu}\n")

    frame = _TRADITIONAL_FRAME_RE.match
    lane = _lane(_FAILED_ANY_RE).match
    parser = SyslogParser(ParseConfig(timezone="UTC", year=2025), path.stat().st_mtime)
    parse = parser.parse
    rows: list[tuple[str, float]] = [
        ("re, per line: framing only", _timed(lambda: _each(frame, lines))),
        ("re, per line: framing into columns, by batch", _timed(lambda: _framed_columns(lines))),
        (
            "re, per line: one lane (framing + Failed family)",
            _timed(lambda: _each(lane, lines)),
        ),
        (
            "re, per line: the whole parser (events built)",
            _timed(lambda: _each(parse, lines)),
        ),
    ]
    holder: dict[str, pa.Array] = {}

    def to_arrow() -> None:
        holder["lines"] = pa.array(lines, pa.string())

    def frame_re2() -> None:
        holder["framed"] = pc.extract_regex(holder["lines"], RE2_FRAME)

    def failed_re2() -> None:
        messages = holder["framed"].field("message")
        holder["failed"] = pc.extract_regex(messages, RE2_FAILED)

    data = path.read_bytes()

    def split_arrow() -> None:
        whole = pa.array([data], pa.large_string())
        holder["split"] = pc.split_pattern(whole, "\n").flatten()

    def frame_polars() -> None:
        framed = pl.from_arrow(holder["split"])
        assert isinstance(framed, pl.Series)
        holder["polars"] = framed.str.extract_groups(RE2_FRAME).struct.unnest()

    def failed_polars() -> None:
        messages = holder["polars"].get_column("message")
        holder["polars_failed"] = messages.str.extract_groups(RE2_FAILED).struct.unnest()

    timed = dict(rows)
    timed["pyarrow: list of str to an Arrow array"] = _timed(to_arrow)
    timed["pyarrow: file bytes split into lines by Arrow"] = _timed(split_arrow)
    timed["pyarrow RE2: framing extracted"] = _timed(frame_re2)
    timed["pyarrow RE2: Failed family extracted"] = _timed(failed_re2)
    timed["polars: framing extracted, by batch"] = _timed(lambda: _polars_batches(lines))
    timed["polars: framing extracted, whole file"] = _timed(frame_polars)
    timed["polars: Failed family extracted"] = _timed(failed_polars)
    found = pc.sum(holder["failed"].is_valid()).as_py()
    polars_found = holder["polars_failed"].get_column("user").is_not_null().sum()
    lane_found = sum(1 for t in lines if lane(t) is not None)
    print(f"{'step':<52} {'seconds':>8} {'lines/s':>12}")
    for name, seconds in timed.items():
        print(f"{name:<52} {seconds:>8.2f} {n / seconds:>12,.0f}")
    print(
        f"\nFailed/Accepted lines: RE2 {found:,}, polars {polars_found:,}, the lane {lane_found:,}"
    )
    # Arrow's own split, framing, one family: the least a vectorised parser spends.
    split = timed["pyarrow: file bytes split into lines by Arrow"]
    re2 = split + timed["pyarrow RE2: framing extracted"]
    re2 += timed["pyarrow RE2: Failed family extracted"]
    rust = split + timed["polars: framing extracted, whole file"]
    rust += timed["polars: Failed family extracted"]
    whole = timed["re, per line: the whole parser (events built)"]
    print(
        f"Vectorised framing and one family: RE2 {n / re2:,.0f} lines/s, "
        f"polars {n / rust:,.0f} lines/s; framing into columns with re: "
        f"{n / timed['re, per line: framing into columns, by batch']:,.0f} lines/s; "
        f"the whole per-line parser: {n / whole:,.0f} lines/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
