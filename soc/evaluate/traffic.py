"""Labelled log records for one scenario, written to files in time order.

A scenario's generators add :class:`Record` s to a :class:`Traffic`, each tagged
with the campaign it belongs to (a legitimate user, an attack, hostile noise) and
the source address it shows. ``Traffic`` keeps them per file, writes them in time
order (``flush`` writes what is older than a given time, so a long scenario never
holds more than a day or so in memory), numbers sshd connections as real PIDs at
the moment they first appear, stops a file at its line limit, and at ``close``
returns the :class:`~soc.evaluate.labels.Labels` of what was actually written.
"""

from __future__ import annotations

import ipaddress
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final, NamedTuple

from soc.evaluate.labels import Campaign, Labels

#: The year of the generated logs (traditional syslog stamps carry none).
YEAR: Final = 2025
#: Monday 3 November 2025, 00:00 UTC: every scenario starts here.
START: Final = datetime(YEAR, 11, 3, tzinfo=UTC).timestamp()
DAY: Final = 86_400.0
HOUR: Final = 3_600.0
MINUTE: Final = 60.0
#: The simulated server: its host name and address (the destination of every packet).
HOST: Final = "web01"
SERVER_IP: Final = "192.0.2.10"

AUTH_LOG: Final = "auth.log"
ACCESS_LOG: Final = "access.log"
UFW_LOG: Final = "ufw.log"
#: Files in the order a replay reads them.
FILES: Final = (AUTH_LOG, ACCESS_LOG, UFW_LOG)

_MARK: Final = "\x00"  # around a session placeholder in a line's text
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


class Record(NamedTuple):
    """One log line to be: when, in which order, whose, and its text.

    ``conn`` > 0 marks a line of an sshd connection: ``text`` is the message and
    the line is written as ``sshd[PID]: text`` with the PID the connection got.
    Otherwise ``text`` is everything after the syslog host (``CRON[42]: …``,
    ``kernel: …``), or for an access log the whole line.
    """

    t: float
    seq: int
    campaign: int
    conn: int
    text: str


class AddressBook:
    """Hands out distinct source addresses from the documentation and private ranges.

    ``public`` addresses come from 198.51.100.0/24 and 203.0.113.0/24 (then from
    10.0.0.0/8 once those are used up), ``lan`` ones from 192.0.2.0/24 (the
    server's own network: offices, CI runners), ``private`` ones from 10.0.0.0/8 and
    ``ipv6`` ones from 2001:db8::/32, each in a /64 of its own.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = {SERVER_IP, "192.0.2.1"}
        public = [f"198.51.100.{i}" for i in range(1, 255)]
        public += [f"203.0.113.{i}" for i in range(1, 255)]
        rng.shuffle(public)
        self._public = public
        lan = [f"192.0.2.{i}" for i in range(11, 255)]
        rng.shuffle(lan)
        self._lan = lan

    def public(self) -> str:
        """A documentation address (or a 10/8 one when those are used up)."""
        while self._public:
            address = self._public.pop()
            if address not in self._used:
                self._used.add(address)
                return address
        return self.private()

    def lan(self) -> str:
        """An address on the server's own network, 192.0.2.0/24."""
        while self._lan:
            address = self._lan.pop()
            if address not in self._used:
                self._used.add(address)
                return address
        return self.private()

    def private(self) -> str:
        """A 10.0.0.0/8 address."""
        rng = self._rng
        while True:
            address = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if address not in self._used:
                self._used.add(address)
                return address

    def ipv6(self) -> str:
        """A 2001:db8::/32 address in a /64 no other address shares."""
        rng = self._rng
        while True:
            value = (0x20010DB8 << 96) | (rng.getrandbits(32) << 64) | rng.getrandbits(64)
            address = str(ipaddress.IPv6Address(value))
            network = address.rsplit(":", 4)[0]
            if network not in self._used:
                self._used.add(network)
                self._used.add(address)
                return address

    def any(self, *, ipv6_share: float = 0.1, public_share: float = 0.3) -> str:
        """An address of a random family: mostly 10/8, some documentation, some IPv6."""
        roll = self._rng.random()
        if roll < ipv6_share:
            return self.ipv6()
        if roll < ipv6_share + public_share:
            return self.public()
        return self.private()


