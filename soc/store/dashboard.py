"""The command center's read-only queries: tiles, time ranges and the what-if panel.

Every query here aggregates in the database (``GROUP BY``, ``COUNT``, ``SUM``) and
returns at most a page of rows. :mod:`soc.app.views` lays their results out; it
holds no SQL of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from soc.events import BRUTE_FORCE, SEVERITIES
from soc.store.sql import SqlStore, analyses, incidents, same_window, window_aggregates
from soc.store.sql import window_kinds as kinds_table


def latest_window_start(store: SqlStore) -> float | None:
    """The start of the newest stored window (event time), or None for an empty store."""
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(window_aggregates.c.window_start))).scalar()
    return None if value is None else float(value)


@dataclass(slots=True)
class AnalysisTotals:
    """Stored analyses, summed by the database."""

    analyses: int = 0
    incidents_analysed: int = 0
    model_analyses: int = 0  # written by a model (not the offline analyst, not reused)
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    by_provider: dict[str, int] = field(default_factory=dict)

    @property
    def mean_model_cost(self) -> float:
        """Mean estimated dollars per model analysis (0 when none is stored)."""
        return self.cost_usd / self.model_analyses if self.model_analyses else 0.0


def analysis_totals(store: SqlStore) -> AnalysisTotals:
    """Analyses, cost and tokens over the whole store, per provider."""
    a = analyses
    query = sa.select(
        a.c.provider,
        a.c.reused,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(a.c.cost_usd), 0.0),
        sa.func.coalesce(sa.func.sum(a.c.tokens_in), 0),
        sa.func.coalesce(sa.func.sum(a.c.tokens_out), 0),
    ).group_by(a.c.provider, a.c.reused)
    totals = AnalysisTotals()
    with store.engine.connect() as conn:
        for provider, reused, count, cost, tokens_in, tokens_out in conn.execute(query):
            totals.analyses += int(count)
            totals.cost_usd += float(cost)
            totals.tokens_in += int(tokens_in)
            totals.tokens_out += int(tokens_out)
            totals.by_provider[provider] = totals.by_provider.get(provider, 0) + int(count)
            if provider != "offline" and not reused:
                totals.model_analyses += int(count)
        totals.incidents_analysed = int(
            conn.execute(sa.select(sa.func.count(sa.distinct(a.c.incident_id)))).scalar_one()
        )
    return totals


def keys_failing(store: SqlStore, since: float, key_types: Sequence[str]) -> int:
    """Distinct keys of ``key_types`` with a failed attempt in windows from ``since``."""
    w = window_aggregates
    query = sa.select(sa.func.count(sa.distinct(w.c.key_hash))).where(
        w.c.window_start >= since, w.c.key_type.in_(list(key_types)), w.c.failures > 0
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def worst_severity_by_key(store: SqlStore, keys: Sequence[str]) -> dict[str, str]:
    """The highest severity of any incident keyed by each of ``keys`` (one query).

    A stored severity this version does not know counts as ``"none"``.
    """
    if not keys:
        return {}
    i = incidents
    query = sa.select(i.c.key, i.c.severity).where(i.c.key.in_(list(keys))).distinct()
    worst: dict[str, str] = {}
    with store.engine.connect() as conn:
        for key, severity in conn.execute(query):
            rank = SEVERITIES.index(severity) if severity in SEVERITIES else -1
            known = worst.get(key)
            if known is None or rank > SEVERITIES.index(known):
                worst[key] = severity if rank >= 0 else "none"
    return worst


@dataclass(slots=True)
class ThresholdCounts:
    """What the stored history says about a candidate brute-force threshold."""

    incidents: int  # every stored incident
    brute_force: int  # stored brute-force incidents
    brute_force_kept: int  # of which the peak failures in one window reach the candidate
    #: Labelled brute-force incidents below the candidate, newest first:
    #: (id, key, status, severity, peak).
    missed_labelled: list[tuple[Any, ...]]
    #: Addresses without a login incident whose window peak reaches it.
    added: int
    added_keys: list[tuple[str, int]]  # (address, peak), highest first


def _peak(store: SqlStore) -> sa.ColumnElement[Any]:
    """``facts.peak_failures_in_window`` as an integer, in the store's SQL dialect."""
    facts = incidents.c.facts
    if store.engine.dialect.name == "sqlite":
        value: sa.ColumnElement[Any] = sa.func.json_extract(facts, "$.peak_failures_in_window")
    else:
        value = sa.func.json_extract_path_text(sa.cast(facts, sa.JSON), "peak_failures_in_window")
    return sa.cast(sa.func.coalesce(value, 0), sa.Integer)


def threshold_counts(
    store: SqlStore,
    candidate: int,
    *,
    failure_kinds: Sequence[str],
    login_kinds: Sequence[str],
    labelled: Sequence[str],
    limit: int,
) -> ThresholdCounts:
    """Stored incidents and window peaks against ``candidate`` (see ``views.what_if``).

    A window's brute-force failures are its failed attempts, at most its events of
    ``failure_kinds`` (web and firewall failures are other rules'). An address with
    an incident of ``login_kinds`` already would only see that incident change, so
    it is not counted as added. ``labelled``: the statuses of analyst verdicts.
    """
    i = incidents
    w = window_aggregates
    k = kinds_table
    peak = _peak(store)
    is_bf = i.c.kind == BRUTE_FORCE
    with store.engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(i)).scalar_one())
        bf_total, bf_kept = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((peak >= candidate, 1), else_=0)), 0),
            ).where(is_bf)
        ).one()
        missed = conn.execute(
            sa.select(i.c.id, i.c.key, i.c.status, i.c.severity, peak.label("peak"))
            .where(is_bf, peak < candidate, i.c.status.in_(list(labelled)))
            .order_by(i.c.last_seen.desc())
            .limit(limit)
        ).all()
        kind_events = sa.func.sum(k.c.count)
        per_window = (
            sa.select(
                w.c.key,
                sa.case((w.c.failures < kind_events, w.c.failures), else_=kind_events).label(
                    "peak"
                ),
            )
            .select_from(w.join(k, same_window))
            .where(
                w.c.key_type == "ip",
                k.c.kind.in_(list(failure_kinds)),
                w.c.key.not_in(
                    sa.select(i.c.key).where(i.c.kind.in_(list(login_kinds))).scalar_subquery()
                ),
            )
            .group_by(w.c.id, w.c.key, w.c.failures)
            .subquery()
        )
        peaks = (
            sa.select(per_window.c.key, sa.func.max(per_window.c.peak).label("peak"))
            .group_by(per_window.c.key)
            .having(sa.func.max(per_window.c.peak) >= candidate)
            .subquery()
        )
        added = int(conn.execute(sa.select(sa.func.count()).select_from(peaks)).scalar_one())
        added_keys = conn.execute(
            sa.select(peaks.c.key, peaks.c.peak)
            .order_by(peaks.c.peak.desc(), peaks.c.key)
            .limit(limit)
        ).all()
    return ThresholdCounts(
        incidents=total,
        brute_force=int(bf_total),
        brute_force_kept=int(bf_kept),
        missed_labelled=[tuple(row) for row in missed],
        added=added,
        added_keys=[(str(row[0]), int(row[1])) for row in added_keys],
    )


__all__ = [
    "AnalysisTotals",
    "ThresholdCounts",
    "analysis_totals",
    "keys_failing",
    "latest_window_start",
    "threshold_counts",
    "worst_severity_by_key",
]
