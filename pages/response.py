"""Response: blocks in force (with Unblock), the audit log of every step, the loaded playbooks."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from soc import text
from soc.app import response, views, widgets_response
from soc.respond.base import MODES, RESULTS, RespondError

runtime = views.runtime_from(st.session_state)
responder = runtime.responder

st.title("Response")
st.caption(response.mode_summary(responder.config))
if responder.playbook_error:
    st.error(f"Playbooks not loaded: {text.literal_markdown(responder.playbook_error, 300)}")


def _unblock(network: str, actor: str, client: str) -> None:
    shown = text.literal_markdown(network, 64)
    try:
        results = responder.unblock(network, actor=actor, client=client)
    except RespondError as exc:
        st.session_state["resp_unblock_error"] = (
            f"Not unblocked: {text.literal_markdown(str(exc), 300)}"
        )
        return
    failed = [r for r in results if r.result != "ok"]
    if failed:
        why = failed[0].output or failed[0].result
        st.session_state["resp_unblock_error"] = (
            f"Unblocking {shown} failed: {text.literal_markdown(why, 300)}"
        )
    else:
        st.session_state["resp_unblock_done"] = f"{shown} is no longer blocked."


st.subheader("Blocks in force")
if message := st.session_state.pop("resp_unblock_done", None):
    st.success(message)
if message := st.session_state.pop("resp_unblock_error", None):
    st.error(message)
records = responder.blocks()
if not records:
    st.info(
        "No block in force. Blocks are placed by confirmed playbooks in enforce mode only; "
        "a dry run shows and audits the commands without running them."
    )
else:
    rows = response.block_rows(runtime, runtime.clock.now(), records)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "Unblock runs the backend's removal command now, ends the block before its expiry, "
        "and records it in the audit log."
    )
    actor, client = widgets_response.actor_name(), widgets_response.client_address()
    for block, row in zip(records, rows, strict=True):
        where, left, act = st.columns([4, 2, 1], vertical_alignment="center")
        where.markdown(f"{text.literal_markdown(block.network, 64)} · {block.backend}")
        left.caption(f"{row['time left']} left")
        act.button(
            "Unblock",
            key=f"resp_unblock_{block.id}",
            on_click=_unblock,
            args=(block.network, actor, client),
        )

st.subheader("Audit log")
filters = st.columns(5)
incident_id = filters[0].number_input(
    "Incident", min_value=1, value=None, step=1, placeholder="all", key="resp_f_incident"
)
actor_filter = filters[1].selectbox(
    "Actor",
    [None, *responder.log.audit_actors()],
    format_func=lambda a: "all" if a is None else text.plain(a, 60),
    key="resp_f_actor",
)
playbook_filter = filters[2].selectbox(
    "Playbook",
    [None, *response.audit_playbooks(runtime)],
    format_func=lambda p: "all" if p is None else text.plain(p, 60),
    key="resp_f_playbook",
)
result_filter = filters[3].selectbox(
    "Result",
    [None, *RESULTS],
    format_func=lambda r: "all" if r is None else r,
    key="resp_f_result",
)
mode_filter = filters[4].selectbox(
    "Mode",
    [None, *MODES],
    format_func=lambda m: "all" if m is None else response.mode_label(m),
    key="resp_f_mode",
)
audit = response.audit_rows(
    runtime,
    incident_id=int(incident_id) if incident_id is not None else None,
    actor=actor_filter,
    playbook=playbook_filter,
    result=result_filter,
    mode=mode_filter,
)
st.caption(f"{len(audit):,} audited steps (newest first, at most 200)")
if audit:
    st.dataframe(pd.DataFrame(audit), hide_index=True, width="stretch")
else:
    st.info("No audited step matches these filters.")

st.subheader("Playbooks")
playbooks = response.playbook_rows(runtime)
if playbooks:
    st.dataframe(pd.DataFrame(playbooks), hide_index=True, width="stretch")
    st.caption(
        f"From {text.literal_markdown(responder.config.playbooks_dir, 200)}; "
        "run one from an incident (Command Center or Incidents)."
    )
else:
    st.info("No playbook is loaded ([respond] playbooks_dir).")
