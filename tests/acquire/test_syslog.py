"""Tests for the syslog listener: real UDP and TCP sockets on 127.0.0.1, ephemeral ports."""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
from collections.abc import Iterator

import pytest

from soc.acquire import source_classes
from soc.acquire.syslog import SyslogSource, SyslogSourceConfig
from soc.clock import ManualClock
from soc.errors import ConfigError, SourceError
from soc.events import Line

RFC3164 = b"<34>Oct 11 22:14:15 mymachine sshd[42]: Failed password for root from 10.0.0.1"
RFC5424 = b"<165>1 2003-10-11T22:14:15.003Z host sshd 42 ID47 - Invalid user bob from 10.0.0.2"


def listen(protocol: str, **kwargs: object) -> SyslogSource:
    config = SyslogSourceConfig(protocol=protocol, port=0, **kwargs)  # type: ignore[arg-type]
    return SyslogSource("net", config, ManualClock(start=1_700_000_000.0))


@pytest.fixture
def udp() -> Iterator[SyslogSource]:
    source = listen("udp")
    yield source
    source.close()


@pytest.fixture
def tcp() -> Iterator[SyslogSource]:
    source = listen("tcp")
    yield source
    source.close()


def collect(source: SyslogSource, count: int, timeout: float = 5.0) -> list[Line]:
    """Call read() like the engine does until ``count`` lines came (or time is up)."""
    out: list[Line] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out.extend(source.read())
        if len(out) < count:
            time.sleep(0.005)
    return out


def settle(source: SyslogSource, seconds: float = 0.2) -> list[Line]:
    """Everything read() yields over a short while (to check nothing more arrives)."""
    out: list[Line] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.extend(source.read())
        time.sleep(0.005)
    return out


def sender(source: SyslogSource) -> socket.socket:
    kind = socket.SOCK_DGRAM if source.config.protocol == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.connect(("127.0.0.1", source.bound_port))
    return sock


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def test_registry_names_the_classes() -> None:
    assert source_classes("syslog") == (SyslogSourceConfig, SyslogSource)


# --- UDP ---------------------------------------------------------------------------


def test_udp_one_datagram_is_one_message_headers_kept(udp: SyslogSource) -> None:
    assert udp.bound_port > 0
    with sender(udp) as s:
        s.send(RFC3164 + b"\n")
        s.send(RFC5424 + b"\x00")
        s.send(b"")  # an empty datagram is no message
        s.send(b"<13>two\nlines in one datagram")
        s.send(b"<13>bad \xff utf8")
        lines = collect(udp, 4)
    assert texts(lines) == [
        RFC3164.decode(),
        RFC5424.decode(),
        "<13>two\nlines in one datagram",
        "<13>bad \ufffd utf8",
    ]
    assert [x.line_no for x in lines] == [1, 2, 3, 4]
    assert {x.stream for x in lines} == {f"udp://127.0.0.1:{udp.bound_port}"}
    assert {x.source for x in lines} == {"net"}
    assert {x.received for x in lines} == {1_700_000_000.0}
    assert udp.stats.lines == 4
    assert udp.stats.anomalies["invalid_utf8"] == 1
    assert udp.checkpoint() is None
    assert not udp.exhausted


def test_udp_oversize_datagram_is_malformed_and_dropped() -> None:
    source = listen("udp", max_message_bytes=480)
    try:
        with sender(source) as s:
            s.send(b"<13>" + b"x" * 1000)
            s.send(b"<13>" + b"y" * 476)  # exactly 480 bytes: accepted
            s.send(b"<13>after")
            lines = collect(source, 2)
        assert texts(lines) == ["<13>" + "y" * 476, "<13>after"]
        assert source.stats.anomalies["malformed_frame"] == 1
    finally:
        source.close()


def test_udp_max_buffered_lines_bounds_each_read_without_loss() -> None:
    source = listen("udp", max_buffered_lines=10)
    try:
        with sender(source) as s:
            for i in range(25):
                s.send(b"<13>m%d" % i)
            time.sleep(0.05)
            sizes = [len(list(source.read())) for _ in range(4)]
        assert sizes == [10, 10, 5, 0]
        assert source.stats.lines == 25
        assert source.stats.anomalies["buffer_full"] == 0
    finally:
        source.close()


def test_udp_kernel_drops_are_counted_as_buffer_full() -> None:
    # A tiny receive buffer that nobody drains: the kernel drops datagrams, and the
    # drop count it reports with the next datagram delivered is counted.
    source = listen("udp", receive_buffer_bytes=4096)
    sent = 2000
    try:
        with sender(source) as s:
            for i in range(sent):
                s.send(b"<13>flood %d" % i)
            received = len(settle(source, 0.1))
            s.send(b"<13>last")
            received += len(collect(source, 1))
        dropped = source.stats.anomalies["buffer_full"]
        assert dropped > 0
        assert received + dropped == sent + 1
    finally:
        source.close()


