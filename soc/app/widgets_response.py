"""The incident's Response section, shared by the Command Center and the Incidents pages.

Plan first, then confirm: the analyst picks a playbook (the rule's recommendation
first), :meth:`Responder.plan` shows every step's exact argv, TTL and mode (a step
enforces only where ``[respond]`` allows it), and only "Confirm and run" executes
that plan. The plan and the run's result are kept in ``st.session_state`` per
incident, so both pages (and the live refresh) show the same one. Buttons act in
callbacks, before the script draws, so what is drawn is always the new state.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from soc import text
from soc.app import auth, response
from soc.respond.base import DRY_RUN_RESULT, ENFORCE, OK, Plan, RespondError, RunResult

#: Who acts when sign-in is off.
DEFAULT_ACTOR = "analyst"


def actor_name() -> str:
    """The signed-in analyst's name (their e-mail with OIDC), else ``analyst``."""
    session = auth.current_session()
    if session is None:
        return DEFAULT_ACTOR
    if session.method == "oidc":
        try:
            email = st.user.get("email") if st.user.is_logged_in else None
        except Exception:  # no OIDC user in this context: the session's name
            email = None
        if email:
            return str(email)
    return session.user or DEFAULT_ACTOR


def client_address() -> str:
    """The browser's address as Streamlit sees it ("" when unknown)."""
    try:
        return str(st.context.ip_address or "")
    except Exception:  # no browser context (a bare script run)
        return ""


def _keys(incident_id: int) -> tuple[str, str, str]:
    return (f"resp_plan_{incident_id}", f"resp_run_{incident_id}", f"resp_error_{incident_id}")


def _plan(runtime: Any, incident_id: int, playbook: str, actor: str, client: str) -> None:
    plan_key, run_key, error_key = _keys(incident_id)
    for key in (plan_key, run_key, error_key):
        st.session_state.pop(key, None)
    try:
        st.session_state[plan_key] = runtime.responder.plan(
            incident_id, playbook, actor=actor, client=client, enforce=True
        )
    except RespondError as exc:
        st.session_state[error_key] = f"Cannot plan {playbook}: {exc}"


def _confirm(runtime: Any, incident_id: int) -> None:
    plan_key, run_key, error_key = _keys(incident_id)
    plan = st.session_state.pop(plan_key, None)
    if not isinstance(plan, Plan):
        return
    try:
        st.session_state[run_key] = runtime.responder.execute(plan)
    except RespondError as exc:
        st.session_state[error_key] = f"Not run: {exc}"


def _policy_key(incident_id: int) -> str:
    """Where the analyst's answer to the policy for this incident is kept (both pages)."""
    return f"resp_policy_answer_{incident_id}"


def _answer_policy(
    runtime: Any,
    incident: Any,
    advice: response.Advice,
    accepted: bool,
    actor: str,
    book_key: str,
) -> None:
    """Record the answer; an accepted playbook is selected (nothing runs)."""
    answer_key = _policy_key(int(incident.id or 0))
    try:
        response.record_policy_answer(runtime, incident, advice, accepted, None, actor)
    except Exception as exc:  # the store refused: say so, the page goes on
        st.session_state[answer_key] = f"Answer not recorded: {exc}"
        return
    st.session_state[answer_key] = "Answer recorded"
    playbook = advice[0]
    if accepted and playbook is not None and playbook in runtime.responder.playbooks:
        st.session_state[book_key] = playbook  # before the selectbox is drawn


def _policy(runtime: Any, incident: Any, *, scope: str, book_key: str, wait: bool) -> None:
    """The trained policy's recommendation, with Accept / Reject (it only recommends)."""
    advice = response.policy_advice(runtime, incident, wait=wait)
    if advice is None:
        return
    incident_id = int(incident.id or 0)
    playbook, action, probability = advice
    st.caption(
        f"Policy recommends: {text.literal_markdown(playbook or 'no action', 64)} "
        f"({text.markdown_text(action, 40)}, p={probability:.2f})"
    )
    answer = st.session_state.get(_policy_key(incident_id))
    if answer is not None:
        st.caption(text.markdown_text(str(answer), 300))
        return
    accept, reject = st.columns(2)
    actor = actor_name()
    for column, label, accepted in ((accept, "Accept", True), (reject, "Reject", False)):
        column.button(
            label,
            key=f"{scope}_resp_policy_{label.lower()}_{incident_id}",
            on_click=_answer_policy,
            args=(runtime, incident, advice, accepted, actor, book_key),
            help="Records your answer to the policy; nothing runs.",
        )


def _clear(*keys: str) -> None:
    for key in keys:
        st.session_state.pop(key, None)


