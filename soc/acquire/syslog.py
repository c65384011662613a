"""Receive syslog messages on a UDP or TCP socket, driven from ``read()``.

The sockets are non-blocking and polled with ``selectors`` from ``read()``: no
thread, no lock, and the kernel's socket buffers are the queue between the
network and the engine (the engine calls ``read()`` many times a second, and
model calls run off its hot path). UDP is at most once: datagrams the kernel
drops because the receive buffer is full are counted, exactly, as ``buffer_full``.
The count is the kernel's drop counter of our socket (``sk_drops``), which Linux
reports in two places: with each datagram received (``SO_RXQ_OVFL``), and in the
``drops`` column of ``/proc/net/udp`` (``udp6`` for IPv6), read at most once a
second from ``read()`` and once more at ``close()``, so that drops after the last
datagram received are counted too. The larger of the two is the total; only its
increase is added. Without ``/proc`` only ``SO_RXQ_OVFL`` counts (drops are learnt
with the next datagram received), and on systems other than Linux nothing does.
TCP loses nothing to a full buffer: the kernel pushes back on the sender.

``close()`` receives the datagrams still queued in the kernel and counts them, with
the lines received but not yielded yet, as ``unread_at_close``; then it reads the
drop counter one last time, so that the counts are final when the source is closed.

Messages are yielded as received, ``<PRI>`` and header included: parsing RFC 3164
and RFC 5424 is the parsers' job. TCP framing (RFC 6587) is detected per
connection from its first byte: a digit means octet counting (``LEN SP MSG``),
anything else newline (LF or NUL) framing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import socket
import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from soc.acquire.base import AcquireStats, decode_line
from soc.clock import Clock
from soc.errors import ConfigError, SourceError
from soc.events import Line

_TCP_RECV_BYTES: Final = 256 * 1024
_TCP_RECV_PER_TURN: Final = 4  # recv() calls per connection per select pass, for fairness
_MAX_PASSES: Final = 64  # select passes per read(): a trickling sender cannot hold the engine
_MAX_COUNT_DIGITS: Final = 10  # the octet count of a frame; more digits is garbage
_TRAILER: Final = b"\n\r\x00"
_DIGITS: Final = frozenset(b"0123456789")
_SO_RXQ_OVFL: Final = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux only
_DROPS_TABLES: Final = {socket.AF_INET: "/proc/net/udp", socket.AF_INET6: "/proc/net/udp6"}
_DROPS_READ_SECONDS: Final = 1.0  # how often read() reads the kernel's drop counter
# A queued datagram costs the receive buffer more than this (its sk_buff alone does):
# close() receives at most SO_RCVBUF / this, so a sender flooding it cannot hold it.
_MIN_DATAGRAM_COST: Final = 256
_MIN_MESSAGE_BYTES: Final = 480  # RFC 5424 6.1: receivers MUST accept 480 octets
_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024


@dataclass(slots=True)
class SyslogSourceConfig:
    """Where to listen for syslog, and the limits that keep memory bounded.

    ``host`` must be an IP address; it defaults to loopback so that nothing is
    exposed unless asked for. ``port`` 0 binds an ephemeral port (see
    ``SyslogSource.bound_port``). A message over ``max_message_bytes`` is dropped
    and counted as ``malformed_frame`` (lines are cut at 64 KiB in any case).
    ``max_buffered_lines`` bounds the lines held between the sockets and the engine
    and the lines one ``read()`` yields: when it is reached the source stops
    reading, so TCP senders are pushed back and UDP datagrams wait in the kernel's
    buffer; those the kernel drops when that is full are counted as ``buffer_full``
    (see the module docstring).
    ``receive_buffer_bytes`` is the UDP receive buffer asked of the kernel (which
    caps it at ``net.core.rmem_max``).
    """

    protocol: Literal["udp", "tcp"] = "udp"
    host: str = "127.0.0.1"
    port: int = 5514
    max_message_bytes: int = 64 * 1024
    max_buffered_lines: int = 100_000
    max_connections: int = 256
    receive_buffer_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.protocol not in ("udp", "tcp"):
            raise ConfigError(f"must be 'udp' or 'tcp', not {self.protocol!r}", "protocol")
        if not isinstance(self.host, str):
            raise ConfigError("must be an IP address such as 127.0.0.1 or ::1", "host")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise ConfigError(
                f"must be an IP address such as 127.0.0.1 or ::1, not {self.host!r}", "host"
            ) from None
        _check_int(self.port, "port", 0, 65535)
        _check_int(
            self.max_message_bytes, "max_message_bytes", _MIN_MESSAGE_BYTES, _MAX_MESSAGE_BYTES
        )
        _check_int(self.max_buffered_lines, "max_buffered_lines", 1, 100_000_000)
        _check_int(self.max_connections, "max_connections", 1, 1_000_000)
        _check_int(self.receive_buffer_bytes, "receive_buffer_bytes", 4096, 1 << 30)


def _check_int(value: object, key: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"must be an integer, not {value!r}", key)
    if not low <= value <= high:
        raise ConfigError(f"must be between {low} and {high}, not {value}", key)


class _Connection:
    """One TCP connection's framing state."""

    __slots__ = ("buffer", "discard_line", "mode", "peer", "skip", "sock")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray()
        self.mode: Literal["octet", "newline"] | None = None
        self.skip = 0  # octet mode: bytes of an oversize frame still to throw away
        self.discard_line = False  # newline mode: throwing away an oversize line


