"""People logging in over ssh: their names, addresses, keys, habits and typos.

A :class:`Person` logs in a few times on a working day, mostly in working hours,
mostly from their usual address. Password users mistype their password now and
then (``typo_rate``: usually one failure, rarely two or three, then success);
once in a while someone types a near-miss user name (``Invalid user alcie``),
gives up at the password prompt and reconnects with the right one. Key users'
ssh-agents offer the keys they hold in the same order every time, so a user
whose authorised key is third sees two ``Failed publickey`` lines on every login.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

from soc.evaluate.ssh import KEY_TYPES, Sshd, fingerprint
from soc.evaluate.traffic import DAY, HOUR, Traffic

FIRST_NAMES: Final = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "amir", "bianca", "chen", "dmitri", "elena", "fatima", "goran", "hana", "ines", "jonas",
    "kenji", "lena", "mateo", "nadia", "oscar", "priya", "quentin", "rosa", "sami", "tomas",
    "uma", "vera", "wei", "ximena", "yusuf", "zoe", "anders", "beatriz", "claude", "dagny",
    "emeka", "farah", "gunnar", "hiro", "ilse", "jamal", "katya", "luca", "marta", "nils",
    "omar", "pia", "rafael", "signe", "tariq", "ulla", "valeria", "wanda", "yara", "zeno",
)  # fmt: skip
SURNAMES: Final = (
    "smith", "garcia", "muller", "rossi", "kowalski", "nguyen", "tanaka", "silva", "kim",
    "novak", "jensen", "dubois", "ivanova", "hansen", "moreau", "costa", "berg", "lopez",
    "okafor", "patel", "schmidt", "weber", "fischer", "martin", "bernard", "santos", "ali",
    "haddad", "yilmaz", "kaya", "horvat", "nagy", "popescu", "virtanen", "lindqvist",
    "oconnor", "murphy", "walsh", "brennan", "sato", "suzuki", "wang", "zhang", "chen",
    "singh", "kumar", "das", "mensah", "adeyemi", "kariuki", "ferreira", "almeida",
)  # fmt: skip

#: Share of logins that start with a mistyped user name.
NAME_TYPO_RATE: Final = 0.02


@dataclass(slots=True)
class Person:
    """Someone with an account: how they log in, from where, and how often they mistype."""

    user: str
    campaign: int
    addresses: list[str]
    keys: bool
    typo_rate: float = 0.1
    logins_per_day: tuple[int, int] = (1, 4)
    key: tuple[str, str] = ("ED25519", "")
    offered: list[tuple[str, str]] = field(default_factory=list)


def user_names(rng: random.Random, n: int, *, style: str = "first") -> list[str]:
    """``n`` distinct account names: first names, or (``"initial"``) initial plus surname."""
    names: dict[str, None] = {}
    while len(names) < n:
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        if style == "first" and len(names) < len(FIRST_NAMES) // 2:
            name = first
        elif rng.random() < 0.7:
            name = first[0] + last
        else:
            name = f"{first}.{last}"
        names.setdefault(name, None)
    return list(names)


def near_miss(user: str, rng: random.Random) -> str:
    """A user name someone types instead of ``user``: a slip of the keyboard or of memory."""
    while True:
        name = _slip(user, rng)
        if name != user:
            return name


def _slip(user: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.25 and len(user) > 3:
        i = rng.randrange(len(user) - 1)
        return user[:i] + user[i + 1] + user[i] + user[i + 2 :]  # two letters swapped
    if roll < 0.45 and len(user) > 3:
        i = rng.randrange(len(user))
        return user[:i] + user[i + 1 :]  # one letter dropped
    if roll < 0.6:
        i = rng.randrange(len(user))
        return user[: i + 1] + user[i:]  # one letter doubled
    if roll < 0.75:
        return user.capitalize() if user[0].isalpha() else user + "1"  # names are case-sensitive
    # the laptop's own user name (ssh without user@)
    return rng.choice((f"{user}.work", f"{user[0]}{user}", "user", f"{user}-laptop"))


def make_person(
    traffic: Traffic,
    sshd: Sshd,
    user: str,
    *,
    keys: bool,
    addresses: list[str],
    campaign: int | None = None,
    logins_per_day: tuple[int, int] = (1, 4),
) -> Person:
    """A new person with an account on ``sshd``, labelled legitimate (their own campaign)."""
    rng = traffic.rng
    sshd.account(user)
    cid = traffic.campaign(f"user {user}", None, legitimate=True) if campaign is None else campaign
    person = Person(
        user=user,
        campaign=cid,
        addresses=addresses,
        keys=keys,
        typo_rate=rng.uniform(0.05, 0.15),
        logins_per_day=logins_per_day,
    )
    if keys:
        person.key = (rng.choice(KEY_TYPES), fingerprint(rng))
        before = rng.choices((0, 1, 2, 3, 4), weights=(40, 25, 15, 12, 8))[0]
        person.offered = [
            (rng.choice(("RSA", "ED25519", "ECDSA")), fingerprint(rng)) for _ in range(before)
        ]
    return person


def typos(rng: random.Random, rate: float) -> int:
    """Wrong passwords typed before the right one: usually none, else one, rarely two or three."""
    if rng.random() >= rate:
        return 0
    return rng.choices((1, 2, 3), weights=(80, 15, 5))[0]


def session_length(rng: random.Random) -> float:
    """How long an interactive session lasts: a few minutes to a few hours."""
    return min(8 * HOUR, rng.lognormvariate(math.log(1500), 1.0))


def log_in(sshd: Sshd, person: Person, t: float, ip: str) -> float:
    """One login of ``person`` from ``ip`` at ``t``, typos included; returns when it ended."""
    rng = sshd.rng
    cid = person.campaign
    if rng.random() < NAME_TYPO_RATE:
        conn = sshd.connect(cid, t, ip)
        conn.password_failure(near_miss(person.user, rng), think=rng.uniform(2, 8))
        conn.closed(after=rng.uniform(3, 15))  # notices the name, Ctrl-C
        t = conn.t + rng.uniform(4, 20)
    conn = sshd.connect(cid, t, ip)
    if person.keys:
        for key_type, key in person.offered:
            conn.key_rejected(person.user, key_type, key)
        conn.key_accepted(person.user, *person.key)
        conn.session(session_length(rng))
        return conn.t
    wrong = typos(rng, person.typo_rate)
    for _ in range(min(wrong, 3)):
        conn.password_failure(person.user, think=rng.uniform(2, 9))
    if wrong >= 3:
        # The client's three password prompts are used up: it disconnects, they try again.
        conn.closed(after=0.1)
        conn = sshd.connect(cid, conn.t + rng.uniform(5, 40), ip)
    conn.password_success(person.user, think=rng.uniform(2, 9))
    conn.session(session_length(rng))
    return conn.t


def login_times(rng: random.Random, day_start: float, per_day: tuple[int, int]) -> list[float]:
    """When someone logs in on the day starting at ``day_start`` (UTC, working hours mostly)."""
    weekday = int(day_start // DAY + 3) % 7  # 1970-01-01 was a Thursday; 0 is Monday
    weekend = weekday >= 5
    n = (1 if rng.random() < 0.15 else 0) if weekend else rng.randint(*per_day)
    times = []
    for _ in range(n):
        evening = rng.random() < 0.1  # a look in the evening
        hour = rng.uniform(19, 23.5) if evening else rng.uniform(7.5, 18.5)
        times.append(day_start + hour * HOUR)
    return sorted(times)


def live_days(sshd: Sshd, person: Person, start: float, days: int, *, travel: float = 0.04) -> None:
    """``person``'s logins over ``days`` days from ``start``; some days from a new address."""
    rng = sshd.rng
    for day in range(days):
        day_start = start + day * DAY
        times = login_times(rng, day_start, person.logins_per_day)
        if not times:
            continue
        away = (
            sshd.traffic.addresses.any(ipv6_share=0.15, public_share=0.5)
            if rng.random() < travel
            else None
        )
        for t in times:
            if away is not None:
                ip = away
            elif len(person.addresses) > 1 and rng.random() < 0.25:
                ip = rng.choice(person.addresses[1:])
            else:
                ip = person.addresses[0]
            log_in(sshd, person, t, ip)


__all__ = [
    "FIRST_NAMES",
    "NAME_TYPO_RATE",
    "SURNAMES",
    "Person",
    "live_days",
    "log_in",
    "login_times",
    "make_person",
    "near_miss",
    "session_length",
    "typos",
    "user_names",
]
