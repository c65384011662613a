"""Response queries (soc.respond): playbook runs, the audit log, and blocks with their expiry.

A block lives here from the moment the firewall accepted it until it is lifted
(expired, unblocked by hand, or by a playbook): ``ended_at`` is null while it is
in force. The responder's expiry worker and its start-up restore read it, so a
block's expiry survives any restart of the program or the machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from soc.store.sql import SqlStore, blocks, playbook_runs, response_audit

#: Characters of a command's output kept in the audit log.
OUTPUT_EXCERPT = 2000


@dataclass(slots=True)
class BlockRecord:
    """One block: the network, the backend that holds it, and when it ends."""

    id: int
    network: str
    backend: str
    created_at: float
    expires_at: float
    incident_id: int | None
    playbook: str
    actor: str
    ended_at: float | None
    ended_by: str | None
    end_reason: str | None


@dataclass(slots=True)
class AuditRecord:
    """One audited step: who ran what, against which incident, how it ended."""

    id: int
    run_id: int | None
    incident_id: int | None
    at: float
    actor: str
    client: str
    playbook: str
    step: int
    action: str
    backend: str
    target: str
    argv: list[list[str]]
    mode: str
    result: str
    exit_status: int | None
    output: str


def _block(row: Any) -> BlockRecord:
    return BlockRecord(
        id=int(row.id),
        network=row.network,
        backend=row.backend,
        created_at=float(row.created_at),
        expires_at=float(row.expires_at),
        incident_id=row.incident_id,
        playbook=row.playbook,
        actor=row.actor,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        end_reason=row.end_reason,
    )


class ResponseLog:
    """The response tables of one store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    # --- runs ------------------------------------------------------------------------
    def start_run(
        self, incident_id: int, playbook: str, *, actor: str, mode: str, now: float
    ) -> int:
        """A new playbook run (status ``running``); returns its id."""
        with self.store.writing() as conn:
            return int(
                conn.execute(
                    playbook_runs.insert()
                    .values(
                        incident_id=incident_id,
                        playbook=playbook,
                        started_at=now,
                        status="running",
                        output={"mode": mode},
                        actor=actor,
                    )
                    .returning(playbook_runs.c.id)
                ).scalar_one()
            )

    def finish_run(self, run_id: int, *, status: str, summary: dict[str, Any], now: float) -> None:
        """Record how a run ended (``ok``, ``dry_run``, ``partial``, ``failed``, ``refused``)."""
        self.store.finish_playbook_run(run_id, finished_at=now, status=status, output=summary)

    def audit(
        self,
        *,
        at: float,
        actor: str,
        client: str,
        playbook: str,
        step: int,
        action: str,
        backend: str,
        target: str,
        argv: Sequence[Sequence[str]],
        mode: str,
        result: str,
        exit_status: int | None,
        output: str,
        run_id: int | None = None,
        incident_id: int | None = None,
    ) -> int:
        """Append one step to the audit log; returns its id."""
        with self.store.writing() as conn:
            return int(
                conn.execute(
                    response_audit.insert()
                    .values(
                        run_id=run_id,
                        incident_id=incident_id,
                        at=at,
                        actor=_text(actor, 200),
                        client=_text(client, 100),
                        playbook=_text(playbook, 200),
                        step=step,
                        action=action,
                        backend=backend,
                        target=_text(target, 200),
                        argv=[list(a) for a in argv],
                        mode=mode,
                        result=result,
                        exit_status=exit_status,
                        output=_text(output, OUTPUT_EXCERPT),
                    )
                    .returning(response_audit.c.id)
                ).scalar_one()
            )

    def audit_log(
        self,
        *,
        incident_id: int | None = None,
        actor: str | None = None,
        playbook: str | None = None,
        result: str | None = None,
        mode: str | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[AuditRecord]:
        """Audited steps, newest first, filtered by any of the arguments."""
        a = response_audit
        query = sa.select(a).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)
        for column, value in (
            (a.c.incident_id, incident_id),
            (a.c.actor, actor),
            (a.c.playbook, playbook),
            (a.c.result, result),
            (a.c.mode, mode),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(a.c.at >= since)
        with self.store.engine.connect() as conn:
            return [
                AuditRecord(
                    id=int(r.id),
                    run_id=r.run_id,
                    incident_id=r.incident_id,
                    at=float(r.at),
                    actor=r.actor,
                    client=r.client,
                    playbook=r.playbook,
                    step=int(r.step),
                    action=r.action,
                    backend=r.backend,
                    target=r.target,
                    argv=r.argv,
                    mode=r.mode,
                    result=r.result,
                    exit_status=r.exit_status,
                    output=r.output,
                )
                for r in conn.execute(query)
            ]

    def audit_actors(self) -> list[str]:
        """Every actor in the audit log (for a filter), sorted."""
        with self.store.engine.connect() as conn:
            query = sa.select(response_audit.c.actor).distinct().order_by(response_audit.c.actor)
            return [str(v) for v in conn.execute(query).scalars()]

    # --- blocks ----------------------------------------------------------------------
    def active_blocks(self, *, backend: str | None = None) -> list[BlockRecord]:
        """Blocks in force (not ended), soonest expiry first."""
        query = sa.select(blocks).where(blocks.c.ended_at.is_(None))
        if backend is not None:
            query = query.where(blocks.c.backend == backend)
        with self.store.engine.connect() as conn:
            return [
                _block(r) for r in conn.execute(query.order_by(blocks.c.expires_at, blocks.c.id))
            ]

    def block_history(self, limit: int = 1000) -> list[BlockRecord]:
        """Every block, lifted ones included, oldest first (the latest ``limit``)."""
        query = sa.select(blocks).order_by(blocks.c.id.desc()).limit(limit)
        with self.store.engine.connect() as conn:
            return [_block(r) for r in reversed(conn.execute(query).all())]

    def active_block(self, network: str, backend: str) -> BlockRecord | None:
        """The block in force on ``network`` in ``backend``, if any."""
        query = sa.select(blocks).where(
            blocks.c.network == network, blocks.c.backend == backend, blocks.c.ended_at.is_(None)
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query.order_by(blocks.c.id.desc())).first()
        return None if row is None else _block(row)

    def due_blocks(self, now: float) -> list[BlockRecord]:
        """Blocks in force whose expiry has come."""
        query = sa.select(blocks).where(blocks.c.ended_at.is_(None), blocks.c.expires_at <= now)
        with self.store.engine.connect() as conn:
            return [
                _block(r) for r in conn.execute(query.order_by(blocks.c.expires_at, blocks.c.id))
            ]

    def blocks_since(self, since: float) -> int:
        """How many blocks were placed since ``since`` (the hourly limit counts these)."""
        query = sa.select(sa.func.count()).select_from(blocks).where(blocks.c.created_at >= since)
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def record_block(
        self,
        network: str,
        backend: str,
        *,
        expires_at: float,
        now: float,
        incident_id: int | None,
        playbook: str,
        actor: str,
    ) -> BlockRecord:
        """A block now in force: a new row, or the one in force with the later expiry kept."""
        with self.store.writing() as conn:
            row = conn.execute(
                sa.select(blocks).where(
                    blocks.c.network == network,
                    blocks.c.backend == backend,
                    blocks.c.ended_at.is_(None),
                )
            ).first()
            if row is not None:
                conn.execute(
                    blocks.update()
                    .where(blocks.c.id == row.id)
                    .values(expires_at=max(float(row.expires_at), expires_at))
                )
                block_id = int(row.id)
            else:
                block_id = int(
                    conn.execute(
                        blocks.insert()
                        .values(
                            network=network,
                            backend=backend,
                            created_at=now,
                            expires_at=expires_at,
                            incident_id=incident_id,
                            playbook=playbook,
                            actor=_text(actor, 200),
                        )
                        .returning(blocks.c.id)
                    ).scalar_one()
                )
            final = conn.execute(sa.select(blocks).where(blocks.c.id == block_id)).one()
        return _block(final)

    def end_block(self, block_id: int, *, now: float, by: str, reason: str) -> bool:
        """Mark a block lifted (``expired``, ``unblocked``); False if it had ended already."""
        with self.store.writing() as conn:
            updated = conn.execute(
                blocks.update()
                .where(blocks.c.id == block_id, blocks.c.ended_at.is_(None))
                .values(ended_at=now, ended_by=_text(by, 200), end_reason=reason)
            )
        return bool(updated.rowcount)


def _text(value: str, limit: int) -> str:
    text = str(value).replace("\x00", "\ufffd")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["OUTPUT_EXCERPT", "AuditRecord", "BlockRecord", "ResponseLog"]
