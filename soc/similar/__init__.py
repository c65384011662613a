"""Incident memory: past incidents embedded (sentence-transformers) and searched (FAISS).

``IncidentMemory`` is the service the engine, the analysis worker and the pages
use; the modules under it do one job each: the configuration
(:mod:`~soc.similar.base`), the description that gets embedded
(:mod:`~soc.similar.describe`), the model (:mod:`~soc.similar.embedder`) and the
index (:mod:`~soc.similar.index`).
"""

from __future__ import annotations

from soc.similar.base import SimilarConfig, SimilarError, index_path_for
from soc.similar.describe import describe
from soc.similar.embedder import Embedder
from soc.similar.index import IvfSettings, VectorIndex
from soc.similar.memory import IncidentMemory, Match

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
