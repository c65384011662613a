"""The exact argv every firewall backend and ``disable_user`` plan, and the modes a plan gets."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from soc.clock import ManualClock
from soc.errors import ConfigError
from soc.events import CREDENTIAL_COMPROMISE
from soc.respond.backends import BACKENDS, firewall
from soc.respond.base import Command, RespondConfig
from soc.store import SqlStore
from tests.respond.conftest import add_incident, make_responder
from tests.store.builders import T0


def words(text: str) -> list[str]:
    """An argv written as one line (no element holds a space)."""
    return text.split()


V4 = ipaddress.IPv4Network("203.0.113.9/32")
V6 = ipaddress.IPv6Network("2001:db8:1:2::/64")

NFT_SETUP = words(
    "nft add table inet soc_response"
    " ; add set inet soc_response block4 { type ipv4_addr ; flags interval, timeout ; }"
    " ; add set inet soc_response block6 { type ipv6_addr ; flags interval, timeout ; }"
    " ; add chain inet soc_response input"
    " { type filter hook input priority -10 ; policy accept ; }"
    " ; flush chain inet soc_response input"
    " ; add rule inet soc_response input ip saddr @block4 drop"
    " ; add rule inet soc_response input ip6 saddr @block6 drop"
    " ; add chain inet soc_response forward"
    " { type filter hook forward priority -10 ; policy accept ; }"
    " ; flush chain inet soc_response forward"
    " ; add rule inet soc_response forward ip saddr @block4 drop"
    " ; add rule inet soc_response forward ip6 saddr @block6 drop"
)
NFT_BLOCK4 = words(
    "nft add element inet soc_response block4 { 203.0.113.9 }"
    " ; delete element inet soc_response block4 { 203.0.113.9 }"
    " ; add element inet soc_response block4 { 203.0.113.9 timeout 3600s }"
)
NFT_BLOCK6 = words(
    "nft add element inet soc_response block6 { 2001:db8:1:2::/64 }"
    " ; delete element inet soc_response block6 { 2001:db8:1:2::/64 }"
    " ; add element inet soc_response block6 { 2001:db8:1:2::/64 timeout 3600s }"
)


def _argv(commands: list[Command]) -> list[list[str]]:
    """Each command's argv, preceded by its ``unless`` check marked as such."""
    out: list[list[str]] = []
    for command in commands:
        if command.unless is not None:
            out.append(["unless", *command.unless])
        out.append(list(command.argv))
    return out


def test_every_backend_is_registered() -> None:
    assert sorted(BACKENDS) == ["fail2ban", "iptables", "nftables", "ufw"]
    for name in BACKENDS:
        assert firewall(name, RespondConfig()).name == name


def test_nftables_argv() -> None:
    nft = firewall("nftables", RespondConfig())
    assert nft.expires_itself is True
    assert _argv(nft.setup()) == [NFT_SETUP]
    assert _argv(nft.block(V4, 3600)) == [NFT_BLOCK4]
    assert _argv(nft.block(V6, 3600)) == [NFT_BLOCK6]
    assert _argv(nft.unblock(V4)) == [
        words(
            "nft add element inet soc_response block4 { 203.0.113.9 }"
            " ; delete element inet soc_response block4 { 203.0.113.9 }"
        )
    ]
    assert _argv(nft.unblock(V6)) == [
        words(
            "nft add element inet soc_response block6 { 2001:db8:1:2::/64 }"
            " ; delete element inet soc_response block6 { 2001:db8:1:2::/64 }"
        )
    ]


def test_nftables_table_and_priority_come_from_the_config() -> None:
    nft = firewall("nftables", RespondConfig(nft_table="lab_block", nft_priority=-5))
    (setup,) = nft.setup()
    assert setup.argv[:5] == ("nft", "add", "table", "inet", "lab_block")
    assert setup.argv.count("-5") == 2
    assert "soc_response" not in setup.argv
    assert list(nft.block(V4, 90)[0].argv[-3:]) == ["timeout", "90s", "}"]
    assert nft.block(V4, 90)[0].argv[4] == "lab_block"


