"""fail2ban's annotated test logs (``../shared/corpora/fail2ban/``): reader and scorer.

The format (see the corpora README): ``# failJSON: {...}`` describes the next log
line (``match``, ``host``, ``time`` in local time, ``user``, ``constraint``);
``# filterOptions: [...]`` starts a block whose lines are checked under each option
set; a line without ``failJSON`` must not match. fail2ban's harness skips a row
whose ``constraint`` does not hold for the options at hand, and a block whose
``test.condition`` does not hold for the filter.

Constraints are read by a small evaluator of the few forms the corpus uses, not by
``eval``: an unknown form fails the test, so a corpus update is noticed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest

from soc.events import ACCESS_DENIED, AUTH_FAILURE, FAILURE, INVALID_USER, Event
from soc.parse.address import split_address
from soc.parse.base import Skip

CORPORA: Final = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "fail2ban"
#: fail2ban's test suite runs in this zone and at this time (utils.setUpMyTime).
CORPUS_ZONE: Final = "Europe/Zurich"
CORPUS_NOW: Final = 1124013600.0
#: What fail2ban's normal mode counts: a failed authentication or a refusal.
FAILURE_KINDS: Final = frozenset((AUTH_FAILURE, INVALID_USER, ACCESS_DENIED))
#: Where the agreement tables wait for the end-of-run summary (tests/parse/conftest.py).
TABLES_KEY: Final = pytest.StashKey[list[str]]()

_CONSTRAINT_RE: Final = re.compile(
    r"\s*(?:name|opts\.get\('([\w.]+)'\))\s*(==|!=)\s*'([^']*)'\s*", re.ASCII
)


def corpus_file(name: str) -> Path:
    """The corpus file ``name``; skips (fails in CI) when the corpora are absent."""
    path = CORPORA / name
    if path.is_file():
        return path
    reason = f"fail2ban corpus not found at {path} (see ../shared/corpora/README.md)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def holds(condition: str, name: str, opts: dict[str, Any]) -> bool:
    """Evaluate ``name == 'sshd'`` / ``opts.get('mode') != 'aggressive'`` (and ``and``)."""
    result = True
    for part in condition.split(" and "):
        m = _CONSTRAINT_RE.fullmatch(part)
        if m is None:
            raise ValueError(f"constraint form not understood: {condition!r}")
        key, op, value = m.groups()
        actual = name if key is None else opts.get(key)
        result = result and ((actual == value) if op == "==" else (actual != value))
    return result


@dataclass(frozen=True)
class Row:
    """One log line of the corpus, with its annotation and the options of its block."""

    number: int
    text: str
    fail: dict[str, Any] | None
    options: tuple[dict[str, Any], ...]


def read_rows(path: Path) -> list[Row]:
    """Every log line of a corpus file, in order."""
    rows: list[Row] = []
    options: tuple[dict[str, Any], ...] = ({},)
    pending: dict[str, Any] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("# filterOptions:"):
            value = json.loads(line.split(":", 1)[1])
            options = tuple(value) if isinstance(value, list) else (value,)
            continue
        if line.startswith("# failJSON:"):
            pending = json.loads(line.split(":", 1)[1])
            continue
        if not line.strip() or line.startswith("#"):
            continue
        rows.append(Row(number, line, pending, options))
        pending = None
    return rows


def rows_for(rows: Iterable[Row], name: str, mode: str) -> list[tuple[Row, dict[str, Any]]]:
    """Rows checked when filter ``name`` runs in ``mode``, each with its option set."""
    selected: list[tuple[Row, dict[str, Any]]] = []
    for row in rows:
        for opts in row.options:
            condition = opts.get("test.condition")
            if condition is not None and not holds(condition, name, opts):
                continue
            if opts.get("mode", "normal") != mode:
                continue
            options = {k: v for k, v in opts.items() if k != "test.condition"}
            constraint = row.fail.get("constraint") if row.fail else None
            if constraint is not None and not holds(constraint, name, options):
                continue
            selected.append((row, options))
            break
    return selected


def same_address(event: Event, expected: str) -> bool:
    """fail2ban's comparison: IPs normalised, host names as written."""
    ip, host = split_address(expected)
    return event.source_ip == ip if ip is not None else event.source_address == host


