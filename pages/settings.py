"""Settings: what the running command center is configured with (API keys: present or absent)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from soc import text
from soc.app import memory, views

runtime = views.runtime_from(st.session_state)
overview = views.settings_overview(runtime.settings)

st.title("Settings")
st.caption(
    f"Configuration file: {text.literal_markdown(overview['file'])} · store: "
    f"{text.literal_markdown(overview['store'])}. Change soc.toml (or SOC_… environment "
    "variables) and restart; API keys go in the environment or .streamlit/secrets.toml."
)

st.subheader("Sources")
if overview["sources"]:
    st.dataframe(
        pd.DataFrame(
            [{k: text.plain(v, 500) for k, v in source.items()} for source in overview["sources"]]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No [[sources]] configured: the command center replays the bundled sample logs.")

analyst_col, budget_col = st.columns(2)
with analyst_col:
    st.subheader("Analyst")
    st.dataframe(
        pd.DataFrame(
            [
                {"setting": "provider chain", "value": " → ".join(overview["chain"])},
                {"setting": "local model", "value": overview["local_model_path"]},
                {"setting": "OpenAI-compatible server", "value": overview["openai_compatible"]},
                {"setting": "Gemini model", "value": overview["gemini_model"]},
                {"setting": "batch reports", "value": overview["batches"]},
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    server_rows = views.model_server_rows(runtime)
    if server_rows is not None:
        st.markdown("**Local model server** (its own process: a crash never takes this app down)")
        st.dataframe(pd.DataFrame(server_rows), hide_index=True, width="stretch")
with budget_col:
    st.subheader("Budget")
    budget = overview["budget"]
    tiles = st.columns(3)
    tiles[0].metric("Model calls / hour", f"{budget['max_calls_per_hour']:,}")
    tiles[1].metric("Tokens / day", f"{budget['max_tokens_per_day']:,}")
    tiles[2].metric("Dollars / day", f"${budget['max_cost_usd_per_day']:,.2f}")

allow_col, keys_col = st.columns(2)
with allow_col:
    st.subheader("Allow-list")
    if overview["allow_list"]:
        st.dataframe(
            pd.DataFrame({"address or network": overview["allow_list"]}),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("Empty: no address is exempt (the host's own addresses are, when following).")
with keys_col:
    st.subheader("API keys")
    st.dataframe(
        pd.DataFrame(
            [{"secret": name, "state": state} for name, state in overview["secrets"].items()]
        ),
        hide_index=True,
        width="stretch",
    )

memory_col, intel_col = st.columns(2)
with memory_col:
    st.subheader("Incident memory")
    if runtime.memory is None:
        st.caption("Turned off ([similar] enabled = false).")
    else:
        st.dataframe(memory.memory_rows(runtime.memory), hide_index=True, width="stretch")
with intel_col:
    st.subheader("Threat intel feeds")
    if runtime.intel is None:
        st.caption("No [[intel]] feed configured.")
    else:
        st.dataframe(memory.feed_rows(runtime.intel), hide_index=True, width="stretch")
