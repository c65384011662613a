"""``soc playbooks``, ``soc respond`` and ``soc blocks``: exact output, exit statuses, audit.

The commands run in-process against a SQLite file holding incidents, on a clock
the test moves. Enforcement runs a real subprocess: ``command_prefix`` names a
small script that records its argv and exits as told, so the fail2ban backend's
commands go through the real runner without a fail2ban server (and without root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.cli import main
from soc.clock import ManualClock
from soc.detect.rules import playbooks_by_kind
from soc.redact import process_secrets
from soc.respond.actions import ACTIONS
from soc.store import open_store
from soc.store.response import ResponseLog
from tests.store.builders import T0, make_incident

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
NOW = T0 + 3600  # 2025-11-21 11:00:00 UTC
INJECTION = "1.2.3.4; rm -rf /"

NFT_SETUP = (
    "  $ nft add table inet soc_response ';'"
    " add set inet soc_response block4 '{' type ipv4_addr ';' flags interval, timeout ';' '}' ';'"
    " add set inet soc_response block6 '{' type ipv6_addr ';' flags interval, timeout ';' '}' ';'"
    " add chain inet soc_response input"
    " '{' type filter hook input priority -10 ';' policy accept ';' '}' ';'"
    " flush chain inet soc_response input ';'"
    " add rule inet soc_response input ip saddr @block4 drop ';'"
    " add rule inet soc_response input ip6 saddr @block6 drop ';'"
    " add chain inet soc_response forward"
    " '{' type filter hook forward priority -10 ';' policy accept ';' '}' ';'"
    " flush chain inet soc_response forward ';'"
    " add rule inet soc_response forward ip saddr @block4 drop ';'"
    " add rule inet soc_response forward ip6 saddr @block6 drop\n"
)
NFT_BLOCK = (
    "  $ nft add element inet soc_response block4 '{' 203.0.113.9 '}' ';'"
    " delete element inet soc_response block4 '{' 203.0.113.9 '}' ';'"
    " add element inet soc_response block4 '{' 203.0.113.9 timeout 86400s '}'\n"
)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    process_secrets().clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The clock every command in the test reads, and the OS user it runs as."""
    manual = ManualClock(NOW)
    monkeypatch.setattr("soc.cli_respond.SystemClock", lambda: manual)
    monkeypatch.setattr("soc.cli_respond.getpass.getuser", lambda: "tester")
    return manual


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store with a brute force from 203.0.113.9 (#1) and one whose address is a command (#2)."""
    url = f"sqlite:///{tmp_path / 'soc.db'}"
    store = open_store(url)
    try:
        with store.transaction(now=T0) as tx:
            tx.upsert_incident(make_incident("203.0.113.9"), "203.0.113.9")
            tx.upsert_incident(make_incident(INJECTION), INJECTION)
    finally:
        store.close()
    return url


def _config(tmp_path: Path, db: str, respond: str = "", playbooks: Path = PLAYBOOKS) -> Path:
    path = tmp_path / "soc.toml"
    path.write_text(
        f'[store]\nurl = "{db}"\n\n[respond]\nplaybooks_dir = "{playbooks}"\n{respond}',
        encoding="utf-8",
    )
    return path


def _fake_root(tmp_path: Path, exit_on: str = "", status: int = 0) -> Path:
    """A command prefix that records the command it is given and exits 0 (``status`` when
    the command holds ``exit_on``), printing what fail2ban-client would say."""
    script = tmp_path / "fake-root"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> '{tmp_path / 'argv.log'}'\n"
        f'case " $* " in *" {exit_on or "-never-"} "*)'
        f" echo \"ERROR  NOK: ('jail sshd does not exist',)\"; exit {status};; esac\n"
        "exit 0\n",
        encoding="utf-8",
    )
    script.chmod(0o700)
    return script


def _recorded(tmp_path: Path) -> list[str]:
    log = tmp_path / "argv.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def _enforcing(tmp_path: Path, db: str, exit_on: str = "", status: int = 0) -> Path:
    """A configuration that enforces everything, with the fail2ban backend behind the script."""
    script = _fake_root(tmp_path, exit_on, status)
    return _config(
        tmp_path,
        db,
        f'mode = "enforce"\nfirewall = "fail2ban"\ncommand_prefix = ["{script}"]\n',
    )


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


