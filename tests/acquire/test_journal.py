"""Tests for the journal source against real journal files and a real journalctl.

The journal files are written by ``systemd-journal-remote`` (Debian package
``systemd-journal-remote``) from journal export format; ``journalctl`` comes with
``systemd``. Without them these tests skip, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.acquire import source_classes
from soc.acquire.journal import JournalSource, JournalSourceConfig
from soc.clock import ManualClock
from soc.errors import ConfigError, SourceError
from soc.events import Line

BOOT_ID = "0123456789abcdef0123456789abcdef"
MACHINE_ID = "fedcba9876543210fedcba9876543210"


def _find_journal_remote() -> str | None:
    found = shutil.which("systemd-journal-remote")
    if found:
        return found
    for candidate in (
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _require(what: str, found: object) -> None:
    if found:
        return
    message = f"{what} is not installed (apt-get install systemd systemd-journal-remote)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def journal_remote() -> str:
    _require("journalctl", shutil.which("journalctl"))
    remote = _find_journal_remote()
    _require("systemd-journal-remote", remote)
    assert remote is not None
    return remote


class Journal:
    """A directory holding one journal file that entries can be appended to."""

    def __init__(self, directory: Path, remote: str) -> None:
        self.directory = directory
        self.remote = remote
        self.seq = 0

    def append(self, *entries: tuple[str, str, str]) -> list[str]:
        """Append (identifier, unit, message) entries; return their messages."""
        blocks = []
        for identifier, unit, message in entries:
            self.seq += 1
            fields = {
                "__REALTIME_TIMESTAMP": str(1_700_000_000_000_000 + self.seq * 1_000_000),
                "__MONOTONIC_TIMESTAMP": str(self.seq * 1_000_000),
                "_BOOT_ID": BOOT_ID,
                "_MACHINE_ID": MACHINE_ID,
                "_HOSTNAME": "web1",
                "_SYSTEMD_UNIT": unit,
                "SYSLOG_IDENTIFIER": identifier,
                "_PID": str(1000 + self.seq),
                "PRIORITY": "6",
                "MESSAGE": message,
            }
            blocks.append("".join(f"{k}={v}\n" for k, v in fields.items()) + "\n")
        subprocess.run(
            [self.remote, f"--output={self.directory / 'remote.journal'}", "-"],
            input="".join(blocks).encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )
        return [message for _, _, message in entries]


@pytest.fixture
def journal(tmp_path: Path, journal_remote: str) -> Journal:
    directory = tmp_path / "journal"
    directory.mkdir()
    return Journal(directory, journal_remote)


def sshd(message: str) -> tuple[str, str, str]:
    return ("sshd", "ssh.service", message)


def make(journal: Journal, clock: ManualClock | None = None, **kwargs: object) -> JournalSource:
    config = JournalSourceConfig(directory=str(journal.directory), **kwargs)  # type: ignore[arg-type]
    return JournalSource("j", config, clock or ManualClock(start=1_700_000_000.0))


@pytest.fixture
def sources() -> Iterator[list[JournalSource]]:
    made: list[JournalSource] = []
    yield made
    for source in made:
        source.close()


def collect(source: JournalSource, count: int, timeout: float = 10.0) -> list[Line]:
    out: list[Line] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out.extend(source.read())
        if len(out) < count:
            time.sleep(0.01)
    return out


def settle(source: JournalSource, seconds: float = 0.5) -> list[Line]:
    out: list[Line] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.extend(source.read())
        time.sleep(0.01)
    return out


def messages(lines: list[Line]) -> list[str]:
    return [json.loads(line.text)["MESSAGE"] for line in lines]


def pid_of(source: JournalSource) -> int | None:
    """The property, read through a call so that the type checker does not pin it."""
    return source.child_pid


def wait_until_following(pid: int) -> None:
    """Wait until journalctl sleeps in poll(), i.e. it has seeked and is following."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except OSError:
            wchan = ""
        if "poll" in wchan:
            return
        time.sleep(0.01)
    time.sleep(1.0)  # no wchan to read: give it time


