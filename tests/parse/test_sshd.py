"""sshd specifics: where the address comes from, per-connection memory and its bounds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from soc.events import AUTH_FAILURE, AUTH_SUCCESS, Event
from soc.parse.base import NO_MATCH, ParseConfig, Skip
from soc.parse.sshd import AWAITING_ADDRESS, MAX_CONNECTIONS
from soc.parse.syslog import SyslogParser

REFERENCE = 1763766868.0
PREFIX = "Nov 21 23:14:28 host sshd[{pid}]: "


def _parser() -> SyslogParser:
    return SyslogParser(ParseConfig(timezone="UTC"), REFERENCE)


def _parse(parser: SyslogParser, message: str, pid: int = 42) -> Event | Skip:
    return parser.parse(PREFIX.format(pid=pid) + message, 1)


def _event(message: str) -> Event:
    result = _parse(_parser(), message)
    assert isinstance(result, Event), result
    return result


def test_invalid_user_address_is_the_last_one() -> None:
    event = _event(
        "Failed password for invalid user x from 6.6.6.6 port 1 ssh2: y"
        " from 203.0.113.5 port 5 ssh2"
    )
    assert (event.source_ip, event.source_port) == ("203.0.113.5", 5)
    assert event.user == "x from 6.6.6.6 port 1 ssh2: y"


def test_valid_user_address_is_the_first_one() -> None:
    # A system account has no spaces; what follows "ssh2:" is auth info the client chose.
    event = _event(
        'Failed hostbased for dan from 203.0.113.6 port 7 ssh2: RSA SHA256:x, client user "a from '
        '6.6.6.6 port 1 ssh2", client host "h"'
    )
    assert (event.source_ip, event.user) == ("203.0.113.6", "dan")


def test_closed_by_user_with_address_like_text() -> None:
    event = _event(
        "Connection closed by authenticating user a 6.6.6.6 port 1 203.0.113.7 port 9 [preauth]"
    )
    assert (event.source_ip, event.source_port, event.user) == (
        "203.0.113.7",
        9,
        "a 6.6.6.6 port 1",
    )


def test_out_of_range_port_is_dropped_not_raised() -> None:
    event = _event("Failed password for root from 203.0.113.8 port 99999 ssh2")
    assert event.source_ip == "203.0.113.8" and event.source_port is None


def test_repeat_count_zero_is_not_understood() -> None:
    result = _parse(
        _parser(), "message repeated 0 times: [ Failed password for root from 1.2.3.4 port 2 ssh2]"
    )
    assert result is NO_MATCH


def test_success_forgets_a_waiting_failure() -> None:
    parser = _parser()
    assert _parse(parser, "Disconnecting: Too many authentication failures [preauth]") is (
        AWAITING_ADDRESS
    )
    accepted = _parse(parser, "Accepted publickey for git from 203.0.113.9 port 3 ssh2: RSA x")
    assert isinstance(accepted, Event) and accepted.kind == AUTH_SUCCESS
    closed = _parse(parser, "Connection closed by 203.0.113.9 port 3")
    assert isinstance(closed, Skip)


def test_connection_memory_is_bounded() -> None:
    parser = _parser()
    first, last = 100000, 100000 + MAX_CONNECTIONS + 500
    for pid in range(first, last + 1):
        _parse(
            parser,
            f"Connection from 203.0.113.{pid % 250} port {pid % 60000} on 10.0.0.1 port 22",
            pid,
        )
    too_many = "Disconnecting: Too many authentication failures [preauth]"
    assert _parse(parser, too_many, first) is AWAITING_ADDRESS  # forgotten
    recent = _parse(parser, too_many, last)
    assert isinstance(recent, Event) and recent.kind == AUTH_FAILURE
    # Failures waiting for an address are bounded the same way.
    for pid in range(first, last + 1):
        _parse(parser, too_many, pid + 10**6)
    assert isinstance(
        _parse(parser, "Connection closed by 203.0.113.1 port 1 [preauth]", last + 10**6), Event
    )
    oldest = _parse(parser, "Connection closed by 203.0.113.1 port 1 [preauth]", first + 10**6)
    assert isinstance(oldest, Event) and oldest.kind != AUTH_FAILURE


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["password", "publickey", "keyboard-interactive/pam", "none", "x"]),
    user=st.text(max_size=40),
    tail=st.sampled_from(["", ": RSA SHA256:abc", " ssh2", ": from 6.6.6.6 port 1 ssh2"]),
)
def test_accepted_is_never_a_failure(method: str, user: str, tail: str) -> None:
    parser = _parser()
    _parse(parser, "Disconnecting: Too many authentication failures [preauth]")
    result = _parse(parser, f"Accepted {method} for {user} from 203.0.113.10 port 22 ssh2{tail}")
    assert isinstance(result, Skip) or (result.kind == AUTH_SUCCESS and result.outcome == "success")