def test_iptables_argv() -> None:
    ipt = firewall("iptables", RespondConfig())
    assert ipt.expires_itself is True
    rule4 = words("INPUT -m set --match-set soc-block4 src -j DROP")
    rule6 = words("INPUT -m set --match-set soc-block6 src -j DROP")
    assert _argv(ipt.setup()) == [
        words("ipset create soc-block4 hash:net family inet timeout 0 -exist"),
        ["unless", "iptables", "-w", "-C", *rule4],
        ["iptables", "-w", "-I", *rule4],
        words("ipset create soc-block6 hash:net family inet6 timeout 0 -exist"),
        ["unless", "ip6tables", "-w", "-C", *rule6],
        ["ip6tables", "-w", "-I", *rule6],
    ]
    assert _argv(ipt.block(V4, 3600)) == [
        words("ipset add soc-block4 203.0.113.9 timeout 3600 -exist")
    ]
    assert _argv(ipt.block(V6, 7200)) == [
        words("ipset add soc-block6 2001:db8:1:2::/64 timeout 7200 -exist")
    ]
    assert _argv(ipt.unblock(V4)) == [words("ipset del soc-block4 203.0.113.9 -exist")]
    assert _argv(ipt.unblock(V6)) == [words("ipset del soc-block6 2001:db8:1:2::/64 -exist")]


def test_iptables_docker_user_adds_the_rule_there_too() -> None:
    ipt = firewall("iptables", RespondConfig(docker_user=True, ipset_name="lab"))
    setup = ipt.setup()
    assert _argv(setup) == [
        words("ipset create lab4 hash:net family inet timeout 0 -exist"),
        words("unless iptables -w -C INPUT -m set --match-set lab4 src -j DROP"),
        words("iptables -w -I INPUT -m set --match-set lab4 src -j DROP"),
        words("unless iptables -w -C DOCKER-USER -m set --match-set lab4 src -j DROP"),
        words("iptables -w -I DOCKER-USER -m set --match-set lab4 src -j DROP"),
        words("ipset create lab6 hash:net family inet6 timeout 0 -exist"),
        words("unless ip6tables -w -C INPUT -m set --match-set lab6 src -j DROP"),
        words("ip6tables -w -I INPUT -m set --match-set lab6 src -j DROP"),
        words("unless ip6tables -w -C DOCKER-USER -m set --match-set lab6 src -j DROP"),
        words("ip6tables -w -I DOCKER-USER -m set --match-set lab6 src -j DROP"),
    ]
    # every rule insertion is guarded by its -C check; set creation needs none (-exist)
    assert [c.unless is not None for c in setup] == [False, True, True, False, True, True]
    assert _argv(ipt.block(V4, 60)) == [words("ipset add lab4 203.0.113.9 timeout 60 -exist")]


def test_ufw_argv() -> None:
    ufw = firewall("ufw", RespondConfig())
    assert ufw.expires_itself is False
    assert ufw.setup() == []
    assert _argv(ufw.block(V4, 3600)) == [
        words("ufw prepend deny from 203.0.113.9 comment soc-response")
    ]
    assert _argv(ufw.block(V6, 3600)) == [
        words("ufw prepend deny from 2001:db8:1:2::/64 comment soc-response")
    ]
    assert _argv(ufw.unblock(V4)) == [words("ufw delete deny from 203.0.113.9")]
    assert _argv(ufw.unblock(V6)) == [words("ufw delete deny from 2001:db8:1:2::/64")]
    # deleting a rule that is gone exits 1: done all the same
    assert ufw.unblock(V4)[0].ok_exit == (0, 1)
    assert ufw.block(V4, 60)[0].ok_exit == (0,)


def test_fail2ban_argv() -> None:
    f2b = firewall("fail2ban", RespondConfig(fail2ban_jail="nginx-http-auth"))
    assert f2b.expires_itself is False
    assert f2b.setup() == []
    assert _argv(f2b.block(V4, 3600)) == [
        words("fail2ban-client set nginx-http-auth banip 203.0.113.9")
    ]
    assert _argv(f2b.block(V6, 3600)) == [
        words("fail2ban-client set nginx-http-auth banip 2001:db8:1:2::/64")
    ]
    assert _argv(f2b.unblock(V4)) == [
        words("fail2ban-client set nginx-http-auth unbanip 203.0.113.9")
    ]
    assert _argv(f2b.unblock(V6)) == [
        words("fail2ban-client set nginx-http-auth unbanip 2001:db8:1:2::/64")
    ]


# --- through Responder.plan ----------------------------------------------------------


def _two_source_incident(store: SqlStore) -> int:
    return add_incident(store, source_ips=["203.0.113.9", "2001:db8:1:2::77"])


