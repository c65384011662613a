"""The soak test's traffic: an endless, realistic auth.log written with rotations, and its truth.

:class:`WriterThread` appends sshd lines stamped with the wall clock at a steady
rate and rotates the log by rename and by copytruncate in turn (the rotation code
of ``tests/acquire/tail_harness.py``); :class:`Truth` is what it wrote: lines,
and failed passwords per source address.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from tests.acquire.tail_harness import Writer

HOST = "web01"
#: Seconds between rotations (drawn uniformly, seeded); the kinds, in turn.
ROTATE_EVERY = (2.0, 6.0)
ROTATIONS = ("rename", "copytruncate")

ATTACKERS = [f"203.0.113.{10 + i}" for i in range(12)]
#: Two names per attacker, no name shared (no attacked user is a distributed attack).
GUESSED = [
    "root",
    "admin",
    "oracle",
    "test",
    "ubuntu",
    "postgres",
    "git",
    "ftpuser",
    "deploy",
    "pi",
    "guest",
    "support",
    "mysql",
    "jenkins",
    "hadoop",
    "nagios",
    "minecraft",
    "teamspeak",
    "steam",
    "vagrant",
    "ansible",
    "backup",
    "tomcat",
    "elastic",
]
USERS = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
]
USER_ADDRESSES = {user: f"198.51.100.{20 + i}" for i, user in enumerate(USERS)}
VALID_USERS = frozenset({"root", *USERS})
#: Failed passwords a legitimate user makes in a whole run, at most (typos before a login).
TYPOS_PER_USER = 3


# --- the traffic and its truth -----------------------------------------------------------
@dataclass
class Truth:
    """What the writer wrote: lines, and failed passwords per source address."""

    lines: int = 0
    failures: Counter[str] = field(default_factory=Counter)


class SshdTraffic:
    """An endless auth.log: attackers' connections, users' logins, noise; counted as written.

    Lines are queued per connection (one sshd PID) without their timestamp and
    stamped when written, so event time is the wall-clock time of the write.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.truth = Truth()
        self._queue: deque[tuple[str, str | None]] = deque()  # (message, address it fails)
        self._pid = 20_000
        self._session = 300
        self._typos: Counter[str] = Counter()
        self._names = {addr: GUESSED[2 * i : 2 * i + 2] for i, addr in enumerate(ATTACKERS)}

    def take(self, count: int, now: float) -> bytes:
        """The next ``count`` lines, stamped ``now`` (RFC 3164, UTC), as bytes."""
        stamp = time.strftime("%b %e %H:%M:%S", time.gmtime(now))
        out: list[str] = []
        for _ in range(count):
            if not self._queue:
                self._refill()
            message, failing = self._queue.popleft()
            out.append(f"{stamp} {HOST} {message}\n")
            if failing is not None:
                self.truth.failures[failing] += 1
        self.truth.lines += count
        return "".join(out).encode()

    def _next_pid(self) -> int:
        self._pid += self.rng.randrange(1, 40)
        return self._pid

    def _refill(self) -> None:
        roll = self.rng.random()
        if roll < 0.72:
            self._attack()
        elif roll < 0.84:
            self._login(typo=self.rng.random() < 0.15)
        else:
            self._noise()

    def _attack(self) -> None:
        addr = self.rng.choice(ATTACKERS)
        name = self.rng.choice(self._names[addr])
        sshd = f"sshd[{self._next_pid()}]:"
        port = self.rng.randrange(32768, 61000)
        invalid = name not in VALID_USERS
        if invalid:
            self._queue.append((f"{sshd} Invalid user {name} from {addr} port {port}", None))
        who = f"invalid user {name}" if invalid else name
        for _ in range(self.rng.randint(1, 3)):
            failed = f"{sshd} Failed password for {who} from {addr} port {port} ssh2"
            self._queue.append((failed, addr))
        closer = "invalid user" if invalid else "authenticating user"
        closed = f"{sshd} Connection closed by {closer} {name} {addr} port {port} [preauth]"
        self._queue.append((closed, None))

    def _login(self, *, typo: bool) -> None:
        index = self.rng.randrange(len(USERS))
        user = USERS[index]
        addr = USER_ADDRESSES[user]
        sshd = f"sshd[{self._next_pid()}]:"
        port = self.rng.randrange(32768, 61000)
        if typo and self._typos[addr] < TYPOS_PER_USER:
            self._typos[addr] += 1
            failed = f"{sshd} Failed password for {user} from {addr} port {port} ssh2"
            self._queue.append((failed, addr))
        if typo or self.rng.random() < 0.5:
            accepted = f"{sshd} Accepted password for {user} from {addr} port {port} ssh2"
        else:
            key = "".join(
                self.rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop0123456789", k=43)
            )
            accepted = (
                f"{sshd} Accepted publickey for {user} from {addr} port {port} ssh2: "
                f"ED25519 SHA256:{key}"
            )
        self._session += 1
        uid = 1001 + index
        self._queue.extend(
            [
                (accepted, None),
                (
                    f"{sshd} pam_unix(sshd:session): session opened for user {user}(uid={uid}) "
                    "by (uid=0)",
                    None,
                ),
                (f"systemd-logind[612]: New session {self._session} of user {user}.", None),
            ]
        )

    def _noise(self) -> None:
        cron = f"CRON[{self._next_pid()}]:"
        user = self.rng.choice(USERS)
        choices = [
            [
                (
                    f"{cron} pam_unix(cron:session): session opened for user root(uid=0) "
                    "by (uid=0)",
                    None,
                ),
                (f"{cron} pam_unix(cron:session): session closed for user root", None),
            ],
            [
                (
                    f"sudo:    {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; "
                    "COMMAND=/usr/bin/systemctl reload nginx",
                    None,
                ),
                (
                    "sudo: pam_unix(sudo:session): session opened for user root(uid=0) by "
                    f"{user}(uid=1001)",
                    None,
                ),
                ("sudo: pam_unix(sudo:session): session closed for user root", None),
            ],
            [(f"systemd[1]: Started Session {self._session} of User {user}.", None)],
            [("kernel: [12345.678901] eth0: Link is Up - 1Gbps/Full - flow control off", None)],
        ]
        self._queue.extend(self.rng.choice(choices))


