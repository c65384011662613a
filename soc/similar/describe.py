"""An incident told as one normalised English paragraph: what the attack looked like.

The paragraph is what gets embedded, so two incidents of one campaign seen from
different addresses, or on different days, read alike: it says what was done
(the kind, the targeted user names, the tempo, the ports and paths, the outcome,
how many sources, the MITRE technique, threat-intel hits) and never where from
or when (no address, no timestamp). Figures are bucketed into words ("fast",
"hundreds of failures"), so small differences in counts do not move an incident
away from its campaign. It is deterministic: the same facts give the same text.

User names, paths and intel names are attacker-controlled (or third-party) text:
they are data. Control characters go, whitespace is collapsed, each value and
each list is capped, and anything in them that reads as an IP address or a
timestamp is masked.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Final

from soc.events import (
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
    Incident,
)

#: Each incident kind in plain words (the first words of every description).
KIND_WORDS: Final[dict[str, str]] = {
    BRUTE_FORCE: "brute force login attack guessing passwords",
    PASSWORD_SPRAY: "password spray trying few passwords across many accounts",
    SLOW_BRUTE_FORCE: "slow brute force login attack guessing passwords at a low rate",
    DISTRIBUTED_BRUTE_FORCE: "distributed brute force login attack from many sources",
    CREDENTIAL_COMPROMISE: "credential compromise: a successful login after an attack",
    WEB_SCAN: "web scan probing the web server for vulnerable paths",
    WEB_AUTH_BRUTE_FORCE: "web login brute force against HTTP authentication",
    PORT_SCAN: "port scan probing network services",
}

#: Kinds whose failures are login attempts (the outcome of a login is worth saying).
_LOGIN_KINDS: Final = frozenset(
    {
        BRUTE_FORCE,
        PASSWORD_SPRAY,
        SLOW_BRUTE_FORCE,
        DISTRIBUTED_BRUTE_FORCE,
        CREDENTIAL_COMPROMISE,
        WEB_AUTH_BRUTE_FORCE,
    }
)

#: Well-known services by port: a scan of 22 and 3389 reads as one of ssh and rdp.
SERVICES: Final[dict[int, str]] = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    25: "smtp",
    53: "dns",
    80: "http",
    110: "pop3",
    135: "msrpc",
    139: "netbios",
    143: "imap",
    161: "snmp",
    443: "https",
    445: "smb",
    465: "smtps",
    587: "submission",
    993: "imaps",
    995: "pop3s",
    1433: "mssql",
    1521: "oracle",
    2375: "docker",
    3306: "mysql",
    3389: "rdp",
    5432: "postgres",
    5900: "vnc",
    5985: "winrm",
    6379: "redis",
    8080: "http-alt",
    8443: "https-alt",
    9200: "elasticsearch",
    11211: "memcached",
    27017: "mongodb",
}

#: What a probed path is after, by a marker in it (checked in this order).
PATH_TOPICS: Final[tuple[tuple[str, str], ...]] = (
    ("wp-", "WordPress"),
    ("xmlrpc", "WordPress"),
    ("wordpress", "WordPress"),
    ("phpmyadmin", "phpMyAdmin"),
    ("pma", "phpMyAdmin"),
    ("adminer", "database admin"),
    (".env", "environment files"),
    (".git", "git repositories"),
    (".aws", "cloud credentials"),
    (".ssh", "ssh keys"),
    ("passwd", "system files"),
    ("../", "path traversal"),
    ("%2e%2e", "path traversal"),
    ("cgi", "CGI scripts"),
    ("shell", "web shells"),
    ("cmd.php", "web shells"),
    ("eval-stdin", "phpunit exploit"),
    ("phpunit", "phpunit exploit"),
    ("actuator", "Spring actuator"),
    ("server-status", "server status pages"),
    ("phpinfo", "PHP info pages"),
    ("admin", "admin panels"),
    ("login", "login pages"),
    ("backup", "backups and dumps"),
    (".sql", "backups and dumps"),
    (".zip", "backups and dumps"),
    (".tar", "backups and dumps"),
    (".bak", "backups and dumps"),
    ("config", "configuration files"),
)

#: Caps: values listed per kind of value, characters per value, and the whole text.
MAX_USERS: Final = 8
MAX_PATHS: Final = 8
MAX_PORTS: Final = 12
MAX_INTEL: Final = 3
MAX_VALUE_CHARS: Final = 40
MAX_CHARS: Final = 1200

_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
# Candidates only: every match is checked by ipaddress before it is masked.
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?:/\d{1,3})?")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b\d{2}:\d{2}:\d{2}\b"
)
_SPACE = re.compile(r"\s+")


def describe(incident: Incident) -> str:
    """The incident as one normalised, deterministic English paragraph (no address, no time)."""
    facts = incident.facts if isinstance(incident.facts, dict) else {}
    parts = [_kind_words(incident.kind)]
    users = _users(incident)
    if users:
        parts.append(users)
    tempo = _tempo(incident)
    if tempo:
        parts.append(tempo)
    ports = _ports(facts.get("ports"), facts.get("distinct_ports"))
    if ports:
        parts.append(ports)
    paths = _paths(facts.get("paths"), facts.get("distinct_paths"))
    if paths:
        parts.append(paths)
    outcome = _outcome(incident)
    if outcome:
        parts.append(outcome)
    parts.append(_sources(incident, facts))
    if incident.technique:
        technique = f"MITRE ATT&CK {clean_value(incident.technique)}"
        if incident.technique_name:
            technique += f" {clean_value(incident.technique_name, 80)}"
        parts.append(technique)
    intel = _intel(facts.get("intel"))
    if intel:
        parts.append(intel)
    text = "; ".join(parts) + "."
    text = mask(text)  # belt and braces: nothing above should carry one
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


# --- attacker text ---------------------------------------------------------------------


def clean_value(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` as one short line of data: no control characters, no address, capped."""
    text = "".join(_plain(ch) for ch in unicodedata.normalize("NFKC", str(value)))
    text = mask(_SPACE.sub(" ", text).strip())
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def _plain(ch: str) -> str:
    """Format characters (zero-width, bidi) go; other controls and separators are spaces."""
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    if category[0] in "CZ" and ch != " ":
        return " "
    return ch


