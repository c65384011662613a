"""One-click response: playbooks of actions, firewall backends, dry-run, audit, expiring blocks.

See :mod:`soc.respond.responder` for how a run is planned, confirmed, executed
and audited, :mod:`soc.respond.playbooks` for the playbook files, and
:mod:`soc.respond.backends` for what each firewall runs.
"""

from __future__ import annotations

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
from soc.respond.playbooks import Playbook, load_playbooks
from soc.respond.responder import Responder
from soc.respond.targets import Protected

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
