"""sshd specifics: where the address comes from, per-connection memory and its bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.events import AUTH_FAILURE, AUTH_SUCCESS, Event, failure_count
from soc.parse.base import NO_MATCH, ParseConfig, Skip
from soc.parse.sshd import AWAITING_ADDRESS, KEYS_REJECTED, MAX_CONNECTIONS
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


# --- key offers: an agent's keys before the accepted one are no attempts ---------------
OFFERS = [
    "Failed publickey for alice from 198.51.100.20 port 50122 ssh2: ED25519 SHA256:aaaa",
    "Failed publickey for alice from 198.51.100.20 port 50122 ssh2: RSA SHA256:bbbb",
]


def _stream(lines: list[str]) -> list[Event]:
    parser = _parser()
    out = []
    for line in lines:
        result = _parse(parser, line, pid=4001)
        if isinstance(result, Event):
            out.append(result)
    return out


def test_key_offers_before_the_accepted_key_count_as_no_attempt() -> None:
    events = _stream(
        [*OFFERS, "Accepted publickey for alice from 198.51.100.20 port 50122 ssh2: ECDSA x"],
    )
    assert [(e.kind, e.reason) for e in events] == [
        (AUTH_FAILURE, "failed publickey"),
        (AUTH_FAILURE, "failed publickey"),
        (AUTH_SUCCESS, "accepted publickey"),
    ]
    assert [failure_count(e) for e in events] == [0, 0, 0]


@pytest.mark.parametrize(
    "ending",
    [
        "Connection closed by authenticating user alice 198.51.100.20 port 50122 [preauth]",
        "Received disconnect from 198.51.100.20 port 50122:11: Bye Bye [preauth]",
        "error: maximum authentication attempts exceeded for alice from 198.51.100.20 port 50122"
        " ssh2 [preauth]",
    ],
)
def test_a_connection_that_only_offered_keys_is_one_failure_where_it_ends(ending: str) -> None:
    events = _stream([*OFFERS, ending])
    last = events[-1]
    assert (last.kind, last.outcome, last.reason, last.user) == (
        AUTH_FAILURE,
        "failure",
        KEYS_REJECTED,
        "alice",
    )
    assert (last.source_ip, last.source_port) == ("198.51.100.20", 50122)
    assert sum(failure_count(e) for e in events) == 1


def test_a_password_failure_after_the_offers_is_the_connections_failure() -> None:
    events = _stream(
        [
            *OFFERS,
            "Failed password for alice from 198.51.100.20 port 50122 ssh2",
            "Connection closed by authenticating user alice 198.51.100.20 port 50122 [preauth]",
        ],
    )
    assert [failure_count(e) for e in events] == [0, 0, 1, 0]
    assert events[-1].reason != KEYS_REJECTED


def test_key_offers_for_an_invalid_user_are_attempts() -> None:
    # No agent holds a key for a user that does not exist (fail2ban counts these too).
    event = _event(
        "Failed publickey for invalid user graysky from 198.51.100.20 port 37954 ssh2: RSA x"
    )
    assert failure_count(event) == 1