# --- TCP, newline framing -------------------------------------------------------------


def test_tcp_newline_framing_split_across_sends(tcp: SyslogSource) -> None:
    with sender(tcp) as s:
        s.sendall(RFC3164[:20])
        assert collect(tcp, 1, timeout=0.2) == []  # half a message is not a message
        s.sendall(RFC3164[20:] + b"\n<13>b\r\n<13>c\x00\n\n<13>d")
        lines = collect(tcp, 3)
        assert texts(lines) == [RFC3164.decode(), "<13>b", "<13>c"]
    # The last message had no trailer: the end of the connection completes it.
    last = collect(tcp, 1)
    assert texts(last) == ["<13>d"]
    assert [x.line_no for x in lines + last] == [1, 2, 3, 4]
    assert last[0].stream == f"tcp://127.0.0.1:{tcp.bound_port}"
    assert tcp.stats.anomalies["malformed_frame"] == 0


def test_tcp_newline_oversize_line_is_dropped_connection_survives() -> None:
    source = listen("tcp", max_message_bytes=480)
    try:
        with sender(source) as s:
            s.sendall(b"<13>ok one\n<13>" + b"x" * 700)
            assert texts(collect(source, 1)) == ["<13>ok one"]
            s.sendall(b"y" * 700 + b"\n<13>ok two\n")
            assert texts(collect(source, 1)) == ["<13>ok two"]
            s.sendall(b"<13>ok three\n")
            assert texts(collect(source, 1)) == ["<13>ok three"]
            assert source.connections == 1
        assert source.stats.anomalies["malformed_frame"] == 1
    finally:
        source.close()


# --- TCP, octet counting ----------------------------------------------------------------


def frame(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)


def test_tcp_octet_counting_frames_split_anywhere(tcp: SyslogSource) -> None:
    data = frame(RFC5424) + frame(b"<13>1 - h app - - - line\nwith newline") + frame(b"<13>x\n")
    with sender(tcp) as s:
        # Cut inside the count, inside the message and between frames.
        cuts = [0, 2, 40, len(frame(RFC5424)), len(frame(RFC5424)) + 5, len(data)]
        got: list[Line] = []
        for a, b in itertools.pairwise(cuts):
            s.sendall(data[a:b])
            got.extend(collect(tcp, 1, timeout=0.1))
        got.extend(collect(tcp, 3 - len(got)))
    assert texts(got) == [
        RFC5424.decode(),
        "<13>1 - h app - - - line\nwith newline",  # octet counting keeps inner newlines
        "<13>x",  # a trailing LF inside the frame is stripped
    ]
    assert tcp.stats.anomalies["malformed_frame"] == 0


def test_tcp_octet_counting_tolerates_uncounted_lf_between_frames(tcp: SyslogSource) -> None:
    with sender(tcp) as s:
        s.sendall(frame(b"<13>a") + b"\n" + frame(b"<13>b") + b"\r\n")
        assert texts(collect(tcp, 2)) == ["<13>a", "<13>b"]


def test_tcp_octet_oversize_frame_is_skipped_connection_survives() -> None:
    source = listen("tcp", max_message_bytes=480)
    try:
        with sender(source) as s:
            big = b"<13>" + b"z" * 1996
            s.sendall(frame(b"<13>before") + frame(big)[:800])
            assert texts(collect(source, 1)) == ["<13>before"]
            s.sendall(frame(big)[800:] + frame(b"<13>after"))
            assert texts(collect(source, 1)) == ["<13>after"]
            assert source.stats.anomalies["malformed_frame"] == 1
            s.sendall(frame(b"<13>still open"))
            assert texts(collect(source, 1)) == ["<13>still open"]
            assert source.connections == 1
    finally:
        source.close()


@pytest.mark.parametrize(
    "garbage",
    [b"12a4 <13>x", b"0 <13>x", b"012 <13>x", b"12345678901 <13>x", b"99999999999"],
)
def test_tcp_garbage_octet_count_closes_the_connection(tcp: SyslogSource, garbage: bytes) -> None:
    with sender(tcp) as s:
        s.sendall(frame(b"<13>good") + garbage)
        assert texts(collect(tcp, 1)) == ["<13>good"]
        deadline = time.monotonic() + 5
        while tcp.connections and time.monotonic() < deadline:
            list(tcp.read())
            time.sleep(0.005)
        assert tcp.connections == 0
        s.settimeout(5)
        with contextlib.suppress(ConnectionResetError):  # a reset says the same
            assert s.recv(10) == b""  # the listener hung up
    assert tcp.stats.anomalies["malformed_frame"] == 1
    # The listener itself is fine: a new connection works.
    with sender(tcp) as s:
        s.sendall(frame(b"<13>new"))
        assert texts(collect(tcp, 1)) == ["<13>new"]


