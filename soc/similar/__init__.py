"""Incident memory: past incidents embedded (sentence-transformers) and searched (FAISS).

``IncidentMemory`` is the service the engine, the analysis worker and the pages
use; the modules under it do one job each: the configuration
(:mod:`~soc.similar.base`), the description that gets embedded
(:mod:`~soc.similar.describe`), the model (:mod:`~soc.similar.embedder`) and the
index (:mod:`~soc.similar.index`).

All but the configuration are imported on first use (numpy, FAISS), so that
reading the configuration does not load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from soc.registry import lazy_attributes
from soc.similar.base import SimilarConfig, SimilarError, index_path_for

# Eager: the function shares its module's name, which a first import would bind here.
from soc.similar.describe import describe

if TYPE_CHECKING:
    from soc.similar.embedder import Embedder
    from soc.similar.index import IvfSettings, VectorIndex
    from soc.similar.memory import IncidentMemory, Match

__getattr__ = lazy_attributes(
    __name__,
    {
        "Embedder": "soc.similar.embedder",
        "IvfSettings": "soc.similar.index",
        "VectorIndex": "soc.similar.index",
        "IncidentMemory": "soc.similar.memory",
        "Match": "soc.similar.memory",
    },
)


__all__ = [
    "Embedder",
    "IncidentMemory",
    "IvfSettings",
    "Match",
    "SimilarConfig",
    "SimilarError",
    "VectorIndex",
    "describe",
    "index_path_for",
]
