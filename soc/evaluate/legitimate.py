"""Legitimate ssh activity: key and password users, an office, automation, a population.

Each function adds one kind of legitimate behaviour to a scenario's traffic, at
human rates: people log in a few times a working day, mistype now and then and
get in; a forgotten password fails a handful of times over a day and never
succeeds; an office's users share one address; CI hosts log in every minute as a
shared account with a key and occasionally present the wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from soc.evaluate.people import live_days, make_person, user_names
from soc.evaluate.ssh import KEY_TYPES, Sshd, fingerprint
from soc.evaluate.traffic import DAY, HOUR, MINUTE, Traffic


def key_users(traffic: Traffic, sshd: Sshd, start: float, days: int, n: int) -> None:
    """``n`` people logging in with keys their ssh-agent offers after 0-4 others."""
    book = traffic.addresses
    for user in user_names(traffic.rng, n):
        addresses = [book.lan(), book.any()] if traffic.rng.random() < 0.6 else [book.any()]
        person = make_person(traffic, sshd, user, keys=True, addresses=addresses)
        live_days(sshd, person, start, days)


def password_users(traffic: Traffic, sshd: Sshd, start: float, days: int, n: int) -> None:
    """``n`` people logging in with passwords, typos included, some days from elsewhere."""
    book = traffic.addresses
    for user in user_names(traffic.rng, n):
        home = book.any(ipv6_share=0.15, public_share=0.4)
        addresses = [home, book.any()] if traffic.rng.random() < 0.4 else [home]
        person = make_person(traffic, sshd, user, keys=False, addresses=addresses)
        live_days(sshd, person, start, days, travel=0.1)


def forgotten_password(traffic: Traffic, sshd: Sshd, start: float, days: int, n: int) -> None:
    """``n`` people who forget their password one day: a handful of failures, no success.

    On the other days they log in as usual; the day after, their password has
    been reset and they get in.
    """
    rng = traffic.rng
    for user in user_names(rng, n, style="initial"):
        ip = traffic.addresses.any(public_share=0.5)
        person = make_person(traffic, sshd, user, keys=False, addresses=[ip])
        bad_day = rng.randrange(days)
        live_days(sshd, person, start, bad_day)
        t = start + bad_day * DAY + rng.uniform(8.5, 11) * HOUR
        for sitting in range(rng.randint(2, 4)):
            conn = sshd.connect(person.campaign, t, ip)
            for _ in range(rng.choices((1, 2, 3), weights=(35, 40, 25))[0]):
                conn.password_failure(user, think=rng.uniform(3, 12))
            conn.closed(after=rng.uniform(1, 20))
            # a second go a few minutes later, then again after lunch, at the end of the day
            wait = rng.uniform(2, 10) * MINUTE if sitting == 0 else rng.uniform(1.5, 4) * HOUR
            t = conn.t + wait
        live_days(sshd, person, start + (bad_day + 1) * DAY, days - bad_day - 1)


def office(traffic: Traffic, sshd: Sshd, start: float, days: int, n: int) -> None:
    """An office (or VPN) egress: ``n`` people behind one address, some also from home."""
    rng = traffic.rng
    egress = traffic.addresses.public()
    for user in user_names(rng, n, style="initial"):
        addresses = [egress]
        if rng.random() < 0.3:
            addresses.append(traffic.addresses.any())
        keys = rng.random() < 0.35
        person = make_person(traffic, sshd, user, keys=keys, addresses=addresses)
        live_days(sshd, person, start, days, travel=0.02)


def population(traffic: Traffic, sshd: Sshd, start: float, days: int, n: int) -> None:
    """``n`` people (a university's or a hosting company's shell server), 1-3 addresses each."""
    rng = traffic.rng
    book = traffic.addresses
    for user in user_names(rng, n, style="initial"):
        addresses = [
            book.any(ipv6_share=0.2) for _ in range(rng.choices((1, 2, 3), (50, 35, 15))[0])
        ]
        keys = rng.random() < 0.3
        person = make_person(
            traffic, sshd, user, keys=keys, addresses=addresses, logins_per_day=(0, 3)
        )
        live_days(sshd, person, start, days, travel=0.03)


@dataclass(slots=True)
class Host:
    """A CI, deployment or monitoring host: its account, address, key, and the keys it offers."""

    account: str
    ip: str
    campaign: int
    key: tuple[str, str]
    stale: tuple[str, str]  # an old key it presents when set up wrong
    offered: list[tuple[str, str]] = field(default_factory=list)


def automation_host(traffic: Traffic, sshd: Sshd, account: str, ip: str) -> Host:
    """A new automation host logging in as ``account`` (a legitimate campaign of its own)."""
    rng = traffic.rng
    sshd.account(account)
    return Host(
        account=account,
        ip=ip,
        campaign=traffic.campaign(f"automation {account}@{ip}", None, legitimate=True),
        key=(rng.choice(KEY_TYPES), fingerprint(rng)),
        stale=("RSA", fingerprint(rng)),
        offered=[("RSA", fingerprint(rng))] if rng.random() < 0.3 else [],
    )


def automation_login(sshd: Sshd, host: Host, t: float, *, broken: bool = False) -> None:
    """One job's login: a key, seconds of commands; rarely (or when ``broken``) a wrong key."""
    rng = sshd.rng
    conn = sshd.connect(host.campaign, t, host.ip)
    if broken or rng.random() < 0.003:
        conn.key_rejected(host.account, *host.stale)
        conn.closed(after=rng.uniform(0.01, 0.2))
        return
    for key_type, fp in host.offered:
        conn.key_rejected(host.account, key_type, fp)
    conn.key_accepted(host.account, *host.key)
    conn.session(rng.uniform(1.5, 35.0))


def automation(
    traffic: Traffic, sshd: Sshd, start: float, days: float, hosts: list[tuple[str, str]]
) -> None:
    """CI and deployment hosts (``(account, address)`` each) logging in every minute with a key.

    Now and then a host presents a key that is not authorised (an old one, a
    runner set up wrong) and the connection ends before login; once in a while a
    key rotation leaves a host failing for a few minutes until it is fixed.
    """
    rng = traffic.rng
    for account, ip in hosts:
        host = automation_host(traffic, sshd, account, ip)
        broken_from = broken_until = -1
        for minute in range(int(days * DAY / MINUTE)):
            if minute % 1440 == 0 and rng.random() < 0.15:
                broken_from = minute + rng.randrange(1440)
                broken_until = broken_from + rng.randint(2, 6)
            t = start + minute * MINUTE + rng.uniform(0.2, 4.0)
            automation_login(sshd, host, t, broken=broken_from <= minute < broken_until)


__all__ = [
    "Host",
    "automation",
    "automation_host",
    "automation_login",
    "forgotten_password",
    "key_users",
    "office",
    "password_users",
    "population",
]
