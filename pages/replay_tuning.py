"""Replay & tuning: what the engine replays, the live threshold, and a what-if over history."""

from __future__ import annotations

import streamlit as st

from soc import text
from soc.app import views
from soc.app.runtime import SAMPLE_FILES

THRESHOLD_LABEL = "Threshold (failures per window)"
WINDOW_LABEL = "Window (seconds)"
SLIDER_MAX = 100  # a slider over 1..1000 cannot pick 5; the what-if input goes higher
SPEEDS = {
    "As fast as possible": 0.0,
    "Real time (1×)": 1.0,
    "10×": 10.0,
    "60× (a minute per second)": 60.0,
    "600×": 600.0,
}

runtime = views.runtime_from(st.session_state)
settings = runtime.settings
status = runtime.status()
state = "finished" if status.finished else "running" if status.running else "stopped"

st.title("Replay & tuning")
if status.error:
    st.error(f"The engine stopped: {text.literal_markdown(status.error, 500)}")
outage = status.outage_text()
if outage is not None:
    st.warning(text.literal_markdown(outage, 500))

replay_col, tuning_col = st.columns(2)

with replay_col:
    st.subheader("Replay")
    st.caption(f"Now: {status.mode}, {state} · {status.lines:,} lines · {status.events:,} events")
    source = st.radio(
        "What to replay",
        ["Bundled sample set", "Upload a log file"],
        key="rp_source",
        horizontal=True,
    )
    speed_label = st.selectbox("Replay speed", list(SPEEDS), key="rp_speed")
    speed = SPEEDS[speed_label]
    if source == "Bundled sample set":
        st.caption("One server's logs: " + ", ".join(SAMPLE_FILES) + " (2025, UTC).")
        if st.button("Replay the samples", type="primary", key="rp_samples"):
            runtime.replay_samples(speed=speed, again=True)
            st.success("Replaying the bundled samples.")
    else:
        upload = st.file_uploader(
            "Log file (syslog, auth.log, nginx/apache, ufw, JSON lines; gzip is fine)",
            key="rp_upload",
        )
        if upload is not None and st.button("Replay the upload", type="primary", key="rp_go"):
            path = views.save_upload(upload.getvalue())
            runtime.replay([path], speed=speed, owned=True)
            st.success(f"Replaying {upload.size:,} bytes.")
    st.caption(
        "A replay replaces what runs; incidents and aggregates already stored stay. "
        "Live sources come back with a restart when [[sources]] are configured."
    )

with tuning_col:
    st.subheader("Live tuning")

    def _apply_threshold() -> None:
        runtime.set_threshold(int(st.session_state["rp_threshold"]))

    if "rp_threshold" not in st.session_state:
        st.session_state["rp_threshold"] = runtime.threshold()
    st.slider(
        THRESHOLD_LABEL,
        min_value=1,
        max_value=max(min(settings.detect.max_threshold, SLIDER_MAX), runtime.threshold()),
        key="rp_threshold",
        on_change=_apply_threshold,
        help="Brute force: failed attempts from one source within the sliding window. "
        "Applies to the running engine from its next batch and is kept in the store.",
    )
    st.metric("The engine now uses", f"{runtime.threshold()} failures")

    def _apply_window() -> None:
        runtime.set_window(float(st.session_state["rp_window"]))

    if "rp_window" not in st.session_state:
        st.session_state["rp_window"] = int(runtime.window_seconds())
    choices = sorted({5, 10, 15, 30, 60, 120, 300, int(runtime.window_seconds())})
    st.select_slider(
        WINDOW_LABEL,
        options=choices,
        key="rp_window",
        on_change=_apply_window,
        disabled=runtime.engine is None,
        help="The brute-force span (sliding) and the charts' windows. Applies from the "
        "engine's next batch: open windows are stored and open campaigns closed first.",
    )
    st.caption(f"The engine now uses {runtime.window_seconds():g} s windows.")

st.divider()
st.subheader("What if?")
current = runtime.threshold()
candidate = st.columns(4)[0].number_input(
    "Candidate threshold",
    min_value=1,
    max_value=max(settings.detect.max_threshold, current),
    value=current,
    key="rp_candidate",
)
result = views.what_if(runtime.store, int(candidate), settings.detect.failure_kinds)
tiles = st.columns(4)
tiles[0].metric("Incidents", f"{result.incidents:,}", delta=result.incidents - result.incidents_now)
tiles[1].metric(
    "Brute-force incidents",
    f"{result.brute_force_kept + result.brute_force_added:,}",
    delta=result.brute_force_kept + result.brute_force_added - result.brute_force_now,
)
tiles[2].metric("Model calls (est.)", f"{result.model_calls:,.0f}")
tiles[3].metric("Dollars (est.)", f"${result.dollars:,.4f}")
st.caption(
    f"Estimated over the stored history ({result.incidents_now:,} incidents). Only the "
    "brute-force rule uses this threshold; other incidents are counted as they are. A stored "
    f"brute-force incident is kept when its peak failures in one window reach {result.candidate} "
    f"({result.brute_force_kept:,} of {result.brute_force_now:,}); "
    f"{result.brute_force_added:,} addresses without one reach it in a stored "
    f"{settings.window.seconds:g} s window (a lower bound: the detector's window slides). "
    f"Model calls: {result.calls_per_incident:.2f} stored model analyses per analysed incident; "
    f"dollars: ${result.mean_model_cost:.4f} mean stored cost per model analysis"
    + (
        " (none stored yet: every report so far is offline, free)."
        if not result.mean_model_cost
        else "."
    )
)
missed_col, added_col = st.columns(2)
with missed_col:
    st.markdown(
        f"**Analyst-labelled incidents it would miss** · {result.missed_true_positives} "
        f"confirmed, {result.avoided_false_positives} false positives avoided"
    )
    if result.missed_labelled.empty:
        st.caption("None.")
    else:
        st.dataframe(result.missed_labelled, hide_index=True, width="stretch")
with added_col:
    st.markdown(f"**Addresses it would add** · {result.brute_force_added:,}")
    if result.added_keys.empty:
        st.caption("None.")
    else:
        st.dataframe(result.added_keys, hide_index=True, width="stretch")
