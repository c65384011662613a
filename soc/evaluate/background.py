"""A public server's auth.log: the internet's background attacks, and its own users.

Day after day, until the log holds the lines asked for: a few hundred scanners
that only knock (key-exchange failures, a single guess), a dozen or two brute
forcers (root alone, a few default accounts, or a whole dictionary of names),
a few slow guessers coming back every few minutes for hours, a few sprays, and
now and then a botnet whose members each try a handful of times. Next to them
live the server's users: people with keys and passwords (typos included), a
monitoring host logging in every five minutes, and cron's hourly sessions.
"""

from __future__ import annotations

import math

from soc.evaluate.attacks import (
    ROOTISH,
    SPRAY_NAMES,
    botnet,
    brute_force,
    password_spray,
    slow_brute_force,
)
from soc.evaluate.legitimate import automation_host, automation_login
from soc.evaluate.people import live_days, make_person, user_names
from soc.evaluate.ssh import Sshd, scanner_probe
from soc.evaluate.traffic import AUTH_LOG, DAY, HOUR, MINUTE, Traffic
from soc.events import BRUTE_FORCE, DISTRIBUTED_BRUTE_FORCE, PASSWORD_SPRAY, SLOW_BRUTE_FORCE


def internet(traffic: Traffic, sshd: Sshd, start: float, *, max_days: int = 365) -> None:
    """Background days from ``start`` until ``auth.log`` reaches its line limit."""
    rng = traffic.rng
    people = []
    for user in user_names(rng, 24):
        keys = rng.random() < 0.5
        address = traffic.addresses.any(ipv6_share=0.2, public_share=0.4)
        people.append(make_person(traffic, sshd, user, keys=keys, addresses=[address]))
    monitor = automation_host(traffic, sshd, "nagios", traffic.addresses.lan())
    cron = traffic.campaign("cron", None, legitimate=True)
    for day in range(max_days):
        day_start = start + day * DAY
        for person in people:
            live_days(sshd, person, day_start, 1, travel=0.05)
        for slot in range(288):  # the monitoring host's checks, every five minutes
            automation_login(sshd, monitor, day_start + slot * 5 * MINUTE + rng.uniform(0.2, 3))
        for hour in range(24):
            pid = traffic.pid()
            at = day_start + hour * HOUR + 1 + 17 * MINUTE
            session = f"CRON[{pid}]: pam_unix(cron:session): session"
            traffic.add(AUTH_LOG, at, cron, f"{session} opened for user root(uid=0) by (uid=0)")
            traffic.add(AUTH_LOG, at + 0.4, cron, f"{session} closed for user root")
        _bots(traffic, sshd, day_start)
        traffic.flush(day_start + DAY)
        if traffic.full(AUTH_LOG):
            return


def _bots(traffic: Traffic, sshd: Sshd, day_start: float) -> None:
    rng = traffic.rng
    book = traffic.addresses

    def when() -> float:
        return day_start + rng.uniform(0, DAY)

    def address() -> str:
        return book.any(ipv6_share=0.05, public_share=0.15)

    for _ in range(rng.randint(250, 500)):
        ip = address()
        cid = traffic.campaign(f"scanner {ip}", None)
        t = when()
        if rng.random() < 0.7:
            for _ in range(rng.randint(1, 3)):
                scanner_probe(sshd, cid, t, ip)
                t += rng.uniform(1, 600)
        else:  # one or two guesses and gone
            conn = sshd.connect(cid, t, ip)
            for _ in range(rng.randint(1, 2)):
                conn.password_failure(rng.choice(ROOTISH), think=rng.uniform(0.2, 1.0))
            conn.bye()
    for _ in range(rng.randint(8, 25)):
        ip = address()
        roll = rng.random()
        if roll < 0.2:  # a dictionary of names: a spray as much as a brute force
            users = rng.sample(SPRAY_NAMES + ROOTISH, rng.randint(20, 80))
            also = {PASSWORD_SPRAY, SLOW_BRUTE_FORCE}
        else:
            users = ["root"] if roll < 0.7 else list(rng.sample(ROOTISH, rng.randint(2, 4)))
            also = {SLOW_BRUTE_FORCE}
        cid = traffic.campaign(f"brute force {ip}", BRUTE_FORCE, also=also)
        attempts = int(min(5000, max(20, rng.lognormvariate(math.log(300), 1.0))))
        brute_force(
            sshd, cid, when(), ip, users=users, attempts=attempts, parallel=rng.randint(1, 4)
        )
    for _ in range(rng.randint(3, 10)):
        ip = address()
        rotating = rng.random() < 0.3
        users = rng.sample(SPRAY_NAMES, 40) if rotating else ["root", "admin"]
        also = {PASSWORD_SPRAY} if rotating else set()
        cid = traffic.campaign(f"slow brute force {ip}", SLOW_BRUTE_FORCE, also=also)
        hours = rng.uniform(2, 20)
        slow_brute_force(sshd, cid, when(), ip, hours=hours, gap_minutes=(1, 10), users=users)
    for _ in range(rng.randint(2, 6)):
        ip = address()
        cid = traffic.campaign(f"password spray {ip}", PASSWORD_SPRAY, also={SLOW_BRUTE_FORCE})
        users = rng.sample(SPRAY_NAMES, rng.randint(15, 70))
        password_spray(sshd, cid, when(), ip, users, gap=(5, 60))
    if rng.random() < 0.35:
        ips = [address() for _ in range(rng.randint(30, 200))]
        cid = traffic.campaign(f"botnet of {len(ips)}", DISTRIBUTED_BRUTE_FORCE)
        users = rng.sample(ROOTISH, rng.randint(2, 4))
        botnet(sshd, cid, when(), ips, users=users, tries=(2, 8), minutes=rng.uniform(60, 240))


__all__ = ["internet"]
