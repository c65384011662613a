"""Port scan: firewall drops from one source to many destination ports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from soc.detect.rules.base import NET, Params, Rule, Settings, param
from soc.errors import ConfigError
from soc.events import PORT_SCAN

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView


@dataclass(frozen=True, slots=True)
class PortScanParams(Params):
    """``[detect]`` keys of the port-scan rule."""

    port_scan_ports: int = param(
        15, "distinct destination ports in firewall drops from one key within a campaign"
    )

    def check(self, settings: Settings) -> None:
        if self.port_scan_ports > settings.max_distinct:
            raise ConfigError("must be at most max_distinct", where="port_scan_ports")


def hits(view: BatchView, params: PortScanParams) -> np.ndarray:
    """Where the campaign's distinct dropped ports reach ``port_scan_ports``."""
    return view.net & (view.distinct() >= params.port_scan_ports)


RULE: Final = Rule(
    name=PORT_SCAN,
    family=NET,
    summary="at least `port_scan_ports` distinct destination ports in firewall drops "
    "from one key within a campaign",
    technique=("T1046", "Network Service Discovery"),
    severity="low",
    actions=(
        "{block}",
        "Confirm that only intended services listen on the scanned ports.",
    ),
    params=PortScanParams,
    hits=hits,
)
