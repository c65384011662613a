"""Playbooks that run on their own: ``[respond] auto``.

Nothing runs without an analyst's click, unless the operator names a playbook
in ``[respond] auto``. Then, when the engine opens or updates an incident, the
playbook its detection rule recommends runs against it, as the actor ``auto``,
provided that playbook is listed, the incident is still open and its severity
has reached ``auto_min_severity``. Each playbook runs at most once per incident
(a run by ``auto``, or one an analyst enforced, counts). The run asks for
enforcement, so ``[respond] mode``/``modes`` decide, as for a click on
Confirm, whether its steps act or only show their argv; it passes the same
checks (protected addresses, rate limit, TTL caps) and is audited the same way.

The policy recommender never runs anything: only the rules' recommendations do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from soc.events import SEVERITIES
from soc.respond.base import DRY_RUN_RESULT, REFUSED, RespondError

if TYPE_CHECKING:
    from soc.respond.responder import Responder

_log = logging.getLogger(__name__)

#: The actor automatic runs are audited under.
AUTO_ACTOR: Final = "auto"


class AutoQueue:
    """Incidents the engine notified, waiting to be checked for an automatic playbook."""

    def __init__(self, names: Iterable[str], min_severity: str) -> None:
        self.names = frozenset(names)
        self.min_rank = SEVERITIES.index(min_severity)
        self._pending: dict[int, None] = {}
        self._lock = threading.Lock()
        #: Set when something is queued (the responder's worker waits on it).
        self.wake = threading.Event()

    @property
    def enabled(self) -> bool:
        return bool(self.names)

    def notify(self, incident_ids: Iterable[int]) -> None:
        """Queue incidents (thread-safe, returns at once); a no-op when nothing is automatic."""
        if not self.names:
            return
        with self._lock:
            self._pending.update(dict.fromkeys(int(i) for i in incident_ids))
        self.wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def run_pending(self, responder: Responder) -> int:
        """Run the automatic playbooks due for the queued incidents; returns how many ran."""
        with self._lock:
            ids, self._pending = list(self._pending), {}
        ran = 0
        for incident_id in ids:
            try:
                ran += self._run(responder, incident_id)
            except RespondError as exc:
                _log.error("automatic playbook on incident %s refused: %s", incident_id, exc)
            except Exception:  # one incident's failure must not drop the others
                _log.exception("automatic playbook on incident %s failed", incident_id)
        return ran

    def _run(self, responder: Responder, incident_id: int) -> int:
        incident = responder.store.get_incident(incident_id)
        if incident is None or incident.closed:
            return 0
        book = responder.recommend(incident.kind)
        if book is None or book.name not in self.names:
            return 0
        if SEVERITIES.index(incident.severity) < self.min_rank:
            return 0  # it may still get there: a later update is checked again
        for run in responder.store.playbook_runs(incident_id):
            if run.playbook == book.name and (
                run.actor == AUTO_ACTOR or run.status not in (DRY_RUN_RESULT, REFUSED)
            ):
                return 0
        result = responder.run(incident_id, book.name, actor=AUTO_ACTOR, enforce=True)
        _log.warning(
            "automatic playbook %s on incident %s (%s, %s): %s",
            book.name,
            incident_id,
            incident.kind,
            incident.severity,
            result.status,
        )
        return 1


def unknown_auto(names: Iterable[str], loaded: Iterable[str]) -> list[str]:
    """The ``[respond] auto`` names that are not loaded playbooks."""
    known = set(loaded)
    return sorted(name for name in names if name not in known)


__all__ = ["AUTO_ACTOR", "AutoQueue", "unknown_auto"]
