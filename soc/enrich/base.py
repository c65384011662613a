"""What threat intel is configured with, what a feed yields, and how a feed is doing.

``IntelSpec`` is one ``[[intel]]`` table (validated before anything runs);
``Indicator`` is one loaded indicator (an address or network a feed lists, with
who says so and how sure they are); ``LoadResult`` is what one load of a feed
gave; ``FeedStatus`` is what the CLI and the command center show per feed.
Nothing here imports the STIX or TAXII libraries: the configuration loader
imports this module.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from soc.errors import ConfigError, SocError

#: Feed types and the keys each accepts in its ``[[intel]]`` table.
_COMMON_KEYS: Final = ("name", "type", "enabled", "refresh_minutes", "confidence", "labels")
_HTTP_KEYS: Final = ("timeout", "verify_tls", "ca_certs")
INTEL_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "stix": (*_COMMON_KEYS, "path"),
    "taxii": (
        *_COMMON_KEYS,
        "url",
        "api_root",
        "collection",
        "user",
        "password_secret",
        "token_secret",
        *_HTTP_KEYS,
    ),
    "blocklist": (*_COMMON_KEYS, "path", "url", *_HTTP_KEYS),
}
FEED_TYPES: Final = tuple(INTEL_KEYS)

#: Feed names: letters and digits, single ``-``/``_`` between them (they name secrets and logs).
_NAME: Final = re.compile(r"^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$")
#: Secret names: what ``SECRET_ENV`` knows, or a name whose upper case is the variable.
_SECRET_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")
#: Networks broader than these are refused in any feed (a listed 0.0.0.0/0 would
#: mark every address on the Internet).
MIN_PREFIX: Final[dict[int, int]] = {4: 8, 6: 16}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FeedError(SocError):
    """A feed that cannot be read now (its previous indicators stay in force)."""


@dataclass(slots=True)
class IntelSpec:
    """One configured threat-intel feed (an ``[[intel]]`` table).

    ``type``: ``"stix"`` (``path``: a STIX 2.1 bundle file or a folder of
    ``*.json`` bundles), ``"taxii"`` (``url``: a TAXII 2.1 collection, e.g.
    OpenCTI's ``…/taxii2/root/collections/<id>/``; or, with ``collection`` (an id
    or a title), ``url`` is the API root, or with ``api_root`` too (an API root's
    title or URL, or ``"default"``) the server's discovery URL ``…/taxii2/``),
    ``"blocklist"`` (one address or CIDR per line from a local ``path`` or an
    http(s) ``url``). ``refresh_minutes``: how often the feed is read again
    (0: once). ``confidence``: 0-100, for indicators that carry none (every
    blocklist entry). ``labels``: for indicators that carry none.
    ``user`` + ``password_secret`` (basic) or ``token_secret`` (bearer): the
    TAXII server's credentials, the password or token being the *name* of a
    secret (read from the environment, never from this file).
    ``timeout``/``verify_tls``/``ca_certs``: HTTP settings.
    """

    name: str = ""
    type: Literal["stix", "taxii", "blocklist"] = "stix"
    enabled: bool = True
    refresh_minutes: float = 60.0
    confidence: int = 70
    labels: list[str] = field(default_factory=list)
    path: str = ""
    url: str = ""
    api_root: str = ""
    collection: str = ""
    user: str = ""
    password_secret: str = ""
    token_secret: str = ""
    timeout: float = 30.0
    verify_tls: bool = True
    ca_certs: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"must be letters and digits, with single - or _ between them, not {self.name!r}",
                where="name",
            )
        if self.refresh_minutes < 0:
            raise ConfigError("must not be negative (0: read once)", where="refresh_minutes")
        if not 0 <= self.confidence <= 100:
            raise ConfigError("must be between 0 and 100", where="confidence")
        if not 0 < self.timeout <= 600:
            raise ConfigError("must be between 0 and 600 seconds", where="timeout")
        if any(not label.strip() for label in self.labels):
            raise ConfigError("labels must not be empty", where="labels")
        if self.type == "stix" and not self.path:
            raise ConfigError("a stix feed needs 'path' (a bundle file or a folder)", "path")
        if self.type == "blocklist" and bool(self.path) == bool(self.url):
            raise ConfigError("a blocklist needs exactly one of 'path' and 'url'", "path")
        if self.type == "taxii" and not self.url:
            raise ConfigError("a taxii feed needs 'url' (the collection's URL)", "url")
        if self.url:
            _check_url(self.url)
        if self.api_root and not self.collection:
            raise ConfigError("'api_root' is only used to find 'collection'", "api_root")
        for key in ("password_secret", "token_secret"):
            value = getattr(self, key)
            if value and not _SECRET_NAME.match(value):
                raise ConfigError(
                    f"must name a secret (lower case, digits, _), not {value!r}", where=key
                )
        if self.token_secret and (self.user or self.password_secret):
            raise ConfigError("use either user + password_secret or token_secret", "token_secret")
        if bool(self.user) != bool(self.password_secret):
            raise ConfigError("user and password_secret go together", "password_secret")

    @property
    def secret_names(self) -> list[str]:
        """The secrets this feed reads (to be loaded with the others)."""
        return [s for s in (self.password_secret, self.token_secret) if s]


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"must be an http:// or https:// URL, not {url!r}", "url")
    if parts.username or parts.password:
        raise ConfigError("must not carry credentials: use password_secret/token_secret", "url")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"has an invalid port: {url!r}", "url") from None


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator a feed loaded: the networks it lists and what is said about them.

    ``valid_from``/``valid_until`` are seconds since the epoch (None: unbounded);
    ``source`` is the feed's name, with the STIX identity that created the
    indicator after a slash when the bundle names one (``opencti / ACME CERT``).
    """

    id: str
    name: str
    feed: str
    source: str
    confidence: int
    labels: tuple[str, ...]
    networks: tuple[Network, ...]
    valid_from: float | None = None
    valid_until: float | None = None

    def active(self, now: float) -> bool:
        """True when ``now`` is within the indicator's validity."""
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until


