"""The generated scenarios: deterministic from the seed, parsed to the last line, labelled."""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from soc.cli import main
from soc.evaluate import SCENARIOS, SIZES
from soc.evaluate.labels import Labels
from soc.evaluate.scenarios import ATTACK, LEGITIMATE, scenario
from soc.evaluate.traffic import YEAR
from soc.events import INCIDENT_KINDS, Event
from soc.parse import ParseConfig, iter_parse_file

SMALL = SIZES["small"]
_PID = re.compile(r" sshd\[(\d+)\]: ")
_CLIENT = re.compile(r"(?:from|by|with|user \S+) (\S+) port (\d+)")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Labels]]:
    """Every small scenario written once, with seed 7."""
    root = tmp_path_factory.mktemp("scenarios")
    return {s.name: (root / s.name, s.write(root / s.name, SMALL, 7)) for s in SCENARIOS}


def _events(folder: Path) -> dict[str, list[Event]]:
    config = ParseConfig(timezone="UTC", year=YEAR)
    return {
        path.name: [e for _, e in iter_parse_file(path, config) if isinstance(e, Event)]
        for path in sorted(folder.iterdir())
    }


def test_the_same_seed_writes_the_same_files_and_labels(
    written: dict[str, tuple[Path, Labels]], tmp_path: Path
) -> None:
    random.seed(1234)
    state = random.getstate()
    for s in SCENARIOS:
        folder, labels = written[s.name]
        again = s.write(tmp_path / s.name, SMALL, 7)
        assert again == labels, s.name
        for path in folder.iterdir():
            assert (tmp_path / s.name / path.name).read_bytes() == path.read_bytes(), path
    assert random.getstate() == state  # the global generator is never touched


def test_another_seed_writes_other_traffic(
    written: dict[str, tuple[Path, Labels]], tmp_path: Path
) -> None:
    for name in ("password_users", "brute_force", "web"):
        folder, labels = written[name]
        other = scenario(name).write(tmp_path / name, SMALL, 8)
        assert other != labels
        first = next(iter(labels.lines))
        assert (tmp_path / name / first).read_bytes() != (folder / first).read_bytes()


def test_every_generated_line_parses(
    written: dict[str, tuple[Path, Labels]], capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (folder, labels) in written.items():
        assert sorted(p.name for p in folder.iterdir()) == sorted(labels.lines), name
        for path in sorted(folder.iterdir()):
            args = ["parse", str(path), "--stats", "--json", "--timezone", "UTC"]
            assert main([*args, "--year", str(YEAR)]) == 0
            stats = json.loads(capsys.readouterr().out)
            assert stats["unparsed"] == 0, (name, path.name, stats["unparsed_by_reason"])
            assert stats["lines"] == labels.lines[path.name] > 0


def test_lines_are_in_time_order_with_one_sshd_pid_per_connection(
    written: dict[str, tuple[Path, Labels]],
) -> None:
    for name, (folder, _) in written.items():
        for file, events in _events(folder).items():
            stamps = [e.timestamp for e in events if e.timestamp is not None]
            assert stamps == sorted(stamps), (name, file)
        auth = folder / "auth.log"
        if not auth.exists():
            continue
        clients: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for line in auth.read_text(encoding="utf-8").splitlines():
            pid = _PID.search(line)
            client = _CLIENT.search(line)
            if pid and client and "rhost=" not in line:
                clients[pid.group(1)].add((client.group(1), client.group(2)))
        assert clients, name
        shared = {pid: c for pid, c in clients.items() if len(c) > 1}
        assert not shared, (name, list(shared.items())[:3])


def test_labels_cover_every_address_and_agree_with_each_other(
    written: dict[str, tuple[Path, Labels]],
) -> None:
    for s in SCENARIOS:
        folder, labels = written[s.name]
        legitimate, hostile = labels.legitimate_addresses, labels.hostile_addresses
        assert legitimate, s.name
        assert not legitimate & hostile, (s.name, sorted(legitimate & hostile)[:5])
        seen = {e.source_ip for events in _events(folder).values() for e in events}
        seen.discard(None)
        assert seen == legitimate | hostile, s.name
        assert sum(c.lines for c in labels.campaigns) == sum(labels.lines.values())
        for campaign in labels.campaigns:
            # only the server's own jobs (cron) show no source address
            assert campaign.addresses or campaign.name == "cron", (s.name, campaign.name)
            assert campaign.kind is None or campaign.kind in INCIDENT_KINDS
            assert campaign.also <= set(INCIDENT_KINDS)
            assert not (campaign.legitimate and campaign.also)
        if s.group == LEGITIMATE:
            assert not hostile, s.name
        if s.group == ATTACK:
            assert labels.attacks, s.name
            assert all(c.complete for c in labels.attacks), s.name


def test_the_attack_mix_holds_every_incident_kind(
    written: dict[str, tuple[Path, Labels]],
) -> None:
    _, labels = written["attack_mix"]
    kinds = Counter(c.kind for c in labels.attacks)
    assert set(kinds) == set(INCIDENT_KINDS)
    assert kinds["credential_compromise"] == 3  # after a brute force, a spray, by a bot
    _, background = written["background"]
    assert {c.kind for c in background.attacks} >= {
        "brute_force", "password_spray", "slow_brute_force"
    }  # fmt: skip