def _short_playbook(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "block-hour.yaml").write_text(
        "name: block-hour\nttl: 1h\nsteps:\n  - action: block_ip\n", encoding="utf-8"
    )
    return folder


IPT_SETUP = [
    words("ipset create soc-block4 hash:net family inet timeout 0 -exist"),
    words("iptables -w -C INPUT -m set --match-set soc-block4 src -j DROP"),
    words("iptables -w -I INPUT -m set --match-set soc-block4 src -j DROP"),
    words("ipset create soc-block6 hash:net family inet6 timeout 0 -exist"),
    words("ip6tables -w -C INPUT -m set --match-set soc-block6 src -j DROP"),
    words("ip6tables -w -I INPUT -m set --match-set soc-block6 src -j DROP"),
]

PLANNED = {
    "nftables": (
        [NFT_SETUP, NFT_BLOCK4],
        [NFT_SETUP, NFT_BLOCK6],
    ),
    "iptables": (
        [*IPT_SETUP, words("ipset add soc-block4 203.0.113.9 timeout 3600 -exist")],
        [*IPT_SETUP, words("ipset add soc-block6 2001:db8:1:2::/64 timeout 3600 -exist")],
    ),
    "ufw": (
        [words("ufw prepend deny from 203.0.113.9 comment soc-response")],
        [words("ufw prepend deny from 2001:db8:1:2::/64 comment soc-response")],
    ),
    "fail2ban": (
        [words("fail2ban-client set sshd banip 203.0.113.9")],
        [words("fail2ban-client set sshd banip 2001:db8:1:2::/64")],
    ),
}


@pytest.mark.parametrize("backend", sorted(PLANNED))
def test_a_plan_shows_the_exact_argv_of_each_backend(
    store: SqlStore, tmp_path: Path, backend: str
) -> None:
    incident = _two_source_incident(store)
    responder = make_responder(
        store, ManualClock(T0 + 60), playbooks_dir=_short_playbook(tmp_path), firewall=backend
    )
    plan = responder.plan(incident, "block-hour", actor="alice")
    assert plan.mode == "dry_run"
    assert [(s.index, s.action, s.target, s.backend, s.mode, s.ttl) for s in plan.steps] == [
        (1, "block_ip", "203.0.113.9/32", backend, "dry_run", 3600),
        (2, "block_ip", "2001:db8:1:2::/64", backend, "dry_run", 3600),
    ]
    # a dry run sets nothing up, so every step shows the setup it would need
    assert [s.argv() for s in plan.steps] == list(PLANNED[backend])
    assert [s.describe for s in plan.steps] == [
        f"block 203.0.113.9/32 for 1h ({backend})",
        f"block 2001:db8:1:2::/64 for 1h ({backend})",
    ]
    assert plan.as_dict()["steps"][0]["argv"] == PLANNED[backend][0]


@pytest.mark.parametrize(
    ("respond", "enforce", "expected"),
    [
        ({}, False, ["dry_run", "dry_run", "dry_run", "dry_run"]),
        ({}, True, ["dry_run", "dry_run", "dry_run", "dry_run"]),
        ({"mode": "enforce"}, False, ["dry_run", "dry_run", "dry_run", "dry_run"]),
        ({"mode": "enforce"}, True, ["enforce", "enforce", "enforce", "enforce"]),
        ({"modes": {"nftables": "enforce"}}, True, ["enforce", "enforce", "dry_run", "dry_run"]),
        (
            {"mode": "enforce", "modes": {"nftables": "dry_run", "annotate": "dry_run"}},
            True,
            ["dry_run", "dry_run", "dry_run", "enforce"],
        ),
    ],
)
def test_a_step_enforces_only_when_asked_and_configured(
    store: SqlStore, respond: dict[str, Any], enforce: bool, expected: list[str]
) -> None:
    incident = _two_source_incident(store)
    responder = make_responder(store, ManualClock(T0 + 60), **respond)
    plan = responder.plan(incident, "block-source", actor="alice", enforce=enforce)
    assert [s.action for s in plan.steps] == ["block_ip", "block_ip", "annotate", "set_status"]
    assert [s.mode for s in plan.steps] == expected
    assert plan.mode == ("enforce" if "enforce" in expected else "dry_run")
    assert plan.requested == ("enforce" if enforce else "dry_run")