def test_tcp_frame_cut_by_end_of_connection_is_malformed(tcp: SyslogSource) -> None:
    with sender(tcp) as s:
        s.sendall(frame(b"<13>complete") + b"50 <13>cut short")
        assert texts(collect(tcp, 1)) == ["<13>complete"]
    settle(tcp)
    assert tcp.stats.anomalies["malformed_frame"] == 1
    assert tcp.connections == 0


# --- TCP, many connections --------------------------------------------------------------


def test_tcp_many_connections_interleaved_both_framings(tcp: SyslogSource) -> None:
    senders = [sender(tcp) for _ in range(60)]
    expected: list[str] = []
    got: list[Line] = []
    try:
        for round_ in range(10):
            for i, s in enumerate(senders):
                message = b"<13>conn %d msg %d" % (i, round_)
                expected.append(message.decode())
                s.sendall(frame(message) if i % 2 else message + b"\n")
            got.extend(tcp.read())  # the engine reads while traffic flows
        got.extend(collect(tcp, len(expected) - len(got)))
        assert tcp.connections == 60
    finally:
        for s in senders:
            s.close()
    assert sorted(texts(got)) == sorted(expected)
    assert sorted(x.line_no for x in got) == list(range(1, 601))
    for i in range(60):  # each connection's messages keep their order
        mine = [t for t in texts(got) if t.startswith(f"<13>conn {i} ")]
        assert mine == [f"<13>conn {i} msg {r}" for r in range(10)]
    assert tcp.stats.anomalies["malformed_frame"] == 0
    settle(tcp, 0.1)
    assert tcp.connections == 0


def test_tcp_max_connections_refuses_extra_ones() -> None:
    source = listen("tcp", max_connections=3)
    socks = []
    try:
        for _ in range(3):
            socks.append(sender(source))
            collect(source, 0, timeout=0)
        settle(source, 0.05)
        assert source.connections == 3
        extra = [sender(source) for _ in range(2)]
        settle(source, 0.1)
        assert source.stats.anomalies["too_many_connections"] == 2
        for s in socks:
            s.sendall(b"<13>kept\n")
        for s in extra:
            with contextlib.suppress(OSError):  # already reset by the listener
                s.sendall(b"<13>refused\n")
            s.close()
        lines = collect(source, 3)
        assert texts(lines) == ["<13>kept"] * 3
        assert texts(settle(source, 0.1)) == []
    finally:
        for s in socks:
            s.close()
        source.close()


# --- lifecycle and configuration -------------------------------------------------------


def test_close_releases_the_port() -> None:
    source = listen("tcp")
    port = source.bound_port
    client = sender(source)
    collect(source, 0, timeout=0)
    source.close()
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert list(source.read()) == []
    # The same port can be bound again at once.
    again = SyslogSource("net", SyslogSourceConfig(protocol="tcp", port=port), ManualClock())
    assert again.bound_port == port
    again.close()


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_port_in_use_is_a_source_error(protocol: str) -> None:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if protocol == "tcp":
            taken.listen()
        port = taken.getsockname()[1]
        config = SyslogSourceConfig(protocol=protocol, port=port)  # type: ignore[arg-type]
        with pytest.raises(SourceError, match=f"cannot listen on {protocol} 127.0.0.1:{port}"):
            SyslogSource("net", config, ManualClock())


def test_ipv6_loopback_stream_name() -> None:
    config = SyslogSourceConfig(protocol="udp", host="::1", port=0)
    try:
        source = SyslogSource("net", config, ManualClock())
    except SourceError as exc:  # a kernel without IPv6: the error must say what failed
        assert "cannot listen on udp ::1:0" in str(exc)
        return
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>v6", ("::1", source.bound_port))
            lines = collect(source, 1)
        assert texts(lines) == ["<13>v6"]
        assert lines[0].stream == f"udp://[::1]:{source.bound_port}"
    finally:
        source.close()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"protocol": "sctp"}, "protocol"),
        ({"host": "localhost"}, "host"),
        ({"host": "0.0.0.0.0"}, "host"),
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"port": "5514"}, "port"),
        ({"max_message_bytes": 10}, "max_message_bytes"),
        ({"max_buffered_lines": 0}, "max_buffered_lines"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"receive_buffer_bytes": 1}, "receive_buffer_bytes"),
    ],
)
def test_config_validation_names_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        SyslogSourceConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.where == key


def test_defaults_listen_on_loopback() -> None:
    config = SyslogSourceConfig()
    assert (config.protocol, config.host, config.port) == ("udp", "127.0.0.1", 5514)