@dataclass(slots=True)
class LoadResult:
    """What one read of a feed gave: its indicators, and what it skipped, by reason."""

    indicators: list[Indicator] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class FeedStatus:
    """How one feed is doing, for ``soc intel`` and the command center.

    ``indicators``/``networks``: in force now (from the last successful read);
    ``expired``: of those, how many are past ``valid_until`` (they never match);
    ``skipped``: what the last successful read left out, by reason;
    ``last_refresh``: when that read finished; ``last_attempt``/``last_error``:
    the latest try and, if it failed, why (the previous indicators stay in
    force); ``failures``: failed reads since the last success.
    """

    name: str
    type: str
    enabled: bool
    indicators: int = 0
    networks: int = 0
    expired: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    last_refresh: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    failures: int = 0
    next_refresh: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "name": self.name,
            "type": self.type,
            "enabled": self.enabled,
            "indicators": self.indicators,
            "networks": self.networks,
            "expired": self.expired,
            "skipped": dict(sorted(self.skipped.items())),
            "last_refresh": self.last_refresh,
            "last_attempt": self.last_attempt,
            "last_error": self.last_error,
            "failures": self.failures,
            "next_refresh": self.next_refresh,
        }


def parse_network(text: str) -> tuple[Network | None, str | None]:
    """An address or CIDR as a network, or None and the reason it is refused.

    Host bits are tolerated (``192.0.2.7/24`` is ``192.0.2.0/24``); an
    IPv4-mapped IPv6 address is its IPv4 address (as the parsers give sources).
    """
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None, "not an address"
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    if network.prefixlen < MIN_PREFIX[network.version]:
        return None, "network too broad"
    return network, None


__all__ = [
    "FEED_TYPES",
    "INTEL_KEYS",
    "MIN_PREFIX",
    "FeedError",
    "FeedStatus",
    "Indicator",
    "IntelSpec",
    "LoadResult",
    "Network",
    "parse_network",
]
