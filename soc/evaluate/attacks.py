"""ssh attacks as bots run them: brute force, spray, slow guessing, botnets, compromises.

Each function logs one attacker's (or one botnet's) connections on an
:class:`~soc.evaluate.ssh.Sshd` and returns when it ended. Rates are those of
common tools: a brute forcer keeps one to four connections busy, each trying
passwords until ``MaxAuthTries`` ends it; a sprayer tries each name once or
twice, a few names a minute; a slow guesser comes back every few minutes for
hours; a botnet's members each try a handful of times, minutes apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from soc.evaluate.ssh import Sshd
from soc.evaluate.traffic import HOUR, MINUTE

#: What bots try first: root, then the names of default and service accounts.
ROOTISH: Final = ("root", "admin", "ubuntu", "test", "user", "oracle", "postgres", "pi")
#: A spray list: service accounts, defaults and common first names.
SPRAY_NAMES: Final = (
    "admin", "test", "user", "oracle", "postgres", "git", "guest", "ftpuser", "support", "pi",
    "jenkins", "hadoop", "minecraft", "steam", "elastic", "mysql", "nagios", "tomcat", "debian",
    "centos", "demo", "solana", "sol", "validator", "ubnt", "administrator", "sysadmin", "backup",
    "docker", "ansible", "gitlab", "student", "ts3", "odoo", "zabbix", "redis", "kafka",
    "vagrant", "ec2-user", "azureuser", "orangepi", "ftp", "www", "web", "dev", "testuser",
    "user1", "john", "mike", "kubernetes", "grafana", "prometheus", "sonar", "nexus",
    "wordpress", "deployer", "es", "hdfs", "spark", "oscar", "anonymous", "teamspeak", "cisco",
    "info", "mail", "office", "sales", "service", "operator", "ubuntu", "master", "server",
)  # fmt: skip


def brute_force(
    sshd: Sshd,
    campaign: int,
    t: float,
    ip: str,
    *,
    users: Sequence[str] = ("root",),
    attempts: int = 300,
    parallel: int = 2,
    success: tuple[int, str] | None = None,
) -> float:
    """``attempts`` passwords over ``parallel`` connections at a time; returns when it stopped.

    ``success``: ``(n, user)``: the n-th attempt is the right password for ``user``
    (``Accepted password``, a short session), and the attack stops there.
    """
    rng = sshd.rng
    clocks = [t + rng.uniform(0, 3) for _ in range(parallel)]
    done = 0
    end = t
    while done < attempts:
        lane = min(range(parallel), key=clocks.__getitem__)
        conn = sshd.connect(campaign, clocks[lane], ip)
        tries = 6 if rng.random() < 0.6 else rng.randint(1, 3)
        user = rng.choice(users)
        if success is not None and done < success[0] <= done + tries:
            user = success[1]  # one user name per connection: sshd allows no change
        for n in range(tries):
            done += 1
            if success is not None and done == success[0]:
                conn.password_success(success[1], think=rng.uniform(0.1, 1.0))
                conn.session(rng.uniform(5, 90))  # uname -a; nproc; and off
                return conn.t
            conn.password_failure(user, think=rng.uniform(0.1, 1.0) if n else 0.3)
            if done >= attempts:
                break
        if tries == 6 and done < attempts:
            conn.too_many()
        else:
            conn.bye(after=rng.uniform(0.05, 0.5))
        clocks[lane] = conn.t + rng.uniform(0.1, 3.0)
        end = max(end, conn.t)
    return end


def password_spray(
    sshd: Sshd,
    campaign: int,
    t: float,
    ip: str,
    users: Sequence[str],
    *,
    gap: tuple[float, float] = (10.0, 90.0),
    success: str | None = None,
) -> float:
    """Each name in ``users`` tried once or twice, ``gap`` seconds apart; returns the end.

    ``success``: that user's password is guessed (on its first try): ``Accepted
    password`` and a short session; the spray carries on with the other names.
    """
    rng = sshd.rng
    for user in users:
        conn = sshd.connect(campaign, t, ip)
        if user == success:
            conn.password_success(user, think=rng.uniform(0.2, 1.5))
            conn.session(rng.uniform(20, 600))
        else:
            for _ in range(rng.choices((1, 2), (75, 25))[0]):
                conn.password_failure(user, think=rng.uniform(0.2, 1.5))
            conn.bye(after=rng.uniform(0.05, 0.5))
        t = conn.t + rng.uniform(*gap)
    return t


def slow_brute_force(
    sshd: Sshd,
    campaign: int,
    t: float,
    ip: str,
    *,
    hours: float,
    gap_minutes: tuple[float, float] = (2.0, 8.0),
    users: Sequence[str] = ("root", "admin"),
) -> float:
    """One password every few minutes for ``hours``; returns the end."""
    rng = sshd.rng
    end = t + hours * HOUR
    while t < end:
        conn = sshd.connect(campaign, t, ip)
        conn.password_failure(rng.choice(users), think=rng.uniform(0.2, 1.0))
        if rng.random() < 0.5:
            conn.closed(after=rng.uniform(0.05, 0.5))
        else:
            conn.bye(after=rng.uniform(0.05, 0.5))
        t = conn.t + rng.uniform(*gap_minutes) * MINUTE
    return t


def botnet(
    sshd: Sshd,
    campaign: int,
    t: float,
    ips: Sequence[str],
    *,
    users: Sequence[str] = ("root", "admin"),
    tries: tuple[int, int] = (2, 6),
    minutes: float = 60.0,
    success: tuple[int, str, int] | None = None,
) -> float:
    """Every address in ``ips`` tries a handful of passwords against ``users`` within ``minutes``.

    ``success``: ``(member, user, campaign)``: the last guess of ``ips[member]`` is
    right for ``user``; that login (and its session) is labelled ``campaign``.
    Returns the end.
    """
    rng = sshd.rng
    end = t
    for index, ip in enumerate(ips):
        times = sorted(t + rng.uniform(0, minutes * MINUTE) for _ in range(rng.randint(*tries)))
        for n, at in enumerate(times):
            last = n == len(times) - 1
            if success is not None and index == success[0] and last:
                conn = sshd.connect(success[2], at, ip)
                conn.password_success(success[1], think=rng.uniform(0.2, 1.0))
                conn.session(rng.uniform(30, 900))
            else:
                conn = sshd.connect(campaign, at, ip)
                conn.password_failure(rng.choice(users), think=rng.uniform(0.2, 1.0))
                conn.bye(after=rng.uniform(0.05, 0.5))
            end = max(end, conn.t)
    return end


__all__ = ["ROOTISH", "SPRAY_NAMES", "botnet", "brute_force", "password_spray", "slow_brute_force"]
