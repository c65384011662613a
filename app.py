"""The SOC Command Center: ``streamlit run app.py`` (from the project directory).

One background runtime per server process (``st.cache_resource``), shared by
every browser tab and running while none is open. Without ``[[sources]]`` in
``soc.toml`` it replays the bundled sample logs (``SOC_APP_REPLAY_SPEED``: event
seconds per wall second, 0 = as fast as possible); with sources it follows them.
"""

from __future__ import annotations

import os

import streamlit as st

from soc.app import auth
from soc.app.runtime import Runtime
from soc.app.views import RUNTIME_KEY
from soc.config import load_settings

st.set_page_config(layout="wide", page_title="SOC Command Center", page_icon="🛡️")


def _close_runtime(runtime: Runtime) -> None:
    runtime.close()


@st.cache_resource(show_spinner="Starting the engine…", on_release=_close_runtime)
def get_runtime() -> Runtime:
    """The process's one runtime: replaying the samples, or following the configured sources."""
    settings = load_settings()
    runtime = Runtime(settings)
    try:
        if settings.sources:
            runtime.follow()
        else:
            runtime.replay_samples(speed=float(os.environ.get("SOC_APP_REPLAY_SPEED", "0")))
    except BaseException:
        runtime.close()
        raise
    return runtime


if not auth.gate():
    st.stop()

st.session_state[RUNTIME_KEY] = get_runtime()

page = st.navigation(
    [
        st.Page(
            "pages/command_center.py",
            title="Command Center",
            icon="🛰️",
            url_path="",
            default=True,
        ),
        st.Page("pages/incidents.py", title="Incidents", icon="🗂️", url_path="incidents"),
        st.Page("pages/replay_tuning.py", title="Replay & tuning", icon="🎛️", url_path="replay"),
        st.Page("pages/settings.py", title="Settings", icon="⚙️", url_path="settings"),
    ]
)
page.run()
