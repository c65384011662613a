"""The SOC Command Center's server: ``streamlit run app.py`` (from the project directory).

Streamlit serves ``console.py`` (the pages) through :mod:`soc.app.server`: host
and origin checks, sign-in and sessions, upload limits and security headers in
front of every request, and the engine started with the server process, before
anyone signs in. A server that would expose the console beyond this machine
without sign-in (or TLS) refuses to start. See the README's Security section.
"""

from __future__ import annotations

import streamlit as st

from soc.app import server

app = st.App("console.py", **server.app_options())
