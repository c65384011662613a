"""The command center's test fixtures: a private store and config for each AppTest run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config as st_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private store and config, the offline analyst, loopback address, no cached runtime."""
    monkeypatch.chdir(ROOT)  # the bundled samples are found relative to the project
    config = tmp_path / "soc.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("SOC_CONFIG", str(config))
    monkeypatch.setenv("SOC_STORE__URL", f"sqlite:///{tmp_path}/soc.db")
    monkeypatch.setenv("SOC_ANALYZE__CHAIN", '["offline"]')
    monkeypatch.setenv("SOC_APP_REPLAY_SPEED", "0")
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    address = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")
    st.cache_resource.clear()
    try:
        yield tmp_path
    finally:
        st.cache_resource.clear()
        st_config.set_option("server.address", address)
