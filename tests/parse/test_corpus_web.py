"""fail2ban's annotated web samples, measured against our web and journal parsers.

fail2ban says, per line, whether its filter bans (``match``) and which host. We hold
true rows to the same standard: a *failure* event with that host (and that time when
given). False rows are where the semantics differ on purpose: fail2ban bans on a
short list of credential and probe patterns, we report every failed request as ECS
does (``event.outcome: failure``) and let the detector decide. Those rows are listed
below, one by one, with the reason; everything else must agree.

Lines fail2ban reads through syslog or the journal go through the same path ours
would: a ``syslog`` line through the syslog parser, a journal line (fail2ban renders
it ``host program[pid]: message``) as the ``journalctl -o json`` record it came from.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Final

import pytest

from soc.events import FAILURE, Event
from soc.parse import make_parser
from soc.parse.base import ParseConfig, Skip
from tests.parse.fail2ban_corpus import (
    CORPUS_NOW,
    CORPUS_ZONE,
    Row,
    corpus_file,
    local_epoch,
    read_rows,
    report,
    same_address,
)

AGREE_TRUE: Final = "true: failure event, same host"
AGREE_FALSE: Final = "false: no failure event"
DISAGREE_FALSE: Final = "false: failure event (listed)"

#: False rows where we report a failure, each with why (corpus, start of the line).
DISAGREEMENTS: dict[tuple[str, str], str] = {
    (
        "apache-auth",
        "[Sat Jun 01 02:17:42 2013] [error] [client 192.168.33.1] File does not exist",
    ): (
        "a request for a missing file is a failed request (404). fail2ban's auth filter must "
        "not ban the injected 192.168.0.1; neither do we: the event is 192.168.33.1's probe"
    ),
    (
        "apache-auth",
        "[Thu Oct 17 18:43:40.160521 2019] [evasive20:error]",
    ): (
        "mod_evasive refused the request: a failed request in ECS terms. fail2ban ignores it "
        "only in its normal mode (its aggressive mode, also in this corpus, agrees with us)"
    ),
    (
        "apache-botsearch",
        "[Fri Jan 03 14:50:39 2014] [error] [client 92.43.20.165] script",
    ): (
        "a missing script is a failed request; fail2ban's botsearch bans only a fixed list "
        "of probe targets and forum/mail.php is not on it"
    ),
    (
        "apache-botsearch",
        "[Fri Dec 06 09:29:34 2013] [error] [client 122.49.201.178] client denied",
    ): (
        "a request refused by configuration is a failed request; fail2ban's botsearch looks "
        "only for missing files (its apache-auth filter matches this very line)"
    ),
}

#: The agreement table we achieve, per corpus.
EXPECTED: dict[str, dict[str, int]] = {
    "nginx-http-auth": {AGREE_TRUE: 17, AGREE_FALSE: 1},
    "apache-auth": {AGREE_TRUE: 41, AGREE_FALSE: 2, DISAGREE_FALSE: 2},
    "nginx-botsearch": {AGREE_TRUE: 14},
    "apache-botsearch": {AGREE_TRUE: 17, DISAGREE_FALSE: 2},
}

#: What those rows became, by kind (true rows) and by what we gave (false rows).
EXPECTED_KINDS: dict[str, dict[str, int]] = {
    "nginx-http-auth": {
        "true → web_auth_failure": 10,  # user not found, password mismatch, PAM (4 framings)
        "true → web_request": 7,  # TLS handshake failures (fail2ban's fallback mode)
        "false → skip not_security_relevant": 1,  # upstream connect() failed
    },
    "apache-auth": {
        "true → web_auth_failure": 27,
        "true → web_request": 10,  # denied by configuration, SNI mismatch
        "true → access_denied": 4,  # authenticated user refused by authorization
        "false → web_request/failure": 2,
        "false → skip not_security_relevant": 2,  # digest nonce hash mismatch
    },
    "nginx-botsearch": {"true → web_request": 14},
    "apache-botsearch": {"true → web_request": 17, "false → web_request/failure": 2},
}

_JOURNAL_RE: Final = re.compile(
    r"(?P<host>\S+) (?P<program>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)"
)
_ACCESS_TIME_RE: Final = re.compile(r"\[\d\d/\w{3}/\d{4}:")


def _parse(row: Row) -> Event | Skip:
    """Parse a corpus line the way a deployment of ours would receive it.

    Stamps without a zone are in fail2ban's test zone, as its annotations are.
    """
    if any(o.get("logtype") == "journal" for o in row.options):
        m = _JOURNAL_RE.fullmatch(row.text)
        assert m is not None, row.text
        record = {
            "__REALTIME_TIMESTAMP": str(int(CORPUS_NOW * 1_000_000)),
            "_HOSTNAME": m["host"],
            "SYSLOG_IDENTIFIER": m["program"],
            "_PID": m["pid"],
            "MESSAGE": m["msg"],
        }
        fmt, text = "journal_json", json.dumps(record)
    elif any(o.get("logging") == "syslog" for o in row.options):
        fmt, text = "syslog", row.text
    elif _ACCESS_TIME_RE.search(row.text):
        fmt, text = "web_access", row.text
    else:
        fmt, text = "web_error", row.text
    parser = make_parser(ParseConfig(format=fmt, timezone=CORPUS_ZONE), reference_time=CORPUS_NOW)
    return parser.parse(text, row.number)


def _disagreement(corpus: str, row: Row) -> str | None:
    for (name, start), why in DISAGREEMENTS.items():
        if name == corpus and row.text.startswith(start):
            return why
    return None


def _describe(result: Event | Skip) -> str:
    if isinstance(result, Skip):
        return f"skip {result.reason}"
    return f"{result.kind}/{result.outcome}"


def _table(corpus: str, table: Counter[str], by_category: Counter[str], listed: list[str]) -> str:
    lines = [f"{corpus} (web semantics: any failure event counts)"]
    lines += [f"  {name:<44} {count:>4}" for name, count in sorted(table.items())]
    lines += [f"    {name:<42} {count:>4}" for name, count in sorted(by_category.items())]
    lines += [f"  listed: {entry}" for entry in listed]
    return "\n".join(lines)


@pytest.mark.parametrize("corpus", sorted(EXPECTED))
def test_agreement_with_fail2ban(corpus: str, request: pytest.FixtureRequest) -> None:
    rows = read_rows(corpus_file(corpus))
    table: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    problems: list[str] = []
    listed_rows: list[str] = []
    for row in rows:
        result = _parse(row)
        failure = isinstance(result, Event) and result.outcome == FAILURE
        where = f"{corpus}:{row.number}: {row.text[:90]}"
        fail = row.fail or {}
        if fail.get("match", False):
            host = fail["host"]
            if not (isinstance(result, Event) and failure and same_address(result, host)):
                problems.append(f"{where}: want a failure from {host}, got {result!r}")
                continue
            if "time" in fail and int(result.timestamp or 0) != int(local_epoch(fail["time"])):
                problems.append(f"{where}: time {result.timestamp}, expected {fail['time']}")
                continue
            table[AGREE_TRUE] += 1
            by_category[f"true → {result.kind}"] += 1
            continue
        listed = _disagreement(corpus, row)
        by_category[f"false → {_describe(result)}"] += 1
        if failure:
            if listed is None:
                problems.append(f"{where}: unlisted failure event {result!r}")
            else:
                table[DISAGREE_FALSE] += 1
                listed_rows.append(f"line {row.number}: {listed}")
        elif listed is not None:
            problems.append(f"{where}: listed as a disagreement but we agree now")
        else:
            table[AGREE_FALSE] += 1
    report(request.config, _table(corpus, table, by_category, listed_rows))
    assert problems == []
    assert dict(table) == EXPECTED[corpus]
    assert dict(by_category) == EXPECTED_KINDS[corpus]


def test_every_listed_disagreement_is_in_a_corpus() -> None:
    for corpus, start in DISAGREEMENTS:
        rows = read_rows(corpus_file(corpus))
        assert any(row.text.startswith(start) for row in rows), (corpus, start)