class SyslogSource:
    """A syslog listener (UDP or TCP) that yields each message as one line.

    The socket is bound in the constructor, so a port that cannot be bound raises
    ``SourceError`` before anything runs. ``bound_port`` is the port actually bound.
    ``line_no`` is a running count of messages over all senders; there is no
    checkpoint (the network cannot be rewound).
    """

    def __init__(self, name: str, config: SyslogSourceConfig, clock: Clock) -> None:
        self.name = name
        self.config = config
        self.stats = AcquireStats()
        self._clock = clock
        self._pending: deque[Line] = deque()
        self._line_no = 0
        self._connections: dict[int, _Connection] = {}
        self._udp_drops = 0  # the kernel's running drop count, as far as we know it
        self._drops_table: str | None = None  # where /proc shows it; None: not there
        self._drops_due = 0.0  # clock.monotonic() at which read() reads it next
        self._inode = 0
        self._drain_limit = 0  # datagrams close() receives at most
        self._closed = False
        # One reused receive buffer; a UDP datagram never exceeds 64 KiB.
        self._datagram = bytearray(min(config.max_message_bytes + 1, 65536))
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        kind = socket.SOCK_DGRAM if config.protocol == "udp" else socket.SOCK_STREAM
        self._socket = socket.socket(family, kind)
        try:
            if config.protocol == "tcp":
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:
                self._socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, config.receive_buffer_bytes
                )
                with contextlib.suppress(OSError):  # not Linux: kernel drops go uncounted
                    self._socket.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
            self._socket.bind((config.host, config.port))
            if config.protocol == "tcp":
                self._socket.listen(128)
            else:
                self._inode = os.fstat(self._socket.fileno()).st_ino
                self._drops_table = _DROPS_TABLES[family]
                rcvbuf = self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                self._drain_limit = rcvbuf // _MIN_DATAGRAM_COST + 1
            self._socket.setblocking(False)
        except OSError as exc:
            self._socket.close()
            raise SourceError(
                f"cannot listen on {config.protocol} {config.host}:{config.port}: {exc}", name
            ) from exc
        self.bound_port: int = self._socket.getsockname()[1]
        host = f"[{config.host}]" if family == socket.AF_INET6 else config.host
        self.stream = f"{config.protocol}://{host}:{self.bound_port}"
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._socket, selectors.EVENT_READ, None)

    @property
    def exhausted(self) -> bool:
        """Always False: a listener can always receive more."""
        return False

    @property
    def connections(self) -> int:
        """How many TCP connections are open now."""
        return len(self._connections)

    def read(self) -> Iterator[Line]:
        """Yield the messages received now (at most ``max_buffered_lines``), then return.

        UDP: once a second (of the clock's ``monotonic()``), the kernel's drop count
        is read first.
        """
        if self._closed:
            return
        if self._drops_table is not None and self._clock.monotonic() >= self._drops_due:
            self._read_kernel_drops()
        budget = self.config.max_buffered_lines
        for _ in range(_MAX_PASSES):
            while self._pending and budget > 0:
                budget -= 1
                yield self._pending.popleft()
            if budget <= 0 or self._closed:
                return
            events = self._selector.select(0)
            if not events:
                return
            received = self._clock.now()
            for key, _ in events:
                if len(self._pending) >= self.config.max_buffered_lines:
                    break  # the rest waits in the kernel until the engine catches up
                if key.data is None:
                    if self.config.protocol == "udp":
                        self._receive_datagrams(received, self.config.max_buffered_lines)
                    else:
                        self._accept()
                else:
                    self._receive_stream(key.data, received)
        while self._pending and budget > 0:
            budget -= 1
            yield self._pending.popleft()

    def checkpoint(self) -> dict[str, Any] | None:
        """None: received messages cannot be replayed."""
        return None

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing to restore: a listener starts from what arrives next."""

    def close(self) -> None:
        """Close the listening socket and every connection; make the counts final.

        The engine reads no more once it closes its sources, so what is still
        queued is lost: UDP datagrams still in the kernel's buffer are received
        (at most what the buffer can hold) and counted, with the lines received
        but not yielded yet, as ``unread_at_close``, and the kernel's drop count is
        read one last time. (Bytes still unread on TCP connections are not: they are
        not framed into messages at close, and the sender sees its connection reset.)
        """
        if self._closed:
            return
        self._closed = True
        if self.config.protocol == "udp":
            self._receive_datagrams(self._clock.now(), len(self._pending) + self._drain_limit)
            self._read_kernel_drops()
        if self._pending:
            self.stats.anomalies["unread_at_close"] += len(self._pending)
            self._pending.clear()
        for conn in list(self._connections.values()):
            self._drop_connection(conn)
        self._selector.close()
        self._socket.close()

    # --- UDP ----------------------------------------------------------------------

    def _receive_datagrams(self, received: float, capacity: int) -> None:
        """Receive datagrams until none is queued, at most enough to fill ``capacity``.

        Each datagram is one message at most, so empty or oversize ones cannot
        keep this loop going either.
        """
        limit = self.config.max_message_bytes
        ancillary = socket.CMSG_SPACE(4)
        buffers = [self._datagram]
        view = memoryview(self._datagram)
        for _ in range(capacity - len(self._pending)):
            try:
                size, ancdata, flags, _ = self._socket.recvmsg_into(buffers, ancillary)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP errors surface as ECONNREFUSED on some systems; not ours to act on.
                self.stats.anomalies["receive_error"] += 1
                continue
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                    # The kernel's running total of datagrams it dropped on this socket.
                    self._count_drops(struct.unpack("=I", value[:4])[0])
            if size > limit or flags & socket.MSG_TRUNC:
                self.stats.anomalies["malformed_frame"] += 1
                continue
            self._emit(bytes(view[:size]).rstrip(_TRAILER), received)

    def _read_kernel_drops(self) -> None:
        """Count the drops ``/proc`` shows for our socket; stop asking if it cannot say."""
        self._drops_due = self._clock.monotonic() + _DROPS_READ_SECONDS
        if self._drops_table is None:
            return
        try:
            total = _kernel_drops(self._drops_table, self._inode)
        except (OSError, ValueError):
            self._drops_table = None  # no /proc (not Linux): SO_RXQ_OVFL alone
            return
        if total is not None:
            self._count_drops(total)

    def _count_drops(self, total: int) -> None:
        """The kernel's running drop count is ``total``: count what was not counted yet."""
        if total > self._udp_drops:
            self.stats.anomalies["buffer_full"] += total - self._udp_drops
            self._udp_drops = total

    # --- TCP ----------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # EMFILE and friends: leave the connection in the backlog for later.
                self.stats.anomalies["accept_error"] += 1
                return
            if len(self._connections) >= self.config.max_connections:
                self.stats.anomalies["too_many_connections"] += 1
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Connection(sock, f"{address[0]}:{address[1]}")
            self._connections[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _receive_stream(self, conn: _Connection, received: float) -> None:
        for _ in range(_TCP_RECV_PER_TURN):
            if len(self._pending) >= self.config.max_buffered_lines:
                return  # leave the rest in the kernel: TCP pushes back on the sender
            try:
                data = conn.sock.recv(_TCP_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.stats.anomalies["connection_error"] += 1
                self._end_of_stream(conn, received)
                return
            if not data:
                self._end_of_stream(conn, received)
                return
            conn.buffer += data
            if not self._frame(conn, received):
                self._drop_connection(conn)
                return

    def _end_of_stream(self, conn: _Connection, received: float) -> None:
        if self._frame(conn, received) and conn.buffer:
            if conn.mode == "octet":
                self.stats.anomalies["malformed_frame"] += 1  # a frame cut short
            elif not conn.discard_line:
                self._emit(bytes(conn.buffer), received)  # last message had no trailer
        self._drop_connection(conn)

    def _drop_connection(self, conn: _Connection) -> None:
        self._connections.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _frame(self, conn: _Connection, received: float) -> bool:
        """Emit the complete messages in ``conn.buffer``; False if the stream is garbage."""
        if conn.mode is None:
            start = _skip_trailers(conn.buffer, 0)
            if start == len(conn.buffer):
                conn.buffer.clear()
                return True
            conn.mode = "octet" if conn.buffer[start] in _DIGITS else "newline"
        if conn.mode == "octet":
            return self._frame_octets(conn, received)
        self._frame_lines(conn, received)
        return True

    def _frame_octets(self, conn: _Connection, received: float) -> bool:
        buf = conn.buffer
        limit = self.config.max_message_bytes
        pos = 0
        while True:
            if conn.skip:
                dropped = min(conn.skip, len(buf) - pos)
                conn.skip -= dropped
                pos += dropped
                if conn.skip:
                    break
            # Some senders put an uncounted LF after each frame: tolerate it.
            pos = _skip_trailers(buf, pos)
            space = buf.find(b" ", pos, pos + _MAX_COUNT_DIGITS + 1)
            if space < 0:
                head = buf[pos : pos + _MAX_COUNT_DIGITS + 1]
                if len(head) > _MAX_COUNT_DIGITS or not all(b in _DIGITS for b in head):
                    self.stats.anomalies["malformed_frame"] += 1
                    return False
                break
            digits = buf[pos:space]
            if not digits or not all(b in _DIGITS for b in digits) or digits[0] == ord("0"):
                self.stats.anomalies["malformed_frame"] += 1
                return False
            count = int(digits)
            if count > limit:
                # The count is believable, only too big: skip the frame, keep the stream.
                self.stats.anomalies["malformed_frame"] += 1
                conn.skip = count
                pos = space + 1
                continue
            end = space + 1 + count
            if end > len(buf):
                break
            self._emit(bytes(buf[space + 1 : end]).rstrip(_TRAILER), received)
            pos = end
        del buf[:pos]
        return True

    def _frame_lines(self, conn: _Connection, received: float) -> None:
        buf = conn.buffer
        pos = 0
        while (end := _find_trailer(buf, pos)) >= 0:
            if conn.discard_line:
                conn.discard_line = False
            else:
                self._emit(bytes(buf[pos:end]), received)
            pos = end + 1
        del buf[:pos]
        if len(buf) > self.config.max_message_bytes:
            if not conn.discard_line:
                self.stats.anomalies["malformed_frame"] += 1
                conn.discard_line = True
            buf.clear()

    # --- output -------------------------------------------------------------------

    def _emit(self, raw: bytes, received: float) -> None:
        if not raw or raw == b"\r":
            return
        self.stats.lines += 1
        self.stats.bytes += len(raw)
        self._line_no += 1
        self._pending.append(
            Line(
                decode_line(raw, self.stats), self.name, self.stream, self._line_no, None, received
            )
        )


def _kernel_drops(table: str, inode: int) -> int | None:
    """The ``drops`` column of the socket ``inode`` in a ``/proc/net/udp`` table, or None.

    Columns: ``sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt
    uid timeout inode ref pointer drops``; the inode is the one ``fstat`` gives.
    """
    needle = f" {inode} "
    with open(table, encoding="ascii") as rows:
        for row in rows:
            if needle in row:
                fields = row.split()
                if len(fields) >= 13 and fields[9] == str(inode):
                    return int(fields[12])
    return None


def _skip_trailers(buf: bytearray, pos: int) -> int:
    """The index of the first byte at or after ``pos`` that is not LF, CR or NUL."""
    while pos < len(buf) and buf[pos] in _TRAILER:
        pos += 1
    return pos


def _find_trailer(buf: bytearray, pos: int) -> int:
    """The index of the next LF or NUL at or after ``pos``, or -1."""
    lf = buf.find(b"\n", pos)
    nul = buf.find(b"\x00", pos, lf if lf >= 0 else len(buf))
    return nul if nul >= 0 else lf
