"""What the pages show of response playbooks (soc.respond): plans, results, blocks, the audit.

Plain functions over the runtime's responder, returning text and rows of text the
pages lay out. Every argv is shown as :func:`shlex.join` gives it, so what the
analyst confirms is exactly what runs; attacker-reachable values (targets, user
names, outputs, actors, clients) go through :func:`soc.text.plain` for tables and
:func:`soc.text.visible` for ``st.code``.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from typing import Any, Final

from soc.app.views import when
from soc.respond.base import (
    ENFORCE,
    RespondConfig,
    Step,
    format_duration,
)
from soc.respond.playbooks import Playbook
from soc.store.policy import PolicyFeedback
from soc.store.response import BlockRecord
from soc.text import plain, visible

_log = logging.getLogger(__name__)

#: The policy's answer for one incident: ``(playbook or None, action, probability)``.
Advice = tuple[str | None, str, float]

#: Playbook names the responder writes in the audit log for what no playbook did.
AUDIT_ONLY_PLAYBOOKS: Final = ("(unblocked)", "(expired)", "(restore)")


def recommended(runtime: Any, incident: Any) -> Playbook | None:
    """The playbook the incident kind's rule recommends, when it is loaded."""
    book: Playbook | None = runtime.responder.recommend(str(incident.kind))
    return book


def policy_advice(runtime: Any, incident: Any, *, wait: bool = True) -> Advice | None:
    """The trained policy's recommendation for ``incident``; None without a policy.

    A recommendation only: nothing runs. The policy is loaded on first use
    (:meth:`soc.app.runtime.Runtime.recommender`); ``wait=False``: None while it loads.
    """
    recommender = runtime.recommender(wait=wait)
    if recommender is None:
        return None
    try:
        rec = recommender.recommend(incident)
    except Exception:  # an incident the policy cannot read: no advice, the page goes on
        _log.exception("the policy could not recommend for incident %s", incident.id)
        return None
    return rec.playbook, rec.action, float(rec.probability)


def record_policy_answer(
    runtime: Any,
    incident: Any,
    advice: Advice,
    accepted: bool,
    chosen: str | None,
    actor: str,
) -> int:
    """Store the analyst's answer to ``advice`` (as ``soc policy feedback`` does); its id.

    ``recommended`` is the policy's action; ``chosen`` is the action taken instead
    when rejected (None: not said), the recommended action when accepted.
    """
    from soc.respond.policy.env import features

    _, action, probability = advice
    return PolicyFeedback(runtime.store).record(
        incident_id=int(incident.id or 0),
        at=runtime.clock.now(),
        actor=actor,
        kind=str(incident.kind),
        recommended=action,
        probability=probability,
        accepted=accepted,
        chosen=action if accepted else chosen,
        features=[float(x) for x in features(incident)],
    )


def playbook_names(runtime: Any, first: Playbook | None = None) -> list[str]:
    """The loaded playbooks' names, sorted, with ``first`` (the recommended one) first."""
    names = sorted(runtime.responder.playbooks)
    if first is not None and first.name in names:
        names.remove(first.name)
        names.insert(0, first.name)
    return names


def mode_label(mode: str) -> str:
    """``ENFORCE`` or ``dry run``: how a step or a plan is shown."""
    return "ENFORCE" if mode == ENFORCE else "dry run"


def ttl_text(seconds: int | None) -> str:
    return format_duration(seconds) if seconds is not None else "—"


def argv_text(argv: Sequence[str]) -> str:
    """One argv as a shell would read it (``shlex.join``), invisible characters marked."""
    return visible(shlex.join(argv))


def step_argv(step: Step) -> list[str]:
    """Every command the step runs (or the webhook it posts), one line each."""
    return [argv_text(argv) for argv in step.argv()]


def step_note(step: Step) -> str:
    """Why a step will not act (refused, unchanged), else what it does; one line of text."""
    if step.refused is not None:
        return f"refused: {step.refused}"
    if step.unchanged is not None:
        return f"unchanged: {step.unchanged}"
    return step.describe


def block_rows(
    runtime: Any, now: float, records: Sequence[BlockRecord] | None = None
) -> list[dict[str, str]]:
    """One row of text per block in force (or per one of ``records``), with its time left."""
    return [
        {
            "network": block.network,
            "backend": block.backend,
            "time left": format_duration(block.expires_at - now),
            "expires at": when(block.expires_at),
            "incident": "—" if block.incident_id is None else f"#{block.incident_id}",
            "actor": plain(block.actor, 80),
            "playbook": plain(block.playbook, 80),
        }
        for block in (runtime.responder.blocks() if records is None else records)
    ]


def audit_rows(
    runtime: Any,
    *,
    incident_id: int | None = None,
    actor: str | None = None,
    playbook: str | None = None,
    result: str | None = None,
    mode: str | None = None,
    limit: int = 200,
) -> list[dict[str, str]]:
    """The audit log, newest first and filtered, as rows of text."""
    records = runtime.responder.log.audit_log(
        incident_id=incident_id,
        actor=actor,
        playbook=playbook,
        result=result,
        mode=mode,
        limit=limit,
    )
    return [
        {
            "at": when(r.at),
            "incident": "—" if r.incident_id is None else f"#{r.incident_id}",
            "actor": plain(r.actor, 80),
            "client": plain(r.client, 60),
            "playbook": plain(r.playbook, 80),
            "step": str(r.step),
            "action": plain(r.action, 40),
            "backend": plain(r.backend, 40),
            "target": plain(r.target, 120),
            "mode": plain(r.mode, 20),
            "result": plain(r.result, 20),
            "exit status": "—" if r.exit_status is None else str(r.exit_status),
            "argv": plain("; ".join(shlex.join(a) for a in r.argv or []), 2000),
            "output": plain(r.output, 300),
        }
        for r in records
    ]


def audit_playbooks(runtime: Any) -> list[str]:
    """Playbook names to filter the audit log by: the loaded ones, then the responder's own."""
    return [*sorted(runtime.responder.playbooks), *AUDIT_ONLY_PLAYBOOKS]


def playbook_rows(runtime: Any) -> list[dict[str, str]]:
    """One row of text per loaded playbook: name, description, its steps and TTL."""
    return [
        {
            "playbook": book.name,
            "description": plain(book.description, 300),
            "steps": ", ".join(step.action for step in book.steps),
            "TTL": format_duration(book.ttl),
        }
        for _, book in sorted(runtime.responder.playbooks.items())
    ]


def mode_summary(config: RespondConfig) -> str:
    """What enforcement is on: the default mode, the firewall's and every override."""
    default = (
        "enforce: confirmed steps change this machine"
        if config.mode == ENFORCE
        else "dry run: confirmed steps are shown and audited, nothing is run"
    )
    firewall = config.mode_for(config.firewall)
    parts = [f"Mode: {default}", f"firewall {config.firewall}: {mode_label(firewall).lower()}"]
    parts += [
        f"{name}: {mode_label(config.mode_for(name)).lower()}"
        for name in sorted(config.modes)
        if name != config.firewall
    ]
    return " · ".join(parts)


__all__ = [
    "AUDIT_ONLY_PLAYBOOKS",
    "Advice",
    "argv_text",
    "audit_playbooks",
    "audit_rows",
    "block_rows",
    "mode_label",
    "mode_summary",
    "playbook_names",
    "playbook_rows",
    "policy_advice",
    "recommended",
    "record_policy_answer",
    "step_argv",
    "step_note",
    "ttl_text",
]
