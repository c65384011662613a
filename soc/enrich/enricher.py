"""The enricher: which incidents' sources a feed lists, and what that does to severity.

:class:`Enricher` holds one :class:`~soc.enrich.intelset.IntelSet` per feed and
looks up every source address of each incident in all of them. Hits (at most
``MAX_HITS``, strongest first) go into ``incident.facts["intel"]``, each with the
indicator's name, feed and source, confidence, labels, validity end, the matched
address and the listed network. An indicator past its ``valid_until`` (or before
its ``valid_from``) at match time never matches.

Severity rule (``raised_severity``), from the highest confidence among the hits:

- confidence >= 80: one level up (low -> medium -> high -> critical);
- confidence >= 50: at least medium (low -> medium; higher stays);
- below 50: no change (the hits are still recorded as facts).

A listed address makes an attack more credible, not bigger: one level is the
most intel adds, and a weak or stale listing only keeps an incident from being
filed as noise. The rule is applied to the detector's own severity: the
severity before intel is kept in ``facts["intel_severity"]`` (``{"before",
"after"}``), so enriching the same incident again never escalates twice, and
an incident whose hits are gone (expired, feed removed) goes back to it.

Feeds are read by :meth:`Enricher.refresh_now` (at once, for the CLI and before
a replay) or on their schedule by :class:`IntelRefresher` on a background
thread. A read that fails keeps the feed's previous indicators in force; the
failure is logged once (again only when it changes) and counted in
:meth:`Enricher.status`, and the read is retried with backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from soc.clock import Clock, SystemClock
from soc.enrich.base import FeedError, FeedStatus, Indicator, IntelSpec, LoadResult, Network
from soc.enrich.intelset import EMPTY, Address, IntelSet, parse_address
from soc.errors import ConfigError
from soc.events import SEVERITIES, Incident
from soc.redact import SecretLike, redact
from soc.registry import resolve

#: Feed types and their loaders (imported when a feed of that type is read).
FEED_LOADERS: Final[dict[str, str]] = {
    "stix": "soc.enrich.stix:load_stix",
    "taxii": "soc.enrich.taxii:load_taxii",
    "blocklist": "soc.enrich.blocklist:load_blocklist",
}
#: Hits kept per incident (the strongest; ``facts["intel_not_listed"]`` counts the rest).
MAX_HITS: Final = 5
#: Confidence from which a hit raises severity one level, and from which to at least medium.
RAISE_CONFIDENCE: Final = 80
MEDIUM_CONFIDENCE: Final = 50
#: First retry of a failed read after this many seconds, doubling up to ``RETRY_MAX_SECONDS``
#: (or the feed's refresh interval if shorter).
RETRY_SECONDS: Final = 30.0
RETRY_MAX_SECONDS: Final = 900.0

_log = logging.getLogger(__name__)

Loader = Callable[[IntelSpec, Mapping[str, SecretLike]], LoadResult]


def raised_severity(severity: str, confidence: int) -> str:
    """``severity`` as a hit of ``confidence`` raises it (see the module's rule)."""
    level = SEVERITIES.index(severity)
    if confidence >= RAISE_CONFIDENCE:
        level = min(level + 1, len(SEVERITIES) - 1)
    elif confidence >= MEDIUM_CONFIDENCE:
        level = max(level, SEVERITIES.index("medium"))
    return SEVERITIES[level]


@dataclass(slots=True)
class _Feed:
    """One feed's loaded set and its read history (guarded by the enricher's lock)."""

    spec: IntelSpec
    intel: IntelSet = EMPTY
    skipped: dict[str, int] = field(default_factory=dict)
    last_refresh: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    failures: int = 0
    next_due: float | None = 0.0  # None: not scheduled (read once, or disabled)
    loading: threading.Lock = field(default_factory=threading.Lock)


class Enricher:
    """Threat intel for incidents: the configured feeds, their indicators, the matching.

    Thread-safe: feeds are read on any thread (the refresher's, the CLI's) while
    :meth:`enrich` runs on the engine's; a read swaps the feed's new set in at
    once, so a lookup sees the old set or the new one, never half of one.
    """

    def __init__(
        self,
        specs: Sequence[IntelSpec],
        *,
        secrets: Mapping[str, SecretLike] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self._secrets: Mapping[str, SecretLike] = dict(secrets or {})
        self._lock = threading.Lock()
        self._feeds: dict[str, _Feed] = {}
        for spec in specs:
            if spec.name in self._feeds:
                raise ConfigError(f"duplicate intel feed name {spec.name!r}", where="intel")
            if spec.type not in FEED_LOADERS:  # checked without importing the loader
                raise ConfigError(f"unknown intel feed type {spec.type!r}", where=spec.name)
            self._feeds[spec.name] = _Feed(spec, next_due=0.0 if spec.enabled else None)
        self._sets: tuple[IntelSet, ...] = ()

    @property
    def feeds(self) -> list[str]:
        """The configured feeds' names, in configuration order."""
        return list(self._feeds)

    @property
    def active(self) -> bool:
        """True when at least one feed is enabled (else the enricher does nothing)."""
        return any(feed.spec.enabled for feed in self._feeds.values())

    # --- reading feeds -----------------------------------------------------------------
    def refresh_now(self, names: Iterable[str] | None = None) -> list[FeedStatus]:
        """Read the named feeds (default: every enabled one) now; their status after.

        A disabled feed is read too when named. Never raises for a feed's failure
        (see its status); an unknown name is a :class:`~soc.errors.ConfigError`.
        """
        if names is None:
            wanted = [n for n, f in self._feeds.items() if f.spec.enabled]
        else:
            wanted = list(names)
            unknown = [n for n in wanted if n not in self._feeds]
            if unknown:
                known = ", ".join(self._feeds) or "none configured"
                raise ConfigError(f"unknown intel feed {unknown[0]!r} (known: {known})", "intel")
        for name in wanted:
            self._refresh(self._feeds[name])
        return [s for s in self.status() if s.name in wanted]

    def refresh_due(self) -> int:
        """Read every feed whose refresh is due now; how many were read."""
        now = self.clock.now()
        with self._lock:
            due = [f for f in self._feeds.values() if f.next_due is not None and f.next_due <= now]
        for feed in due:
            self._refresh(feed)
        return len(due)

    def seconds_until_due(self) -> float | None:
        """Seconds until the next scheduled read (0 if one is due), None if none is."""
        with self._lock:
            due = [f.next_due for f in self._feeds.values() if f.next_due is not None]
        if not due:
            return None
        return max(0.0, min(due) - self.clock.now())

    def _refresh(self, feed: _Feed) -> None:
        spec = feed.spec
        with feed.loading:  # one read of a feed at a time
            started = self.clock.now()
            try:
                loader: Loader = resolve(FEED_LOADERS, spec.type, "intel feed type")[0]
                result = loader(spec, self._secrets)
                intel = IntelSet(result.indicators)
            except Exception as exc:  # a feed's failure never stops anything
                self._failed(feed, exc, started)
                return
            finished = self.clock.now()
            with self._lock:
                recovered = feed.failures > 0
                feed.intel = intel
                feed.skipped = dict(sorted(result.skipped.items()))
                feed.last_refresh = feed.last_attempt = finished
                feed.last_error = None
                feed.failures = 0
                minutes = spec.refresh_minutes
                scheduled = minutes > 0 and spec.enabled
                feed.next_due = finished + minutes * 60 if scheduled else None
                # A disabled feed read on request shows in the status, never in matches.
                self._sets = tuple(
                    f.intel for f in self._feeds.values() if f.spec.enabled and len(f.intel)
                )
        if recovered:
            _log.info("intel feed %s read again after failures", spec.name)
        _log.info(
            "intel feed %s: %d indicators, %d networks%s",
            spec.name,
            len(intel),
            intel.networks,
            f", skipped {feed.skipped}" if feed.skipped else "",
        )

    def _failed(self, feed: _Feed, exc: Exception, when: float) -> None:
        message = str(exc) if isinstance(exc, FeedError) else f"{type(exc).__name__}: {exc}"
        message = redact(message, self._secrets.values())[:500]
        with self._lock:
            changed = message != feed.last_error
            feed.last_attempt = when
            feed.last_error = message
            feed.failures += 1
            minutes = feed.spec.refresh_minutes
            ceiling = min(minutes * 60, RETRY_MAX_SECONDS) if minutes > 0 else RETRY_MAX_SECONDS
            delay = min(RETRY_SECONDS * 2 ** (feed.failures - 1), max(ceiling, RETRY_SECONDS))
            feed.next_due = when + delay if feed.spec.enabled else None
            kept = len(feed.intel)
        if changed:
            _log.warning(
                "intel feed %s cannot be read (keeping its %d indicators): %s",
                feed.spec.name,
                kept,
                message,
                exc_info=not isinstance(exc, FeedError),
            )
        else:
            _log.debug("intel feed %s still failing: %s", feed.spec.name, message)

    # --- status -----------------------------------------------------------------------
    def status(self) -> list[FeedStatus]:
        """Every feed's state, in configuration order."""
        now = self.clock.now()
        with self._lock:
            feeds = list(self._feeds.values())
            return [
                FeedStatus(
                    name=f.spec.name,
                    type=f.spec.type,
                    enabled=f.spec.enabled,
                    indicators=len(f.intel),
                    networks=f.intel.networks,
                    expired=f.intel.expired(now),
                    skipped=dict(f.skipped),
                    last_refresh=f.last_refresh,
                    last_attempt=f.last_attempt,
                    last_error=f.last_error,
                    failures=f.failures,
                    next_refresh=f.next_due,
                )
                for f in feeds
            ]

    # --- matching ---------------------------------------------------------------------
    def lookup(self, address: str, now: float) -> list[dict[str, Any]]:
        """What the feeds say about one address at ``now`` (every hit, strongest first)."""
        parsed = parse_address(address)
        if parsed is None:
            return []
        with self._lock:
            sets = self._sets
        return [_hit_fact(*hit) for hit in _hits([parsed], sets, now)]

    def enrich(self, incidents: Sequence[Incident], now: float) -> None:
        """Record each incident's intel hits in its facts and raise its severity by the rule.

        Idempotent: enriching an incident again computes from the detector's
        severity, not from the one a previous call raised.
        """
        with self._lock:
            sets = self._sets
        for incident in incidents:
            if not sets and "intel" not in incident.facts:
                continue
            addresses = [a for a in map(parse_address, incident.source_ips) if a is not None]
            hits = _hits(addresses, sets, now) if sets else []
            _apply(incident, hits)


_Hit = tuple[Indicator, Network, Address]


def _hits(addresses: Sequence[Address], sets: Sequence[IntelSet], now: float) -> list[_Hit]:
    """Every active (indicator, network, address) match, strongest first, one per pair."""
    found: dict[tuple[str, str, Address], _Hit] = {}
    for address in dict.fromkeys(addresses):
        for intel in sets:
            for indicator, network in intel.lookup(address):  # longest prefix first
                key = (indicator.feed, indicator.id, address)
                if key not in found and indicator.active(now):
                    found[key] = (indicator, network, address)
    return sorted(
        found.values(),
        key=lambda h: (
            -h[0].confidence,
            -h[1].prefixlen,
            h[0].feed,
            h[0].name,
            h[0].id,
            h[2].version,
            int(h[2]),
        ),
    )


def _hit_fact(indicator: Indicator, network: Network, address: Address) -> dict[str, Any]:
    until = indicator.valid_until
    return {
        "indicator": indicator.name,
        "feed": indicator.feed,
        "source": indicator.source,
        "confidence": indicator.confidence,
        "labels": list(indicator.labels),
        "valid_until": (
            None
            if until is None
            else datetime.fromtimestamp(until, tz=UTC).isoformat(timespec="seconds")[:-6] + "Z"
        ),
        "address": str(address),
        "network": str(network),
        "id": indicator.id,
    }


def _apply(incident: Incident, hits: Sequence[_Hit]) -> None:
    facts = incident.facts
    before = incident.severity
    previous = facts.get("intel_severity")
    if (
        isinstance(previous, dict)
        and previous.get("after") == incident.severity
        and previous.get("before") in SEVERITIES
    ):
        before = str(previous["before"])  # raised by an earlier call: start from the detector's
    for key in ("intel", "intel_not_listed", "intel_severity"):
        facts.pop(key, None)
    if not hits or before not in SEVERITIES:
        incident.severity = before
        return
    after = raised_severity(before, max(h[0].confidence for h in hits))
    facts["intel"] = [_hit_fact(*hit) for hit in hits[:MAX_HITS]]
    if len(hits) > MAX_HITS:
        facts["intel_not_listed"] = len(hits) - MAX_HITS
    facts["intel_severity"] = {"before": before, "after": after}
    incident.severity = after


class IntelRefresher:
    """Reads an enricher's feeds on their schedule, on a background thread.

    ``start()`` returns at once (the first reads happen on the thread: call
    :meth:`Enricher.refresh_now` first when the next lines must already be
    enriched, as a replay's must); ``stop()`` ends the thread (a read in
    progress finishes or times out first, up to ``timeout``).
    """

    def __init__(self, enricher: Enricher, *, idle_seconds: float = 60.0) -> None:
        self.enricher = enricher
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (nothing to do without an enabled feed, or if running)."""
        if self.running or not self.enricher.active:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="intel-refresher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.enricher.refresh_due()
            except Exception:  # a bug must not end refreshing for the process's life
                _log.exception("intel refresh failed")
            wait = self.enricher.seconds_until_due()
            wait = self.idle_seconds if wait is None else min(wait, self.idle_seconds)
            self._stop.wait(max(wait, 0.05))


__all__ = [
    "FEED_LOADERS",
    "MAX_HITS",
    "MEDIUM_CONFIDENCE",
    "RAISE_CONFIDENCE",
    "Enricher",
    "IntelRefresher",
    "raised_severity",
]
