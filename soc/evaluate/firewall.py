"""ufw's kernel log lines: internet background probes, LAN chatter, and port scans.

Every line is a ``[UFW BLOCK]`` as the kernel logs it (``kernel: [uptime] [UFW
BLOCK] IN=eth0 OUT= MAC=… SRC=… DST=… … PROTO=TCP SPT=… DPT=… … SYN URGP=0``).
"""

from __future__ import annotations

import random
from typing import Final

from soc.evaluate.traffic import DAY, SERVER_IP, START, UFW_LOG, Traffic

#: When the simulated server booted (the kernel stamps its lines with the uptime).
BOOT: Final = START - 9 * DAY
_MAC: Final = "52:54:00:3a:91:0c:fe:54:00:1d:7e:42:08:00"
_SERVER_IP6: Final = "2001:db8:1::10"
#: Ports internet background traffic knocks on, most often first.
PROBED_PORTS: Final = (
    23, 445, 3389, 8080, 6379, 5900, 1433, 2323, 8443, 81, 8888, 9200, 2375, 11211, 37215,
    52869, 60001, 5555, 3306, 5432, 27017, 1723, 500, 5060, 7547, 8000, 9000, 4567, 10000,
)  # fmt: skip


def ufw_line(
    rng: random.Random, t: float, src: str, dpt: int, *, proto: str = "TCP", dst: str = ""
) -> str:
    """One ``[UFW BLOCK]`` line (everything after the host name)."""
    uptime = f"[{t - BOOT:12.6f}]"
    if ":" in src:
        head = (
            f"SRC={src} DST={dst or _SERVER_IP6} LEN=60 TC=0 HOPLIMIT={rng.randint(40, 250)} "
            f"FLOWLBL={rng.randint(0, 1048575)}"
        )
    else:
        head = (
            f"SRC={src} DST={dst or SERVER_IP} LEN=44 TOS=0x00 PREC=0x00 "
            f"TTL={rng.randint(30, 250)} ID={rng.randint(0, 65535)}"
        )
    spt = rng.randint(1024, 65535)
    if proto == "UDP":
        tail = f"PROTO=UDP SPT={spt} DPT={dpt} LEN={rng.randint(20, 200)} "
    else:
        window = rng.choice((1024, 29200, 65535))
        tail = f"PROTO=TCP SPT={spt} DPT={dpt} WINDOW={window} RES=0x00 SYN URGP=0 "
    return f"kernel: {uptime} [UFW BLOCK] IN=eth0 OUT= MAC={_MAC} {head} {tail}"


def drop(traffic: Traffic, campaign: int, t: float, src: str, dpt: int, **kw: str) -> None:
    """One blocked packet from ``src``."""
    traffic.add(UFW_LOG, t, campaign, ufw_line(traffic.rng, t, src, dpt, **kw), address=src)


def internet_probes(traffic: Traffic, start: float, days: float, per_hour: float) -> None:
    """Background probes: many sources, each knocking on one to three common ports.

    Each source is hostile noise (a campaign of no incident kind).
    """
    rng = traffic.rng
    t = start
    end = start + days * DAY
    while True:
        t += rng.expovariate(per_hour / 3600)
        if t >= end:
            return
        src = traffic.addresses.any(ipv6_share=0.1, public_share=0.2)
        cid = traffic.campaign(f"probe {src}", None)
        at = t
        for port in rng.sample(PROBED_PORTS[:12], rng.randint(1, 3)):
            drop(traffic, cid, at, src, port)
            at += rng.uniform(0.5, 600)


def lan_chatter(traffic: Traffic, start: float, days: float) -> None:
    """The router and a printer on the server's LAN: multicast and broadcast, all day."""
    rng = traffic.rng
    end = start + days * DAY
    printer = traffic.addresses.lan()
    devices: list[tuple[str, list[tuple[int, str]]]] = [
        ("192.0.2.1", [(5353, "224.0.0.251"), (1900, "239.255.255.250")]),  # the router
        (printer, [(5353, "224.0.0.251"), (137, "192.0.2.255"), (138, "192.0.2.255")]),
    ]
    for src, ports in devices:
        cid = traffic.campaign(f"lan device {src}", None, legitimate=True)
        t = start + rng.uniform(0, 300)
        while t < end:
            port, dst = rng.choice(ports)
            drop(traffic, cid, t, src, port, proto="UDP", dst=dst)
            t += rng.uniform(60, 900)


def port_scan(traffic: Traffic, campaign: int, t: float, src: str) -> None:
    """A SYN scan of 100 to 1,000 TCP ports within a few minutes."""
    rng = traffic.rng
    ports = rng.sample(range(1, 10_000), rng.randint(100, 1000))
    for port in ports:
        t += rng.expovariate(5.0)
        drop(traffic, campaign, t, src, port)


__all__ = [
    "BOOT",
    "PROBED_PORTS",
    "drop",
    "internet_probes",
    "lan_chatter",
    "port_scan",
    "ufw_line",
]
