"""VectorIndex: ids both ways, upserts replace, exact turns approximate, saves are checked."""

from __future__ import annotations

import json
import random
import stat
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from soc.similar import Embedder, SimilarError, VectorIndex, describe
from soc.similar.index import (
    APPROXIMATE,
    EXACT,
    FORMAT_VERSION,
    IvfSettings,
    sidecar_path,
    tags_path,
)
from tests.similar.builders import T0, brute_force, port_scan, spray, web_scan

DIM = 32


def _unit(rows: int, dim: int = DIM, seed: int = 0) -> NDArray[np.float32]:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _exact(
    vectors: NDArray[np.float32], ids: list[int], query: NDArray[np.float32], k: int
) -> list[int]:
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[n] for n in order]


def test_upsert_replaces_and_search_finds() -> None:
    index = VectorIndex(DIM, model="m")
    vectors = _unit(10)
    index.upsert(list(range(100, 110)), vectors)
    assert len(index) == 10
    ((found, score),) = index.search(vectors[3], 1)
    assert found == 103 and score == pytest.approx(1.0, abs=1e-5)
    # The same id again: replaced, not duplicated.
    index.upsert([103], vectors[7:8])
    assert len(index) == 10
    top = index.search(vectors[7], 2)
    assert {i for i, _ in top} == {103, 107}
    assert np.allclose(index.vector(103), vectors[7])  # type: ignore[arg-type]
    assert index.vector(999) is None


def test_an_id_twice_in_one_upsert_keeps_the_last() -> None:
    index = VectorIndex(DIM)
    vectors = _unit(2)
    index.upsert([5, 5], vectors)
    assert len(index) == 1
    assert np.allclose(index.vector(5), vectors[1])  # type: ignore[arg-type]


def test_remove_and_exclude() -> None:
    index = VectorIndex(DIM)
    vectors = _unit(20)
    index.upsert(list(range(20)), vectors)
    assert index.remove([3, 4, 999]) == 2
    assert 3 not in index and len(index) == 18
    assert all(i != 3 for i, _ in index.search(vectors[3], 18))
    hits = index.search(vectors[5], 3, exclude=[5])
    assert len(hits) == 3 and 5 not in [i for i, _ in hits]
    assert index.search(vectors[5], 100) == index.search(vectors[5], 18)  # k > count


def test_wrong_shapes_are_refused() -> None:
    index = VectorIndex(DIM)
    with pytest.raises(ValueError, match="columns"):
        index.upsert([1], _unit(1, dim=DIM + 1))
    with pytest.raises(ValueError, match="one vector per id"):
        index.upsert([1, 2], _unit(1))
    with pytest.raises(ValueError, match="one vector"):
        index.search(_unit(2), 1)


def test_exact_turns_approximate_and_back_keeping_every_vector() -> None:
    index = VectorIndex(DIM, exact_max=400, ivf=IvfSettings(nprobe=8))
    vectors = _unit(1000, seed=1)
    index.upsert(list(range(400)), vectors[:400])
    assert index.mode == EXACT
    index.upsert(list(range(400, 1000)), vectors[400:])
    assert index.mode == APPROXIMATE
    assert 1 <= index.nlist <= 1000 // 39 and index.nprobe == 8
    assert len(index) == 1000 and index.ids() == list(range(1000))
    assert np.allclose(index.vector(777), vectors[777])  # type: ignore[arg-type]
    # Updates and removals work on the IVF too.
    index.upsert([777], vectors[0:1])
    assert np.allclose(index.vector(777), vectors[0])  # type: ignore[arg-type]
    index.remove(range(250, 1000))
    assert index.mode == APPROXIMATE and len(index) == 250  # above half of exact_max
    index.remove(range(100, 250))  # below half of exact_max: exact again
    assert index.mode == EXACT and index.ids() == list(range(100))
    assert np.allclose(index.vector(42), vectors[42])  # type: ignore[arg-type]