# --- soc playbooks -----------------------------------------------------------------------
def test_playbooks_lists_the_shipped_ones_and_who_recommends_them(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db)
    assert _run(capsys, "--config", str(config), "playbooks") == (
        0,
        f"8 playbooks in {PLAYBOOKS} (mode dry_run; firewall nftables)\n"
        "\n"
        "block-15m  TTL 15m\n"
        "  Block the attacking addresses for 15 minutes (slows a fast attacker, spares a"
        " mistyping user).\n"
        "  steps: block_ip, annotate\n"
        "  recommended for: no incident kind\n"
        "\n"
        "block-1h  TTL 1h\n"
        "  Block the attacking addresses at the firewall for one hour and mark the incident"
        " triaged.\n"
        "  steps: block_ip, annotate, set_status\n"
        "  recommended for: no incident kind\n"
        "\n"
        "block-and-notify  TTL 1d\n"
        "  Block the attacking addresses for 24 hours and tell the team in chat.\n"
        "  steps: block_ip, notify, annotate, set_status\n"
        "  recommended for: no incident kind\n"
        "\n"
        "block-source  TTL 1d\n"
        "  Block the attacking addresses at the firewall for 24 hours and mark the incident"
        " triaged.\n"
        "  steps: block_ip, annotate, set_status\n"
        "  recommended for: brute_force, password_spray, port_scan, slow_brute_force,"
        " web_auth_brute_force, web_scan\n"
        "\n"
        "contain-account  TTL 7d\n"
        "  Lock the account that logged in, block its source for 7 days, notify, open a ticket,"
        " export to the SIEM.\n"
        "  steps: disable_user, block_ip, notify, open_ticket, export_to_elastic, annotate,"
        " set_status\n"
        "  recommended for: credential_compromise\n"
        "\n"
        "escalate  TTL 1h\n"
        "  Open a ticket and send the alert to the SIEM for a second look.\n"
        "  steps: open_ticket, export_to_elastic, annotate\n"
        "  recommended for: no incident kind\n"
        "\n"
        "notify-team  TTL 1h\n"
        "  Tell the team in chat, send the alert to the SIEM and note it on the incident.\n"
        "  steps: notify, export_to_elastic, annotate\n"
        "  recommended for: distributed_brute_force\n"
        "\n"
        "release  TTL 1h\n"
        "  Lift the blocks on the incident's source addresses and unlock its accounts.\n"
        "  steps: unblock_ip, enable_user, annotate\n"
        "  recommended for: no incident kind\n",
        "",
    )


