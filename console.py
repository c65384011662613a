"""The command center's pages, served by ``app.py`` (run ``streamlit run app.py``).

The process's one background runtime (:func:`soc.app.runtime.process_runtime`)
is started by the server with the process, shared by every browser tab and
running while none is open. :func:`soc.app.auth.gate` runs first on every page
run; the navigation is always declared, so no page of ``pages/`` runs before it.
"""

from __future__ import annotations

import streamlit as st

from soc.app import auth
from soc.app.runtime import Runtime, close_process_runtime, process_runtime
from soc.app.views import RUNTIME_KEY

st.set_page_config(layout="wide", page_title="SOC Command Center", page_icon="🛡️")


def _close_runtime(_runtime: Runtime) -> None:
    close_process_runtime()


@st.cache_resource(show_spinner="Starting the engine…", on_release=_close_runtime)
def get_runtime() -> Runtime:
    """The process's one runtime (already started by the server; started here otherwise)."""
    return process_runtime()


def _signed_out() -> None:
    """The only page before sign-in: the gate has said what to do."""


if not auth.gate():
    st.navigation(
        [st.Page(_signed_out, title="Sign in", url_path="", default=True)], position="hidden"
    ).run()
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
        st.Page("pages/response.py", title="Response", icon="🧯", url_path="response"),
        st.Page("pages/replay_tuning.py", title="Replay & tuning", icon="🎛️", url_path="replay"),
        st.Page("pages/settings.py", title="Settings", icon="⚙️", url_path="settings"),
    ]
)
page.run()
