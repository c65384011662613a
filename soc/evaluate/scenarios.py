"""The scenarios ``soc eval`` runs, in two sizes: legitimate traffic, attacks, a background.

Every scenario is one simulated server's logs (``auth.log``, ``access.log``,
``ufw.log``) written into a folder with their labels, deterministically from a
seed (``random.Random(f"{seed}:{name}")``, never the global generator). The
*legitimate* scenarios hold nothing but legitimate behaviour, each kind on its
own and all of them together; the *attack* scenarios hold one attack each (or
all of them) next to some legitimate traffic; the *background* is a public
server's auth.log of a given size.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from soc.evaluate import attacks, firewall, legitimate
from soc.evaluate.background import internet
from soc.evaluate.labels import Labels
from soc.evaluate.ssh import Sshd
from soc.evaluate.traffic import AUTH_LOG, DAY, HOUR, START, Traffic
from soc.evaluate.web import Site
from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
)

LEGITIMATE: Final = "legitimate"
ATTACK: Final = "attack"
BACKGROUND: Final = "background"
GROUPS: Final = (LEGITIMATE, ATTACK, BACKGROUND)


@dataclass(frozen=True, slots=True)
class Size:
    """How big each scenario is: people, days, hosts, the background's lines."""

    name: str
    days: int
    key_users: int
    password_users: int
    forgotten: int
    office_users: int
    population: int
    automation_hosts: int
    automation_days: float
    web_days: int
    visitors_per_hour: float
    crawlers: int
    web_admins: int
    botnet: int
    background_lines: int