def test_approximate_recall_on_incident_embeddings(embedder: Embedder) -> None:
    """Recall@5 of the IVF against exact search, on vectors made from real embeddings."""
    rng = random.Random(5)
    users = [["root"], ["admin", "test"], ["oracle", "postgres", "mysql"], ["git", "deploy"]]
    paths = [["/wp-login.php", "/xmlrpc.php"], ["/.env", "/.git/config"], ["/phpmyadmin/"]]
    ports = [[22, 23], [80, 443, 8080], [3306, 5432, 1433], [445, 3389]]
    texts = []
    for n in range(64):
        at = T0 + n * 3600
        made = [
            spray(f"198.51.100.{n}", [*rng.choice(users), f"u{n % 7}"], at=at),
            brute_force(f"203.0.113.{n}", rng.choice(users), at=at, failures=20 + 37 * n),
            web_scan(f"192.0.2.{n}", [*rng.choice(paths), f"/p{n % 5}.php"], at=at),
            port_scan(f"198.51.100.{n}", [*rng.choice(ports), 1000 + n % 9], at=at),
        ][n % 4]
        texts.append(describe(made))
    base = embedder.encode(texts)
    # 3,000 incidents: mixtures of two same-kind embeddings plus small noise.
    gen = np.random.default_rng(3)
    first = gen.integers(0, len(base), 3000)
    second = (first + 4 * gen.integers(1, 16, 3000)) % len(base)  # same n % 4: same kind
    weight = gen.uniform(0.5, 1.0, (3000, 1)).astype(np.float32)
    vectors = weight * base[first] + (1 - weight) * base[second]
    vectors += gen.normal(0, 0.01, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = list(range(1, 3001))
    index = VectorIndex(embedder.dimension, exact_max=1000)
    index.upsert(ids, vectors)
    assert index.mode == APPROXIMATE
    queries = vectors[gen.integers(0, 3000, 200)] + gen.normal(0, 0.01, (200, base.shape[1]))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    recall = _recall(index, vectors, ids, queries)
    index.nprobe = 1
    one = _recall(index, vectors, ids, queries)
    print(f"recall@5 over 3,000, IVF{index.nlist}: nprobe 16 {recall:.3f}, nprobe 1 {one:.3f}")
    assert recall >= 0.95
    assert one <= recall


def _recall(
    index: VectorIndex, vectors: NDArray[np.float32], ids: list[int], queries: NDArray[np.float32]
) -> float:
    found = index.search_batch(queries, 5)
    return float(
        np.mean(
            [
                len({i for i, _ in hits} & set(_exact(vectors, ids, q, 5))) / 5
                for q, hits in zip(queries, found, strict=True)
            ]
        )
    )


def test_save_and_load_give_the_same_answers(tmp_path: Path) -> None:
    for exact_max in (10_000, 300):  # exact, then IVF
        index = VectorIndex(DIM, exact_max=exact_max, model="mini")
        vectors = _unit(600, seed=2)
        index.upsert(list(range(1, 601)), vectors)
        index.watermark = {"updated_at": 12.5, "max_id": 600}
        path = tmp_path / f"i{exact_max}.faiss"
        index.save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(sidecar_path(path).stat().st_mode) == 0o600
        meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        assert meta["format"] == FORMAT_VERSION
        assert (meta["model"], meta["dimension"], meta["count"]) == ("mini", DIM, 600)
        assert meta["watermark"] == {"updated_at": 12.5, "max_id": 600}
        loaded = VectorIndex.load(path, model="mini", dimension=DIM, exact_max=exact_max)
        assert loaded.mode == index.mode and loaded.ids() == index.ids()
        assert loaded.watermark == index.watermark
        for row in (0, 17, 599):
            assert loaded.search(vectors[row], 5) == index.search(vectors[row], 5)
        loaded.upsert([1], vectors[2:3])  # still usable for updates
        assert len(loaded) == 600
        assert not list(tmp_path.glob("*.tmp"))


def test_load_refuses_what_is_not_its_own(tmp_path: Path) -> None:
    index = VectorIndex(DIM, model="mini")
    index.upsert([1, 2], _unit(2))
    path = tmp_path / "i.faiss"
    index.save(path)
    with pytest.raises(SimilarError, match="model"):
        VectorIndex.load(path, model="other", dimension=DIM)
    with pytest.raises(SimilarError, match="dimension"):
        VectorIndex.load(path, model="mini", dimension=DIM * 2)
    meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    sidecar_path(path).write_text(json.dumps({**meta, "format": 99}), encoding="utf-8")
    with pytest.raises(SimilarError, match="format"):
        VectorIndex.load(path, model="mini", dimension=DIM)
    # A crash between the two renames: the index is not the one the sidecar describes.
    sidecar_path(path).write_text(json.dumps(meta), encoding="utf-8")
    index.upsert([3], _unit(1, seed=9))
    index.save(tmp_path / "other.faiss")
    (tmp_path / "other.faiss").replace(path)
    with pytest.raises(SimilarError, match="sidecar"):
        VectorIndex.load(path, model="mini", dimension=DIM)
    sidecar_path(path).write_text("{not json", encoding="utf-8")
    with pytest.raises(SimilarError, match="unreadable"):
        VectorIndex.load(path, model="mini", dimension=DIM)
    sidecar_path(path).unlink()
    with pytest.raises(SimilarError, match="no sidecar"):
        VectorIndex.load(path, model="mini", dimension=DIM)


def test_tags_follow_their_vectors_and_survive_a_save(tmp_path: Path) -> None:
    for exact_max in (10_000, 50):  # exact, then IVF
        index = VectorIndex(DIM, exact_max=exact_max)
        vectors = _unit(120, seed=4)
        index.upsert(list(range(120)), vectors, [b"t%d" % n for n in range(120)])
        index.upsert([7], vectors[8:9])  # replaced without a tag
        index.remove([9])
        assert (index.tag(3), index.tag(7), index.tag(9)) == (b"t3", b"", None)
        path = tmp_path / f"t{exact_max}.faiss"
        index.save(path)
        loaded = VectorIndex.load(path, model="", dimension=DIM, exact_max=exact_max)
        assert (loaded.tag(3), loaded.tag(119), loaded.tag(7)) == (b"t3", b"t119", b"")
        # A tags file from another save: ignored (the owner embeds again), the index loads.
        tags_path(path).write_bytes(tags_path(path).read_bytes() + b"\0")
        stale = VectorIndex.load(path, model="", dimension=DIM, exact_max=exact_max)
        assert len(stale) == 119 and stale.tag(3) == b""
    with pytest.raises(ValueError, match="one tag per id"):
        index.upsert([1, 2], _unit(2), [b"x"])
