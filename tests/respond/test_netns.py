"""Real enforcement: the firewall backends run inside a throw-away network namespace.

Each test gets its own namespace (``ip netns add soc-t-<random>``, deleted
afterwards, which removes every table, set and rule made in it) and a responder
whose ``command_prefix`` is ``ip netns exec <name>``: the exact commands the
product runs, against the real kernel, without touching this machine's own
firewall. Kernel timeouts run on wall time, so these tests use the system clock
and short TTLs. Root and ``ip``, ``nft``, ``ipset``, ``iptables`` and
``ip6tables`` are needed (a skip without them, a failure in CI).

There is no ``ping`` here: whether packets are dropped is probed with a TCP
connect from the attacker's namespace to a closed port of the victim. The
victim's kernel answers "connection refused" when the SYN got through, and
nothing (a timeout) when the firewall dropped it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.clock import SystemClock
from soc.respond import Responder
from soc.store import SqlStore
from tests.conftest import require
from tests.respond.conftest import add_incident, all_blocks, block_for, make_responder

TOOLS = ("ip", "nft", "ipset", "iptables", "ip6tables")
VICTIM, ATTACKER = "10.200.0.1", "10.200.0.2"


def _require_tools() -> None:
    require(os.geteuid() == 0, "network namespaces and firewalls need root")
    for tool in TOOLS:
        require(shutil.which(tool) is not None, f"`{tool}` is not installed")


def _new_netns() -> str:
    name = f"soc-t-{secrets.token_hex(4)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    require(made.returncode == 0, f"cannot create a network namespace: {made.stderr.strip()}")
    _in(name, "ip", "link", "set", "lo", "up")
    return name


def _delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace (the victim: where the responder's commands run)."""
    _require_tools()
    name = _new_netns()
    try:
        yield name
    finally:
        _delete_netns(name)


@pytest.fixture
def attacker(netns: str) -> Iterator[str]:
    """A second namespace wired to ``netns`` by a veth pair: 10.200.0.2 → 10.200.0.1."""
    name = _new_netns()
    try:
        _in(netns, "ip", "link", "add", "victim0", "type", "veth", "peer", "name", "attacker0")
        _in(netns, "ip", "link", "set", "attacker0", "netns", name)
        _in(netns, "ip", "addr", "add", f"{VICTIM}/24", "dev", "victim0")
        _in(netns, "ip", "link", "set", "victim0", "up")
        _in(name, "ip", "addr", "add", f"{ATTACKER}/24", "dev", "attacker0")
        _in(name, "ip", "link", "set", "attacker0", "up")
        yield name
    finally:
        _delete_netns(name)


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """Playbooks that only block, for 2 s, 3 s, 6 s, an hour and a day."""
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for ttl in ("2s", "3s", "6s", "1h", "1d"):
        (folder / f"block-{ttl}.yaml").write_text(block_for(ttl), encoding="utf-8")
    return folder


