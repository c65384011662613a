"""The responder: plans playbooks against incidents, runs confirmed plans, keeps blocks' expiry.

Everything that changes something goes through :meth:`Responder.execute`, one
run at a time (a lock): the run and each of its steps are written to the audit
log (who, when, incident, playbook, step, argv, mode, result, exit status,
output excerpt), dry-run included. A block placed in enforce mode is recorded in
the store with its expiry; the expiry worker (:meth:`start`) lifts blocks whose
time has come, and on start :meth:`restore` puts back what is still in force
(the firewall may have lost it in a reboot) and lifts what expired meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from soc.clock import Clock
from soc.respond.actions import Context, action
from soc.respond.auto import AutoQueue, unknown_auto
from soc.respond.backends import Firewall, firewall
from soc.respond.base import (
    DRY_RUN,
    DRY_RUN_RESULT,
    ENFORCE,
    FAILED,
    OK,
    REFUSED,
    UNCHANGED,
    Mode,
    Outcome,
    Plan,
    RespondConfig,
    RespondError,
    RunResult,
    Step,
    StepResult,
)
from soc.respond.playbooks import Playbook, load_configured
from soc.respond.runner import post, run_commands
from soc.respond.targets import Protected, TargetError, parse_block
from soc.store.response import BlockRecord, ResponseLog

_log = logging.getLogger(__name__)

#: A confirmed plan older than this is refused: plan again (what it showed may be stale).
PLAN_MAX_AGE = 600.0
#: Seconds before a failed removal of an expired block is tried again (doubling, capped).
RETRY_FIRST, RETRY_MAX = 30.0, 3600.0


class Responder:
    """Playbooks against incidents, with dry-run, checks, audit and expiring blocks."""

    def __init__(
        self,
        config: RespondConfig,
        log: ResponseLog,
        store: Any,
        clock: Clock,
        *,
        protected: Protected | None = None,
        playbooks: Mapping[str, Playbook] | None = None,
        recommended: Mapping[str, str] | None = None,
        exports: list[str] | None = None,
        export_alert: Callable[[int, list[str]], str] | None = None,
        run: Callable[..., Outcome] = run_commands,
    ) -> None:
        self.config = config
        self.log = log
        self.store = store
        self.clock = clock
        self.protected = protected or Protected.of()
        self._playbooks = dict(playbooks) if playbooks is not None else None
        self.playbook_error: str | None = None
        self.recommended = dict(recommended or {})
        self.exports = list(exports or [])
        self.export_alert = export_alert
        self._run = run
        self._lock = threading.RLock()
        self._ready: set[str] = set()  # backends set up by this process
        self._retry: dict[int, tuple[float, float]] = {}  # block id → (next try, delay)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Incidents waiting to be checked for an automatic playbook (``[respond] auto``).
        self.auto = AutoQueue(config.auto, config.auto_min_severity)

    # --- playbooks ---------------------------------------------------------------------
    @property
    def playbooks(self) -> dict[str, Playbook]:
        """The playbooks from ``[respond] playbooks_dir``, loaded once ({} if they cannot be)."""
        if self._playbooks is None:
            try:
                self._playbooks = load_configured(self.config)
            except RespondError as exc:
                self.playbook_error = str(exc)
                _log.error("playbooks: %s", exc)
                self._playbooks = {}
            unknown = unknown_auto(self.config.auto, self._playbooks)
            if unknown and self.playbook_error is None:
                names = ", ".join(unknown)
                self.playbook_error = f"[respond] auto names unknown playbooks: {names}"
                _log.error("playbooks: %s", self.playbook_error)
        return self._playbooks

    def notify(self, incident_ids: list[int]) -> None:
        """The engine's incident hook: queue them for ``[respond] auto`` (the worker runs it)."""
        self.auto.notify(incident_ids)

    def recommend(self, kind: str) -> Playbook | None:
        """The playbook the incident kind's rule recommends, when it is loaded."""
        name = self.recommended.get(kind)
        return self.playbooks.get(name) if name else None

    def firewall(self, name: str | None = None) -> Firewall:
        return firewall(name or self.config.firewall, self.config)

    # --- plan and execute --------------------------------------------------------------
    def plan(
        self,
        incident_id: int,
        playbook: str,
        *,
        actor: str,
        client: str = "",
        enforce: bool = False,
    ) -> Plan:
        """What running ``playbook`` against the incident would do, step by step (nothing runs).

        ``enforce``: ask for enforcement; each step enforces only where ``[respond]``
        enables it for its backend or action, and shows ``dry_run`` otherwise.
        """
        book = self.playbooks.get(playbook)
        if book is None:
            known = ", ".join(sorted(self.playbooks)) or "none loaded"
            raise RespondError(f"unknown playbook {playbook!r} (known: {known})")
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise RespondError(f"no incident {incident_id}")
        now = self.clock.now()
        requested: Mode = ENFORCE if enforce else DRY_RUN
        fw = self.firewall()
        ctx = Context(
            incident=incident,
            config=self.config,
            log=self.log,
            store=self.store,
            firewall=fw,
            protected=self.protected,
            now=now,
            actor=actor,
            client=client,
            playbook=book.name,
            ttl=min(book.ttl, self.config.max_ttl_seconds),
            requested=requested,
            block_budget=self.config.max_blocks_per_hour - self.log.blocks_since(now - 3600.0),
            needs_setup=fw.name not in self._ready,
            exports=self.exports,
            on_block=self._ready.add,
            export_alert=self.export_alert,
        )
        steps: list[Step] = []
        for book_step in book.steps:
            steps.extend(action(book_step.action).plan(ctx, book_step.params))
        for i, step in enumerate(steps, 1):
            step.index = i
        return Plan(incident_id, book.name, actor, client, requested, steps, now)

    def execute(self, plan: Plan) -> RunResult:
        """Run a planned (and confirmed) playbook; every step is audited."""
        with self._lock:
            now = self.clock.now()
            if now - plan.planned_at > PLAN_MAX_AGE:
                raise RespondError("this plan is more than 10 minutes old: plan it again")
            run_id = self.log.start_run(
                plan.incident_id, plan.playbook, actor=plan.actor, mode=plan.mode, now=now
            )
            results = [self._step(plan, step, run_id) for step in plan.steps]
            status = _status(plan, results)
            summary = {
                "mode": plan.mode,
                "client": plan.client,
                "steps": len(results),
                "results": {
                    r: sum(1 for x in results if x.result == r) for r in {x.result for x in results}
                },
            }
            self.log.finish_run(run_id, status=status, summary=summary, now=self.clock.now())
        _log.info(
            "playbook %s on incident %s by %s: %s (%s)",
            plan.playbook,
            plan.incident_id,
            plan.actor,
            status,
            plan.mode,
        )
        return RunResult(run_id, plan, status, results)

    def run(
        self,
        incident_id: int,
        playbook: str,
        *,
        actor: str,
        client: str = "",
        enforce: bool = False,
    ) -> RunResult:
        """Plan and execute at once (the CLI; the UI confirms a plan first)."""
        return self.execute(
            self.plan(incident_id, playbook, actor=actor, client=client, enforce=enforce)
        )

    def _step(self, plan: Plan, step: Step, run_id: int | None) -> StepResult:
        if step.refused is not None:
            result = StepResult(step, REFUSED, output=step.refused)
        elif step.unchanged is not None:
            result = StepResult(step, UNCHANGED, output=step.unchanged)
        elif step.mode != ENFORCE:
            result = StepResult(step, DRY_RUN_RESULT, output="dry run: nothing was run")
        else:
            outcome = self._perform(step)
            if outcome.ok and step.after is not None:
                try:
                    step.after(outcome)
                except Exception as exc:  # the firewall acted: say the store did not follow
                    _log.exception("recording step %s failed", step.index)
                    outcome = Outcome(
                        False, outcome.exit_status, f"{outcome.output}\nnot recorded: {exc}"
                    )
            result = StepResult(
                step, OK if outcome.ok else FAILED, outcome.exit_status, outcome.output
            )
        self.log.audit(
            at=self.clock.now(),
            actor=plan.actor,
            client=plan.client,
            playbook=plan.playbook,
            step=step.index,
            action=step.action,
            backend=step.backend,
            target=step.target,
            argv=step.argv(),
            mode=step.mode,
            result=result.result,
            exit_status=result.exit_status,
            output=result.output or step.describe,
            run_id=run_id,
            incident_id=plan.incident_id,
        )
        return result

    def _perform(self, step: Step) -> Outcome:
        # Whatever goes wrong is this step's failure: the run goes on and is audited.
        try:
            if step.request is not None:
                return post(step.request, timeout=self.config.webhook_timeout)
            if step.local is not None:
                return Outcome(True, None, step.local())
            return self._run(
                step.commands,
                prefix=self.config.command_prefix,
                timeout=self.config.command_timeout,
            )
        except Exception as exc:
            _log.exception("step %s (%s) failed", step.index, step.action)
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")

    # --- blocks --------------------------------------------------------------------------
    def blocks(self) -> list[BlockRecord]:
        """Blocks in force, soonest expiry first."""
        return self.log.active_blocks()

    def unblock(self, address: str, *, actor: str, client: str = "") -> list[StepResult]:
        """Lift every block in force on ``address`` (or network ``a/n``) now; audited.

        Raises RespondError when the text is not an address or nothing blocks it.
        """
        try:
            network = parse_block(address, self.config.ipv6_prefix)
        except TargetError as exc:
            raise RespondError(str(exc)) from None
        found = [b for b in self.log.active_blocks() if b.network == str(network)]
        if not found:
            raise RespondError(f"{network} is not blocked")
        return [
            self._lift(block, actor=actor, client=client, reason="unblocked") for block in found
        ]

    def _lift(
        self, block: BlockRecord, *, actor: str, client: str, reason: str, set_up: bool = False
    ) -> StepResult:
        with self._lock:
            fw = self.firewall(block.backend)
            network = parse_block(block.network, self.config.ipv6_prefix)
            step = Step(1, "unblock_ip", target=block.network, backend=fw.name, mode=ENFORCE)
            # At start after a reboot the firewall has lost our table or sets, and a
            # block that expired meanwhile is lifted before anything set them up again.
            setup = fw.setup() if set_up and fw.name not in self._ready else []
            step.commands = [*setup, *fw.unblock(network)]
            outcome = self._run(
                step.commands,
                prefix=self.config.command_prefix,
                timeout=self.config.command_timeout,
            )
            now = self.clock.now()
            if outcome.ok:
                if setup:
                    self._ready.add(fw.name)
                self.log.end_block(block.id, now=now, by=actor, reason=reason)
                self._retry.pop(block.id, None)
            result = StepResult(
                step, OK if outcome.ok else FAILED, outcome.exit_status, outcome.output
            )
            self.log.audit(
                at=now,
                actor=actor,
                client=client,
                playbook=f"({reason})",
                step=1,
                action="unblock_ip",
                backend=fw.name,
                target=block.network,
                argv=step.argv(),
                mode=ENFORCE,
                result=result.result,
                exit_status=outcome.exit_status,
                output=outcome.output or f"{reason} {block.network}",
                incident_id=block.incident_id,
            )
            return result

    def expire(self) -> int:
        """Lift every block whose expiry has come; returns how many were lifted."""
        now = self.clock.now()
        lifted = 0
        for block in self.log.due_blocks(now):
            next_try, delay = self._retry.get(block.id, (0.0, RETRY_FIRST))
            if now < next_try:
                continue
            lift = self._lift(block, actor="expiry", client="", reason="expired", set_up=True)
            if lift.result == OK:
                lifted += 1
            else:
                self._retry[block.id] = (now + delay, min(delay * 2, RETRY_MAX))
                _log.error(
                    "could not lift the expired block on %s (%s); retrying",
                    block.network,
                    block.backend,
                )
        return lifted

    def restore(self) -> dict[str, int]:
        """At start: lift what expired while stopped, put back what is still in force."""
        expired = self.expire()
        restored = failed = 0
        for block in self.log.active_blocks():
            if block.expires_at <= self.clock.now():
                continue  # due, and its removal failed: the expiry worker retries it
            if self.config.mode_for(block.backend) != ENFORCE:
                _log.warning(
                    "not restoring the block on %s: %s is not enforced",
                    block.network,
                    block.backend,
                )
                continue
            with self._lock:
                fw = self.firewall(block.backend)
                network = parse_block(block.network, self.config.ipv6_prefix)
                remaining = max(1, int(block.expires_at - self.clock.now()))
                commands = ([] if fw.name in self._ready else fw.setup()) + fw.block(
                    network, remaining
                )
                outcome = self._run(
                    commands, prefix=self.config.command_prefix, timeout=self.config.command_timeout
                )
                if outcome.ok:
                    self._ready.add(fw.name)
                    restored += 1
                else:
                    failed += 1
                    _log.error(
                        "could not restore the block on %s: %s", block.network, outcome.output
                    )
                self.log.audit(
                    at=self.clock.now(),
                    actor="restore",
                    client="",
                    playbook="(restore)",
                    step=1,
                    action="block_ip",
                    backend=fw.name,
                    target=block.network,
                    argv=[c.shown() for c in commands],
                    mode=ENFORCE,
                    result=OK if outcome.ok else FAILED,
                    exit_status=outcome.exit_status,
                    output=outcome.output or f"restored for {remaining} s",
                    incident_id=block.incident_id,
                )
        return {"expired": expired, "restored": restored, "failed": failed}

    # --- the expiry worker ---------------------------------------------------------------
    def start(self) -> None:
        """Restore what is in force, then lift expired blocks every ``expiry_interval`` seconds.

        The same worker runs the automatic playbooks (``[respond] auto``) of the
        incidents :meth:`notify` queued, as soon as they are queued.
        """
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="soc-respond-expiry", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            self.restore()
        except Exception:
            _log.exception("restoring blocks failed")
        wake = self.auto.wake
        while not self._stop.is_set():
            wake.wait(self.config.expiry_interval)
            wake.clear()
            if self._stop.is_set():
                break
            try:
                self.expire()
            except Exception:  # a store outage: try again next time
                _log.exception("expiring blocks failed")
            try:
                self.auto.run_pending(self)
            except Exception:
                _log.exception("automatic playbooks failed")

    def stop(self) -> None:
        self._stop.set()
        self.auto.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _status(plan: Plan, results: list[StepResult]) -> str:
    kinds = {r.result for r in results}
    if FAILED in kinds:
        return "partial" if OK in kinds else "failed"
    if kinds == {REFUSED}:
        return REFUSED
    if OK in kinds:
        return OK
    return DRY_RUN_RESULT if DRY_RUN_RESULT in kinds else UNCHANGED


__all__ = ["PLAN_MAX_AGE", "Responder"]