def test_playbooks_json_covers_every_kind_the_rules_name(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(capsys, "--config", str(_config(tmp_path, db)), "playbooks", "--json")
    assert status == 0
    rows = json.loads(out)
    by_name = {row["name"]: row for row in rows}
    assert by_name["block-source"] == {
        "name": "block-source",
        "description": "Block the attacking addresses at the firewall for 24 hours and mark"
        " the incident triaged.",
        "ttl_seconds": 86400,
        "ttl": "1d",
        "steps": [
            {"action": "block_ip"},
            {
                "action": "annotate",
                "note": "{actor} blocked the source addresses for {ttl} ({playbook})",
            },
            {"action": "set_status", "status": "triaged"},
        ],
        "recommended_for": [
            "brute_force",
            "password_spray",
            "port_scan",
            "slow_brute_force",
            "web_auth_brute_force",
            "web_scan",
        ],
        "path": str(PLAYBOOKS / "block-source.yaml"),
    }
    recommended = {kind for row in rows for kind in row["recommended_for"]}
    assert recommended == set(playbooks_by_kind())


def test_an_invalid_playbook_is_one_line_naming_the_file_and_step(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, folder)
    bad = folder / "lockdown.yaml"
    bad.write_text(
        "name: lockdown\nttl: 1h\nsteps:\n  - action: block_ip\n  - action: shutdown\n",
        encoding="utf-8",
    )
    config = _config(tmp_path, db, playbooks=folder)
    known = ", ".join(sorted(ACTIONS))
    line = f"soc: error: {bad}: step 2: unknown action 'shutdown' (known: {known})\n"
    assert _run(capsys, "--config", str(config), "playbooks") == (2, "", line)
    # The same check stops a run before anything is planned.
    assert _run(capsys, "--config", str(config), "respond", "1", "block-source") == (2, "", line)


def test_a_rule_recommending_a_missing_playbook_is_an_error(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    shutil.copy(PLAYBOOKS / "block-source.yaml", folder)
    config = _config(tmp_path, db, playbooks=folder)
    assert _run(capsys, "--config", str(config), "playbooks") == (
        2,
        "",
        f"soc: error: {folder}: the detection rules recommend playbooks that are not here: "
        "contain-account (for credential_compromise); notify-team (for distributed_brute_force)\n",
    )


# --- soc respond ---------------------------------------------------------------------------
def test_respond_dry_runs_by_default_and_shows_the_exact_argv(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db)
    assert _run(capsys, "--config", str(config), "respond", "1", "block-source") == (
        0,
        "run 1: block-source on incident #1 by cli:tester (dry_run)\n"
        "step 1 block_ip 203.0.113.9/32 [dry_run]\n" + NFT_SETUP + NFT_BLOCK + "  result: dry_run\n"
        "step 2 annotate incident 1 [dry_run]\n"
        "  add the note '[2025-11-21 11:00 UTC] cli:tester: cli:tester blocked the source"
        " addresses for 1d (block-source)'\n"
        "  result: dry_run\n"
        "step 3 set_status incident 1 [dry_run]\n"
        "  set the status to triaged\n"
        "  result: dry_run\n"
        "status: dry_run\n",
        "",
    )
    store = open_store(db)
    try:
        incident = store.get_incident(1)
        assert incident is not None and (incident.status, incident.notes) == ("new", "")
        audit = ResponseLog(store).audit_log(incident_id=1)
        assert ResponseLog(store).active_blocks() == []
    finally:
        store.close()
    # Every step is audited, dry runs included, with the argv it showed.
    assert [(a.step, a.action, a.mode, a.result, a.actor) for a in reversed(audit)] == [
        (1, "block_ip", "dry_run", "dry_run", "cli:tester"),
        (2, "annotate", "dry_run", "dry_run", "cli:tester"),
        (3, "set_status", "dry_run", "dry_run", "cli:tester"),
    ]
    assert audit[-1].argv[1][:4] == ["nft", "add", "element", "inet"]


def test_respond_enforce_without_the_configuration_is_refused(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db)
    args = ["--config", str(config), "respond", "1", "block-source", "--enforce"]
    assert _run(capsys, *args) == (
        2,
        "",
        'soc: error: --enforce: nothing may enforce: set [respond] mode = "enforce" '
        '(or modes = { nftables = "enforce" }) in the configuration\n',
    )
    store = open_store(db)
    try:
        assert ResponseLog(store).audit_log() == []  # refused before anything was planned
    finally:
        store.close()


def test_respond_json_is_the_run(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db)
    args = ["--config", str(config), "respond", "1", "block-source", "--json", "--actor", "ana"]
    status, out, err = _run(capsys, *args)
    assert (status, err) == (0, "")
    run = json.loads(out)
    assert {
        k: run[k] for k in ("run_id", "incident_id", "playbook", "actor", "mode", "status")
    } == {
        "run_id": 1,
        "incident_id": 1,
        "playbook": "block-source",
        "actor": "ana",
        "mode": "dry_run",
        "status": "dry_run",
    }
    first = run["steps"][0]
    assert (first["action"], first["target"], first["backend"], first["ttl_seconds"]) == (
        "block_ip",
        "203.0.113.9/32",
        "nftables",
        86400,
    )
    assert first["argv"][1] == [
        "nft",
        *("add", "element", "inet", "soc_response", "block4", "{", "203.0.113.9", "}", ";"),
        *("delete", "element", "inet", "soc_response", "block4", "{", "203.0.113.9", "}", ";"),
        *("add", "element", "inet", "soc_response", "block4", "{", "203.0.113.9"),
        *("timeout", "86400s", "}"),
    ]
    assert [s["result"] for s in run["steps"]] == ["dry_run"] * 3


def test_an_address_holding_a_command_is_refused_and_nothing_runs(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _enforcing(tmp_path, db)
    args = ["--config", str(config), "respond", "2", "block-source", "--enforce"]
    status, out, err = _run(capsys, *args)
    assert (status, err) == (0, "")
    assert out.splitlines()[:3] == [
        "run 1: block-source on incident #2 by cli:tester (enforce)",
        "step 1 block_ip 1.2.3.4; rm -rf / [enforce]",
        "  result: refused: not an IP address: '1.2.3.4; rm -rf /'",
    ]
    assert _recorded(tmp_path) == []  # no command ran at all


def test_unknown_incident_or_playbook_exits_2(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(tmp_path, db))
    assert _run(capsys, "--config", config, "respond", "99", "block-source") == (
        2,
        "",
        "soc: error: no incident 99\n",
    )
    status, out, err = _run(capsys, "--config", config, "respond", "1", "nuke")
    assert (status, out) == (2, "")
    assert err == (
        "soc: error: unknown playbook 'nuke' (known: block-15m, block-1h, block-and-notify,"
        " block-source,"
        " contain-account, escalate, notify-team, release)\n"
    )


def test_a_failed_step_exits_1_with_its_status_and_output(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _enforcing(tmp_path, db, exit_on="banip", status=3)
    args = ["--config", str(config), "respond", "1", "block-source", "--enforce"]
    status, out, _ = _run(capsys, *args)
    assert status == 1
    assert out.splitlines()[:4] == [
        "run 1: block-source on incident #1 by cli:tester (enforce)",
        "step 1 block_ip 203.0.113.9/32 [enforce]",
        "  $ fail2ban-client set sshd banip 203.0.113.9",
        "  result: failed exit 3: ERROR  NOK: ('jail sshd does not exist',)",
    ]
    assert out.splitlines()[-1] == "status: partial"  # the note and the status went through
    assert _run(capsys, "--config", str(config), "blocks")[1] == "no block in force\n"


# --- soc blocks ----------------------------------------------------------------------------
def test_an_enforced_block_is_listed_audited_and_lifted(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_enforcing(tmp_path, db))
    assert _run(capsys, "--config", config, "blocks") == (0, "no block in force\n", "")

    assert _run(capsys, "--config", config, "respond", "1", "block-source", "--enforce") == (
        0,
        "run 1: block-source on incident #1 by cli:tester (enforce)\n"
        "step 1 block_ip 203.0.113.9/32 [enforce]\n"
        "  $ fail2ban-client set sshd banip 203.0.113.9\n"
        "  result: ok\n"
        "step 2 annotate incident 1 [enforce]\n"
        "  add the note '[2025-11-21 11:00 UTC] cli:tester: cli:tester blocked the source"
        " addresses for 1d (block-source)'\n"
        "  result: ok\n"
        "step 3 set_status incident 1 [enforce]\n"
        "  set the status to triaged\n"
        "  result: ok\n"
        "status: ok\n",
        "",
    )
    assert _recorded(tmp_path) == ["fail2ban-client set sshd banip 203.0.113.9"]

    # Blocking again within a minute changes nothing, and runs nothing.
    clock.advance(30)
    args = ["--config", config, "respond", "1", "block-source", "--enforce", "--actor", "ana"]
    status, out, _ = _run(capsys, *args)
    assert status == 0
    assert out.splitlines()[1:3] == [
        "step 1 block_ip 203.0.113.9/32 [enforce]",
        "  result: unchanged: already blocked for 23h 59m",
    ]
    assert len(_recorded(tmp_path)) == 1

    clock.advance(60)
    assert _run(capsys, "--config", config, "blocks") == (
        0,
        "1 block in force\n"
        "network         backend   left     expires (UTC)         incident  actor\n"
        "203.0.113.9/32  fail2ban  23h 58m  2025-11-22T11:00:00Z  #1        cli:tester\n",
        "",
    )
    status, out, _ = _run(capsys, "--config", config, "blocks", "--json")
    assert status == 0
    [row] = json.loads(out)
    assert (row["network"], row["seconds_left"], row["expires"], row["playbook"]) == (
        "203.0.113.9/32",
        86400 - 90,
        "2025-11-22T11:00:00Z",
        "block-source",
    )

    # Later, a block for as long again lasts longer: it replaces the first one's expiry.
    clock.advance(3600)
    status, out, _ = _run(capsys, *args)
    assert status == 0
    assert out.splitlines()[1:4] == [
        "step 1 block_ip 203.0.113.9/32 [enforce]",
        "  $ fail2ban-client set sshd banip 203.0.113.9",
        "  result: ok",
    ]
    assert _run(capsys, "--config", config, "blocks")[1].splitlines()[-1] == (
        "203.0.113.9/32  fail2ban  1d    2025-11-22T12:01:30Z  #1        cli:tester"
    )

    args = ["--config", config, "blocks", "--unblock", "203.0.113.9", "--actor", "ana"]
    assert _run(capsys, *args) == (0, "unblock 203.0.113.9/32 (fail2ban): ok\n", "")
    assert _recorded(tmp_path)[-1] == "fail2ban-client set sshd unbanip 203.0.113.9"
    assert _run(capsys, "--config", config, "blocks") == (0, "no block in force\n", "")
    assert _run(capsys, "--config", config, "blocks", "--unblock", "203.0.113.9") == (
        2,
        "",
        "soc: error: 203.0.113.9/32 is not blocked\n",
    )

    store = open_store(db)
    try:
        log = ResponseLog(store)
        audit = log.audit_log(incident_id=1)
        incident = store.get_incident(1)
    finally:
        store.close()
    assert incident is not None and incident.status == "triaged"
    block_rows = [a for a in reversed(audit) if a.action in ("block_ip", "unblock_ip")]
    assert [(a.actor, a.playbook, a.action, a.result, a.exit_status) for a in block_rows] == [
        ("cli:tester", "block-source", "block_ip", "ok", 0),
        ("ana", "block-source", "block_ip", "unchanged", None),
        ("ana", "block-source", "block_ip", "ok", 0),
        ("ana", "(unblocked)", "unblock_ip", "ok", 0),
    ]
    assert {(a.backend, a.target, a.mode) for a in block_rows} == {
        ("fail2ban", "203.0.113.9/32", "enforce")
    }
    assert block_rows[0].argv == [["fail2ban-client", "set", "sshd", "banip", "203.0.113.9"]]
    assert block_rows[0].at == NOW and block_rows[3].at == NOW + 3690


def test_expire_lifts_what_expired_and_puts_back_what_is_in_force(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_enforcing(tmp_path, db))
    store = open_store(db)
    try:
        log = ResponseLog(store)
        for network, ttl in (("198.51.100.7/32", 60), ("192.0.2.8/32", 7200)):
            log.record_block(
                network,
                "fail2ban",
                expires_at=NOW + ttl,
                now=NOW,
                incident_id=1,
                playbook="block-source",
                actor="ana",
            )
    finally:
        store.close()
    clock.advance(600)
    # --expire (cron) lifts only what is due; --restore (boot) also puts back the rest.
    assert _run(capsys, "--config", config, "blocks", "--expire") == (
        0,
        "1 expired block lifted\n",
        "",
    )
    assert _recorded(tmp_path) == ["fail2ban-client set sshd unbanip 198.51.100.7"]
    assert _run(capsys, "--config", config, "blocks", "--restore") == (
        0,
        "0 expired blocks lifted, 1 block in force put back\n",
        "",
    )
    assert _recorded(tmp_path) == [
        "fail2ban-client set sshd unbanip 198.51.100.7",
        "fail2ban-client set sshd banip 192.0.2.8",
    ]
    assert _run(capsys, "--config", config, "blocks") == (
        0,
        "1 block in force\n"
        "network       backend   left    expires (UTC)         incident  actor\n"
        "192.0.2.8/32  fail2ban  1h 50m  2025-11-21T13:00:00Z  #1        ana\n",
        "",
    )


def test_expire_says_when_an_expired_block_could_not_be_lifted(
    tmp_path: Path, db: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_enforcing(tmp_path, db, exit_on="unbanip", status=255))
    store = open_store(db)
    try:
        ResponseLog(store).record_block(
            "198.51.100.7/32",
            "fail2ban",
            expires_at=NOW - 1,
            now=NOW - 61,
            incident_id=1,
            playbook="block-source",
            actor="ana",
        )
    finally:
        store.close()
    status, out, _ = _run(capsys, "--config", config, "blocks", "--expire")
    assert status == 1
    assert out == "0 expired blocks lifted, 1 expired could not be lifted\n"
    assert _recorded(tmp_path)[0] == "fail2ban-client set sshd unbanip 198.51.100.7"
    assert _run(capsys, "--config", config, "blocks")[1].splitlines()[-1].split()[:3] == [
        "198.51.100.7/32",
        "fail2ban",
        "due",
    ]


# --- soc run -------------------------------------------------------------------------------
def test_soc_run_runs_the_expiry_worker(tmp_path: Path, db: str) -> None:
    """``soc run`` starts the worker: a block that expired while nothing ran is lifted."""
    script = _fake_root(tmp_path)
    log = tmp_path / "auth.log"
    log.write_text("", encoding="utf-8")
    config = tmp_path / "soc.toml"
    config.write_text(
        f'[store]\nurl = "{db}"\n\n[analyze]\nchain = ["offline"]\n\n'
        f'[respond]\nmode = "enforce"\nfirewall = "fail2ban"\ncommand_prefix = ["{script}"]\n'
        f'playbooks_dir = "{PLAYBOOKS}"\n\n'
        f'[[sources]]\nname = "auth"\ntype = "file"\npaths = ["{log}"]\n',
        encoding="utf-8",
    )
    store = open_store(db)
    now = time.time()
    try:
        response = ResponseLog(store)
        for network, expires_at in (("198.51.100.7/32", now - 10), ("192.0.2.8/32", now + 3600)):
            response.record_block(
                network,
                "fail2ban",
                expires_at=expires_at,
                now=now - 60,
                incident_id=1,
                playbook="block-source",
                actor="ana",
            )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-m", "soc", "--config", str(config), "run", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert [b.network for b in response.active_blocks()] == ["192.0.2.8/32"]
    finally:
        store.close()
    assert _recorded(tmp_path) == [
        "fail2ban-client set sshd unbanip 198.51.100.7",
        "fail2ban-client set sshd banip 192.0.2.8",
    ]
