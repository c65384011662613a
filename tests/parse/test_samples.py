"""Every annotated sample log gives exactly what its annotations say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.parse.samples_format import (
    SampleError,
    check_sample,
    load_sample,
    lookup,
    sample_files,
)

SAMPLES = sample_files()


def test_there_are_samples() -> None:
    assert len(SAMPLES) >= 9


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample(path: Path) -> None:
    sample = load_sample(path)
    assert sample.lines, f"{path.name} has no log lines"
    problems = check_sample(sample)
    assert problems == [], "\n".join(problems)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.log"
    path.write_text(text, encoding="utf-8")
    return path


def test_loader_reads_directives_and_expectations(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# format: syslog\n# timezone: Europe/Paris\n# year: 2024\n"
        "# reference: 2024-06-01T00:00:00Z\n\n"
        '# expect: {"pattern": "sshd.listening", "event": null}\n'
        "# a comment between the expectation and its line\n"
        "Jun  1 00:00:00 h sshd[1]: Server listening on 0.0.0.0 port 22.\n"
        "Jun  1 00:00:01 h CRON[2]: (root) CMD (true)\n",
    )
    sample = load_sample(path)
    assert (sample.format, sample.timezone, sample.year) == ("syslog", "Europe/Paris", 2024)
    assert sample.reference_time == 1717200000.0
    first, second = sample.lines
    assert first.expect is not None and first.expect.pattern == "sshd.listening"
    assert first.number == 8 and second.expect is None
    assert sample.patterns == {"sshd.listening"}
    assert check_sample(sample) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Jun  1 00:00:00 h sshd[1]: x\n", "no '# format:'"),
        ('# format: syslog\n# expect: {"pattern": null, "event": null}\n', "has no line"),
        ('# format: syslog\n# expect: {"event": null}\nJun  1 00:00:00 h x\n', "needs both"),
        ("# format: syslog\n# expect: {nope}\nJun  1 00:00:00 h x\n", "not JSON"),
        (
            '# format: syslog\n# expect: {"pattern": null, "event": null}\n'
            '# expect: {"pattern": null, "event": null}\nJun  1 00:00:00 h x\n',
            "two expectations",
        ),
    ],
)
def test_loader_refuses_broken_samples(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SampleError, match=message):
        load_sample(_write(tmp_path, text))


def test_checker_reports_every_kind_of_disagreement(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# format: syslog\n# year: 2025\n"
        '# expect: {"pattern": "sshd.failed_password", "event": {"soc.kind": "invalid_user",'
        ' "user.name": "root", "source.port": 1}}\n'
        "Nov 21 23:14:28 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
        '# expect: {"pattern": "sshd.listening", "event": null}\n'
        "Nov 21 23:14:29 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
        "Nov 21 23:14:30 h sshd[1]: Invalid user x from 192.0.2.1 port 22\n"
        '# expect: {"pattern": null, "event": null, "skip": "bad_timestamp"}\n'
        "garbage\n",
    )
    problems = check_sample(load_sample(path))
    assert any("soc.kind = 'auth_failure', expected 'invalid_user'" in p for p in problems)
    assert any("source.port = 22, expected 1" in p for p in problems)
    assert any("pattern 'sshd.failed_password', expected 'sshd.listening'" in p for p in problems)
    assert any("expected no event" in p for p in problems)
    assert any("unannotated line gave an event" in p for p in problems)
    assert any("skip 'no_match', expected 'bad_timestamp'" in p for p in problems)
    assert not any("user.name" in p for p in problems)
    assert len(problems) == 6


def test_lookup_takes_dotted_paths_and_short_names() -> None:
    doc = {"@timestamp": "t", "soc": {"kind": "k", "count": 2}, "event": {"outcome": "o"}}
    assert lookup(doc, "@timestamp") == "t"
    assert lookup(doc, "soc.kind") == "k"
    assert lookup(doc, "kind") == "k"
    assert lookup(doc, "count") == 2
    assert lookup(doc, "outcome") == "o"
    assert lookup(doc, "source.ip") is not None  # the missing marker, never None
    assert lookup(doc, "source.ip") != "k"
