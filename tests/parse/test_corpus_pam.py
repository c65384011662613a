"""Our PAM events against fail2ban's annotated pam-generic log."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.parse import make_parser
from soc.parse.base import ParseConfig
from tests.parse import fail2ban_corpus
from tests.parse.fail2ban_corpus import (
    CORPUS_NOW,
    CORPUS_ZONE,
    corpus_file,
    read_rows,
    report,
    rows_for,
    score,
)

#: Linux-PAM before 0.99.2 put the module in the syslog tag; fail2ban dropped that
#: format, but the line still records a failed authentication, so we report it.
OLD_FORMAT = {12: "pop(pam_unix)[4920]: authentication failure;"}


def test_pam_generic_agreement(request: pytest.FixtureRequest) -> None:
    rows = rows_for(read_rows(corpus_file("pam-generic")), "pam-generic", "normal")
    assert len(rows) == 9
    for row, _ in rows:
        if row.number in OLD_FORMAT:
            assert OLD_FORMAT[row.number] in row.text
    parser = make_parser(
        ParseConfig(format="syslog", timezone=CORPUS_ZONE), reference_time=CORPUS_NOW
    )
    s = score(rows, parser.parse)
    report(request.config, s.table("pam-generic"))
    assert (s.true_rows, s.true_on_line, s.agreed) == (8, 8, 8)
    assert s.wrong_address == []
    assert s.missed == []
    assert (s.false_rows, s.false_agreed) == (1, 0)
    assert s.reported == sorted(OLD_FORMAT)
    assert s.wrong_time == []
    assert s.wrong_user == []


def test_missing_corpus_skips_locally_and_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fail2ban_corpus, "CORPORA", tmp_path / "absent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="fail2ban corpus not found"):
        fail2ban_corpus.corpus_file("sshd")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must provide this"):
        fail2ban_corpus.corpus_file("sshd")
