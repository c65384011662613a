"""The legitimate scenarios behave as people and machines do, at the rates they do."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from soc.evaluate import SIZES
from soc.evaluate.labels import Labels
from soc.evaluate.scenarios import scenario
from soc.evaluate.traffic import START, Traffic
from soc.evaluate.web import Site

SMALL = SIZES["small"]
_LINE = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ sshd\[(\d+)\]: (.*)$")


def _connections(folder: Path) -> dict[str, list[str]]:
    """sshd messages by connection (PID), in order."""
    out: dict[str, list[str]] = defaultdict(list)
    for line in (folder / "auth.log").read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match:
            out[match.group(2)].append(match.group(3))
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Labels]]:
    root = tmp_path_factory.mktemp("behaviour")
    names = ("key_users", "password_users", "forgotten_password", "office", "automation", "web")
    return {n: (root / n, scenario(n).write(root / n, SMALL, 7)) for n in names}


def test_key_users_are_offered_up_to_four_other_keys_then_accepted(
    folders: dict[str, tuple[Path, Labels]],
) -> None:
    offers: Counter[int] = Counter()
    for messages in _connections(folders["key_users"][0]).values():
        if any(m.startswith("Invalid user") for m in messages):
            continue  # a mistyped user name: given up, then the right one
        rejected = sum(m.startswith("Failed publickey") for m in messages)
        assert rejected <= 4
        assert any(m.startswith("Accepted publickey") for m in messages)
        offers[rejected] += 1
    assert offers[0] > 0 and sum(offers[n] for n in (1, 2, 3, 4)) > 0


def test_password_users_mistype_now_and_then_and_get_in(
    folders: dict[str, tuple[Path, Labels]],
) -> None:
    connections = _connections(folders["password_users"][0])
    logins = [m for ms in connections.values() for m in ms if m.startswith("Accepted password")]
    failed = [ms for ms in connections.values() if any(m.startswith("Failed password") for m in ms)]
    assert 0.02 < len(failed) / len(logins) < 0.25
    for messages in failed:
        assert sum(m.startswith("Failed password") for m in messages) <= 3  # three prompts
    # a near-miss user name: an Invalid user, given up before the right one
    invalid = [ms for ms in connections.values() if ms[1].startswith("Invalid user")]
    assert all(ms[-1].startswith("Connection closed by invalid user") for ms in invalid)


def test_a_forgotten_password_fails_a_handful_of_times_that_day_and_never_gets_in(
    folders: dict[str, tuple[Path, Labels]],
) -> None:
    text = (folders["forgotten_password"][0] / "auth.log").read_text(encoding="utf-8")
    by_day: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for line in text.splitlines():
        for word in ("Failed password for", "Accepted password for"):
            if word in line:
                user = line.split(word, 1)[1].split()[0]
                by_day[(line[:6], user)][word] += 1
    bad = [(day, c) for day, c in by_day.items() if c["Failed password for"] >= 3]
    assert bad
    for _, counts in bad:
        assert 3 <= counts["Failed password for"] <= 12
        assert counts["Accepted password for"] == 0


def test_the_office_is_many_people_behind_one_address(
    folders: dict[str, tuple[Path, Labels]],
) -> None:
    users_by_address: dict[str, set[str]] = defaultdict(set)
    text = (folders["office"][0] / "auth.log").read_text(encoding="utf-8")
    for match in re.finditer(r"Accepted \w+ for (\S+) from (\S+) port", text):
        users_by_address[match.group(2)].add(match.group(1))
    assert max(len(users) for users in users_by_address.values()) >= 30


def test_automation_logs_in_every_minute_with_a_key(
    folders: dict[str, tuple[Path, Labels]],
) -> None:
    connections = _connections(folders["automation"][0])
    accepted = [ms for ms in connections.values() if ms[-1].startswith("Accepted publickey")]
    keyed = [ms for ms in connections.values() if any("Accepted publickey" in m for m in ms)]
    rejected = [ms for ms in connections.values() if "[preauth]" in ms[-1]]
    per_host = SMALL.automation_days * 1440
    assert not accepted  # every login ends with its session's lines
    assert len(keyed) + len(rejected) == SMALL.automation_hosts * per_host
    assert 0 < len(rejected) < 0.02 * len(keyed)
    assert all(ms[-2].startswith("Failed publickey") for ms in rejected)


def test_crawlers_follow_stale_links_and_browsers_are_challenged_first(
    folders: dict[str, tuple[Path, Labels]],
) -> None:
    lines = (folders["web"][0] / "access.log").read_text(encoding="utf-8").splitlines()
    stale: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        if "bot" in line.lower() and '" 404 ' in line:
            stale[line.split()[0]].add(line.split('"')[1].split()[1])
    assert len(stale) >= 4
    assert max(len(paths) for paths in stale.values()) >= 30
    challenges = [line for line in lines if '/admin/ HTTP/1.1" 401' in line]
    assert any(" - - [" in line for line in challenges)  # the browser's first request


def test_basic_auth_users_are_challenged_then_mistype_once_or_twice_at_most(
    tmp_path: Path,
) -> None:
    traffic = Traffic(tmp_path, random.Random(3))
    Site(traffic).admins(START, 5, 40)
    traffic.close()
    visits: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in (tmp_path / "access.log").read_text(encoding="utf-8").splitlines():
        ip, _, user = line.split()[:3]
        visits[ip].append((user, line.split('" ')[1].split()[0]))
    wrong = 0
    for requests in visits.values():
        # each visit: a 401 without a user name, 0-2 with it, then 200s with it
        text = " ".join(
            "c" if (u, s) == ("-", "401") else "w" if s == "401" else "o" for u, s in requests
        )
        assert re.fullmatch(r"(c( w){0,2}( o)+ ?)+", text), text
        wrong += text.count("w")
    assert 0 < wrong < 0.2 * len([r for v in visits.values() for r in v])