def test_registry_names_the_classes() -> None:
    assert source_classes("journal") == (JournalSourceConfig, JournalSource)


def test_reads_filtered_entries_as_json_lines_with_cursor(
    journal: Journal, sources: list[JournalSource]
) -> None:
    journal.append(
        sshd("Failed password for root from 10.0.0.1 port 22 ssh2"),
        ("CRON", "cron.service", "pam_unix(cron:session): session opened"),
        ("sshd-session", "ssh.service", "Invalid user bob from 10.0.0.2 port 4242"),
        sshd("Accepted publickey for alice from 10.0.0.3 port 5555 ssh2"),
    )
    source = make(journal, start_at="beginning")
    sources.append(source)
    lines = collect(source, 3)
    assert messages(lines) == [
        "Failed password for root from 10.0.0.1 port 22 ssh2",
        "Invalid user bob from 10.0.0.2 port 4242",
        "Accepted publickey for alice from 10.0.0.3 port 5555 ssh2",
    ]
    docs = [json.loads(line.text) for line in lines]
    assert [d["SYSLOG_IDENTIFIER"] for d in docs] == ["sshd", "sshd-session", "sshd"]
    assert docs[0]["_HOSTNAME"] == "web1"
    assert [line.line_no for line in lines] == [1, 2, 3]
    assert {line.stream for line in lines} == {f"journal:{journal.directory}"}
    assert source.checkpoint() == {"cursor": docs[-1]["__CURSOR"]}
    assert settle(source, 0.3) == []  # the CRON entry never shows up
    assert source.stats.lines == 3
    assert not source.exhausted


def test_follows_new_entries_and_resumes_after_the_cursor(
    journal: Journal, sources: list[JournalSource]
) -> None:
    journal.append(sshd("old 1"), sshd("old 2"))
    source = make(journal, start_at="beginning")
    sources.append(source)
    assert messages(collect(source, 2)) == ["old 1", "old 2"]
    journal.append(sshd("live 1"), sshd("live 2"))
    assert messages(collect(source, 2)) == ["live 1", "live 2"]
    state = source.checkpoint()
    assert state is not None
    source.close()
    assert source.child_pid is None

    # Written while nothing was following: a restart from the checkpoint gets exactly these.
    journal.append(*(sshd(f"while down {i}") for i in range(12)))
    resumed = make(journal, start_at="beginning")
    sources.append(resumed)
    resumed.restore(json.loads(json.dumps(state)))
    assert "--no-tail" in resumed.command()
    assert f"--after-cursor={state['cursor']}" in resumed.command()
    lines = collect(resumed, 12)
    assert messages(lines) == [f"while down {i}" for i in range(12)]
    assert settle(resumed, 0.3) == []


def test_start_at_end_yields_only_new_entries(
    journal: Journal, sources: list[JournalSource]
) -> None:
    journal.append(sshd("before start"))
    source = make(journal)  # start_at="end" is the default
    sources.append(source)
    assert list(source.read()) == []
    pid = source.child_pid
    assert pid is not None
    wait_until_following(pid)
    journal.append(sshd("after start"))
    assert messages(collect(source, 1)) == ["after start"]
    assert settle(source, 0.3) == []
    assert source.checkpoint() is not None


def test_units_filter(journal: Journal, sources: list[JournalSource]) -> None:
    journal.append(
        sshd("from ssh unit"),
        ("nginx", "nginx.service", "from nginx unit"),
        ("sshd", "other.service", "sshd outside the unit"),
    )
    source = make(journal, start_at="beginning", units=["nginx.service"])
    sources.append(source)
    assert messages(collect(source, 1)) == ["from nginx unit"]
    assert settle(source, 0.3) == []


