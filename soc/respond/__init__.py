"""One-click response: playbooks of actions, firewall backends, dry-run, audit, expiring blocks.

See :mod:`soc.respond.responder` for how a run is planned, confirmed, executed
and audited, :mod:`soc.respond.playbooks` for the playbook files, and
:mod:`soc.respond.backends` for what each firewall runs.

The responder, its playbooks and targets (and the store they write to) are
imported on first use, so that reading the configuration does not load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soc.registry import lazy_attributes
from soc.respond.base import (
    DRY_RUN,
    ENFORCE,
    Plan,
    RespondConfig,
    RespondError,
    RunResult,
    Step,
    StepResult,
)

if TYPE_CHECKING:
    from soc.respond.playbooks import Playbook, load_playbooks
    from soc.respond.responder import Responder
    from soc.respond.targets import Protected

__getattr__ = lazy_attributes(
    __name__,
    {
        "Playbook": "soc.respond.playbooks",
        "load_playbooks": "soc.respond.playbooks",
        "Responder": "soc.respond.responder",
        "Protected": "soc.respond.targets",
    },
)


__all__ = [
    "DRY_RUN",
    "ENFORCE",
    "Plan",
    "Playbook",
    "Protected",
    "RespondConfig",
    "RespondError",
    "Responder",
    "RunResult",
    "Step",
    "StepResult",
    "load_playbooks",
]
