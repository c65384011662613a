"""``soc similar``, ``soc search``, ``soc intel`` and intel in a replay, end to end.

The bundled samples replayed into a SQLite file through the real pipeline, the
real embedding model and FAISS; an intel blocklist naming one of their attackers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.cli import main
from soc.redact import process_secrets
from soc.store import open_store

REPO = Path(__file__).resolve().parent.parent
SAMPLES = [
    str(REPO / "data/samples" / name) for name in ("auth.log", "nginx-access.log", "ufw.log")
]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    process_secrets().clear()


def _replay(
    capsys: pytest.CaptureFixture[str], db: str, config: Path, *extra: str
) -> dict[str, object]:
    args = ["--config", str(config), "replay", *SAMPLES, "--year", "2025", "--timezone", "UTC"]
    assert main([*args, "--db", db, "--analyst", "offline", "--summary-json", "-", *extra]) == 0
    summary: dict[str, object] = json.loads(capsys.readouterr().out)
    return summary


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The samples replayed once into a SQLite file (its index beside it)."""
    tmp = tmp_path_factory.mktemp("memory")
    config = tmp / "soc.toml"
    config.write_text("", encoding="utf-8")
    db = f"sqlite:///{tmp / 'soc.db'}"
    args = ["--config", str(config), "replay", *SAMPLES, "--year", "2025", "--timezone", "UTC"]
    assert main([*args, "--db", db, "--analyst", "offline"]) == 0
    process_secrets().clear()
    return db, config


