"""[similar] configuration: refused values say which key, and where the index lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soc.errors import ConfigError
from soc.similar import SimilarConfig, index_path_for


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"model": 3}, "model"),
        ({"exact_max": 0}, "exact_max"),
        ({"exact_max": True}, "exact_max"),
        ({"k": 2.5}, "k"),
        ({"reuse_min_score": 0}, "reuse_min_score"),
        ({"reuse_min_score": 1.5}, "reuse_min_score"),
        ({"reuse_max_age_days": -1}, "reuse_max_age_days"),
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": float("nan")}, "retention_days"),
    ],
)
def test_refused_values_name_their_key(values: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SimilarConfig(**values)
    assert caught.value.where == where


def test_defaults() -> None:
    config = SimilarConfig()
    assert (config.enabled, config.exact_max, config.k) == (True, 50_000, 5)
    assert (config.reuse_min_score, config.reuse_max_age_days) == (0.97, 7.0)
    assert config.retention_days == 365.0


def test_index_path_beside_a_sqlite_store() -> None:
    config = SimilarConfig()
    assert index_path_for("sqlite:///data/soc.db", config) == Path("data/soc.similar.faiss")
    assert index_path_for("sqlite:////var/lib/soc/main.sqlite", config) == Path(
        "/var/lib/soc/main.similar.faiss"
    )


def test_in_memory_sqlite_keeps_the_index_in_memory() -> None:
    config = SimilarConfig()
    assert index_path_for("sqlite://", config) is None
    assert index_path_for("sqlite:///:memory:", config) is None
    assert index_path_for("sqlite:///file:db?mode=memory&uri=true", config) is None


def test_server_stores_get_one_index_per_database() -> None:
    config = SimilarConfig()
    url = "postgresql+psycopg2://soc:secret@db.example:5432/soc_prod"
    assert index_path_for(url, config) == Path("data/similar-soc_prod.faiss")
    odd = "postgresql+psycopg2://soc@db.example/../../etc"
    assert index_path_for(odd, config) == Path("data/similar-etc.faiss")


def test_configured_path_wins() -> None:
    config = SimilarConfig(index_path="/srv/soc/memory.faiss")
    assert index_path_for("sqlite://", config) == Path("/srv/soc/memory.faiss")


def test_not_a_url() -> None:
    with pytest.raises(ConfigError):
        index_path_for("not a url", SimilarConfig())