def mask(text: str) -> str:
    """``text`` with every IP address and timestamp in it replaced by a word."""
    text = _IPV4.sub(_ipv4_word, text)
    text = _IPV6.sub(_ipv6_word, text)
    return _TIMESTAMP.sub("<time>", text)


def _ipv4_word(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv4Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "<address>"


def _ipv6_word(match: re.Match[str]) -> str:
    candidate = match.group(0)
    if candidate.count(":") < 2:
        return candidate
    try:
        ipaddress.ip_network(candidate.split("%", 1)[0], strict=False)
    except ValueError:
        return candidate
    return "<address>"


def _listed(values: Iterable[str], cap: int) -> list[str]:
    """Distinct non-empty cleaned values, sorted, at most ``cap``."""
    cleaned = {clean_value(v) for v in values}
    cleaned.discard("")
    return sorted(cleaned, key=lambda v: (v.casefold(), v))[:cap]


# --- the parts --------------------------------------------------------------------------


def _kind_words(kind: str) -> str:
    return KIND_WORDS.get(kind) or clean_value(kind.replace("_", " ")) or "incident"


def _users(incident: Incident) -> str:
    names = _listed((u for u in incident.users if isinstance(u, str)), MAX_USERS)
    total = max(incident.distinct_users, len(names))
    if not names:
        return ""
    word = "user" if total == 1 else "users"
    text = f"against {_count_words(total, 'account')}: {word} {', '.join(names)}"
    if total > len(names):
        text += " and others"
    return text


def _tempo(incident: Incident) -> str:
    duration = max(0.0, incident.last_seen - incident.first_seen)
    attempts = incident.failures or incident.events
    if attempts <= 0:
        return ""
    unit = {WEB_SCAN: "requests", PORT_SCAN: "probes"}.get(incident.kind, "failed attempts")
    rate = attempts / max(duration / 60.0, 1.0)
    if rate >= 60:
        pace = "very fast"
    elif rate >= 10:
        pace = "fast"
    elif rate >= 1:
        pace = "steady"
    else:
        pace = "slow"
    return f"{pace}, {_volume(attempts)} {unit} over {_duration(duration)}"


def _volume(n: int) -> str:
    if n < 10:
        return "a handful of"
    if n < 100:
        return "dozens of"
    if n < 1000:
        return "hundreds of"
    if n < 100_000:
        return "thousands of"
    return "a flood of"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    if seconds < 600:
        return "a few minutes"
    if seconds < 3600:
        return "under an hour"
    if seconds < 6 * 3600:
        return "a few hours"
    if seconds < 86_400:
        return "most of a day"
    return "several days"


def _count_words(n: int, noun: str) -> str:
    nouns = noun + ("es" if noun.endswith("s") else "s")
    if n <= 1:
        return f"one {noun}"
    if n <= 5:
        return f"a few {nouns}"
    if n <= 50:
        return f"many {nouns}"
    return f"hundreds of {nouns}"


def _ports(ports: Any, distinct: Any) -> str:
    if not isinstance(ports, list) or not ports:
        return ""
    numbers = sorted({p for p in ports if isinstance(p, int) and not isinstance(p, bool)})
    if not numbers:
        return ""
    total = distinct if isinstance(distinct, int) and distinct > len(numbers) else len(numbers)
    shown = [f"{p} {SERVICES[p]}" if p in SERVICES else str(p) for p in numbers[:MAX_PORTS]]
    services = sorted({SERVICES[p] for p in numbers if p in SERVICES})
    text = f"{_count_words(total, 'port')}: {', '.join(shown)}"
    if total > len(shown):
        text += " and others"
    if services:
        text += f" (services {', '.join(services)})"
    return text


def _paths(paths: Any, distinct: Any) -> str:
    if not isinstance(paths, list) or not paths:
        return ""
    raw = [p for p in paths if isinstance(p, str)]
    shown = _listed(raw, MAX_PATHS)
    if not shown:
        return ""
    total = distinct if isinstance(distinct, int) and distinct > len(shown) else len(shown)
    topics = sorted({topic for p in raw for topic in _topics(p)})
    text = f"probing {_count_words(total, 'path')}: {', '.join(shown)}"
    if total > len(shown):
        text += " and others"
    if topics:
        text += f" (looking for {', '.join(topics)})"
    return text


def _topics(path: str) -> Sequence[str]:
    lowered = path.casefold()
    return [topic for marker, topic in PATH_TOPICS if marker in lowered]


def _outcome(incident: Incident) -> str:
    if incident.successes > 0 or incident.kind == CREDENTIAL_COMPROMISE:
        return "followed by a successful login: the account is compromised"
    if incident.kind in _LOGIN_KINDS:
        return "no successful login"
    return ""


def _sources(incident: Incident, facts: dict[str, Any]) -> str:
    distinct = facts.get("distinct_sources")
    n = distinct if isinstance(distinct, int) and distinct > 0 else len(incident.source_ips)
    if facts.get("key_type") == "ipv6_64":
        return f"rotating through {_count_words(max(n, 2), 'address')} of one IPv6 network"
    if n <= 1:
        return "from a single source address"
    if n <= 5:
        return "from a few source addresses"
    if n <= 50:
        return "from many source addresses"
    return "from a botnet of hundreds of source addresses"


def _intel(intel: Any) -> str:
    if not isinstance(intel, list):
        return ""
    hits: list[str] = []
    for item in intel:
        if not isinstance(item, dict):
            continue
        name = clean_value(item.get("name") or "", 60)
        labels = item.get("labels")
        label_words = (
            _listed((str(label) for label in labels), 4) if isinstance(labels, list) else []
        )
        if not name and not label_words:
            continue
        hit = name or "listed"
        if label_words:
            hit += f" ({', '.join(label_words)})"
        hits.append(hit)
    hits = sorted(set(hits))[:MAX_INTEL]
    return f"threat intel: {'; '.join(hits)}" if hits else ""


__all__ = ["KIND_WORDS", "clean_value", "describe", "mask"]
