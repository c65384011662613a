"""What a response may act on: addresses and user names validated, the protected set."""

from __future__ import annotations

import ipaddress

import pytest

from soc.respond.targets import (
    Protected,
    TargetError,
    block_network,
    check_user,
    element,
    parse_block,
)

INJECTIONS = [
    "1.2.3.4; rm -rf /",
    "-f",
    "$(id)",
    "1.2.3.4\n5.6.7.8",
    "1.2.3.4\n",
    "`id`",
    " 1.2.3.4",
    "1.2.3.4 ",
    "fe80::1%eth0",
    "1.2.3.0/24",
    "2001:db8::/64",
    "",
    "example.com",
    "1.2.3",
    "1.2.3.256",
    "01.2.3.4",
    "::1\n",
    "１.２.３.４",  # full-width digits
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_anything_but_one_address_is_refused(text: str) -> None:
    with pytest.raises(TargetError, match=r"^not an IP address: "):
        block_network(text)


def test_a_refusal_quotes_the_value_shortly() -> None:
    with pytest.raises(TargetError) as caught:
        block_network("1.2.3.4; " + "A" * 500)
    assert str(caught.value) == "not an IP address: '1.2.3.4; " + "A" * 47 + "..."


@pytest.mark.parametrize("value", [None, 16909060, b"1.2.3.4"])
def test_non_text_is_refused(value: object) -> None:
    with pytest.raises(TargetError, match=r"^not an IP address: "):
        block_network(value)  # type: ignore[arg-type]


def test_ipv4_is_blocked_as_itself() -> None:
    assert block_network("203.0.113.9") == ipaddress.IPv4Network("203.0.113.9/32")
    assert element(block_network("203.0.113.9")) == "203.0.113.9"


def test_ipv6_is_blocked_as_its_network() -> None:
    assert block_network("2001:db8:1:2:3:4:5:6") == ipaddress.IPv6Network("2001:db8:1:2::/64")
    assert block_network("2001:DB8:1:2::9") == ipaddress.IPv6Network("2001:db8:1:2::/64")
    assert block_network("2001:db8:1:2::9", 48) == ipaddress.IPv6Network("2001:db8:1::/48")
    assert block_network("2001:db8::9", 128) == ipaddress.IPv6Network("2001:db8::9/128")
    assert element(block_network("2001:db8:1:2::9")) == "2001:db8:1:2::/64"
    assert element(block_network("2001:db8::9", 128)) == "2001:db8::9"


def test_ipv4_mapped_ipv6_is_blocked_as_the_ipv4_address() -> None:
    assert block_network("::ffff:198.51.100.7") == ipaddress.IPv4Network("198.51.100.7/32")
    assert block_network("::ffff:c633:6407") == ipaddress.IPv4Network("198.51.100.7/32")


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "::", "224.0.0.1", "239.1.2.3", "ff02::1", "255.255.255.255"]
)
def test_unspecified_multicast_and_broadcast_are_refused(address: str) -> None:
    with pytest.raises(TargetError) as caught:
        block_network(address)
    assert str(caught.value) == f"not a host address: {ipaddress.ip_address(address)}"


def test_parse_block_takes_an_address_or_a_network() -> None:
    assert parse_block("203.0.113.9") == ipaddress.IPv4Network("203.0.113.9/32")
    assert parse_block("203.0.113.9/32") == ipaddress.IPv4Network("203.0.113.9/32")
    assert parse_block("2001:db8:1:2::9") == ipaddress.IPv6Network("2001:db8:1:2::/64")
    assert parse_block("2001:db8:1:2::/64") == ipaddress.IPv6Network("2001:db8:1:2::/64")
    assert parse_block("198.51.100.0/24") == ipaddress.IPv4Network("198.51.100.0/24")


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4/33",
        "1.2.3.4/",
        "1.2.3.4/24 ",
        "1.2.3.4/-1",
        "1.2.3.4/1e1",
        "1.2.3.4/24; id",
        "2001:db8::/129",
        "1.2.3.4/0024",
    ],
)
def test_parse_block_refuses_bad_networks(text: str) -> None:
    with pytest.raises(TargetError, match=r"^not an? (IP address or )?network: "):
        parse_block(text)


@pytest.mark.parametrize("text", ["$(id)/24", "-f/32", "fe80::1%eth0/64", " 1.2.3.0/24", "a/8"])
def test_parse_block_checks_the_address_part(text: str) -> None:
    with pytest.raises(TargetError, match=r"^not an IP address: "):
        parse_block(text)