class Traffic:
    """Collects one scenario's labelled records and writes them into ``folder``.

    ``limits``: at most this many lines per file (the rest is not written, and a
    campaign that lost lines to it is marked incomplete).
    """

    def __init__(
        self,
        folder: Path,
        rng: random.Random,
        *,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.folder = folder
        self.rng = rng
        self.addresses = AddressBook(rng)
        self.limits = dict(limits or {})
        self._pending: dict[str, list[Record]] = {}
        self._files: dict[str, IO[str]] = {}
        self._written: Counter[str] = Counter()
        self._seq = 0
        self._conn = 0
        self._pid = 3000 + rng.randint(0, 2000)
        self._pids: dict[int, int] = {}
        self._session_tokens = 0
        self._session = rng.randint(40, 900)
        self._sessions: dict[int, int] = {}
        self._campaigns: list[Campaign] = []
        self._addresses: list[dict[str, None]] = []
        self._added: Counter[int] = Counter()
        self._kept: Counter[int] = Counter()

    # --- building -------------------------------------------------------------------
    def campaign(
        self,
        name: str,
        kind: str | None,
        *,
        legitimate: bool = False,
        also: Iterable[str] = (),
    ) -> int:
        """A new campaign's id: an attack of ``kind``, legitimate activity, or hostile noise.

        ``also``: other incident kinds that describe the campaign correctly.
        """
        if legitimate and kind is not None:
            raise ValueError("legitimate activity has no incident kind")
        cid = len(self._campaigns)
        self._campaigns.append(
            Campaign(id=cid, name=name, kind=kind, legitimate=legitimate, also=frozenset(also))
        )
        self._addresses.append({})
        return cid

    def connection(self) -> int:
        """A new sshd connection's number (its PID is given when its first line is written)."""
        self._conn += 1
        return self._conn

    def session(self) -> str:
        """A placeholder for a new logind session number, given when it is first written.

        Put it in a line's text: logind numbers sessions in the order they open.
        """
        self._session_tokens += 1
        return f"{_MARK}{self._session_tokens}{_MARK}"

    def add(
        self,
        file: str,
        t: float,
        campaign: int,
        text: str,
        *,
        conn: int = 0,
        address: str | None = None,
    ) -> None:
        """One line of ``campaign`` at ``t``; ``address`` is the source address it shows."""
        self._seq += 1
        self._pending.setdefault(file, []).append(Record(t, self._seq, campaign, conn, text))
        self._added[campaign] += 1
        if address is not None:
            self._addresses[campaign][address] = None

    # --- writing --------------------------------------------------------------------
    def full(self, file: str) -> bool:
        """True when ``file`` has reached its line limit."""
        limit = self.limits.get(file)
        return limit is not None and self._written[file] >= limit

    def flush(self, before: float) -> None:
        """Write every record older than ``before``; later ones may still come."""
        for file in list(self._pending):
            pending = self._pending[file]
            if not pending:
                continue
            pending.sort()
            cut = bisect_left(pending, before, key=_time)
            self._write(file, pending[:cut])
            del pending[:cut]

    def close(self) -> Labels:
        """Write everything left, close the files, and return the labels of what was written."""
        self.flush(float("inf"))
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        campaigns = [
            Campaign(
                id=c.id,
                name=c.name,
                kind=c.kind,
                legitimate=c.legitimate,
                also=c.also,
                addresses=tuple(self._addresses[c.id]),
                lines=self._kept[c.id],
                complete=self._kept[c.id] == self._added[c.id],
            )
            for c in self._campaigns
            if self._kept[c.id]
        ]
        files = {name: self._written[name] for name in FILES if self._written[name]}
        return Labels(campaigns=campaigns, lines=files)

    def _write(self, file: str, records: list[Record]) -> None:
        if not records:
            return
        limit = self.limits.get(file)
        if limit is not None:
            room = limit - self._written[file]
            records = records[: max(room, 0)]
            if not records:
                return
        handle = self._files.get(file)
        if handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / file, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            self._files[file] = handle
        web = file == ACCESS_LOG
        lines: list[str] = []
        stamps: dict[int, str] = {}
        for record in records:
            self._kept[record.campaign] += 1
            if web:
                lines.append(record.text)
                continue
            second = int(record.t)
            stamp = stamps.get(second)
            if stamp is None:
                stamp = stamps[second] = syslog_stamp(second)
            if record.conn:
                lines.append(f"{stamp} {HOST} sshd[{self._pid_of(record.conn)}]: {record.text}")
            elif _MARK in record.text:
                head, token, tail = record.text.split(_MARK)
                lines.append(f"{stamp} {HOST} {head}{self._session_of(int(token))}{tail}")
            else:
                lines.append(f"{stamp} {HOST} {record.text}")
        handle.write("\n".join(lines))
        handle.write("\n")
        self._written[file] += len(lines)

    def _pid_of(self, conn: int) -> int:
        pid = self._pids.get(conn)
        if pid is None:
            # Other processes (cron, the shells of sessions) take PIDs in between.
            self._pid += self.rng.randint(1, 6)
            if self._pid > 4_194_000:
                self._pid = 1000
            pid = self._pids[conn] = self._pid
        return pid

    def _session_of(self, token: int) -> int:
        number = self._sessions.get(token)
        if number is None:
            self._session += 1
            number = self._sessions[token] = self._session
        return number

    def pid(self) -> int:
        """A PID for a process that is not an sshd connection (cron, sudo)."""
        self._pid += 1
        return self._pid


def _time(record: Record) -> float:
    return record.t


def syslog_stamp(second: int) -> str:
    """``Nov  3 09:00:01``: the traditional syslog stamp of a UTC second."""
    d = datetime.fromtimestamp(second, tz=UTC)
    return f"{_MONTHS[d.month - 1]} {d.day:>2} {d.hour:02}:{d.minute:02}:{d.second:02}"


def clf_stamp(t: float) -> str:
    """``03/Nov/2025:09:00:01 +0000``: the access-log stamp of a UTC time."""
    d = datetime.fromtimestamp(int(t), tz=UTC)
    month = _MONTHS[d.month - 1]
    return f"{d.day:02}/{month}/{d.year}:{d.hour:02}:{d.minute:02}:{d.second:02} +0000"


__all__ = [
    "ACCESS_LOG",
    "AUTH_LOG",
    "DAY",
    "FILES",
    "HOST",
    "HOUR",
    "MINUTE",
    "SERVER_IP",
    "START",
    "UFW_LOG",
    "YEAR",
    "AddressBook",
    "Record",
    "Traffic",
    "clf_stamp",
    "syslog_stamp",
]
