"""Threat intel: STIX 2.1 bundles, TAXII 2.1 collections and blocklists, matched to incidents.

``[[intel]]`` feeds (:class:`IntelSpec`) are read into one :class:`IntelSet` each
(fast lookup of an address among every listed network); :class:`Enricher` adds
the hits to incidents' facts and raises their severity by a documented rule
(:mod:`soc.enrich.enricher`); :class:`IntelRefresher` re-reads the feeds on
their schedule. The STIX and TAXII libraries are imported only when a feed of
that type is read, so importing this package stays cheap.
"""

from __future__ import annotations

from soc.enrich.base import (
    FEED_TYPES,
    INTEL_KEYS,
    FeedError,
    FeedStatus,
    Indicator,
    IntelSpec,
    LoadResult,
)
from soc.enrich.enricher import (
    MAX_HITS,
    MEDIUM_CONFIDENCE,
    RAISE_CONFIDENCE,
    Enricher,
    IntelRefresher,
    raised_severity,
)
from soc.enrich.intelset import IntelSet

__all__ = [
    "FEED_TYPES",
    "INTEL_KEYS",
    "MAX_HITS",
    "MEDIUM_CONFIDENCE",
    "RAISE_CONFIDENCE",
    "Enricher",
    "FeedError",
    "FeedStatus",
    "Indicator",
    "IntelRefresher",
    "IntelSet",
    "IntelSpec",
    "LoadResult",
    "raised_severity",
]
