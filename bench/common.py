"""What the benchmarks share: the generated 1,000,000-line sshd auth.log, cached."""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from soc.samples import write_samples

#: Where the generated files are kept (git-ignored).
CACHE = Path(__file__).resolve().parent.parent / ".bench"


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lines``, ``--seed`` and ``--cache``: which generated log, and where it is kept."""
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the test file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the file is kept")


def generator_hash() -> str:
    """A digest of the sample generator: a cached file from another version is stale."""
    import soc.samples

    return hashlib.sha256(Path(soc.samples.__file__).read_bytes()).hexdigest()[:12]


def sample_file(cache: Path, lines: int, seed: int) -> tuple[Path, float | None]:
    """The auth.log of ``lines`` lines (made and cached on first use) and how long making it took.

    The file is traditional syslog generated for 2025, in UTC; ``None`` when it
    was already cached.
    """
    cache.mkdir(parents=True, exist_ok=True)
    ignore = cache / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    path = cache / f"auth-{lines}-seed{seed}-{generator_hash()}.log"
    if path.exists():
        return path, None
    for old in cache.glob(f"auth-{lines}-seed{seed}-*.log"):
        old.unlink()  # made by an older generator
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        written = write_samples(Path(tmp), lines=lines, seed=seed, formats=["auth.log"])
        written[0].replace(path)
    return path, time.perf_counter() - started
