"""Stored analyst feedback → the simulator's priors (``soc policy train --feedback``).

Kept deliberately simple: feedback only moves the simulator's share of false
alarms per incident kind. Each answer is read as a vote on whether the incident
was an attack: when the analyst's final choice (the recommendation if accepted,
else what was chosen instead) is ``ignore`` or ``monitor`` (or no playbook, or
``notify-team``), it is a vote for "false alarm"; any blocking or containing
choice is a vote for "attack". The new rate is the prior blended with the
votes, the prior counting as :data:`PRIOR_WEIGHT` answers::

    rate(kind) = (prior(kind) * PRIOR_WEIGHT + false_alarm_votes) / (PRIOR_WEIGHT + answers)

so a handful of answers nudge the simulator and hundreds dominate it. A policy
trained on the adjusted simulator blocks less on kinds the team keeps calling
false alarms, and more on kinds it keeps confirming. Rewards and the attacker
models are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Final

from soc.respond.policy.env import ACTIONS, IGNORE, MONITOR, PLAYBOOK_ACTIONS, EnvConfig
from soc.store.policy import FeedbackRecord

#: How many answers the simulator's prior counts for.
PRIOR_WEIGHT: Final = 20.0
_BENIGN: Final = frozenset({IGNORE, MONITOR})


def final_action(record: FeedbackRecord) -> str | None:
    """The action that the analyst settled on (an action name), or None if unreadable."""
    choice = record.recommended if record.accepted else record.chosen
    if choice is None or choice in ("", "none"):
        return IGNORE
    if choice in ACTIONS:
        return choice
    return PLAYBOOK_ACTIONS.get(choice)


def adjusted_config(
    config: EnvConfig, records: Iterable[FeedbackRecord]
) -> tuple[EnvConfig, dict[str, Any]]:
    """``config`` with false-alarm rates moved by the answers, and a summary of what moved."""
    votes: dict[str, list[int]] = {}  # kind → [false alarm votes, answers]
    skipped = 0
    for record in records:
        action = final_action(record)
        if action is None or record.kind not in config.false_alarms:
            skipped += 1
            continue
        tally = votes.setdefault(record.kind, [0, 0])
        tally[0] += action in _BENIGN
        tally[1] += 1
    rates = dict(config.false_alarms)
    for kind, (benign, answers) in votes.items():
        prior = config.false_alarm(kind)
        rates[kind] = (prior * PRIOR_WEIGHT + benign) / (PRIOR_WEIGHT + answers)
    summary = {
        "answers": sum(n for _, n in votes.values()),
        "skipped": skipped,
        "by_kind": {k: {"false_alarm_votes": b, "answers": n} for k, (b, n) in votes.items()},
        "false_alarms": {k: round(rates[k], 4) for k in votes},
    }
    return replace(config, false_alarms=rates), summary


__all__ = ["PRIOR_WEIGHT", "adjusted_config", "final_action"]
