"""UDP syslog drops counted exactly: real sockets with a tiny receive buffer, flooded.

Every datagram sent is either yielded by ``read()``, dropped by the kernel (counted
as ``buffer_full``) or still queued when the source closes (``unread_at_close``):
the three add up to what was sent, with no datagram after the overflow needed to
learn of the drops.
"""

from __future__ import annotations

import socket
import time

import pytest

from soc.acquire.syslog import SyslogSource, SyslogSourceConfig
from soc.clock import ManualClock
from soc.errors import SourceError
from soc.events import Line
from tests.conftest import require

#: The smallest receive buffer the configuration accepts (the kernel doubles it).
TINY_BUFFER = 4096


#: IPv4 reads the counter from /proc/net/udp, IPv6 from /proc/net/udp6.
HOSTS = pytest.mark.parametrize("host", ["127.0.0.1", "::1"])


def listen(clock: ManualClock, host: str = "127.0.0.1") -> SyslogSource:
    config = SyslogSourceConfig(protocol="udp", host=host, port=0, receive_buffer_bytes=TINY_BUFFER)
    try:
        return SyslogSource("net", config, clock)
    except SourceError as exc:
        require(host != "::1", f"an IPv6 loopback address: {exc}")
        raise


def flood(source: SyslogSource, count: int) -> int:
    """Send ``count`` numbered datagrams as fast as possible; how many the kernel took."""
    family = socket.AF_INET6 if ":" in source.config.host else socket.AF_INET
    sent = 0
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.connect((source.config.host, source.bound_port))
        for i in range(count):
            sender.send(b"<13>flood %d" % i)
            sent += 1
    return sent


def read_all(source: SyslogSource) -> list[Line]:
    """Call read() until a call yields nothing, without letting the source's clock move."""
    lines: list[Line] = []
    while batch := list(source.read()):
        lines.extend(batch)
    return lines


def numbers(lines: list[Line]) -> list[int]:
    return [int(line.text.rsplit(" ", 1)[1]) for line in lines]


@HOSTS
def test_received_plus_counted_drops_is_exactly_what_was_sent(host: str) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    source = listen(clock, host)
    try:
        sent = flood(source, 20_000)
        received = read_all(source)
    finally:
        source.close()
    dropped = source.stats.anomalies["buffer_full"]
    unread = source.stats.anomalies["unread_at_close"]
    assert 0 < len(received) < sent
    assert dropped > 0
    assert len(received) + dropped + unread == sent
    # What came through came in order, each once: the first ones, before the buffer filled.
    assert numbers(received) == sorted(set(numbers(received)))


@HOSTS
def test_drops_with_no_datagram_after_them_are_counted_at_the_next_poll_and_at_close(
    host: str,
) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    source = listen(clock, host)
    try:
        assert list(source.read()) == []  # reads the kernel's counter (0) once
        sent = flood(source, 5_000)
        received = read_all(source)
        # The datagrams still queued were queued before the overflow, so they carry no
        # drop count, and the clock has not moved: nothing has told the source yet.
        assert 0 < len(received) < sent
        assert source.stats.anomalies["buffer_full"] == 0
        clock.advance(1.0)
        assert list(source.read()) == []
        assert len(received) + source.stats.anomalies["buffer_full"] == sent
    finally:
        source.close()
    # Read again at close: the same kernel counter, so nothing is counted twice.
    assert len(received) + source.stats.anomalies["buffer_full"] == sent
    assert source.stats.anomalies["unread_at_close"] == 0


@HOSTS
def test_close_counts_the_datagrams_still_queued_and_the_drops(host: str) -> None:
    clock = ManualClock(start=1_700_000_000.0)
    source = listen(clock, host)
    sent = flood(source, 5_000)
    source.close()  # never read: the engine stopped
    unread = source.stats.anomalies["unread_at_close"]
    assert unread > 0
    assert unread + source.stats.anomalies["buffer_full"] == sent
    assert list(source.read()) == []
    source.close()  # a second close counts nothing more
    assert unread + source.stats.anomalies["buffer_full"] == sent


def test_lines_held_for_the_next_read_are_counted_at_close() -> None:
    # TCP: one recv() can frame more lines than one read() may yield.
    config = SyslogSourceConfig(protocol="tcp", port=0, max_buffered_lines=2)
    source = SyslogSource("net", config, ManualClock())
    try:
        with socket.create_connection(("127.0.0.1", source.bound_port)) as sender:
            sender.sendall(b"".join(b"<13>m%d\n" % i for i in range(5)))
            got: list[Line] = []
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                got = list(source.read())
                time.sleep(0.005)
            assert [line.text for line in got] == ["<13>m0", "<13>m1"]
            source.close()
    finally:
        source.close()
    assert source.stats.lines == 5
    assert source.stats.anomalies["unread_at_close"] == 3
