"""Detection: rules over micro-batches of events; campaigns become incidents.

:class:`Detector` runs every rule of :class:`DetectConfig` (brute force, password
spray, slow and distributed brute force, credential compromise, web scan, web
authentication brute force, port scan) over batches of events in event time,
keeps one incident per campaign, updated while the campaign goes on, and honours
an allow-list (:class:`AllowList`; :func:`discover_host_addresses` finds this
machine's own addresses).

The detector itself (numpy, pandas) is imported on first use, so that reading
the configuration does not load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soc.detect.allow import AllowList, discover_host_addresses, parse_networks
from soc.detect.base import DetectConfig, DetectorStats, severity
from soc.registry import lazy_attributes

if TYPE_CHECKING:
    from soc.detect.detector import FAMILIES, FAMILY_OF_KIND, USERS_FAMILY, Detector

__getattr__ = lazy_attributes(
    __name__,
    dict.fromkeys(
        ("FAMILIES", "FAMILY_OF_KIND", "USERS_FAMILY", "Detector"), "soc.detect.detector"
    ),
)


__all__ = [
    "FAMILIES",
    "FAMILY_OF_KIND",
    "USERS_FAMILY",
    "AllowList",
    "DetectConfig",
    "Detector",
    "DetectorStats",
    "discover_host_addresses",
    "parse_networks",
    "severity",
]
