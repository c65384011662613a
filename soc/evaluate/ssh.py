"""OpenSSH 8/9 lines as an Ubuntu server logs them: sshd, its PAM stack, systemd-logind.

The server runs ``LogLevel VERBOSE`` (so rejected key offers are logged as
``Failed publickey``), ``UsePAM yes`` with ``pam_unix`` and its two-second fail
delay, and the default ``MaxAuthTries 6``. :class:`Sshd` opens connections;
each :class:`Conn` logs its lines in order from its own clock, one sshd PID per
connection (the PID is given when its first line is written).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Final

from soc.evaluate.traffic import AUTH_LOG, SERVER_IP, Traffic

#: systemd-logind's PID on the simulated server.
LOGIND_PID: Final = 612
KEY_TYPES: Final = ("ED25519", "RSA", "ECDSA")
_B64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PAM_FIELDS: Final = "logname= uid=0 euid=0 tty=ssh ruser= rhost="
_PAM_FAILURE: Final = f"pam_unix(sshd:auth): authentication failure; {_PAM_FIELDS}"
_KEX: Final = "error: kex_exchange_identification: "


def fingerprint(rng: random.Random) -> str:
    """A key's ``SHA256:`` fingerprint, as sshd prints it (43 base64 characters)."""
    return "SHA256:" + "".join(rng.choice(_B64) for _ in range(43))


def client_port(rng: random.Random) -> int:
    """A client's source port (Linux's ephemeral range)."""
    return rng.randint(32768, 60999)


class Sshd:
    """One server's sshd: its accounts (user → uid) and its logind session numbers."""

    def __init__(self, traffic: Traffic, accounts: Mapping[str, int]) -> None:
        self.traffic = traffic
        self.rng = traffic.rng
        self.accounts = dict(accounts)
        self.accounts.setdefault("root", 0)

    def account(self, user: str) -> int:
        """``user``'s uid, creating the account (uids from 1001) if it does not exist."""
        uid = self.accounts.get(user)
        if uid is None:
            uid = self.accounts[user] = max(1000, *self.accounts.values()) + 1
        return uid

    def connect(self, campaign: int, t: float, ip: str, *, port: int | None = None) -> Conn:
        """A new connection from ``ip`` at ``t`` (logs ``Connection from …``)."""
        conn = Conn(self, campaign, t, ip, client_port(self.rng) if port is None else port)
        conn.line(f'Connection from {ip} port {conn.port} on {SERVER_IP} port 22 rdomain ""')
        return conn

    def logind(self, campaign: int, t: float, message: str) -> None:
        """A ``systemd-logind`` line."""
        self.traffic.add(AUTH_LOG, t, campaign, f"systemd-logind[{LOGIND_PID}]: {message}")


