"""The ``soc`` command line: exact output of parse, samples and error handling."""

from __future__ import annotations

import gc
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc import __version__
from soc.acquire.base import MAX_LINE_BYTES
from soc.cli import GC_THRESHOLD, main
from soc.engine import Engine
from soc.redact import process_secrets
from tests.conftest import require

REPO = Path(__file__).resolve().parent.parent

LINES = [
    "Nov 21 10:00:01 web01 sshd[100]: Failed password for root from 203.0.113.9 port 40000 ssh2",
    "Nov 21 10:00:02 web01 sshd[100]: Connection closed by 203.0.113.9 port 40000 [preauth]",
    "Nov 21 10:00:03 web01 sshd[101]: Invalid user admin from files.example.net port 5000",
    "Nov 21 10:00:04 web01 sshd[102]: Failed password for root from ::ffff:192.0.2.5 port 1 ssh2",
    "Nov 21 10:00:05 web01 sshd[103]: Server listening on :: port 22.",
    "garbage \xff that no parser understands",
]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """A command registers its configuration's secrets process-wide: forget them after."""
    yield
    process_secrets().clear()


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "auth.log"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def _jsonl(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["parse", *args, "--jsonl"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_parse_jsonl_gives_one_object_per_line_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _jsonl(capsys, str(_log(tmp_path)), "--timezone", "UTC", "--year", "2025")
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5, 6]
    failed = rows[0]["event"]
    assert failed == {
        "@timestamp": "2025-11-21T10:00:01.000000Z",
        "event": {
            "kind": "event",
            "category": ["authentication"],
            "action": "ssh_login",
            "outcome": "failure",
            "reason": failed["event"]["reason"],  # type: ignore[index]
            "dataset": "sshd",
        },
        "source": {"ip": "203.0.113.9", "port": 40000},
        "user": {"name": "root"},
        "host": {"hostname": "web01"},
        "process": {"name": "sshd", "pid": 100},
        "soc": {"kind": "auth_failure", "count": 1},
        "log": {"file": {"line": 1}},
    }
    # a host name stays a name, in source.address, never resolved
    invalid = rows[2]["event"]
    assert invalid["event"]["outcome"] == "failure"  # type: ignore[index]
    assert invalid["source"] == {"address": "files.example.net", "port": 5000}  # type: ignore[index]
    # IPv4-mapped IPv6 is reported as the IPv4 address
    assert rows[3]["event"]["source"]["ip"] == "192.0.2.5"  # type: ignore[index]
    assert rows[4]["event"] is None  # recognised, not a security event
    assert rows[5]["event"] is None  # not understood


def test_parse_stats_prints_counts_by_kind_and_unparsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", str(_log(tmp_path)), "--stats", "--timezone", "UTC"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ["lines     6", "events    4"]
    assert "  auth_failure      2" in out
    assert "  invalid_user      1" in out
    assert "  preauth           1" in out
    assert "unparsed  1" in out
    assert main(["parse", str(_log(tmp_path)), "--stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["lines"] == 6
    assert stats["unparsed"] == 1
    assert stats["by_kind"] == {"auth_failure": 2, "invalid_user": 1, "preauth": 1}


def test_parse_reads_gzip_and_a_forced_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "auth.log.1.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(LINES) + "\n")
    rows = _jsonl(capsys, str(path), "--format", "syslog")
    assert len(rows) == len(LINES)
    assert rows[0]["event"]["source"]["ip"] == "203.0.113.9"  # type: ignore[index]
    # the same sshd lines forced through the web access parser give no events
    rows = _jsonl(capsys, str(path), "--format", "web_access")
    assert all(row["event"] is None for row in rows)


def _anomaly_block(out: str) -> list[str]:
    """The ``anomalies N`` line and the reason lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("anomalies "))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return lines[start:end]


def test_parse_stats_counts_decoding_anomalies_as_replay_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "auth.log"
    over_long = b"Nov 21 10:00:06 web01 sshd[104]: " + b"x" * (MAX_LINE_BYTES + 100)
    invalid = b"Nov 21 10:00:07 web01 sshd[105]: bad \xff\xfe bytes"
    path.write_bytes("\n".join(LINES).encode() + b"\n" + over_long + b"\n" + invalid + b"\n")
    expected = {"invalid_utf8": 1, "truncated": 1}

    assert main(["parse", str(path), "--stats", "--timezone", "UTC"]) == 0
    parsed = _anomaly_block(capsys.readouterr().out)
    assert parsed == ["anomalies 2", "  invalid_utf8      1", "  truncated         1"]
    assert main(["parse", str(path), "--stats", "--json", "--timezone", "UTC"]) == 0
    assert json.loads(capsys.readouterr().out)["anomalies"] == expected

    replay = ["replay", str(path), "--timezone", "UTC", "--analyst", "none"]
    assert main(replay) == 0
    assert _anomaly_block(capsys.readouterr().out) == parsed
    assert main([*replay, "--summary-json", "-"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["anomalies"] == expected
    assert {k: summary["acquire"]["replay"][k] for k in expected} == expected

    # A clean file: parse says so, replay prints nothing about it.
    assert main(["parse", str(_log(tmp_path)), "--stats"]) == 0
    assert _anomaly_block(capsys.readouterr().out) == ["anomalies 0"]
    assert main(["replay", str(_log(tmp_path)), "--analyst", "none"]) == 0
    assert "anomalies" not in capsys.readouterr().out


def test_unknown_format_and_missing_file_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", str(_log(tmp_path)), "--format", "klingon", "--stats"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("soc: error: format: unknown format 'klingon'")
    assert main(["parse", str(tmp_path / "missing.log"), "--stats"]) == 2
    assert "missing.log" in capsys.readouterr().err


def test_samples_command_writes_deterministic_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["samples", "--out", str(tmp_path / "a"), "--formats", "auth.log"]) == 0
    written = [Path(p) for p in capsys.readouterr().out.splitlines()]
    assert [p.name for p in written] == ["auth.log", "README.md"]
    assert (tmp_path / "a" / "auth.log").read_bytes() == (
        REPO / "data" / "samples" / "auth.log"
    ).read_bytes()


def test_console_script_and_python_dash_m_agree() -> None:
    script = Path(sys.executable).parent / "soc"
    require(script.exists(), f"the soc console script is not installed next to {sys.executable}")
    for command in ([str(script)], [sys.executable, "-m", "soc"]):
        out = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, check=True, cwd=REPO
        )
        assert out.stdout.strip() == f"soc {__version__}"


# --- secrets never shown --------------------------------------------------------------------
# Test values, never real credentials.
DB_PASSWORD = "Db-Passw0rd-771"  # noqa: S105
ES_PASSWORD = "Es-Passw0rd-552"  # noqa: S105
HOOK_TOKEN = "hook-T0ken-9931"  # noqa: S105
GEMINI_KEY = "AIzaSyCli-test-key-5b8d41c0e2"


def test_config_prints_no_password_token_or_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./soc.toml, no .streamlit/secrets.toml
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    config = tmp_path / "soc.toml"
    config.write_text(
        f"""
[store]
url = "postgresql+psycopg2://soc:{DB_PASSWORD}@db.example:5432/soc"

[analyze]
openai_base_url = "https://llm.example/v1?api_key={GEMINI_KEY.lower()}"

[[exports]]
type = "elasticsearch"
hosts = ["https://elastic:{ES_PASSWORD}@es.example:9200", "https://es2.example:9200"]

[[exports]]
type = "webhook"
url = "https://hooks.example/in?channel=soc&token={HOOK_TOKEN}"
""",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "config"]) == 0
    out = capsys.readouterr().out
    for secret in (DB_PASSWORD, ES_PASSWORD, HOOK_TOKEN, GEMINI_KEY, GEMINI_KEY.lower()):
        assert secret not in out
    described = json.loads(out)
    assert described["store"]["url"] == "postgresql+psycopg2://soc:***@db.example:5432/soc"
    assert described["analyze"]["openai_base_url"] == "https://llm.example/v1?api_key=***"
    elastic, webhook = described["exports"]
    assert elastic["hosts"] == ["https://elastic:***@es.example:9200", "https://es2.example:9200"]
    assert webhook["url"] == "https://hooks.example/in?channel=soc&token=***"
    assert described["secrets"]["gemini_api_key"] is True


def test_a_store_that_cannot_be_reached_is_one_line_without_its_password(
    tmp_path: Path,
) -> None:
    # A real process: what reaches the terminal, logs included. Port 1 refuses.
    url = f"postgresql+psycopg2://soc:{DB_PASSWORD}@127.0.0.1:1/soc"
    done = subprocess.run(
        [sys.executable, "-m", "soc", "incidents", "--db", url],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    err = done.stderr
    assert err.startswith("soc: error: postgresql+psycopg2://soc:***@127.0.0.1:1/soc: cannot open")
    assert "Connection refused" in err
    assert err.count("\n") == 1
    assert DB_PASSWORD not in err


def test_the_pipeline_runs_with_fewer_cycle_collections_and_restores_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay runs with the collector's first threshold raised; on return (a test's
    own process) the caller's thresholds are back."""
    samples = Path(__file__).resolve().parents[1] / "data" / "samples"
    seen: list[tuple[int, int, int]] = []
    step = Engine.step

    def watched(engine: Engine) -> int:
        seen.append(gc.get_threshold())
        return step(engine)

    monkeypatch.setattr(Engine, "step", watched)
    before = gc.get_threshold()
    assert before[0] != GC_THRESHOLD
    common = ["--analyst", "none", "--timezone", "UTC", "--year", "2025"]
    assert main(["replay", str(samples / "auth.log"), *common]) == 0
    assert seen
    assert set(seen) == {(GC_THRESHOLD, *before[1:])}
    assert gc.get_threshold() == before