@pytest.mark.parametrize("name", ["root", "deploy", "_apt", "svc-backup", "www_data", "smb1$"])
def test_plain_account_names_pass(name: str) -> None:
    assert check_user(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "-f",
        "--help",
        "root;id",
        "$(id)",
        "a\nb",
        "bob\n",
        "Bob",
        "",
        "a b",
        "`id`",
        "../etc",
        "x" * 33,
        "1abc",
        "bob$$",
        "ädmin",
    ],
)
def test_anything_else_is_not_an_account_name(name: str) -> None:
    with pytest.raises(TargetError, match=r"^not a plain account name: "):
        check_user(name)


def test_check_user_refuses_non_text() -> None:
    with pytest.raises(TargetError, match=r"^not a plain account name: None$"):
        check_user(None)  # type: ignore[arg-type]


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_loopback_is_always_protected() -> None:
    protected = Protected.of()
    assert protected.why_protected(_net("127.0.0.1/32")) == "127.0.0.1/32 is loopback"
    assert protected.why_protected(_net("127.8.9.10/32")) == "127.8.9.10/32 is loopback"
    assert protected.why_protected(_net("::1/128")) == "::1/128 is loopback"
    assert protected.why_protected(_net("::/64")) == "::/64 is loopback"
    assert protected.why_protected(_net("203.0.113.9/32")) is None
    assert protected.why_protected(_net("2001:db8::/64")) is None


def test_allow_list_and_host_addresses_are_protected() -> None:
    protected = Protected.of(
        ["10.0.0.0/8", "198.51.100.7", " 2001:db8:aa::/48 "], ["192.0.2.10", "fe80::1%eth0"]
    )
    assert (
        protected.why_protected(_net("10.20.30.40/32"))
        == "10.20.30.40/32 holds allow-listed address (10.0.0.0/8)"
    )
    assert (
        protected.why_protected(_net("198.51.100.7/32"))
        == "198.51.100.7/32 holds allow-listed address (198.51.100.7/32)"
    )
    assert protected.why_protected(_net("198.51.100.8/32")) is None
    assert (
        protected.why_protected(_net("2001:db8:aa:1::/64"))
        == "2001:db8:aa:1::/64 holds allow-listed address (2001:db8:aa::/48)"
    )
    assert (
        protected.why_protected(_net("192.0.2.10/32"))
        == "192.0.2.10/32 holds this machine's address (192.0.2.10/32)"
    )
    assert (
        protected.why_protected(_net("fe80::/64"))
        == "fe80::/64 holds this machine's address (fe80::1/128)"
    )
    assert protected.why_protected(_net("192.0.2.11/32")) is None
    # a network wider than a protected address overlaps it
    assert (
        protected.why_protected(_net("192.0.2.0/24"))
        == "192.0.2.0/24 holds this machine's address (192.0.2.10/32)"
    )


def test_a_64_holding_a_protected_ipv6_address_is_refused() -> None:
    protected = Protected.of([], ["2001:db8:7:8::1"])
    attacker = block_network("2001:db8:7:8:dead:beef::2")
    assert attacker == _net("2001:db8:7:8::/64")
    assert (
        protected.why_protected(attacker)
        == "2001:db8:7:8::/64 holds this machine's address (2001:db8:7:8::1/128)"
    )
    assert protected.why_protected(block_network("2001:db8:7:9::2")) is None


def test_the_analysts_own_address_is_protected() -> None:
    protected = Protected.of()
    own = block_network("192.0.2.50")
    assert (
        protected.why_protected(own, "192.0.2.50")
        == "192.0.2.50/32 holds the analyst's own address (192.0.2.50/32)"
    )
    assert protected.why_protected(own, "192.0.2.51") is None
    assert protected.why_protected(own, "") is None
    assert protected.why_protected(own, "not an address") is None
    assert (
        protected.why_protected(block_network("2001:db8:5::9"), "2001:db8:5::1%eth0")
        == "2001:db8:5::/64 holds the analyst's own address (2001:db8:5::1/128)"
    )


def test_an_ipv4_mapped_client_or_allow_list_entry_protects_the_ipv4_address() -> None:
    # A dual-stack server reports IPv4 clients as ::ffff:a.b.c.d; the attacker's
    # address is blocked as plain IPv4, so the protection must see through it too.
    protected = Protected.of(["::ffff:198.51.100.7"])
    assert (
        protected.why_protected(block_network("192.0.2.50"), "::ffff:192.0.2.50")
        == "192.0.2.50/32 holds the analyst's own address (192.0.2.50/32)"
    )
    assert (
        protected.why_protected(block_network("198.51.100.7"))
        == "198.51.100.7/32 holds allow-listed address (198.51.100.7/32)"
    )


@pytest.mark.parametrize("entry", ["example.com", "10.0.0.0/33", "", "1.2.3"])
def test_a_bad_protected_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"^not an address or network: "):
        Protected.of(["10.0.0.1", entry])
