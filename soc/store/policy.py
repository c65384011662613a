"""Policy feedback queries (soc.respond.policy): the analyst's answer to each recommendation.

One row per answer: the incident, who answered and when, the incident's kind,
the action the policy recommended with its probability, whether the analyst
accepted it, what was chosen instead (an action name, or None for "nothing"),
and the features the policy saw. ``soc policy train --feedback`` reads them
back (:func:`soc.respond.policy.feedback.adjusted_config`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from soc.store.sql import SqlStore, policy_feedback


@dataclass(slots=True)
class FeedbackRecord:
    """One answer to a recommendation."""

    id: int
    incident_id: int
    at: float
    actor: str
    kind: str
    recommended: str
    probability: float
    accepted: bool
    chosen: str | None
    features: list[float]


class PolicyFeedback:
    """The policy feedback table of one store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def record(
        self,
        *,
        incident_id: int,
        at: float,
        actor: str,
        kind: str,
        recommended: str,
        probability: float,
        accepted: bool,
        chosen: str | None = None,
        features: Sequence[float] = (),
    ) -> int:
        """Store one answer; returns its id. ``chosen`` defaults to ``recommended`` if accepted."""
        if accepted and chosen is None:
            chosen = recommended
        with self.store.writing() as conn:
            return int(
                conn.execute(
                    policy_feedback.insert()
                    .values(
                        incident_id=incident_id,
                        at=at,
                        actor=_text(actor, 200),
                        kind=_text(kind, 100),
                        recommended=_text(recommended, 100),
                        probability=float(probability),
                        accepted=bool(accepted),
                        chosen=None if chosen is None else _text(chosen, 100),
                        features=[float(x) for x in features],
                    )
                    .returning(policy_feedback.c.id)
                ).scalar_one()
            )

    def list(
        self,
        *,
        incident_id: int | None = None,
        kind: str | None = None,
        accepted: bool | None = None,
        since: float | None = None,
        limit: int | None = 1000,
    ) -> list[FeedbackRecord]:
        """Answers, newest first, filtered by any of the arguments (``limit=None``: all)."""
        f = policy_feedback
        query = sa.select(f).order_by(f.c.at.desc(), f.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        for column, value in ((f.c.incident_id, incident_id), (f.c.kind, kind)):
            if value is not None:
                query = query.where(column == value)
        if accepted is not None:
            query = query.where(f.c.accepted.is_(accepted))
        if since is not None:
            query = query.where(f.c.at >= since)
        with self.store.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query)]


def _record(row: Any) -> FeedbackRecord:
    return FeedbackRecord(
        id=int(row.id),
        incident_id=int(row.incident_id),
        at=float(row.at),
        actor=row.actor,
        kind=row.kind,
        recommended=row.recommended,
        probability=float(row.probability),
        accepted=bool(row.accepted),
        chosen=row.chosen,
        features=[float(x) for x in row.features or []],
    )


def _text(value: str, limit: int) -> str:
    text = str(value).replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["FeedbackRecord", "PolicyFeedback"]