class SshdLogWriter(Writer):
    """The harness's rotating writer (tail_harness.Writer), writing the sshd traffic."""

    def __init__(self, path: Path, rng: random.Random, traffic: SshdTraffic) -> None:
        super().__init__(path, keep=100, rng=rng)  # nothing deleted: a restart finds it all
        self.traffic = traffic

    def lines(self, count: int) -> bytes:
        return self.traffic.take(count, time.time())


class WriterThread(threading.Thread):
    """Writes ``rate`` lines a second, rotating every few seconds, until told to stop."""

    def __init__(self, path: Path, seed: int, rate: int) -> None:
        super().__init__(name="soak-writer", daemon=True)
        self.traffic = SshdTraffic(random.Random(seed))
        self.writer = SshdLogWriter(path, random.Random(seed + 1), self.traffic)
        self.schedule = random.Random(seed + 2)
        self.rate = rate
        self.rotations: list[str] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            started = time.monotonic()
            next_rotation = started + self.schedule.uniform(*ROTATE_EVERY)
            while not self._halt.is_set():
                now = time.monotonic()
                due = int((now - started) * self.rate) - self.traffic.truth.lines
                if due > 0:
                    self.writer.write(min(due, self.rate))
                if now >= next_rotation:
                    kind = ROTATIONS[len(self.rotations) % len(ROTATIONS)]
                    self.writer.rotate(kind)
                    self.rotations.append(kind)
                    next_rotation = now + self.schedule.uniform(*ROTATE_EVERY)
                self._halt.wait(0.02)
        except BaseException as exc:  # handed to the test by finish()
            self.error = exc
        finally:
            os.close(self.writer.fd)

    def stop(self) -> None:
        """Stop writing (at once)."""
        self._halt.set()
        self.join(timeout=30)

    def finish(self) -> Truth:
        """Stop writing; the truth of what was written."""
        self.stop()
        assert not self.is_alive(), "the writer did not stop"
        if self.error is not None:
            raise self.error
        return self.traffic.truth
