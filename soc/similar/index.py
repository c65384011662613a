"""A FAISS inner-product index of incident embeddings, keyed by incident id.

Exact search (``IndexFlatIP`` under ``IndexIDMap2``) up to ``exact_max`` vectors;
above that an inverted-file index (``IndexIVFFlat``), rebuilt from the stored
vectors the moment the count crosses ``exact_max`` (and back to exact below half
of it). Ids map both ways in either mode (``IndexIDMap2``'s id map; the IVF's
hash-table direct map), so an upsert replaces a vector in place of appending a
duplicate and a removal is immediate.

Why IVF and not HNSW: measured on realistic incident embeddings (mixtures of
two real embeddings of same-kind incident descriptions plus small noise, see
``bench/bench_similar.py``), 1,000,000 vectors, 500 held-out queries, k = 5,
single-query latency on the 2-core machine this runs on, recall against exact
search. IVF figures from the benchmark on a quiet machine; HNSW's from the same
data while other jobs shared the cores (its build would be ~2x faster quiet):

=====================  ========  ========  ========  =====================
index                  recall@5  p50       p99       build
=====================  ========  ========  ========  =====================
exact (IndexFlatIP)    1         140 ms    --        --
IVF1024, nprobe 8      0.988     0.75 ms   --        15 s (train + add)
IVF1024, nprobe 16     0.998     1.4 ms    2.3 ms    (the default)
IVF2048, nprobe 16     0.999     0.73 ms   5.0 ms    71 s (loaded machine)
HNSW32, efSearch 64    0.994     0.32 ms   3.4 ms    175 s (loaded machine)
HNSW32, efSearch 128   0.998     0.51 ms   4.8 ms
=====================  ========  ========  ========  =====================

Both meet the goal (p50 <= 5 ms at recall@5 >= 0.95) several times over. HNSW
answers a little faster, but builds ~10x slower (at 100,000: 7.8 s against
0.6 s) and cannot delete: FAISS's HNSW has no ``remove_ids``, and every update
of a campaign that goes on re-embeds its incident, so HNSW would pile up
tombstones to filter at search time and need periodic full rebuilds. The IVF
removes by id through its direct map, rebuilds in seconds when it grows, and its
recall is one number (``nprobe``). Lists: the power of two nearest sqrt(n)
(1,024 at 1,000,000; FAISS's k-means on 64 points per list), nprobe 16.

Vectors are unit length (cosine = inner product); scores are cosines.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import faiss as _faiss
import numpy as np

from soc.similar.base import SimilarError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

#: FAISS's bundled stub lacks much of its SWIG API (DirectMap, PyCallbackIOWriter,
#: the IVF internals): used untyped.
faiss: Any = _faiss

#: Bumped when the file layout changes: an older file is rebuilt, not misread.
FORMAT_VERSION: Final = 1

EXACT: Final = "exact"
APPROXIMATE: Final = "approximate"

#: Training points per IVF list (more costs training time, for little recall).
TRAIN_POINTS_PER_LIST: Final = 64
#: Fewer points per list than this and FAISS's k-means warns (and clusters poorly).
MIN_POINTS_PER_LIST: Final = 39


@dataclass(frozen=True, slots=True)
class IvfSettings:
    """How the approximate index is shaped: lists per vector count, lists probed per query.

    ``nlist`` is the power of two nearest ``sqrt(n) * lists_per_sqrt`` (within
    ``min_lists`` and ``max_lists``), chosen when the index is (re)built; it is
    rebuilt again when the count has grown ``regrow`` times since.
    """

    lists_per_sqrt: float = 1.0
    min_lists: int = 64
    max_lists: int = 4096
    nprobe: int = 16
    regrow: float = 4.0

    def nlist_for(self, n: int) -> int:
        """The number of inverted lists for ``n`` vectors."""
        target = max(1.0, math.sqrt(max(n, 1)) * self.lists_per_sqrt)
        power = 2 ** round(math.log2(target))
        return int(min(self.max_lists, max(self.min_lists, power)))


class VectorIndex:
    """Incident id → unit vector, searched by inner product; exact or IVF by size.

    Not thread-safe: its owner (:class:`soc.similar.memory.IncidentMemory`)
    holds a lock around every call.
    """

    def __init__(
        self,
        dimension: int,
        *,
        exact_max: int = 50_000,
        ivf: IvfSettings | None = None,
        model: str = "",
    ) -> None:
        if dimension < 1 or exact_max < 1:
            raise ValueError("dimension and exact_max must be at least 1")
        self.dimension = dimension
        self.exact_max = exact_max
        self.ivf = ivf or IvfSettings()
        #: The embedding model the vectors come from (recorded in the sidecar).
        self.model = model
        #: The owner's mark of how far the index follows the store (recorded in the sidecar).
        self.watermark: dict[str, Any] = {}
        # id → the owner's tag of its vector (a digest of what was embedded; b"": none).
        self._tags: dict[int, bytes] = {}
        self._built_at = 0  # the count the IVF was built for (0: exact)
        self._index: Any = self._exact_index()

    # --- what it holds -------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"exact"`` or ``"approximate"``."""
        return APPROXIMATE if self._built_at else EXACT

    @property
    def nlist(self) -> int:
        """The IVF's list count (0 when exact)."""
        return int(self._index.nlist) if self._built_at else 0

    @property
    def nprobe(self) -> int:
        """Lists searched per query (0 when exact)."""
        return int(self._index.nprobe) if self._built_at else 0

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self._built_at:
            self._index.nprobe = max(1, min(int(value), self.nlist))

    def __len__(self) -> int:
        return len(self._tags)

    def __contains__(self, incident_id: object) -> bool:
        return incident_id in self._tags

    def ids(self) -> list[int]:
        """Every id held, ascending."""
        return sorted(self._tags)

    def tag(self, incident_id: int) -> bytes | None:
        """The tag ``incident_id``'s vector was upserted with (b"" for none), None if not held."""
        return self._tags.get(incident_id)

    def vector(self, incident_id: int) -> NDArray[np.float32] | None:
        """The stored vector of ``incident_id``, or None."""
        if incident_id not in self._tags:
            return None
        return np.asarray(self._index.reconstruct(int(incident_id)), dtype=np.float32)

    def memory_bytes(self) -> int:
        """What the index holds in memory, estimated from its parts.

        Exact: the vectors and ids FAISS stores, and the centroids of an IVF; an
        estimate for the hash maps from id to place (FAISS's, ~40 bytes an entry)
        and for the Python dict of ids and tags (its table, an int and a 16-byte
        bytes object per id).
        """
        n = len(self._tags)
        stored = n * (self.dimension * 4 + 8) + self.nlist * self.dimension * 4
        return stored + n * 40 + sys.getsizeof(self._tags) + n * (28 + 49)

    # --- changing it -------------------------------------------------------------------
    def upsert(
        self, ids: Sequence[int], vectors: ArrayLike, tags: Sequence[bytes] | None = None
    ) -> None:
        """Add or replace the vectors of ``ids`` (rows of ``vectors``, unit length).

        ``tags``: one per id, kept and saved with it (the owner's digest of what
        the vector encodes, so that an unchanged text is not embedded again).
        """
        keys = _as_ids(ids)
        if tags is not None and len(tags) != len(keys):
            raise ValueError("one tag per id")
        rows = self._rows(vectors)
        if len(keys) != len(rows):
            raise ValueError("one vector per id")
        if len(keys) == 0:
            return
        # The last row of an id given twice wins.
        last = {int(k): n for n, k in enumerate(keys)}
        if len(last) != len(keys):
            picked = np.fromiter(last.values(), dtype=np.int64)
            keys, rows = keys[picked], rows[picked]
        if not self._built_at and len(self._tags.keys() | last.keys()) > self.exact_max:
            # Crossing exact_max: build the IVF from everything at once rather
            # than growing the flat index first.
            old_ids, old_vectors = self._everything()
            kept = ~np.isin(old_ids, keys)
            self._keep_tags(last, tags)
            self._install(
                np.concatenate([old_ids[kept], keys]), np.concatenate([old_vectors[kept], rows])
            )
            return
        known = [k for k in last if k in self._tags]
        if known:
            # (FAISS's wrapper picks the selector: an array for the IVF's hash-table
            # direct map, O(len(ids)); a hash set for the id map.)
            self._index.remove_ids(_as_ids(known))
        self._index.add_with_ids(rows, keys)
        self._keep_tags(last, tags)
        self._reshape()

    def _keep_tags(self, rows: dict[int, int], tags: Sequence[bytes] | None) -> None:
        for key, row in rows.items():
            self._tags[key] = bytes(tags[row]) if tags is not None else b""

    def remove(self, ids: Iterable[int]) -> int:
        """Remove these ids (those held); returns how many went."""
        gone = [int(i) for i in set(ids) if i in self._tags]
        if not gone:
            return 0
        self._index.remove_ids(_as_ids(gone))
        for incident_id in gone:
            del self._tags[incident_id]
        self._reshape()
        return len(gone)

    def clear(self) -> None:
        """Hold nothing (and search exactly again)."""
        self._tags.clear()
        self._built_at = 0
        self._index = self._exact_index()

    def rebuild(self) -> None:
        """Rebuild the FAISS structure from the held vectors (retrains an IVF)."""
        ids, vectors = self._everything()
        self._install(ids, vectors)

    # --- searching ---------------------------------------------------------------------
    def search(
        self, vector: ArrayLike, k: int, *, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float]]:
        """The ``k`` ids nearest to one vector, best first, as (id, cosine); not ``exclude``."""
        rows = self._rows(vector)
        if len(rows) != 1:
            raise ValueError("search takes one vector; use search_batch for several")
        return self.search_batch(rows, k, exclude=exclude)[0]

    def search_batch(
        self, vectors: ArrayLike, k: int, *, exclude: Iterable[int] = ()
    ) -> list[list[tuple[int, float]]]:
        """:meth:`search` for each row of ``vectors``."""
        rows = self._rows(vectors)
        skip = {int(i) for i in exclude}
        if k < 1 or not self._tags or len(rows) == 0:
            return [[] for _ in range(len(rows))]
        wanted = min(k + len(skip & self._tags.keys()), len(self._tags))
        scores, found = self._index.search(rows, wanted)
        out: list[list[tuple[int, float]]] = []
        for row_scores, row_ids in zip(scores, found, strict=True):
            hits = [
                (int(i), float(s))
                for i, s in zip(row_ids, row_scores, strict=True)
                if i >= 0 and int(i) not in skip
            ]
            out.append(hits[:k])
        return out

    # --- on disk -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the index to ``path`` and its sidecar beside it, each atomically, mode 0600.

        The tags go to ``<path>.tags.npy``. The sidecar (``<path>.json``),
        written last, records the model, dimension, count, mode, the owner's
        watermark, the format version and both files' sizes (a crash between the
        renames is seen at load, not misread).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = _write_atomically(
            path, lambda f: faiss.write_index(self._index, faiss.PyCallbackIOWriter(f.write))
        )
        table = np.array(list(self._tags.items()), dtype=_TAG_TYPE)
        tags_size = _write_atomically(tags_path(path), lambda f: np.save(f, table))
        meta = {
            "format": FORMAT_VERSION,
            "model": self.model,
            "dimension": self.dimension,
            "count": len(self._tags),
            "mode": self.mode,
            "built_at": self._built_at,
            "exact_max": self.exact_max,
            "index_bytes": size,
            "tags_bytes": tags_size,
            "watermark": self.watermark,
        }
        text = json.dumps(meta, sort_keys=True, indent=2) + "\n"
        _write_atomically(sidecar_path(path), lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        model: str,
        dimension: int,
        exact_max: int = 50_000,
        ivf: IvfSettings | None = None,
    ) -> VectorIndex:
        """The index saved at ``path``; :class:`SimilarError` if it is not one for this model.

        Refused (the caller rebuilds): no or unreadable sidecar, another format
        version, another model or dimension, an index file that is not the one
        the sidecar describes.
        """
        path = Path(path)
        where = str(path)
        try:
            meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SimilarError("no sidecar file beside the index", where=where) from None
        except (OSError, ValueError) as exc:
            raise SimilarError(f"unreadable sidecar: {exc}", where=where) from exc
        if not isinstance(meta, dict):
            raise SimilarError("the sidecar is not a JSON object", where=where)
        if meta.get("format") != FORMAT_VERSION:
            raise SimilarError(
                f"index format {meta.get('format')!r}, this program reads {FORMAT_VERSION}",
                where=where,
            )
        if meta.get("model") != model:
            raise SimilarError(
                f"built with model {meta.get('model')!r}, configured model is {model!r}",
                where=where,
            )
        if meta.get("dimension") != dimension:
            raise SimilarError(
                f"vectors of dimension {meta.get('dimension')!r}, the model makes {dimension}",
                where=where,
            )
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise SimilarError(f"cannot read the index: {exc.strerror}", where=where) from exc
        if size != meta.get("index_bytes"):
            raise SimilarError("the index file is not the one its sidecar describes", where=where)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise SimilarError(f"cannot read the index: {exc}", where=where) from exc
        if index.d != dimension or index.ntotal != meta.get("count"):
            raise SimilarError("the index does not match its sidecar", where=where)
        loaded = cls(dimension, exact_max=exact_max, ivf=ivf, model=model)
        watermark = meta.get("watermark")
        loaded.watermark = dict(watermark) if isinstance(watermark, dict) else {}
        if isinstance(index, faiss.IndexIVF):
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # stored, but be sure
            index.nprobe = min(loaded.ivf.nprobe, index.nlist)
            loaded._built_at = max(1, int(meta.get("built_at") or index.ntotal))
            loaded._index = index
            loaded._tags = dict.fromkeys(_ivf_ids(index), b"")
        elif isinstance(index, faiss.IndexIDMap2):
            loaded._index = index
            ids = faiss.vector_to_array(index.id_map)
            loaded._tags = dict.fromkeys((int(i) for i in ids), b"")
        else:
            raise SimilarError("neither an exact (IDMap2) nor an IVF index", where=where)
        if len(loaded._tags) != index.ntotal:
            raise SimilarError("the index holds an id twice", where=where)
        loaded._load_tags(tags_path(path), meta.get("tags_bytes"))
        loaded._reshape()  # exact_max may have changed since it was saved
        return loaded

    def _load_tags(self, path: Path, size: object) -> None:
        """The saved tags, when the file is the one the sidecar describes (else none).

        Tags only spare re-embedding: without them the owner embeds again.
        """
        try:
            if path.stat().st_size != size:
                return
            table = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return
        if table.dtype != _TAG_TYPE:
            return
        for incident_id, tag in zip(table["id"].tolist(), table["tag"].tolist(), strict=True):
            if incident_id in self._tags:
                self._tags[incident_id] = tag

    # --- the FAISS structure -----------------------------------------------------------
    def _exact_index(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def _reshape(self) -> None:
        """Switch exact ↔ approximate, or regrow the IVF, when the count says so."""
        n = len(self._tags)
        if not self._built_at:
            if n > self.exact_max:
                self.rebuild()
        elif n <= self.exact_max // 2 or n >= self._built_at * self.ivf.regrow:
            self.rebuild()

    def _everything(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Every held (id, vector), from whichever structure holds them."""
        if self._built_at:
            return _ivf_contents(self._index, self.dimension)
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        flat = faiss.downcast_index(self._index.index)
        vectors = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else self._rows([])
        return ids, np.ascontiguousarray(vectors, dtype=np.float32)

    def _install(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        n = len(ids)
        if n <= self.exact_max:
            index = self._exact_index()
            if n:
                index.add_with_ids(vectors, ids)
            self._index, self._built_at = index, 0
            return
        # At least MIN_POINTS_PER_LIST vectors per list (a small exact_max in a test).
        nlist = max(1, min(self.ivf.nlist_for(n), n // MIN_POINTS_PER_LIST))
        # (The Python wrapper keeps the quantizer alive as long as the IVF.)
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        # A fixed seed: the same vectors give the same lists (and the same answers).
        ivf.cp.seed = 1234
        sample = n if n <= nlist * TRAIN_POINTS_PER_LIST else nlist * TRAIN_POINTS_PER_LIST
        picked = (
            np.random.default_rng(1234).choice(n, sample, replace=False) if sample < n else None
        )
        ivf.train(vectors if picked is None else vectors[np.sort(picked)])
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.add_with_ids(vectors, ids)
        ivf.nprobe = min(self.ivf.nprobe, nlist)
        self._index, self._built_at = ivf, n

    def _rows(self, vectors: ArrayLike) -> NDArray[np.float32]:
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        if rows.size == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[1] != self.dimension:
            raise ValueError(f"vectors must have {self.dimension} columns, got {rows.shape}")
        return rows


def sidecar_path(path: Path) -> Path:
    """Where the sidecar of the index at ``path`` is kept: ``<path>.json``."""
    return path.with_name(path.name + ".json")


def tags_path(path: Path) -> Path:
    """Where the tags of the index at ``path`` are kept: ``<path>.tags.npy``."""
    return path.with_name(path.name + ".tags.npy")


#: The tags file: one (id, 16-byte tag) row per vector.
_TAG_TYPE: Final = np.dtype([("id", "<i8"), ("tag", "S16")])


def _as_ids(ids: Iterable[int]) -> NDArray[np.int64]:
    return np.ascontiguousarray(np.fromiter((int(i) for i in ids), dtype=np.int64))


def _ivf_ids(index: Any) -> Iterable[int]:
    invlists = index.invlists
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size:
            ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)
            yield from (int(i) for i in ids)


def _ivf_contents(index: Any, dimension: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    invlists = index.invlists
    all_ids: list[NDArray[np.int64]] = []
    all_vectors: list[NDArray[np.float32]] = []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if not size:
            continue
        ids = np.array(faiss.rev_swig_ptr(invlists.get_ids(list_no), size), dtype=np.int64)
        codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * invlists.code_size)
        vectors = np.array(codes, dtype=np.uint8).view(np.float32).reshape(size, dimension)
        all_ids.append(ids)
        all_vectors.append(vectors)
    if not all_ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32)
    return np.concatenate(all_ids), np.ascontiguousarray(np.concatenate(all_vectors))


def _write_atomically(path: Path, write: Any) -> int:
    """Write ``path`` through a private temporary file and a rename; returns its size."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        size = Path(tmp).stat().st_size
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size


__all__ = [
    "APPROXIMATE",
    "EXACT",
    "FORMAT_VERSION",
    "IvfSettings",
    "VectorIndex",
    "sidecar_path",
    "tags_path",
]
