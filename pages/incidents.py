"""Incidents: filter and search, the detail view, the status workflow, response and re-analysis."""

from __future__ import annotations

import streamlit as st

from soc import text
from soc.app import memory, views, widgets_response
from soc.events import INCIDENT_KINDS, STATUSES

runtime = views.runtime_from(st.session_state)
store = runtime.store

st.title("Incidents")

filters = st.columns([3, 3, 3, 1])
statuses = filters[0].multiselect(
    "Status", list(STATUSES), default=list(views.OPEN_STATUSES), key="inc_status"
)
kinds = filters[1].multiselect("Kind", list(INCIDENT_KINDS), key="inc_kind")
search = (
    filters[2]
    .text_input("Search", key="inc_search", placeholder="address, user name or key")
    .strip()
)
page_size = filters[3].selectbox("Rows", [25, 50, 100], key="inc_rows")

with st.expander("Search by description (similar incidents)", icon="🔎"):
    # Free text against every incident's description ("spray against oracle and
    # postgres accounts"), by meaning rather than by substring.
    query = st.text_input(
        "Describe the attack", key="inc_semantic", placeholder="password spray against oracle"
    ).strip()
    if query:
        found = memory.search(runtime, query)
        if not found:
            st.info("Nothing found (the incident memory is empty or turned off).")
        for match in found:
            st.page_link(
                "pages/incidents.py",
                label=memory.match_label(match),
                query_params={"incident": str(match.incident_id)},
            )

status_filter = statuses or None
kind_filter = kinds or None
search_filter = search or None
total = store.count_incidents(status=status_filter, kind=kind_filter, search=search_filter)
pages = max(1, -(-total // page_size))
page_no = (
    st.number_input("Page", min_value=1, max_value=pages, value=1, key="inc_page")
    if pages > 1
    else 1
)
items = store.list_incidents(
    status=status_filter,
    kind=kind_filter,
    search=search_filter,
    limit=page_size,
    offset=(int(page_no) - 1) * page_size,
    order="last_seen desc",
)
st.caption(f"{total:,} incidents match · page {page_no} of {pages}")

if not items:
    st.info("No incident matches these filters.")
    st.stop()

st.dataframe(views.incidents_frame(items), hide_index=True, width="stretch")

labels = {int(i.id or 0): views.incident_option(i) for i in items}  # options are plain text
# A link from another incident (?incident=N) opens that one, whatever the filters show.
asked = st.query_params.get("incident", "")
if asked.isdigit() and (linked := store.get_incident(int(asked))) is not None:
    labels = {int(asked): views.incident_option(linked), **labels}
    st.session_state["inc_selected"] = int(asked)
    del st.query_params["incident"]
selected = st.selectbox(
    "Incident", list(labels), format_func=lambda i: labels[i], key="inc_selected"
)
incident = store.get_incident(int(selected)) if selected is not None else None
if incident is None:
    st.warning("That incident is no longer in the store.")
    st.stop()
incident_id = int(incident.id or 0)

st.subheader(views.expander_label(incident))
tiles = st.columns(5)
tiles[0].metric("Status", incident.status)
tiles[1].metric("Failed attempts", f"{incident.failures:,}")
tiles[2].metric("Successful logins", f"{incident.successes:,}")
tiles[3].metric("Users tried", f"{incident.distinct_users:,}")
tiles[4].metric("Sources", f"{len(incident.source_ips):,}")

workflow, reanalysis = st.columns(2)
with workflow, st.form(f"status_form_{incident_id}"):
    st.markdown("**Status workflow**")
    new_status = st.selectbox(
        "New status",
        list(STATUSES),
        index=list(STATUSES).index(incident.status) if incident.status in STATUSES else 0,
    )
    notes = st.text_area("Analyst notes", value=incident.notes, max_chars=5000)
    if st.form_submit_button("Save status", type="primary"):
        store.set_status(incident_id, new_status, notes=notes)
        st.session_state["inc_saved"] = f"Incident #{incident_id} is now {new_status}."
        st.rerun()
if message := st.session_state.pop("inc_saved", None):
    st.success(message)

with reanalysis:
    st.markdown("**Re-analyse**")
    chain = runtime.analysis.analyst.chain
    provider = st.selectbox("Provider", chain, key=f"inc_provider_{incident_id}")
    if st.button("Re-analyse", key=f"inc_reanalyse_{incident_id}"):
        with st.spinner(f"Asking {provider}…"):
            report = views.reanalyse(runtime, incident_id, provider)
        note = (
            f" (fell back: {text.literal_markdown(report.fallback_reason)})"
            if report.fallback_reason
            else ""
        )
        st.success(f"New report by {text.literal_markdown(report.provider, 40)}{note}.")

widgets_response.response_section(runtime, incident, scope="inc")

for line in memory.intel_lines(incident.facts):
    st.warning(f"Threat intel: {line}", icon="🛑")

records = store.analyses(incident_id)
similar = memory.similar_to(runtime, incident_id)
report_tab, facts_tab, evidence_tab, similar_tab, history_tab = st.tabs(
    ["Report", "Facts", "Evidence", f"Similar ({len(similar)})", f"Analyses ({len(records)})"]
)
with report_tab:
    if records:
        latest = records[-1]
        st.caption(
            f"{text.literal_markdown(latest.provider, 40)} "
            f"({text.literal_markdown(latest.model, 80)}) · "
            f"{'grounded' if latest.grounded else 'NOT grounded'} · \\${latest.cost_usd:.4f} · "
            f"{views.when(latest.created_at)}{views.batch_note(latest)}"
            + (
                f" · fell back: {text.literal_markdown(latest.fallback_reason)}"
                if latest.fallback_reason
                else ""
            )
        )
        if (origin := memory.reused_from(latest.structured)) is not None:
            st.page_link(
                "pages/incidents.py",
                label=f"Reused from similar incident #{origin} (no model call)",
                query_params={"incident": str(origin)},
                icon="♻️",
            )
        if latest.grounding_errors:
            st.warning(
                "Grounding problems: "
                + "; ".join(text.literal_markdown(e, 200) for e in latest.grounding_errors[:5])
            )
        st.markdown(text.report_markdown(latest.markdown))
    else:
        st.info("No report yet: the analyst works through new incidents in the background.")
with facts_tab:
    st.dataframe(views.facts_frame(incident), hide_index=True, width="stretch")
    if incident.notes:
        st.markdown("**Notes**")
        st.code(text.visible(incident.notes), language=None, wrap_lines=True)
with evidence_tab:
    if incident.evidence:
        st.code(text.visible("\n".join(incident.evidence)), language=None, wrap_lines=True)
    else:
        st.info("No evidence lines stored.")
with similar_tab:
    if not similar:
        st.info("No similar past incident (or the incident memory is turned off).")
    for match in similar:
        st.page_link(
            "pages/incidents.py",
            label=memory.match_label(match),
            query_params={"incident": str(match.incident_id)},
        )
with history_tab:
    for record in reversed(records):
        st.caption(
            f"{views.when(record.created_at)} · {text.literal_markdown(record.provider, 40)} · "
            f"{'grounded' if record.grounded else 'NOT grounded'} · \\${record.cost_usd:.4f} · "
            f"{record.tokens_in + record.tokens_out:,} tokens · {record.latency_s:.1f} s"
            + views.batch_note(record)
            + (" · reused" if record.reused else "")
        )