def response_section(
    runtime: Any, incident: Any, *, scope: str, wait_for_policy: bool = True
) -> None:
    """The Response section of one incident; ``scope`` keeps widget keys unique per page.

    ``wait_for_policy=False``: while the policy loads (seconds, once), its
    recommendation is left out rather than holding the page up.
    """
    incident_id = int(incident.id or 0)
    plan_key, run_key, error_key = _keys(incident_id)
    responder = runtime.responder
    st.markdown("**Response**")
    book = response.recommended(runtime, incident)
    names = response.playbook_names(runtime, book)
    if responder.playbook_error:
        st.error(f"Playbooks not loaded: {text.literal_markdown(responder.playbook_error, 300)}")
    if not names:
        st.info("No response playbook is loaded ([respond] playbooks_dir).")
        return
    if book is not None:
        st.caption(
            f"Recommended: {text.literal_markdown(book.name, 64)}: "
            f"{text.markdown_text(book.description, 300)}"
        )
    else:
        st.caption(f"No playbook is recommended for {incident.kind}: choose one.")
    book_key = f"{scope}_resp_book_{incident_id}"
    _policy(runtime, incident, scope=scope, book_key=book_key, wait=wait_for_policy)
    choice = st.selectbox(
        "Playbook",
        names,
        key=book_key,
        format_func=lambda name: f"{name} (recommended)" if book and name == book.name else name,
    )
    chosen = responder.playbooks.get(choice)
    if chosen is not None and chosen is not book:
        st.caption(text.markdown_text(chosen.description, 300))
    st.button(
        f"Plan {choice}…",
        key=f"{scope}_resp_plan_{incident_id}",
        on_click=_plan,
        args=(runtime, incident_id, choice, actor_name(), client_address()),
        help="Shows exactly what would run; nothing runs until you confirm.",
    )
    if (error := st.session_state.get(error_key)) is not None:
        st.error(text.literal_markdown(error, 300))
    plan = st.session_state.get(plan_key)
    if isinstance(plan, Plan):
        _confirmation(runtime, plan, scope=scope)
    run = st.session_state.get(run_key)
    if isinstance(run, RunResult):
        _result(run, scope=scope)


def _confirmation(runtime: Any, plan: Plan, *, scope: str) -> None:
    incident_id = plan.incident_id
    plan_key, _, error_key = _keys(incident_id)
    if plan.mode == ENFORCE:
        st.warning(
            f"ENFORCE: confirming runs the steps marked ENFORCE below on this machine "
            f"({plan.playbook}, incident #{incident_id}).",
            icon="⚠️",
        )
    else:
        st.info(
            f"Dry run: {plan.playbook} would run the steps below; confirming records them "
            "in the audit log and changes nothing ([respond] mode).",
            icon="🧪",
        )
    for step in plan.steps:
        target = f" · {text.literal_markdown(step.target, 120)}" if step.target else ""
        ttl = f" · TTL {response.ttl_text(step.ttl)}" if step.ttl is not None else ""
        st.caption(
            f"Step {step.index} · {step.action}{target} · {step.backend} · "
            f"**{response.mode_label(step.mode)}**{ttl}"
        )
        for line in response.step_argv(step):
            st.code(line, language=None, wrap_lines=True)
        note = response.step_note(step)
        if note and (step.refused is not None or step.unchanged is not None or not step.argv()):
            st.caption(text.literal_markdown(note, 300))
    confirm, cancel = st.columns(2)
    confirm.button(
        "Confirm and run",
        key=f"{scope}_resp_confirm_{incident_id}",
        type="primary",
        on_click=_confirm,
        args=(runtime, incident_id),
    )
    cancel.button(
        "Cancel",
        key=f"{scope}_resp_cancel_{incident_id}",
        on_click=_clear,
        args=(plan_key, error_key),
    )


def _result(run: RunResult, *, scope: str) -> None:
    incident_id = run.plan.incident_id
    _, run_key, _ = _keys(incident_id)
    message = (
        f"Run #{run.run_id} of {run.plan.playbook}: {run.status} "
        f"({response.mode_label(run.plan.mode)}, audited)"
    )
    if run.status in (OK, DRY_RUN_RESULT):
        st.success(message)
    else:
        st.warning(message)
    for result in run.steps:
        step = result.step
        target = f" · {text.literal_markdown(step.target, 120)}" if step.target else ""
        status = "" if result.exit_status is None else f" · exit status {result.exit_status}"
        st.caption(
            f"Step {step.index} · {step.action}{target} · result **{result.result}**{status}"
        )
        if result.output:
            st.code(text.visible(result.output), language=None, wrap_lines=True)
    st.button("Clear", key=f"{scope}_resp_clear_{incident_id}", on_click=_clear, args=(run_key,))


__all__ = ["DEFAULT_ACTOR", "actor_name", "client_address", "response_section"]
