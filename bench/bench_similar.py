"""Incident-memory benchmark: embedding throughput, and search at 10,000 to 1,000,000 incidents.

1. Embedding: realistic incidents are generated (every kind, user names from the
   dictionaries bots use, ports, probed paths, tempo, sources, compromises, intel
   hits; addresses and times vary but are never embedded), described with
   :func:`soc.similar.describe` and embedded with the packaged all-MiniLM-L6-v2
   on the CPU, as the memory's worker does: incidents/s. The distinct
   descriptions embedded here (``--base``, as many as fit in about two to three
   minutes on 2 cores) are cached under ``.bench/`` for the next run; a cached
   run re-times the first 1,000 of them.
2. Search: larger sets are derived from those real embeddings, honestly said:
   each vector is ``w * a + (1 - w) * b + noise``, renormalised, where ``a`` and
   ``b`` are embeddings of two distinct descriptions of the same incident kind,
   ``w`` uniform in [0.5, 1] and the noise Gaussian with sigma 0.01 per
   dimension (norm ~0.2): many incidents near each real one, as a campaign
   makes. Queries are derived the same way with another seed (not in the index).
   At each size: the :class:`soc.similar.VectorIndex` the memory uses (exact up
   to ``exact_max`` = 50,000, IVF above), its build time, single-query p50/p99
   latency through ``VectorIndex.search`` (what the memory calls), and recall@5
   against exact search; exact search's own latency; memory per million
   vectors (estimated from the index's parts: vectors and ids exactly, hash
   maps and the id set by entry size); for the IVF an nprobe sweep; and HNSW
   (the alternative) at 100,000 (``--hnsw-1m``: also at the largest size,
   about 3 minutes more to build).

Goal: p50 <= 5 ms at 1,000,000 with recall@5 >= 0.95. Exit status is non-zero
only on errors, never on a missed goal.

Run: ``python bench/bench_similar.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from bench.common import CACHE  # noqa: E402
from soc.events import (  # noqa: E402
    BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    DISTRIBUTED_BRUTE_FORCE,
    PASSWORD_SPRAY,
    PORT_SCAN,
    SLOW_BRUTE_FORCE,
    WEB_AUTH_BRUTE_FORCE,
    WEB_SCAN,
    Incident,
)
from soc.similar import Embedder, VectorIndex, describe  # noqa: E402
from soc.similar.index import IvfSettings, faiss  # noqa: E402

GOAL_P50_MS = 5.0
GOAL_RECALL = 0.95
SIZES = (10_000, 100_000, 1_000_000)
NOISE = 0.01
K = 5

# (kind, weight, technique, technique name): roughly what an exposed server sees.
KINDS = [
    (BRUTE_FORCE, 30, "T1110.001", "Brute Force: Password Guessing"),
    (PASSWORD_SPRAY, 15, "T1110.003", "Brute Force: Password Spraying"),
    (SLOW_BRUTE_FORCE, 15, "T1110.001", "Brute Force: Password Guessing"),
    (DISTRIBUTED_BRUTE_FORCE, 8, "T1110.001", "Brute Force: Password Guessing"),
    (CREDENTIAL_COMPROMISE, 4, "T1078", "Valid Accounts"),
    (WEB_SCAN, 14, "T1595.003", "Active Scanning: Wordlist Scanning"),
    (WEB_AUTH_BRUTE_FORCE, 6, "T1110.001", "Brute Force: Password Guessing"),
    (PORT_SCAN, 8, "T1046", "Network Service Discovery"),
]
LOGIN_KINDS = {
    BRUTE_FORCE,
    PASSWORD_SPRAY,
    SLOW_BRUTE_FORCE,
    DISTRIBUTED_BRUTE_FORCE,
    CREDENTIAL_COMPROMISE,
    WEB_AUTH_BRUTE_FORCE,
}
# The user-name dictionaries bots go through (by family).
USER_POOLS = [
    ["root"],
    ["root", "admin"],
    ["admin", "administrator", "test", "user", "guest", "demo"],
    ["oracle", "postgres", "mysql", "db2inst1", "sybase", "mssql"],
    ["ubuntu", "pi", "debian", "centos", "ec2-user", "azureuser"],
    ["git", "gitlab", "jenkins", "deploy", "ansible", "docker"],
    ["hadoop", "spark", "kafka", "elastic", "zookeeper", "solr"],
    ["ftpuser", "ftp", "anonymous", "www-data", "nobody", "upload"],
    ["support", "helpdesk", "info", "sales", "office", "backup"],
    ["minecraft", "steam", "teamspeak", "ts3", "csgo", "factorio"],
    ["alice", "bob", "carol", "dave", "erin", "frank"],
    ["nagios", "zabbix", "prometheus", "grafana", "monitor", "splunk"],
]
PORT_SETS = [
    [22, 23, 2222, 2323],
    [80, 443, 8080, 8443, 8000, 8888],
    [3306, 5432, 1433, 1521, 27017, 6379],
    [445, 139, 135, 3389, 5985],
    [21, 22, 23, 25, 53, 80, 110, 143, 443, 445, 993, 995, 3306, 3389, 5900],
    [9200, 5601, 2375, 6443, 10250, 11211],
]
PATH_SETS = [
    ["/wp-login.php", "/wp-admin/", "/xmlrpc.php", "/wp-content/plugins/", "/wp-config.php.bak"],
    ["/.env", "/.git/config", "/.aws/credentials", "/.env.production", "/config.json"],
    ["/phpmyadmin/", "/pma/", "/myadmin/", "/mysqladmin/", "/adminer.php"],
    ["/cgi-bin/test.cgi", "/shell.php", "/cmd.php", "/c99.php", "/wso.php"],
    ["/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/actuator/health", "/solr/"],
    ["/backup.zip", "/db.sql", "/dump.sql.gz", "/backup.tar.gz", "/site.bak"],
    ["/admin/", "/administrator/", "/manager/html", "/console/", "/cpanel"],
]
INTEL = [
    {"name": "Mirai botnet", "labels": ["botnet", "iot"]},
    {"name": "Known SSH scanner", "labels": ["scanner"]},
    {"name": "Tor exit node", "labels": ["anonymizer"]},
]


def make_incident(rng: random.Random, n: int) -> Incident:
    """One realistic incident (its addresses and times vary; they are never described)."""
    kind, _, technique, technique_name = rng.choices(KINDS, weights=[k[1] for k in KINDS])[0]
    spans = [20, 45, 90, 300, 900, 2400, 5400, 20000, 50000, 200000]
    duration = rng.choice(spans) * rng.uniform(0.7, 1.3)
    failures = max(1, int(rng.lognormvariate(4, 1.5)))
    facts: dict[str, Any] = {"key_type": "ip"}
    users: list[str] = []
    distinct_users = successes = 0
    sources = 1
    if kind in LOGIN_KINDS:
        pool = rng.choice(USER_POOLS)
        if kind == PASSWORD_SPRAY:
            pool = sorted({*pool, *rng.choice(USER_POOLS), *rng.choice(USER_POOLS)})
            users = rng.sample(pool, rng.randint(min(len(pool), 6), len(pool)))
        else:
            users = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        distinct_users = len(users) + (rng.randint(0, 40) if rng.random() < 0.3 else 0)
        facts["distinct_failed_users"] = distinct_users
    if kind == CREDENTIAL_COMPROMISE:
        successes = rng.randint(1, 3)
    if kind == DISTRIBUTED_BRUTE_FORCE:
        sources = rng.randint(10, 400)
        facts.update(key_type="user", distinct_sources=sources)
    if kind == WEB_SCAN:
        paths = rng.sample(chosen := rng.choice(PATH_SETS), rng.randint(2, len(chosen)))
        if rng.random() < 0.4:
            paths += rng.sample(rng.choice(PATH_SETS), 2)
        facts.update(paths=paths, distinct_paths=len(paths) + rng.randint(0, 100))
    if kind == PORT_SCAN:
        ports = rng.sample(chosen_ports := rng.choice(PORT_SETS), rng.randint(3, len(chosen_ports)))
        ports += [rng.randint(1024, 65535) for _ in range(rng.randint(0, 10))]
        facts.update(ports=ports, distinct_ports=len(ports) + rng.randint(0, 1000))
    if rng.random() < 0.1:
        facts["intel"] = [rng.choice(INTEL)]
    ips = [f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(min(sources, 20))]
    start = 1_763_700_000.0 + n * 60
    return Incident(
        key=ips[0],
        kind=kind,
        first_seen=start,
        last_seen=start + duration,
        source_ips=ips,
        users=users,
        distinct_users=distinct_users,
        failures=failures,
        successes=successes,
        events=failures + successes,
        technique=technique,
        technique_name=technique_name,
        facts=facts,
        id=n + 1,
    )


def distinct_descriptions(count: int, seed: int) -> tuple[list[str], list[str], float]:
    """``count`` distinct descriptions, their kinds, and descriptions/s."""
    rng = random.Random(seed)
    seen: dict[str, str] = {}
    made = 0
    started = time.perf_counter()
    while len(seen) < count:
        incident = make_incident(rng, made)
        made += 1
        seen.setdefault(describe(incident), incident.kind)
    rate = made / (time.perf_counter() - started)
    return list(seen), list(seen.values()), rate


def base_embeddings(
    embedder: Embedder, count: int, seed: int, cache: Path
) -> tuple[NDArray[np.float32], list[str], dict[str, Any]]:
    """The embedded distinct descriptions (cached), their kinds, and the throughput figures."""
    texts, kinds, describe_rate = distinct_descriptions(count, seed)
    digest = hashlib.sha256()
    for part in (Path(__file__), REPO / "soc/similar/describe.py"):
        digest.update(part.read_bytes())
    digest.update(embedder.model_name.encode())
    path = cache / f"similar-base-{count}-seed{seed}-{digest.hexdigest()[:12]}.npy"
    embedder.load()
    embedder.encode(texts[:64])  # warm-up: the first batch pays for lazy initialisation
    if path.exists():
        vectors = np.load(path)
        timed = texts[:1000]
        started = time.perf_counter()
        embedder.encode(timed)
        seconds = time.perf_counter() - started
        note = f"re-timed on {len(timed):,} (embeddings cached)"
    else:
        cache.mkdir(parents=True, exist_ok=True)
        ignore = cache / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
        for old in cache.glob(f"similar-base-{count}-seed{seed}-*.npy"):
            old.unlink()
        timed = texts
        started = time.perf_counter()
        vectors = embedder.encode(texts)
        seconds = time.perf_counter() - started
        np.save(path, vectors)
        note = f"all {len(texts):,}"
    words = [len(t.split()) for t in texts]
    figures = {
        "distinct_descriptions": len(texts),
        "describe_per_s": round(describe_rate),
        "embed_per_s": round(len(timed) / seconds, 1),
        "embed_timed": note,
        "mean_words": round(float(np.mean(words)), 1),
    }
    return vectors.astype(np.float32), kinds, figures


def derive(base: NDArray[np.float32], kinds: list[str], n: int, seed: int) -> NDArray[np.float32]:
    """``n`` vectors: mixtures of two same-kind base embeddings plus noise, renormalised."""
    rng = np.random.default_rng(seed)
    labels = np.array(kinds)
    groups = {kind: np.flatnonzero(labels == kind) for kind in sorted(set(kinds))}
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        first = rng.integers(0, len(base), size)
        second = np.empty(size, dtype=np.int64)
        for kind, members in groups.items():
            mask = labels[first] == kind
            second[mask] = members[rng.integers(0, len(members), int(mask.sum()))]
        weight = rng.uniform(0.5, 1.0, (size, 1)).astype(np.float32)
        block = weight * base[first] + (1 - weight) * base[second]
        block += np.asarray(rng.normal(0.0, NOISE, size=(size, base.shape[1])), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + size] = block
    return out


def exact_top(
    vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int
) -> NDArray[np.int64]:
    """Row numbers of the exact top ``k`` per query (FAISS brute force, all queries at once)."""
    _, rows = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    return np.asarray(rows, dtype=np.int64)


def timed_search(search: Any, queries: NDArray[np.float32]) -> tuple[list[list[int]], list[float]]:
    """Each query alone, as the memory asks: hits (row numbers) and seconds per query."""
    hits: list[list[int]] = []
    seconds: list[float] = []
    for query in queries:
        started = time.perf_counter()
        found = search(query)
        seconds.append(time.perf_counter() - started)
        hits.append(found)
    return hits, seconds


def recall(hits: list[list[int]], truth: NDArray[np.int64]) -> float:
    return float(np.mean([len(set(h[:K]) & set(t)) / K for h, t in zip(hits, truth, strict=True)]))


def ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def main(argv: list[str] | None = None) -> int:
    """Embed, derive, index and search; print the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", type=int, default=6000, help="distinct descriptions to embed")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--exact-max", type=int, default=50_000, help="as [similar] exact_max")
    p.add_argument("--hnsw-1m", action="store_true", help="also build HNSW at the largest size")
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    embedder = Embedder()
    print(f"Incident-memory benchmark: {embedder.model_name} on CPU, faiss {faiss.__version__}")
    base, kinds, embed = base_embeddings(embedder, args.base, args.seed, args.cache)
    results: dict[str, Any] = {"embedding": embed, "sizes": []}
    print(
        f"  describe()          {embed['describe_per_s']:>10,} incidents/s "
        f"(mean {embed['mean_words']} words per description)"
    )
    print(
        f"  embedding           {embed['embed_per_s']:>10,.1f} incidents/s "
        f"({embed['embed_timed']}; batches of 64, 2 cores)"
    )
    print(
        f"  vectors: {len(base):,} real embeddings of distinct descriptions; the sets below are "
        f"derived from them as w*a + (1-w)*b + N(0, {NOISE}^2) per dimension, renormalised "
        "(a, b: two descriptions of the same kind, w in [0.5, 1]); queries derived alike "
        "with another seed, not in the index"
    )
    queries = derive(base, kinds, args.queries, seed=args.seed + 1000)
    print(
        "       size  index                build s   p50 ms   p99 ms  recall@5  "
        "exact p50 ms  MB per million"
    )
    for size in args.sizes:
        vectors = derive(base, kinds, size, seed=args.seed)
        truth = exact_top(vectors, queries, K)
        exact_q = queries[: 20 if size >= 1_000_000 else 100]
        _, exact_seconds = timed_search(
            lambda q, v=vectors: list(
                faiss.knn(q[None], v, K, metric=faiss.METRIC_INNER_PRODUCT)[1][0]
            ),
            exact_q,
        )
        started = time.perf_counter()
        index = VectorIndex(vectors.shape[1], exact_max=args.exact_max, ivf=IvfSettings())
        index.upsert(range(size), vectors)  # ids = row numbers
        build = time.perf_counter() - started
        hits, seconds = timed_search(lambda q, i=index: [hit for hit, _ in i.search(q, K)], queries)
        name = f"IVF{index.nlist} nprobe {index.nprobe}" if index.nlist else "exact (flat)"
        per_million = index.memory_bytes() / size * 1_000_000 / 1e6
        row = {
            "size": size,
            "index": name,
            "build_s": round(build, 1),
            "p50_ms": round(ms(seconds, 50), 3),
            "p99_ms": round(ms(seconds, 99), 3),
            "recall_at_5": round(recall(hits, truth), 4),
            "exact_p50_ms": round(ms(exact_seconds, 50), 2),
            "mb_per_million": round(per_million),
        }
        results["sizes"].append(row)
        print(
            f"  {size:>9,}  {name:<20} {build:>7.1f}  {row['p50_ms']:>7.2f}  {row['p99_ms']:>7.2f}"
            f"  {row['recall_at_5']:>8.4f}  {row['exact_p50_ms']:>12.1f}  {per_million:>14,.0f}"
        )
        if index.nlist:
            default = index.nprobe
            sweep = []
            for nprobe in (4, 8, 16, 32, 64):
                index.nprobe = nprobe
                swept, swept_s = timed_search(
                    lambda q, i=index: [hit for hit, _ in i.search(q, K)], queries
                )
                sweep.append(
                    {
                        "nprobe": nprobe,
                        "p50_ms": round(ms(swept_s, 50), 3),
                        "p99_ms": round(ms(swept_s, 99), 3),
                        "recall_at_5": round(recall(swept, truth), 4),
                    }
                )
            index.nprobe = default
            row["nprobe_sweep"] = sweep
            print(
                "             nprobe sweep: "
                + "; ".join(
                    f"{s['nprobe']}: recall {s['recall_at_5']:.4f} p50 {s['p50_ms']:.2f} ms"
                    for s in sweep
                )
            )
        if size == 100_000 or (args.hnsw_1m and size == max(args.sizes)):
            row["hnsw"] = _hnsw(vectors, queries, truth)
        if size == max(args.sizes):
            goal = row["p50_ms"] <= GOAL_P50_MS and row["recall_at_5"] >= GOAL_RECALL
            verdict = "GOAL MET" if goal else "GOAL MISSED"
            print(
                f"  at {size:,}: p50 {row['p50_ms']:.2f} ms (goal <= {GOAL_P50_MS:g}), recall@5 "
                f"{row['recall_at_5']:.4f} (goal >= {GOAL_RECALL}) with {name}: {verdict}"
            )
        del index, vectors
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def _hnsw(
    vectors: NDArray[np.float32], queries: NDArray[np.float32], truth: NDArray[np.int64]
) -> list[dict[str, Any]]:
    """HNSW32 (efConstruction 40) on the same vectors: build time, and an efSearch sweep."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    started = time.perf_counter()
    index.add(vectors)
    build = time.perf_counter() - started
    rows = []
    for ef in (16, 32, 64, 128):
        index.hnsw.efSearch = ef
        hits, seconds = timed_search(lambda q: list(index.search(q[None], K)[1][0]), queries)
        rows.append(
            {
                "ef_search": ef,
                "build_s": round(build, 1),
                "p50_ms": round(ms(seconds, 50), 3),
                "p99_ms": round(ms(seconds, 99), 3),
                "recall_at_5": round(recall(hits, truth), 4),
            }
        )
    print(
        f"             HNSW32 (no deletions in FAISS), build {build:.1f} s: "
        + "; ".join(
            f"efSearch {r['ef_search']}: recall {r['recall_at_5']:.4f} p50 {r['p50_ms']:.2f} ms"
            for r in rows
        )
    )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
