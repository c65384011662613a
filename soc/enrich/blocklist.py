"""Plain blocklists: one address or CIDR per line, from a local file or an http(s) URL.

Blank lines and lines starting with ``#`` or ``;`` are comments; after an
address, anything following whitespace is a comment too (``# why``,
``; SBL123``, a count), so FireHOL, Spamhaus DROP and plain ``ip`` lists load
as they are. A line that is not an address (or is broader than a /8, a /16 in
IPv6) is counted by reason and the rest are loaded. The whole list is one
indicator (named after the feed, with the feed's ``confidence`` and
``labels``) listing every network.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from soc import __version__
from soc.enrich.base import FeedError, Indicator, IntelSpec, LoadResult, Network, parse_network
from soc.redact import SecretLike, redact_url

#: The largest list read (a bigger download is refused, the previous list stays).
MAX_BYTES: Final = 64 * 1024 * 1024


def load_blocklist(spec: IntelSpec, secrets: Mapping[str, SecretLike]) -> LoadResult:
    """Read the list from ``path`` or ``url`` and parse it."""
    del secrets  # public lists: no credentials
    text = _download(spec) if spec.url else _read(spec.path)
    return parse_blocklist(text.splitlines(), spec)


def parse_blocklist(lines: Iterable[str], spec: IntelSpec) -> LoadResult:
    """The list's networks as one indicator, and the lines left out by reason."""
    result = LoadResult()
    skipped: Counter[str] = result.skipped
    networks: dict[Network, None] = {}
    for line in lines:
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        network, reason = parse_network(text.split(maxsplit=1)[0])
        if network is None:
            skipped[reason or "not an address"] += 1
        elif network in networks:
            skipped["duplicate"] += 1
        else:
            networks[network] = None
    if networks:
        result.indicators.append(
            Indicator(
                id=f"blocklist:{spec.name}",
                name=f"{spec.name} blocklist",
                feed=spec.name,
                source=spec.name,
                confidence=spec.confidence,
                labels=tuple(spec.labels),
                networks=tuple(networks),
            )
        )
    return result


def _read(path: str) -> str:
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FeedError(f"cannot read: {exc.strerror or exc}", where=path) from None
    if len(data) > MAX_BYTES:
        raise FeedError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB", where=path)
    return data.decode("utf-8", errors="replace")


def _download(spec: IntelSpec) -> str:
    handlers: list[urllib.request.BaseHandler] = []
    if spec.url.lower().startswith("https:"):
        context = ssl.create_default_context(cafile=spec.ca_certs or None)
        if not spec.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    where = redact_url(spec.url)
    # The scheme was checked to be http or https when the config was built.
    request = urllib.request.Request(  # noqa: S310
        spec.url, headers={"User-Agent": f"soc-command-center/{__version__}"}
    )
    try:
        with opener.open(request, timeout=spec.timeout) as response:
            data: bytes = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FeedError(f"HTTP {exc.code} {exc.reason}", where=where) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise FeedError(f"cannot download: {reason}", where=where) from None
    if len(data) > MAX_BYTES:
        raise FeedError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB", where=where)
    return data.decode("utf-8", errors="replace")


__all__ = ["MAX_BYTES", "load_blocklist", "parse_blocklist"]
