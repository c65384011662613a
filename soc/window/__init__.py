"""Windows: events grouped per key (address, IPv6 network, targeted user) in 15-second windows.

:class:`Windower` aggregates micro-batches of events with pandas into
:class:`~soc.events.WindowStats` rows, one per key per window, and hands over the
windows event time has closed (for the aggregates table and the charts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soc.window.base import (
    KEY_HOST,
    KEY_IP,
    KEY_IPV6_NET,
    KEY_TYPES,
    KEY_USER,
    WindowConfig,
    WindowerStats,
)

if TYPE_CHECKING:
    from soc.window.windower import Windower


def __getattr__(name: str) -> Any:
    # The windower (numpy, pandas) is imported on first use: reading the
    # configuration does not load them.
    if name == "Windower":
        from soc.window.windower import Windower

        return Windower
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KEY_HOST",
    "KEY_IP",
    "KEY_IPV6_NET",
    "KEY_TYPES",
    "KEY_USER",
    "WindowConfig",
    "Windower",
    "WindowerStats",
]