def _in(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside namespace ``ns``."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done


def _responder(store: SqlStore, ns: str, books: Path, **respond: Any) -> Responder:
    return make_responder(
        store,
        SystemClock(),
        playbooks_dir=books,
        mode="enforce",
        command_prefix=["ip", "netns", "exec", ns],
        **respond,
    )


def _elements(ns: str, set_name: str) -> dict[str, dict[str, int]]:
    """The elements of ``inet soc_response <set_name>``, as ``a`` or ``a/n`` → timeout, expires."""
    listed = json.loads(
        _in(ns, "nft", "-j", "list", "set", "inet", "soc_response", set_name).stdout
    )
    (found,) = [item["set"] for item in listed["nftables"] if "set" in item]
    out: dict[str, dict[str, int]] = {}
    for entry in found.get("elem", []):
        elem = entry["elem"]
        value = elem["val"]
        key = (
            f"{value['prefix']['addr']}/{value['prefix']['len']}"
            if isinstance(value, dict)
            else str(value)
        )
        out[key] = {"timeout": elem["timeout"], "expires": elem["expires"]}
    return out


def _wait_until(condition: Callable[[], bool], seconds: float) -> float:
    """Poll ``condition`` until it holds; returns when (monotonic), fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {seconds} s")
        time.sleep(0.1)
    return time.monotonic()


def _probe(attacker: str) -> str:
    """Try a TCP connect from the attacker to the victim: ``refused`` (reached) or ``timeout``."""
    script = (
        "import socket\n"
        f"s = socket.create_connection(({VICTIM!r}, 9), timeout=1)\n"
        "print('connected')\n"
    )
    done = _in(attacker, sys.executable, "-c", script, check=False)
    if "ConnectionRefusedError" in done.stderr:
        return "refused"
    if "TimeoutError" in done.stderr or "timed out" in done.stderr:
        return "timeout"
    return done.stdout.strip() or done.stderr.strip()


# --- nftables ----------------------------------------------------------------------------


def test_a_block_lives_in_the_kernel_until_its_timeout(
    store: SqlStore, netns: str, books: Path
) -> None:
    incident = add_incident(store, ATTACKER)
    responder = _responder(store, netns, books)
    started = time.monotonic()
    result = responder.run(incident, "block-3s", actor="alice", enforce=True)
    assert [(r.result, r.exit_status) for r in result.steps] == [("ok", 0)]

    elements = _elements(netns, "block4")
    assert list(elements) == [ATTACKER]
    assert elements[ATTACKER]["timeout"] == 3
    assert 0 <= elements[ATTACKER]["expires"] <= 3
    assert _elements(netns, "block6") == {}
    (block,) = responder.blocks()
    assert round(block.expires_at - block.created_at, 3) == 3

    gone = _wait_until(lambda: not _elements(netns, "block4"), 6)
    assert gone - started >= 2.5  # the kernel kept it for its TTL, not less
    assert [b.network for b in responder.blocks()] == [f"{ATTACKER}/32"]  # the store still does
    _wait_until(lambda: time.time() >= block.expires_at, 2)
    assert responder.expire() == 1
    (ended,) = all_blocks(store)
    assert (ended.ended_by, ended.end_reason) == ("expiry", "expired")
    (row,) = responder.log.audit_log(actor="expiry")
    assert (row.result, row.exit_status) == ("ok", 0)  # lifting what the kernel lifted is fine


def test_a_restart_after_a_reboot_puts_the_block_back_for_what_remains(
    store: SqlStore, netns: str, books: Path
) -> None:
    incident = add_incident(store, ATTACKER)
    first = _responder(store, netns, books)
    assert first.run(incident, "block-6s", actor="alice", enforce=True).status == "ok"
    assert list(_elements(netns, "block4")) == [ATTACKER]
    time.sleep(1.2)
    _in(netns, "nft", "delete", "table", "inet", "soc_response")  # the reboot
    assert _in(netns, "nft", "list", "tables").stdout == ""

    restarted = _responder(store, netns, books)
    assert restarted.restore() == {"expired": 0, "restored": 1, "failed": 0}
    (row,) = restarted.log.audit_log(actor="restore")
    assert row.result == "ok"
    remaining = int(row.output.removeprefix("restored for ").removesuffix(" s"))
    assert row.output == f"restored for {remaining} s"
    assert 1 <= remaining <= 4
    elements = _elements(netns, "block4")
    assert list(elements) == [ATTACKER]
    assert elements[ATTACKER]["timeout"] == remaining

    (block,) = restarted.blocks()
    _wait_until(lambda: not _elements(netns, "block4"), remaining + 2)
    _wait_until(lambda: time.time() >= block.expires_at, 2)
    assert restarted.expire() == 1
    (ended,) = all_blocks(store)
    assert (ended.ended_by, ended.end_reason) == ("expiry", "expired")


@pytest.mark.parametrize("rebooted", [False, True], ids=["restarted", "rebooted"])
def test_a_block_that_expired_while_stopped_is_ended_on_restore(
    store: SqlStore, netns: str, books: Path, rebooted: bool
) -> None:
    incident = add_incident(store, ATTACKER)
    first = _responder(store, netns, books)
    assert first.run(incident, "block-2s", actor="alice", enforce=True).status == "ok"
    (block,) = all_blocks(store)
    if rebooted:
        _in(netns, "nft", "delete", "table", "inet", "soc_response")
    _wait_until(lambda: time.time() > block.expires_at + 0.5, 4)

    restarted = _responder(store, netns, books)
    assert restarted.restore() == {"expired": 1, "restored": 0, "failed": 0}
    (ended,) = all_blocks(store)
    assert (ended.ended_by, ended.end_reason) == ("expiry", "expired")
    assert _elements(netns, "block4") == {}
    assert [a.result for a in restarted.log.audit_log(actor="restore")] == []


def test_an_ipv6_attacker_is_blocked_as_its_64(store: SqlStore, netns: str, books: Path) -> None:
    incident = add_incident(store, "2001:db8:5:6::7")
    responder = _responder(store, netns, books)
    assert responder.run(incident, "block-1h", actor="alice", enforce=True).status == "ok"
    assert _elements(netns, "block4") == {}
    elements = _elements(netns, "block6")
    assert list(elements) == ["2001:db8:5:6::/64"]
    assert elements["2001:db8:5:6::/64"]["timeout"] == 3600

    # a longer TTL replaces the kernel's timeout, set up again by a new process
    again = _responder(store, netns, books)
    assert again.run(incident, "block-1d", actor="alice", enforce=True).status == "ok"
    assert _elements(netns, "block6")["2001:db8:5:6::/64"]["timeout"] == 86400
    for hook in ("input", "forward"):
        chain = json.loads(
            _in(netns, "nft", "-j", "list", "chain", "inet", "soc_response", hook).stdout
        )
        rules = [item for item in chain["nftables"] if "rule" in item]
        assert len(rules) == 2  # setup twice: still one rule per family

    (lifted,) = again.unblock("2001:db8:5:6::1", actor="alice")
    assert lifted.result == "ok"
    assert _elements(netns, "block6") == {}


# --- packets -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_packets_from_a_blocked_address_are_dropped(
    store: SqlStore, netns: str, attacker: str, books: Path, backend: str
) -> None:
    assert _probe(attacker) == "refused"  # reaches the victim
    incident = add_incident(store, ATTACKER)
    responder = _responder(store, netns, books, firewall=backend)
    assert responder.run(incident, "block-1h", actor="alice", enforce=True).status == "ok"
    assert _probe(attacker) == "timeout"
    (lifted,) = responder.unblock(ATTACKER, actor="alice")
    assert lifted.result == "ok"
    assert _probe(attacker) == "refused"


# --- ipset + iptables --------------------------------------------------------------------


def _ipset_members(ns: str, name: str) -> list[str]:
    listed = _in(ns, "ipset", "list", name).stdout.splitlines()
    return listed[listed.index("Members:") + 1 :]


def test_iptables_blocks_through_an_ipset_with_timeouts(
    store: SqlStore, netns: str, books: Path
) -> None:
    incident = add_incident(store, ATTACKER)
    responder = _responder(store, netns, books, firewall="iptables")
    assert responder.run(incident, "block-1h", actor="alice", enforce=True).status == "ok"

    listed = _in(netns, "ipset", "list", "soc-block4").stdout
    assert "Type: hash:net" in listed
    assert "Header: family inet " in listed and " timeout 0" in listed
    (member,) = _ipset_members(netns, "soc-block4")
    address, word, seconds = member.split()
    assert (address, word) == (ATTACKER, "timeout")
    assert 3590 <= int(seconds) <= 3600
    assert _ipset_members(netns, "soc-block6") == []
    rule = "-A INPUT -m set --match-set soc-block4 src -j DROP"
    assert _in(netns, "iptables", "-S", "INPUT").stdout.splitlines().count(rule) == 1
    rule6 = "-A INPUT -m set --match-set soc-block6 src -j DROP"
    assert _in(netns, "ip6tables", "-S", "INPUT").stdout.splitlines().count(rule6) == 1

    # a new process sets up again: the rules are not added twice
    other = add_incident(store, "10.200.0.3")
    again = _responder(store, netns, books, firewall="iptables")
    assert again.run(other, "block-1h", actor="alice", enforce=True).status == "ok"
    assert _in(netns, "iptables", "-S", "INPUT").stdout.splitlines().count(rule) == 1
    assert _in(netns, "ip6tables", "-S", "INPUT").stdout.splitlines().count(rule6) == 1
    assert sorted(m.split()[0] for m in _ipset_members(netns, "soc-block4")) == [
        ATTACKER,
        "10.200.0.3",
    ]

    (lifted,) = again.unblock(ATTACKER, actor="alice")
    assert lifted.result == "ok"
    assert [m.split()[0] for m in _ipset_members(netns, "soc-block4")] == ["10.200.0.3"]
    assert [b.network for b in again.blocks()] == ["10.200.0.3/32"]
