"""Command Center: KPI tiles, the charts and the live incident feed, refreshed in place."""

from __future__ import annotations

import streamlit as st

from soc import text
from soc.app import auth, memory, views, widgets_response

runtime = views.runtime_from(st.session_state)

st.title("Command Center")

controls = st.columns([2, 2, 2, 4], vertical_alignment="center")
with controls[0]:
    span_label = st.selectbox("Time range", list(views.SPANS), index=2, key="cc_span")
with controls[1]:
    live = st.toggle("Live refresh", value=True, key="cc_live")
with controls[2]:
    paused = runtime.status().paused
    if st.button(
        "Resume ingestion" if paused else "Pause ingestion",
        icon="▶️" if paused else "⏸️",
        key="cc_pause",
    ):
        if paused:
            runtime.resume()
        else:
            runtime.pause()
        st.rerun()
with controls[3]:
    feed_size = st.slider("Incidents in the feed", 5, 50, 15, step=5, key="cc_feed_size")

span = views.SPANS[span_label]


@st.fragment(run_every=2.0 if live else None)
def live_view() -> None:
    """Everything that moves: re-run every two seconds without touching the widgets above."""
    if not auth.still_signed_in():
        # Signed out (here or in another tab) or expired: the whole page reruns and
        # the gate takes over; nothing more is refreshed for this browser.
        st.rerun()
    status = runtime.status()
    store = runtime.store
    if status.error:
        st.error(f"The engine stopped: {text.literal_markdown(status.error, 500)}")
    outage = status.outage_text()
    if outage is not None:
        st.warning(text.literal_markdown(outage, 500))
        return  # the figures below come from the store
    state = (
        "paused"
        if status.paused
        else "finished"
        if status.finished
        else "running"
        if status.running
        else "stopped"
    )
    st.caption(
        f"Engine: {state} · mode {status.mode} · threshold {status.threshold} failures "
        f"per {status.window_seconds:g} s · {status.analysis_pending} incidents awaiting a report"
    )
    # The charts' data comes from the chart feed, recomputed off this refresh.
    charts = views.chart_feed(runtime).get(span)
    rng = charts.rng if charts is not None else views.chart_range(None, span, status.window_seconds)
    kpis = views.compute_kpis(runtime, rng.since)

    # Two rows of four: wide enough for every label and figure on a wall screen.
    tiles = [*st.columns(4), *st.columns(4)]
    tiles[0].metric("Lines ingested", f"{kpis.lines:,}")
    tiles[1].metric("Lines/s", f"{kpis.lines_per_second:,.0f}")
    tiles[2].metric("Events", f"{kpis.events:,}")
    tiles[3].metric(
        "Active attackers",
        f"{kpis.active_attackers:,}",
        help=f"Source addresses with failed attempts in the last {span_label} of activity",
    )
    tiles[4].metric(
        "Open incidents",
        f"{kpis.open_incidents:,}",
        help=f"New or triaged, of {kpis.incidents:,} incidents stored",
    )
    tiles[5].metric(
        "Model calls made",
        f"{kpis.model_calls:,}",
        help=f"By this server process; {kpis.reports:,} reports written, "
        f"{kpis.cache_hits:,} reused unchanged",
    )
    tiles[6].metric(
        "Model calls avoided",
        f"{kpis.calls_avoided:,}",
        help="Events ingested by this server process that needed no model call: the detector "
        "turns events into a handful of incidents, and only those are analysed",
    )
    tiles[7].metric(
        "Cost so far",
        f"${kpis.cost_usd:,.4f}",
        help="Estimated from token counts and [analyze.prices], over every stored analysis",
    )

    if charts is None:
        st.info(
            "No activity stored yet. The engine is "
            f"{state}; events appear here as soon as its sources deliver lines."
        )
    else:
        timeline, users, attackers = charts.timeline, charts.users, charts.attackers
        left, right = st.columns([3, 2])
        with left:
            st.plotly_chart(
                views.timeline_figure(timeline, rng.bucket_seconds),
                theme=None,
                key="cc_timeline",
            )
        with right:
            if users.empty:
                st.info("No failed logins against named accounts in this range.")
            else:
                st.plotly_chart(views.donut_figure(users), theme=None, key="cc_users")
        if attackers.empty:
            st.info("No attacking addresses in this range.")
        else:
            st.plotly_chart(views.attackers_figure(attackers), theme=None, key="cc_attackers")

    st.subheader("Live incident feed")
    incidents = store.list_incidents(limit=feed_size, order="last_seen desc")
    if not incidents:
        st.info("No incidents yet.")
    for incident in incidents:
        incident_id = int(incident.id or 0)
        with st.expander(
            views.expander_label(incident),
            icon=views.severity_icon(incident.severity),
            key=f"cc_incident_{incident_id}",
        ):
            st.caption(
                f"#{incident_id} · {incident.status} · {views.when(incident.first_seen)} → "
                f"{views.when(incident.last_seen)} · {incident.failures:,} failed attempts"
            )
            records = store.analyses(incident_id)
            if records:
                latest_report = records[-1]
                grounded = "grounded ✅" if latest_report.grounded else "NOT grounded ⚠️"
                st.caption(
                    f"Report by {text.literal_markdown(latest_report.provider, 40)} "
                    f"({text.literal_markdown(latest_report.model, 80)}) · {grounded} · "
                    f"\\${latest_report.cost_usd:.4f}"
                    + views.batch_note(latest_report)
                    + (
                        f" · fell back: {text.literal_markdown(latest_report.fallback_reason)}"
                        if latest_report.fallback_reason
                        else ""
                    )
                )
                # Reports are Markdown with every written value escaped; shown through
                # report_markdown all the same (older reports, text other modules add).
                st.markdown(text.report_markdown(latest_report.markdown))
            else:
                st.caption("The analyst has not written a report yet.")
            for line in memory.intel_lines(incident.facts):
                st.warning(f"Threat intel: {line}", icon="🛑")
            if records and (origin := memory.reused_from(records[-1].structured)) is not None:
                st.caption(f"Report reused from similar incident #{origin} (no model call).")
            similar = memory.similar_to(runtime, incident_id, wait=False)
            if similar:
                st.markdown("**Similar past incidents**")
                for match in similar:
                    st.page_link(
                        "pages/incidents.py",
                        label=memory.match_label(match),
                        query_params={"incident": str(match.incident_id)},
                    )
            st.dataframe(views.facts_frame(incident), hide_index=True, width="stretch")
            evidence = store.evidence(incident_id)
            if evidence:
                st.code(text.visible("\n".join(evidence)), language=None, wrap_lines=True)
            # Every incident has one: the policy's first load must not hold the feed up.
            widgets_response.response_section(runtime, incident, scope="cc", wait_for_policy=False)


live_view()
