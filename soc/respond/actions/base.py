"""What an action is, and the context it plans in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from soc.events import Incident
from soc.respond.backends import Firewall
from soc.respond.base import DRY_RUN, ENFORCE, Mode, RespondConfig, Step
from soc.respond.targets import Protected

if TYPE_CHECKING:
    from soc.store.response import ResponseLog


@dataclass(slots=True)
class Context:
    """Everything an action may read while planning one playbook against one incident.

    ``requested``: the mode the caller asked for; a step enforces only when it was
    asked for *and* its backend or action is configured to (:meth:`mode`).
    ``block_budget``: new blocks still allowed this hour (planning spends it).
    ``needs_setup``: the firewall has not been set up by this process yet.
    """

    incident: Incident
    config: RespondConfig
    log: ResponseLog
    store: Any
    firewall: Firewall
    protected: Protected
    now: float
    actor: str
    client: str
    playbook: str
    ttl: int
    requested: Mode
    block_budget: int
    needs_setup: bool
    exports: list[str] = field(default_factory=list)
    on_block: Callable[[str], None] | None = None
    #: Queue incident ``id``'s alert for the named export sinks; returns what it did.
    export_alert: Callable[[int, list[str]], str] | None = None

    def mode(self, name: str) -> Mode:
        """``enforce`` when asked for and configured for ``name`` (a backend or action)."""
        if self.requested == ENFORCE and self.config.mode_for(name) == ENFORCE:
            return ENFORCE
        return DRY_RUN


class Action(Protocol):
    """A playbook action: its name, the parameters a step may give it, and its planner."""

    name: str
    #: Parameter name → the Python type a playbook must give it.
    params: Mapping[str, type | tuple[type, ...]]

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ValueError when a step's parameters cannot work (at playbook load)."""
        ...

    def plan(self, ctx: Context, params: Mapping[str, Any]) -> list[Step]:
        """The steps this action would take against ``ctx.incident`` (index set by the caller)."""
        ...


__all__ = ["Action", "Context"]