def local_epoch(text: str) -> float:
    """A failJSON ``time`` (local, no zone) in fail2ban's test zone."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(CORPUS_ZONE)).timestamp()


def is_failure(result: Event | Skip) -> bool:
    """What fail2ban would count: a failure event of a normal-mode kind."""
    return isinstance(result, Event) and result.outcome == FAILURE and result.kind in FAILURE_KINDS


@dataclass
class Score:
    """How our events compare with fail2ban's annotations, row by row."""

    true_rows: int = 0
    true_on_line: int = 0
    agreed: int = 0
    agreed_on_line: int = 0
    agreed_from_state: int = 0
    wrong_address: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    false_rows: int = 0
    false_agreed: int = 0
    reported: list[int] = field(default_factory=list)
    wrong_time: list[int] = field(default_factory=list)
    wrong_user: list[int] = field(default_factory=list)

    def table(self, title: str) -> str:
        width = 44
        lines = [
            title,
            f"  {'fail2ban true rows':<{width}} {self.true_rows:>4}",
            f"  {'  address on the line':<{width}} {self.true_on_line:>4}",
            f"  {'  reported by us with that address':<{width}} {self.agreed:>4}",
            f"  {'    address on the line':<{width}} {self.agreed_on_line:>4}",
            f"  {'    address from the connection (PID)':<{width}} {self.agreed_from_state:>4}",
            f"  {'  reported with another address':<{width}} {len(self.wrong_address):>4}"
            f"  lines {self.wrong_address}",
            f"  {'  not reported':<{width}} {len(self.missed):>4}  lines {self.missed}",
            f"  {'fail2ban false rows':<{width}} {self.false_rows:>4}",
            f"  {'  no failure from us either':<{width}} {self.false_agreed:>4}",
            f"  {'  reported by us (listed exceptions)':<{width}} {len(self.reported):>4}"
            f"  lines {self.reported}",
            f"  {'time differs (of agreed rows)':<{width}} {len(self.wrong_time):>4}",
            f"  {'user differs (of agreed rows with a user)':<{width}} {len(self.wrong_user):>4}",
        ]
        return "\n".join(lines)


def score(
    rows: list[tuple[Row, dict[str, Any]]],
    parse: Callable[[str, int], Event | Skip],
) -> Score:
    """Parse the rows in order through one parser and compare with the annotations."""
    s = Score()
    for row, _opts in rows:
        result = parse(row.text, row.number)
        fail = row.fail or {}
        if not fail.get("match", False):
            s.false_rows += 1
            if is_failure(result):
                s.reported.append(row.number)
            else:
                s.false_agreed += 1
            continue
        s.true_rows += 1
        host = fail.get("host")
        on_line = host is not None and host in row.text
        s.true_on_line += on_line
        if not is_failure(result):
            s.missed.append(row.number)
            continue
        assert isinstance(result, Event)
        if host is not None and not same_address(result, host):
            s.wrong_address.append(row.number)
            continue
        s.agreed += 1
        if on_line:
            s.agreed_on_line += 1
        else:
            s.agreed_from_state += 1
        if "time" in fail and (
            result.timestamp is None or int(result.timestamp) != int(local_epoch(fail["time"]))
        ):
            s.wrong_time.append(row.number)
        if "user" in fail and result.user != fail["user"]:
            s.wrong_user.append(row.number)
    return s


def report(config: pytest.Config, table: str) -> None:
    """Print the table now (``-s``) and in the end-of-run summary."""
    print(f"\n{table}")
    config.stash.setdefault(TABLES_KEY, []).append(table)


__all__ = [
    "CORPORA",
    "CORPUS_NOW",
    "CORPUS_ZONE",
    "FAILURE_KINDS",
    "TABLES_KEY",
    "Row",
    "Score",
    "corpus_file",
    "holds",
    "is_failure",
    "local_epoch",
    "read_rows",
    "report",
    "rows_for",
    "same_address",
    "score",
]
