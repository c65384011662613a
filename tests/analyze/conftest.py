"""Analyst fixtures: the bundled local model, assembled once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.analyze.local import bundled_model_path


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding the bundled model, assembled once per session."""
    directory = tmp_path_factory.mktemp("models")
    bundled_model_path(directory)
    return directory