def test_the_index_is_kept_beside_the_store_and_search_finds_the_kind(
    replayed: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = replayed
    capsys.readouterr()
    assert (Path(db.removeprefix("sqlite:///")).parent / "soc.similar.faiss").is_file()
    for text, kind in (
        ("password spray: one address trying many different user names", "password_spray"),
        ("port scan against many ports, dropped by the firewall", "port_scan"),
        ("web scanner probing admin paths and backup files", "web_scan"),
    ):
        assert main(["--config", str(config), "search", text, "--db", db, "--json"]) == 0
        results = json.loads(capsys.readouterr().out)
        assert results and results[0]["kind"] == kind, (text, results[:2])
        assert all(0 < r["score"] <= 1 for r in results)


def test_similar_lists_others_best_first_and_rebuild_gives_the_same(
    replayed: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = replayed
    store = open_store(db)
    try:
        incidents = store.list_incidents(limit=100)
    finally:
        store.close()
    target = next(i for i in incidents if i.kind == "password_spray")
    base = ["--config", str(config), "similar", str(target.id), "--db", db, "--json", "-k", "3"]
    capsys.readouterr()
    assert main(base) == 0
    before = json.loads(capsys.readouterr().out)
    assert len(before) == 3 and target.id not in [r["incident_id"] for r in before]
    assert [r["score"] for r in before] == sorted((r["score"] for r in before), reverse=True)
    assert main(["--config", str(config), "similar", "--rebuild", "--db", db]) == 0
    assert capsys.readouterr().out == f"{len(incidents)} incidents embedded\n"
    assert main(base) == 0
    after = json.loads(capsys.readouterr().out)
    assert [r["incident_id"] for r in after] == [r["incident_id"] for r in before]
    # text output, one line per match
    assert main(base[:-3]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.startswith("#") for line in lines)


def test_similar_of_a_missing_incident_is_a_one_line_error(
    replayed: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, config = replayed
    assert main(["--config", str(config), "similar", "99999", "--db", db]) == 2
    assert capsys.readouterr().err == "soc: error: soc similar: no incident 99999\n"


def test_a_blocklisted_attacker_carries_the_hit_and_a_raised_severity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain_config = tmp_path / "plain.toml"
    plain_config.write_text("[similar]\nenabled = false\n", encoding="utf-8")
    summary = _replay(capsys, "sqlite://", plain_config)
    incidents = summary["incidents"]
    assert isinstance(incidents, list)
    target = next(i for i in incidents if i["kind"] == "password_spray")
    address = target["source_ips"][0]
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text(
        f"# spray sources\n{address}   # seen by a partner\n100.64.0.0/24\nnot-an-address\n",
        encoding="utf-8",
    )
    config = tmp_path / "soc.toml"
    config.write_text(
        "[similar]\nenabled = false\n\n"
        f'[[intel]]\nname = "partners"\ntype = "blocklist"\npath = "{blocklist}"\n'
        'confidence = 90\nlabels = ["spray"]\n',
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'intel.db'}"
    _replay(capsys, db, config)
    store = open_store(db)
    try:
        hit = next(i for i in store.list_incidents(limit=100) if address in i.source_ips)
        others = [i for i in store.list_incidents(limit=100) if address not in i.source_ips]
    finally:
        store.close()
    (intel,) = [h for h in hit.facts["intel"] if h["address"] == address]
    assert intel["confidence"] == 90 and intel["labels"] == ["spray"]
    before, after = hit.facts["intel_severity"]["before"], hit.facts["intel_severity"]["after"]
    assert before == target["severity"] and after == hit.severity != before
    assert all("intel" not in i.facts for i in others)

    assert main(["--config", str(config), "intel", "--json"]) == 0
    (status,) = json.loads(capsys.readouterr().out)
    assert status["networks"] == 2 and sum(status["skipped"].values()) == 1
    assert main(["--config", str(config), "intel", "--lookup", address]) == 0
    assert "confidence 90" in capsys.readouterr().out
    assert main(["--config", str(config), "intel", "--lookup", "no.such.host"]) == 2
    assert capsys.readouterr().err == "soc: error: --lookup: not an IP address\n"


def _campaign(address: str, start_minute: int) -> list[str]:
    """A password guesser: 40 failures for root and admin over two minutes."""
    lines = []
    for n in range(40):
        second = start_minute * 60 + n * 3
        stamp = f"Nov 21 {10 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        user = ("root", "admin")[n % 2]
        lines.append(
            f"{stamp} web01 sshd[{4000 + n}]: Failed password for {user} from {address} "
            f"port {40000 + n} ssh2"
        )
    return lines


def test_a_replay_reuses_a_report_for_the_same_attack_from_another_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.analyze.fake_openai import API_KEY, FakeOpenAI

    log = tmp_path / "auth.log"
    log.write_text(
        "\n".join(_campaign("203.0.113.9", 0) + _campaign("198.51.100.7", 30)) + "\n",
        encoding="utf-8",
    )
    args = [str(log), "--year", "2025", "--timezone", "UTC", "--summary-json", "-"]
    assert main(["replay", *args, "--analyst", "none"]) == 0
    found = json.loads(capsys.readouterr().out)["incidents"]
    assert [i["kind"] for i in found] == ["brute_force", "brute_force"]
    severity = found[0]["severity"]
    assert found[1]["severity"] == severity
    with FakeOpenAI() as fake:
        fake.default_text = json.dumps(
            {
                "summary": "Password guessing against root and admin over SSH.",
                "what_happened": "One address tried passwords for root and admin in turn.",
                "assessment": "Commodity guessing; no login succeeded.",
                "severity": severity,
                "confidence": "high",
            }
        )
        config = tmp_path / "soc.toml"
        config.write_text(
            '[analyze]\nchain = ["openai_compatible"]\nbatch_below_severity = "low"\n'
            f'openai_base_url = "{fake.url}/v1"\nopenai_model = "test-model"\n',
            encoding="utf-8",
        )
        env_key = {"SOC_OPENAI_API_KEY": API_KEY}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env_key.items():
                patch.setenv(name, value)
            db = f"sqlite:///{tmp_path / 'soc.db'}"
            assert main(["--config", str(config), "replay", *args, "--db", db]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert len(fake.chat_requests()) == 1  # one model call for the two incidents
    assert summary["llm"]["calls"] == 1 and summary["llm"]["cache_hits"] == 1
    store = open_store(db)
    try:
        first, second = sorted(store.list_incidents(), key=lambda i: i.first_seen)
        (reused,) = store.analyses(int(second.id or 0))
    finally:
        store.close()
    assert reused.reused and reused.structured["reused_from"]["incident_id"] == first.id
    assert "198.51.100.7" in reused.markdown and "203.0.113.9" not in reused.markdown