SIZES: Final = {
    "small": Size(
        name="small",
        days=3,
        key_users=12,
        password_users=15,
        forgotten=2,
        office_users=40,
        population=150,
        automation_hosts=2,
        automation_days=1,
        web_days=1,
        visitors_per_hour=30,
        crawlers=5,
        web_admins=6,
        botnet=40,
        background_lines=60_000,
    ),
    "full": Size(
        name="full",
        days=7,
        key_users=30,
        password_users=40,
        forgotten=4,
        office_users=150,
        population=600,
        automation_hosts=3,
        automation_days=3,
        web_days=3,
        visitors_per_hour=60,
        crawlers=6,
        web_admins=10,
        botnet=150,
        background_lines=1_000_000,
    ),
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One labelled scenario: its name, group, what it holds, and how it is built."""

    name: str
    group: str
    description: str
    build: Callable[[Traffic, Size], None]

    def write(self, folder: Path, size: Size, seed: int) -> Labels:
        """Write the scenario's logs into ``folder``; returns their labels."""
        rng = random.Random(f"{seed}:{self.name}")  # noqa: S311 (test data, not secrets)
        traffic = Traffic(folder, rng)
        self.build(traffic, size)
        return traffic.close()


# --- legitimate -------------------------------------------------------------------------
def _key_users(traffic: Traffic, size: Size) -> None:
    legitimate.key_users(traffic, Sshd(traffic, {}), START, size.days, size.key_users)


def _password_users(traffic: Traffic, size: Size) -> None:
    legitimate.password_users(traffic, Sshd(traffic, {}), START, size.days, size.password_users)


def _forgotten(traffic: Traffic, size: Size) -> None:
    legitimate.forgotten_password(traffic, Sshd(traffic, {}), START, size.days, size.forgotten)


def _office(traffic: Traffic, size: Size) -> None:
    legitimate.office(traffic, Sshd(traffic, {}), START, size.days, size.office_users)


def _automation_hosts(traffic: Traffic, size: Size) -> list[tuple[str, str]]:
    book = traffic.addresses
    hosts = [("deploy", book.lan()), ("git", book.private()), ("git", book.private())]
    return hosts[: size.automation_hosts]


def _automation(traffic: Traffic, size: Size) -> None:
    hosts = _automation_hosts(traffic, size)
    legitimate.automation(traffic, Sshd(traffic, {}), START, size.automation_days, hosts)


def _population(traffic: Traffic, size: Size) -> None:
    legitimate.population(traffic, Sshd(traffic, {}), START, size.days, size.population)


def _web(traffic: Traffic, size: Size) -> None:
    site = Site(traffic)
    site.visitors(START, size.web_days, size.visitors_per_hour)
    site.crawlers(START, size.web_days, size.crawlers)
    site.admins(START, size.web_days, size.web_admins)


def _legitimate_mix(traffic: Traffic, size: Size) -> None:
    sshd = Sshd(traffic, {})
    days = size.days
    legitimate.key_users(traffic, sshd, START, days, size.key_users)
    legitimate.password_users(traffic, sshd, START, days, size.password_users)
    legitimate.forgotten_password(traffic, sshd, START, days, size.forgotten)
    legitimate.office(traffic, sshd, START, days, size.office_users)
    legitimate.population(traffic, sshd, START, days, size.population)
    hosts = _automation_hosts(traffic, size)
    legitimate.automation(traffic, sshd, START, size.automation_days, hosts)
    _web(traffic, size)
    firewall.lan_chatter(traffic, START, days)


# --- attacks ------------------------------------------------------------------------------
class _Server:
    """The attacked server: one sshd, and its web site once something needs it."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.rng = traffic.rng
        self.sshd = Sshd(traffic, {})
        self._site: Site | None = None

    @property
    def site(self) -> Site:
        if self._site is None:
            self._site = Site(self.traffic)
        return self._site

    def when(self, day: int) -> float:
        """A time on ``day`` for an attack to start."""
        return START + day * DAY + self.rng.uniform(1, 20) * HOUR


def _ssh_neighbours(server: _Server, days: int) -> None:
    """Some legitimate ssh users on the attacked server, the same days."""
    legitimate.key_users(server.traffic, server.sshd, START, days, 6)
    legitimate.password_users(server.traffic, server.sshd, START, days, 6)


def _web_neighbours(server: _Server, days: int) -> None:
    """Visitors, crawlers and basic-auth users of the attacked server's site."""
    server.site.visitors(START, days, 30)
    server.site.crawlers(START, days, 3)
    server.site.admins(START, days, 4)


def _fw_neighbours(server: _Server, days: int) -> None:
    """The internet's background probes and the LAN's chatter at the firewall."""
    firewall.internet_probes(server.traffic, START, days, 40)
    firewall.lan_chatter(server.traffic, START, days)


def _brute_force(server: _Server, size: Size, day: int) -> None:
    rng = server.rng
    cid = server.traffic.campaign("brute force", BRUTE_FORCE, also={SLOW_BRUTE_FORCE})
    attacks.brute_force(
        server.sshd,
        cid,
        server.when(day),
        server.traffic.addresses.public(),
        users=("root", "admin", "ubuntu"),
        attempts=rng.randint(200, 1500),
        parallel=rng.randint(1, 4),
    )


def _spray(server: _Server, size: Size, day: int, *, success: bool = False) -> None:
    rng = server.rng
    users = rng.sample(attacks.SPRAY_NAMES, rng.randint(30, 70))
    if success:
        server.sshd.account("intern")  # a forgotten account with a guessable password
        users.insert(rng.randint(15, len(users)), "intern")
        name, kind, also = "spray, then a login", CREDENTIAL_COMPROMISE, {PASSWORD_SPRAY}
    else:
        name, kind, also = "password spray", PASSWORD_SPRAY, set()
    cid = server.traffic.campaign(name, kind, also={*also, SLOW_BRUTE_FORCE})
    ip = server.traffic.addresses.public()
    winner = "intern" if success else None
    attacks.password_spray(server.sshd, cid, server.when(day), ip, users, success=winner)


def _spray_success(server: _Server, size: Size, day: int) -> None:
    _spray(server, size, day, success=True)


def _slow(server: _Server, size: Size, day: int) -> None:
    cid = server.traffic.campaign("slow brute force", SLOW_BRUTE_FORCE)
    hours = server.rng.uniform(6, 12)
    ip = server.traffic.addresses.public()
    attacks.slow_brute_force(server.sshd, cid, server.when(day), ip, hours=hours)


def _botnet(server: _Server, size: Size, day: int, *, success: bool = False) -> None:
    traffic, rng = server.traffic, server.rng
    ips = [traffic.addresses.any(public_share=0.3) for _ in range(size.botnet)]
    cid = traffic.campaign("botnet", DISTRIBUTED_BRUTE_FORCE)
    users: tuple[str, ...] = ("root", "admin")
    won = None
    if success:
        server.sshd.account("support")
        users = ("root", "admin", "support")
        winner = traffic.campaign(
            "botnet member's login", CREDENTIAL_COMPROMISE, also={DISTRIBUTED_BRUTE_FORCE}
        )
        won = (rng.randrange(len(ips)), "support", winner)
    minutes = rng.uniform(30, 90)
    attacks.botnet(
        server.sshd, cid, server.when(day), ips, users=users, minutes=minutes, success=won
    )


def _botnet_success(server: _Server, size: Size, day: int) -> None:
    _botnet(server, size, day, success=True)


def _compromise(server: _Server, size: Size, day: int) -> None:
    rng = server.rng
    server.sshd.account("support")
    cid = server.traffic.campaign(
        "brute force, then a login",
        CREDENTIAL_COMPROMISE,
        also={BRUTE_FORCE, SLOW_BRUTE_FORCE},
    )
    attempts = rng.randint(100, 400)
    attacks.brute_force(
        server.sshd,
        cid,
        server.when(day),
        server.traffic.addresses.public(),
        users=("root", "admin", "support"),
        attempts=attempts,
        parallel=rng.randint(1, 3),
        success=(rng.randint(30, attempts), "support"),
    )


def _web_scan(server: _Server, size: Size, day: int) -> None:
    cid = server.traffic.campaign("web scan", WEB_SCAN)
    server.site.scan(cid, server.when(day), server.traffic.addresses.public())


def _web_auth(server: _Server, size: Size, day: int) -> None:
    cid = server.traffic.campaign("basic-auth brute force", WEB_AUTH_BRUTE_FORCE)
    server.site.auth_brute_force(cid, server.when(day), server.traffic.addresses.public())


def _port_scan(server: _Server, size: Size, day: int) -> None:
    cid = server.traffic.campaign("port scan", PORT_SCAN)
    firewall.port_scan(server.traffic, cid, server.when(day), server.traffic.addresses.public())


_Attack = Callable[[_Server, Size, int], None]
_Neighbours = Callable[[_Server, int], None]


def _alone(
    attack: _Attack, neighbours: _Neighbours, days: int = 1
) -> Callable[[Traffic, Size], None]:
    """A scenario of one attack on the first day, next to ``neighbours`` for ``days``."""

    def build(traffic: Traffic, size: Size) -> None:
        server = _Server(traffic)
        neighbours(server, days)
        attack(server, size, 0)

    return build


def _attack_mix(traffic: Traffic, size: Size) -> None:
    """Every attack once, over two days, next to a small server's legitimate traffic."""
    server = _Server(traffic)
    for neighbours in (_ssh_neighbours, _web_neighbours, _fw_neighbours):
        neighbours(server, 2)
    hosts = _automation_hosts(traffic, size)[:1]
    legitimate.automation(traffic, server.sshd, START, 1, hosts)
    for n, attack in enumerate(
        (
            _brute_force,
            _spray,
            _slow,
            _botnet,
            _compromise,
            _spray_success,
            _botnet_success,
            _web_scan,
            _web_auth,
            _port_scan,
        )
    ):
        attack(server, size, n % 2)


def _background(traffic: Traffic, size: Size) -> None:
    traffic.limits[AUTH_LOG] = size.background_lines
    internet(traffic, Sshd(traffic, {}), START)


SCENARIOS: Final = (
    Scenario(
        "key_users", LEGITIMATE, "people with keys; agents offer 0-4 other keys first", _key_users
    ),
    Scenario("password_users", LEGITIMATE, "people with passwords: typos, travel", _password_users),
    Scenario(
        "forgotten_password", LEGITIMATE, "a handful of failures in a day, no success", _forgotten
    ),
    Scenario("office", LEGITIMATE, "an office's people behind one address", _office),
    Scenario("automation", LEGITIMATE, "CI hosts logging in every minute with keys", _automation),
    Scenario("population", LEGITIMATE, "hundreds of people, 1-3 addresses each", _population),
    Scenario("web", LEGITIMATE, "visitors, crawlers on stale links, basic-auth users", _web),
    Scenario(
        "legitimate_mix",
        LEGITIMATE,
        "all of the legitimate behaviours on one server",
        _legitimate_mix,
    ),
    Scenario(
        "brute_force",
        ATTACK,
        "fast guessing from one address",
        _alone(_brute_force, _ssh_neighbours),
    ),
    Scenario(
        "password_spray",
        ATTACK,
        "many user names, one or two tries each",
        _alone(_spray, _ssh_neighbours),
    ),
    Scenario(
        "slow_brute_force",
        ATTACK,
        "one try every few minutes for hours",
        _alone(_slow, _ssh_neighbours, 2),
    ),
    Scenario(
        "distributed_brute_force",
        ATTACK,
        "a botnet, a handful of tries per member",
        _alone(_botnet, _ssh_neighbours),
    ),
    Scenario(
        "compromise_after_brute_force",
        ATTACK,
        "a brute force that gets in",
        _alone(_compromise, _ssh_neighbours),
    ),
    Scenario(
        "compromise_after_spray",
        ATTACK,
        "a spray that gets in",
        _alone(_spray_success, _ssh_neighbours),
    ),
    Scenario(
        "compromise_by_botnet_member",
        ATTACK,
        "one bot's guess is right",
        _alone(_botnet_success, _ssh_neighbours),
    ),
    Scenario(
        "web_scan",
        ATTACK,
        "probes for files that are not there",
        _alone(_web_scan, _web_neighbours),
    ),
    Scenario(
        "web_auth_brute_force",
        ATTACK,
        "basic-auth guessing on /admin/",
        _alone(_web_auth, _web_neighbours),
    ),
    Scenario(
        "port_scan", ATTACK, "a SYN scan against the firewall", _alone(_port_scan, _fw_neighbours)
    ),
    Scenario("attack_mix", ATTACK, "every attack, next to legitimate traffic", _attack_mix),
    Scenario("background", BACKGROUND, "a public server's auth.log: bots and users", _background),
)


def scenario(name: str) -> Scenario:
    """The scenario called ``name``."""
    for candidate in SCENARIOS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


__all__ = [
    "ATTACK",
    "BACKGROUND",
    "GROUPS",
    "LEGITIMATE",
    "SCENARIOS",
    "SIZES",
    "Scenario",
    "Size",
    "scenario",
]
