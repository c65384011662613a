"""REST API queries (soc.api): bearer tokens, the request log, intake idempotence, figures.

A token is shown once, when it is made, and only its SHA-256 digest is kept:
looking a token up is looking its digest up, so neither the store nor a timing
difference tells anything about a token that was not presented in full.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from soc.errors import StoreError
from soc.store.sql import (
    SqlStore,
    analyses,
    api_requests,
    api_tokens,
    blocks,
    counters,
    export_outbox,
    incidents,
    intake_alerts,
    playbook_runs,
)

#: Every token starts with this, so a leaked one is easy to recognise (and to scan for).
TOKEN_PREFIX = "soc_"  # noqa: S105 (a prefix, not a secret)
#: Characters of a request path kept in the log.
PATH_KEPT = 500
#: The counters source holding the totals of pruned requests, by status.
PRUNED_SOURCE = "(api)"


@dataclass(slots=True)
class TokenRecord:
    """One API token: its name, scopes and life (never the token itself)."""

    id: int
    name: str
    scopes: list[str]
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(slots=True)
class RequestRecord:
    """One API request as the audit log keeps it."""

    id: int
    at: float
    token_name: str | None
    client: str
    method: str
    path: str
    status: int
    latency_ms: float


def token_digest(token: str) -> str:
    """The SHA-256 hex digest a token is stored as."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        id=int(row.id),
        name=row.name,
        scopes=list(row.scopes),
        created_at=float(row.created_at),
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class ApiLog:
    """The API tables of one store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    # --- tokens ------------------------------------------------------------------------
    def create_token(self, name: str, scopes: Sequence[str], *, now: float) -> str:
        """A new token named ``name`` with ``scopes``; returns the token (shown once)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.writing() as conn:
            taken = conn.execute(
                sa.select(api_tokens.c.id).where(api_tokens.c.name == name)
            ).first()
            if taken is not None:
                raise StoreError(f"a token named {name!r} exists (revoked ones keep their name)")
            conn.execute(
                api_tokens.insert().values(
                    name=name,
                    token_hash=token_digest(token),
                    scopes=sorted(set(scopes)),
                    created_at=now,
                )
            )
        return token

    def lookup(self, token: str) -> TokenRecord | None:
        """The active token ``token`` is, or None (unknown or revoked)."""
        digest = token_digest(token)
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_hash == digest)
            ).first()
        # The row was found by its digest; comparing again in constant time costs nothing
        # and keeps the check independent of how the database compares strings.
        if row is None or not hmac.compare_digest(str(row.token_hash), digest):
            return None
        record = _token(row)
        return record if record.active else None

    def tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, by name."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.name))
            return [_token(row) for row in rows]

    def revoke(self, name: str, *, now: float) -> bool:
        """Revoke the token named ``name``; False when there is no active one."""
        t = api_tokens
        with self.store.writing() as conn:
            updated = conn.execute(
                t.update().where(t.c.name == name, t.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            return bool(updated.rowcount)

    def touch(self, token_id: int, *, now: float) -> None:
        """Record that the token was just used."""
        with self.store.writing() as conn:
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now)
            )

    # --- the request log ---------------------------------------------------------------
    def record_request(
        self,
        *,
        at: float,
        token_name: str | None,
        client: str,
        method: str,
        path: str,
        status: int,
        latency_ms: float,
    ) -> None:
        """Append one request to the log (``path`` without its query string)."""
        with self.store.writing() as conn:
            conn.execute(
                api_requests.insert().values(
                    at=at,
                    token_name=token_name,
                    client=client[:100],
                    method=method[:16],
                    path=path[:PATH_KEPT],
                    status=status,
                    latency_ms=latency_ms,
                )
            )

    def requests(self, *, since: float | None = None, limit: int = 1000) -> list[RequestRecord]:
        """Logged requests, newest first."""
        r = api_requests
        query = sa.select(r).order_by(r.c.at.desc(), r.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(r.c.at >= since)
        with self.store.engine.connect() as conn:
            return [
                RequestRecord(
                    id=int(row.id),
                    at=float(row.at),
                    token_name=row.token_name,
                    client=row.client,
                    method=row.method,
                    path=row.path,
                    status=int(row.status),
                    latency_ms=float(row.latency_ms),
                )
                for row in conn.execute(query)
            ]

    def requests_by_status(self) -> dict[int, int]:
        """How many requests were answered with each status code (pruned ones included)."""
        r = api_requests
        query = sa.select(r.c.status, sa.func.count()).group_by(r.c.status)
        folded = sa.select(counters.c.name, counters.c.value).where(
            counters.c.source == PRUNED_SOURCE
        )
        out: dict[int, int] = {}
        with self.store.engine.connect() as conn:
            for status, n in conn.execute(query):
                out[int(status)] = int(n)
            for name, n in conn.execute(folded):
                code = int(str(name).removeprefix("requests."))
                out[code] = out.get(code, 0) + int(n)
        return out

    def prune(self, *, requests_before: float, alerts_before: float) -> tuple[int, int]:
        """Drop requests logged and alert ids received before the given times.

        The dropped requests are added to running totals by status first, so
        ``requests_by_status`` (a Prometheus counter) never goes down. Returns
        (requests dropped, alert ids dropped).
        """
        r = api_requests
        with self.store.writing() as conn:
            old = conn.execute(
                sa.select(r.c.status, sa.func.count())
                .where(r.c.at < requests_before)
                .group_by(r.c.status)
            ).all()
            for status, n in old:
                name = f"requests.{int(status)}"
                where = (counters.c.source == PRUNED_SOURCE) & (counters.c.name == name)
                updated = conn.execute(
                    counters.update().where(where).values(value=counters.c.value + int(n))
                )
                if updated.rowcount == 0:
                    conn.execute(
                        counters.insert().values(source=PRUNED_SOURCE, name=name, value=int(n))
                    )
            requests_dropped = conn.execute(r.delete().where(r.c.at < requests_before)).rowcount
            alerts_dropped = conn.execute(
                intake_alerts.delete().where(intake_alerts.c.received_at < alerts_before)
            ).rowcount
        return max(0, requests_dropped), max(0, alerts_dropped)

    # --- intake idempotence ------------------------------------------------------------
    def unseen(self, intake: str, alert_ids: Iterable[str]) -> set[str]:
        """The alert ids of ``intake`` not recorded yet."""
        wanted = {_alert_digest(intake, a): a for a in alert_ids}
        seen: set[str] = set()
        digests = list(wanted)
        with self.store.engine.connect() as conn:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                query = sa.select(intake_alerts.c.alert_hash).where(
                    intake_alerts.c.alert_hash.in_(chunk)
                )
                seen.update(conn.execute(query).scalars())
        return {alert for digest, alert in wanted.items() if digest not in seen}

    def record_alerts(self, intake: str, alert_ids: Iterable[str], *, now: float) -> int:
        """Record alert ids as taken in; returns how many were new."""
        rows = [
            {
                "alert_hash": _alert_digest(intake, a),
                "intake": intake,
                "alert_id": a,
                "received_at": now,
            }
            for a in dict.fromkeys(alert_ids)
        ]
        if not rows:
            return 0
        dialect = self.store.engine.dialect.name
        insert: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
            intake_alerts
        )
        added = 0
        with self.store.writing() as conn:
            for start in range(0, len(rows), 500):
                result = conn.execute(
                    insert.on_conflict_do_nothing(index_elements=["alert_hash"]),
                    rows[start : start + 500],
                )
                added += max(0, result.rowcount)
        return added

    def seen_or_record(self, intake: str, alert_id: str, now: float) -> bool:
        """True when the alert was taken in before; else record it and return False."""
        return self.record_alerts(intake, [alert_id], now=now) == 0

    # --- figures for /metrics ------------------------------------------------------------
    def source_counters(self) -> dict[str, dict[str, int]]:
        """Running counters by source, then by name."""
        query = sa.select(counters.c.source, counters.c.name, counters.c.value)
        out: dict[str, dict[str, int]] = {}
        with self.store.engine.connect() as conn:
            for source, name, value in conn.execute(query):
                out.setdefault(str(source), {})[str(name)] = int(value)
        return out

    def incidents_by_kind_severity(self) -> dict[tuple[str, str], int]:
        """Incidents by (kind, severity)."""
        i = incidents
        query = sa.select(i.c.kind, i.c.severity, sa.func.count()).group_by(i.c.kind, i.c.severity)
        with self.store.engine.connect() as conn:
            return {(str(k), str(s)): int(n) for k, s, n in conn.execute(query)}

    def model_usage(self) -> dict[str, dict[str, float]]:
        """By provider: model calls, tokens in and out, cost (reused reports not counted again)."""
        a = analyses
        query = sa.select(
            a.c.provider, a.c.structured, a.c.tokens_in, a.c.tokens_out, a.c.cost_usd
        ).where(sa.not_(a.c.reused))
        out: dict[str, dict[str, float]] = {}
        with self.store.engine.connect() as conn:
            for provider, structured, tokens_in, tokens_out, cost in conn.execute(query):
                row = out.setdefault(
                    str(provider), {"calls": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
                )
                row["calls"] += _model_calls(str(provider), structured)
                row["tokens_in"] += int(tokens_in)
                row["tokens_out"] += int(tokens_out)
                row["cost_usd"] += float(cost)
        return out

    def fallbacks_by_provider(self) -> dict[str, int]:
        """Reports written by a fallback (the chain's first provider failed), by who wrote them."""
        a = analyses
        query = (
            sa.select(a.c.provider, sa.func.count())
            .where(a.c.fallback_reason.is_not(None), a.c.fallback_reason != "")
            .group_by(a.c.provider)
        )
        with self.store.engine.connect() as conn:
            return {str(p): int(n) for p, n in conn.execute(query)}

    def export_failures_by_sink(self) -> dict[str, int]:
        """Undelivered outbox documents whose delivery failed at least once, by sink."""
        o = export_outbox
        query = (
            sa.select(o.c.sink, sa.func.count())
            .where(o.c.delivered_at.is_(None), o.c.attempts > 0)
            .group_by(o.c.sink)
        )
        with self.store.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}

    def playbook_runs_by_status(self) -> dict[str, int]:
        """Playbook runs by status (``running`` while one runs)."""
        p = playbook_runs
        query = sa.select(p.c.status, sa.func.count()).group_by(p.c.status)
        with self.store.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}

    def active_blocks(self) -> int:
        """Blocks in force."""
        query = sa.select(sa.func.count()).select_from(blocks).where(blocks.c.ended_at.is_(None))
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _alert_digest(intake: str, alert_id: str) -> str:
    joined = f"{intake}\x00{alert_id}"
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


def _model_calls(provider: str, structured: Any) -> int:
    # As soc.analyze.worker counts them: the report says, else one unless offline.
    calls = structured.get("model_calls") if isinstance(structured, dict) else None
    if isinstance(calls, int) and not isinstance(calls, bool):
        return calls
    return 0 if provider == "offline" else 1


__all__ = ["TOKEN_PREFIX", "ApiLog", "RequestRecord", "TokenRecord", "token_digest"]