def test_an_enforced_plan_sets_the_firewall_up_once(store: SqlStore) -> None:
    incident = _two_source_incident(store)
    responder = make_responder(store, ManualClock(T0 + 60), mode="enforce")
    plan = responder.plan(incident, "block-source", actor="alice", enforce=True)
    block4 = [*NFT_BLOCK4[:-2], "86400s", "}"]
    block6 = [*NFT_BLOCK6[:-2], "86400s", "}"]
    assert [s.argv() for s in plan.steps[:2]] == [[NFT_SETUP, block4], [block6]]
    assert [s.argv() for s in plan.steps[2:]] == [[], []]


def test_disable_user_locks_the_compromised_accounts(store: SqlStore) -> None:
    incident = add_incident(
        store,
        kind=CREDENTIAL_COMPROMISE,
        users=["deploy", "root", "-f", "deploy", "svc_backup"],
        successes=1,
    )
    responder = make_responder(store, ManualClock(T0 + 60), mode="enforce")
    plan = responder.plan(incident, "contain-account", actor="alice", enforce=True)
    users = [s for s in plan.steps if s.action == "disable_user"]
    assert [(s.target, s.backend, s.mode, s.refused) for s in users] == [
        ("deploy", "usermod", "enforce", None),
        ("root", "usermod", "enforce", "root is protected ([respond] protected_users)"),
        ("-f", "usermod", "enforce", "not a plain account name: '-f'"),
        ("svc_backup", "usermod", "enforce", None),
    ]
    assert [s.argv() for s in users] == [
        [["usermod", "-L", "--expiredate", "1", "--", "deploy"]],
        [],
        [],
        [["usermod", "-L", "--expiredate", "1", "--", "svc_backup"]],
    ]
    assert users[0].describe == "lock account deploy"
    assert [s.index for s in plan.steps] == list(range(1, len(plan.steps) + 1))


def test_enable_user_is_the_undo(store: SqlStore) -> None:
    incident = add_incident(store, kind=CREDENTIAL_COMPROMISE, users=["deploy"], successes=1)
    responder = make_responder(store, ManualClock(T0 + 60))
    plan = responder.plan(incident, "release", actor="alice")
    (step,) = [s for s in plan.steps if s.action == "enable_user"]
    assert step.argv() == [["usermod", "-U", "--expiredate", "-1", "--", "deploy"]]


def test_protected_users_come_from_the_config(store: SqlStore) -> None:
    incident = add_incident(store, kind=CREDENTIAL_COMPROMISE, users=["deploy", "root"])
    responder = make_responder(store, ManualClock(T0 + 60), protected_users=["deploy"])
    plan = responder.plan(incident, "contain-account", actor="alice")
    users = [(s.target, s.refused, s.argv()) for s in plan.steps if s.action == "disable_user"]
    assert users == [
        ("deploy", "deploy is protected ([respond] protected_users)", []),
        ("root", None, [["usermod", "-L", "--expiredate", "1", "--", "root"]]),
    ]


def test_disable_user_is_refused_for_other_kinds(store: SqlStore) -> None:
    incident = add_incident(store, users=["deploy"])  # a brute force: nobody got in
    responder = make_responder(store, ManualClock(T0 + 60), mode="enforce")
    plan = responder.plan(incident, "contain-account", actor="alice", enforce=True)
    users = [s for s in plan.steps if s.action == "disable_user"]
    assert [(s.target, s.refused, s.argv()) for s in users] == [
        ("", "no account known to be compromised (brute_force)", [])
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("nft_table", "soc\n", "letters, digits and _, starting with a letter"),
        ("nft_table", "soc;flush", "letters, digits and _, starting with a letter"),
        ("ipset_name", "soc-block\n", "letters, digits, _ and -, at most 26"),
        ("ipset_name", "-soc", "letters, digits, _ and -, at most 26"),
        ("fail2ban_jail", "sshd\n", "not a fail2ban jail name"),
        ("fail2ban_jail", "--help", "not a fail2ban jail name"),
        ("command_prefix", ["sudo", ""], "a list of non-empty strings"),
        ("firewall", "pf", "must be one of nftables, iptables, ufw, fail2ban"),
        ("mode", "on", "must be 'dry_run' or 'enforce', got 'on'"),
    ],
)
def test_names_that_reach_an_argv_are_checked(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RespondConfig(**{key: value})  # type: ignore[arg-type]
    assert (caught.value.message, caught.value.where) == (message, key)