def test_dead_child_is_counted_and_restarted_from_the_cursor(
    journal: Journal, sources: list[JournalSource]
) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    journal.append(sshd("one"), sshd("two"))
    source = make(journal, clock, start_at="beginning")
    sources.append(source)
    assert messages(collect(source, 2)) == ["one", "two"]
    pid = source.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while source.stats.anomalies["child_exit"] == 0 and time.monotonic() < deadline:
        list(source.read())
        time.sleep(0.01)
    assert source.stats.anomalies["child_exit"] == 1
    assert source.last_error is not None and "-9" in source.last_error
    journal.append(sshd("three"))
    assert settle(source, 0.2) == []  # backing off: no child yet
    assert pid_of(source) is None
    clock.advance(1.0)
    assert messages(collect(source, 1)) == ["three"]  # nothing yielded twice
    assert pid_of(source) not in (None, pid)


def test_child_dead_before_any_entry_restarts_since_its_first_start(
    journal: Journal, sources: list[JournalSource]
) -> None:
    journal.append(sshd("before start"))  # event time 1_700_000_001
    clock = ManualClock(start=1_700_000_001.5)
    source = make(journal, clock)
    sources.append(source)
    assert list(source.read()) == []
    pid = source.child_pid
    assert pid is not None
    wait_until_following(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while source.stats.anomalies["child_exit"] == 0 and time.monotonic() < deadline:
        list(source.read())
        time.sleep(0.01)
    assert source.stats.anomalies["child_exit"] == 1
    journal.append(sshd("while down"))  # event time 1_700_000_002
    clock.advance(1.0)
    assert "--since=@1700000001.500000" in source.command()
    assert messages(collect(source, 1)) == ["while down"]
    assert settle(source, 0.3) == []


def test_failing_journalctl_backs_off_doubling(tmp_path: Path) -> None:
    false = shutil.which("false")
    assert false is not None
    clock = ManualClock()
    source = JournalSource("j", JournalSourceConfig(journalctl=false), clock)
    try:

        def exits_after_reads() -> int:
            deadline = time.monotonic() + 10
            before = source.stats.anomalies["child_exit"]
            while source.stats.anomalies["child_exit"] == before and time.monotonic() < deadline:
                list(source.read())
                time.sleep(0.005)
            return source.stats.anomalies["child_exit"]

        assert exits_after_reads() == 1
        assert source.last_error == "journalctl exited with status 1: "
        settle(source, 0.1)
        assert source.stats.anomalies["child_exit"] == 1  # waits 1 s before the restart
        clock.advance(1.0)
        assert exits_after_reads() == 2
        clock.advance(1.0)
        settle(source, 0.1)
        assert source.stats.anomalies["child_exit"] == 2  # then 2 s
        clock.advance(1.0)
        assert exits_after_reads() == 3
    finally:
        source.close()


def test_missing_journalctl_or_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="journalctl not found"):
        JournalSource(
            "j", JournalSourceConfig(journalctl=str(tmp_path / "no-journalctl")), ManualClock()
        )
    _require("journalctl", shutil.which("journalctl"))
    with pytest.raises(SourceError, match="journal directory does not exist"):
        JournalSource("j", JournalSourceConfig(directory=str(tmp_path / "nope")), ManualClock())


def test_command_is_an_argument_list_and_restore_checks_the_cursor() -> None:
    _require("journalctl", shutil.which("journalctl"))
    source = JournalSource("j", JournalSourceConfig(), ManualClock())
    cmd = source.command()
    assert Path(cmd[0]).is_absolute()
    assert cmd[1:] == [
        "--output=json",
        "--follow",
        "--no-pager",
        "--all",
        "--identifier=sshd",
        "--identifier=sshd-session",
        "--lines=0",
    ]
    with pytest.raises(SourceError, match="no valid journal cursor"):
        source.restore({"cursor": "s=1;i=2; --directory=/etc"})
    with pytest.raises(SourceError, match="no valid journal cursor"):
        source.restore({})
    assert source.checkpoint() is None


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"units": ["-x"]}, "units"),
        ({"units": "ssh.service"}, "units"),
        ({"identifiers": [""]}, "identifiers"),
        ({"identifiers": ["a\nb"]}, "identifiers"),
        ({"journalctl": ""}, "journalctl"),
        ({"directory": ""}, "directory"),
        ({"start_at": "middle"}, "start_at"),
    ],
)
def test_config_validation_names_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        JournalSourceConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.where == key