class Conn:
    """One sshd connection's lines, logged in order from time ``t``."""

    def __init__(self, sshd: Sshd, campaign: int, t: float, ip: str, port: int) -> None:
        self.sshd = sshd
        self.rng = sshd.rng
        self.campaign = campaign
        self.t = t
        self.ip = ip
        self.port = port
        self.at = f"{ip} port {port}"  # how sshd names the client
        self.id = sshd.traffic.connection()
        self.user: str | None = None  # the user name the client gave
        self.pam_failures = 0

    @property
    def valid(self) -> bool:
        """True when the user name given is an account on the server."""
        return self.user is not None and self.user in self.sshd.accounts

    def line(self, text: str, after: float = 0.0) -> None:
        """Log ``text`` ``after`` seconds after the previous line."""
        self.t += max(after, 0.001)
        self.sshd.traffic.add(AUTH_LOG, self.t, self.campaign, text, conn=self.id, address=self.ip)

    def _name(self, user: str, after: float) -> None:
        if self.user == user:
            return
        self.user = user
        if not self.valid:
            self.line(f"Invalid user {user} from {self.at}", after)

    # --- passwords ----------------------------------------------------------------
    def password_failure(self, user: str, *, think: float = 0.0) -> None:
        """One wrong password for ``user`` (sshd logs it two seconds later, after PAM's delay)."""
        self._name(user, think)
        who = user if self.valid else f"invalid user {user}"
        if self.valid:
            self.line(f"{_PAM_FAILURE}{self.ip}  user={user}", think)
        else:
            self.line("pam_unix(sshd:auth): check pass; user unknown", 0.2 + think)
            self.line(f"{_PAM_FAILURE}{self.ip}")
        self.pam_failures += 1
        self.line(f"Failed password for {who} from {self.at} ssh2", self.rng.uniform(1.9, 2.6))

    def password_success(self, user: str, *, think: float = 0.0) -> None:
        """The right password for ``user``: ``Accepted password``."""
        self._name(user, think)
        delay = think + self.rng.uniform(0.05, 0.3)
        self.line(f"Accepted password for {user} from {self.at} ssh2", delay)

    # --- keys -------------------------------------------------------------------------
    def key_rejected(self, user: str, key_type: str, key: str) -> None:
        """A key the client offered that is not authorised (``Failed publickey``)."""
        self._name(user, 0.2)
        delay = self.rng.uniform(0.02, 0.15)
        self.line(f"Failed publickey for {user} from {self.at} ssh2: {key_type} {key}", delay)

    def key_accepted(self, user: str, key_type: str, key: str) -> None:
        """An authorised key: ``Postponed`` (its offer), then ``Accepted`` (its signature)."""
        self._name(user, 0.2)
        delay = self.rng.uniform(0.02, 0.15)
        self.line(f"Postponed publickey for {user} from {self.at} ssh2 [preauth]", delay)
        delay = self.rng.uniform(0.02, 0.2)
        self.line(f"Accepted publickey for {user} from {self.at} ssh2: {key_type} {key}", delay)

    # --- after authentication ---------------------------------------------------------
    def session(self, duration: float) -> None:
        """A logged-in session of ``duration`` seconds, ended by the user (``exit``)."""
        user = self.user or "root"
        uid = self.sshd.accounts.get(user, 0)
        number = self.sshd.traffic.session()
        logind = self.sshd.logind
        self.line(f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)")
        logind(self.campaign, self.t + 0.01, f"New session {number} of user {user}.")
        self.line(f"Received disconnect from {self.at}:11: disconnected by user", duration)
        self.line(f"Disconnected from user {user} {self.at}")
        self.line(f"pam_unix(sshd:session): session closed for user {user}")
        logind(
            self.campaign,
            self.t + 0.01,
            f"Session {number} logged out. Waiting for processes to exit.",
        )
        logind(self.campaign, self.t + 0.02, f"Removed session {number}.")

    # --- endings before authentication ------------------------------------------------
    def _pam_summary(self) -> None:
        if self.pam_failures > 1:
            user = f"  user={self.user}" if self.valid else ""
            more = self.pam_failures - 1
            self.line(f"PAM {more} more authentication failures; {_PAM_FIELDS}{self.ip}{user}")

    def _who(self) -> str:
        if self.user is None:
            return ""
        return f"authenticating user {self.user} " if self.valid else f"invalid user {self.user} "

    def closed(self, after: float = 0.5) -> None:
        """The client closed the connection before logging in (a user gave up, a bot moved on)."""
        self.line(f"Connection closed by {self._who()}{self.at} [preauth]", after)
        self._pam_summary()

    def bye(self, after: float = 0.2) -> None:
        """The client said goodbye before logging in (``Received disconnect … Bye Bye``)."""
        self.line(f"Received disconnect from {self.at}:11: Bye Bye [preauth]", after)
        self.line(f"Disconnected from {self._who()}{self.at} [preauth]")
        self._pam_summary()

    def too_many(self) -> None:
        """``MaxAuthTries`` reached: sshd ends the connection."""
        invalid = "" if self.valid else "invalid user "
        self.line(
            "error: maximum authentication attempts exceeded for "
            f"{invalid}{self.user} from {self.at} ssh2 [preauth]",
            0.01,
        )
        self.line(
            f"Disconnecting {self._who()}{self.at}: Too many authentication failures [preauth]"
        )
        self._pam_summary()


def scanner_probe(sshd: Sshd, campaign: int, t: float, ip: str) -> None:
    """One connection of an internet scanner that never tries a login (key exchange noise)."""
    rng = sshd.rng
    conn = sshd.connect(campaign, t, ip)
    roll = rng.random()
    if roll < 0.35:
        conn.line(f"Connection closed by {conn.at} [preauth]", rng.uniform(0.1, 5))
    elif roll < 0.55:
        conn.line(f"{_KEX}Connection closed by remote host", rng.uniform(0.05, 2))
        conn.line(f"Connection closed by {conn.at}")
    elif roll < 0.7:
        conn.line(f"{_KEX}read: Connection reset by peer", rng.uniform(0.05, 2))
        conn.line(f"Connection reset by {conn.at}")
    elif roll < 0.8:
        conn.line(f'{_KEX}client sent invalid protocol identifier "GET / HTTP/1.1"', 0.05)
        conn.line(f"banner exchange: Connection from {conn.at}: invalid format")
    elif roll < 0.92:
        conn.line(
            f"Unable to negotiate with {conn.at}: no matching key exchange method found. "
            "Their offer: diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,"
            "diffie-hellman-group1-sha1 [preauth]",
            0.1,
        )
    else:
        conn.line(
            f"Unable to negotiate with {conn.at}: no matching host key type found. "
            "Their offer: ssh-rsa,ssh-dss [preauth]",
            0.1,
        )


__all__ = [
    "KEY_TYPES",
    "LOGIND_PID",
    "Conn",
    "Sshd",
    "client_port",
    "fingerprint",
    "scanner_probe",
]
