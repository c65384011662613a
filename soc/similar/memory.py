"""Incident memory: every incident embedded as it opens or changes, and "more like this".

The engine tells the memory which incidents a batch opened or updated
(:meth:`IncidentMemory.notify`, chained from its ``on_incidents`` hook); a worker
thread of its own describes them (:func:`soc.similar.describe.describe`), embeds
those whose description changed, and updates the index, off the ingestion path.
The index is saved at most every ``save_every`` seconds and when the worker
stops, never per incident. :meth:`sync` brings a saved index in line with the
store at start (what changed since its watermark is embedded again, deleted and
expired incidents leave); :meth:`rebuild` embeds everything again.

Readers (the pages, the analysis worker looking for a report to reuse) call
:meth:`similar`, :meth:`similar_to` and :meth:`search` from their own threads:
they hold the index lock only while FAISS searches, and get the matches' current
kind, status, severity and verdict from the store in one query.

The watermark (the newest ``updated_at`` and the highest id embedded) only moves
when nothing is pending, so an incident notified but not embedded before a crash
is still after it at the next :meth:`sync`. ``updated_at`` is event time: an
update whose events are older than the watermark (a replay of an older log into
a live store) is embedded when notified, but a :meth:`sync` after a crash cannot
see it; :meth:`rebuild` can.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from soc.clock import Clock
from soc.events import Incident
from soc.similar.base import DAY, SimilarConfig, SimilarError
from soc.similar.describe import describe
from soc.similar.embedder import Embedder
from soc.similar.index import IvfSettings, VectorIndex

if TYPE_CHECKING:
    from numpy.typing import NDArray

_log = logging.getLogger(__name__)

#: Incidents read from the store and embedded per step.
CHUNK: Final = 256


@dataclass(frozen=True, slots=True)
class Match:
    """A similar incident: its id, cosine score, and how it stands in the store now.

    ``verdict``: the newest analysis's summary (or its severity), None when it
    has none; ``analysis_id`` and ``analysed_at`` name that analysis.
    """

    incident_id: int
    score: float
    kind: str
    status: str
    severity: str
    last_seen: float
    verdict: str | None
    analysis_id: int | None = None
    analysed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The match as plain data (for a fact sheet or a page)."""
        return {
            "incident_id": self.incident_id,
            "score": self.score,
            "kind": self.kind,
            "status": self.status,
            "severity": self.severity,
            "last_seen": self.last_seen,
            "verdict": self.verdict,
        }


class IncidentMemory:
    """Past incidents as embeddings in a FAISS index, kept in step with the store."""

    def __init__(
        self,
        store: Any,
        config: SimilarConfig,
        *,
        index_path: Path | None,
        clock: Clock,
        embedder: Embedder | None = None,
        save_every: float = 60.0,
        prune_every: float = 3600.0,
        poll: float = 0.5,
        ivf: IvfSettings | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.index_path = index_path
        self.clock = clock
        self.embedder = embedder if embedder is not None else Embedder(config.model)
        self.save_every = save_every
        self.prune_every = prune_every
        self.poll = poll
        self.ivf = ivf
        #: How old (seconds) a report may be to be reused (the analysis worker's ``Precedents``).
        self.max_age_seconds = config.reuse_max_age_days * DAY
        #: Why a saved index was not used (it is rebuilt), or None.
        self.load_error: str | None = None
        #: Descriptions embedded, and notified incidents whose description had not changed.
        self.embedded = 0
        self.unchanged = 0
        self._index: VectorIndex | None = None
        # The saved index file (inode, mtime, size) as reload_if_changed last saw it.
        self._loaded_stamp: tuple[int, int, int] | None = None
        # The newest updated_at and the highest id embedded since the watermark last moved.
        self._newest_update = 0.0
        self._newest_id = 0
        self._dirty = False
        self._saved_at = clock.monotonic()
        self._pruned_at = clock.monotonic()
        self._pending: dict[int, None] = {}
        self._in_flight = 0
        self._lock = threading.Lock()  # the pending queue
        self._index_lock = threading.RLock()  # the index, digests, watermark
        self._work_lock = threading.Lock()  # one writer pass (worker, sync, rebuild) at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the index ---------------------------------------------------------------------
    def _ready(self) -> VectorIndex:
        """The index: loaded from ``index_path`` on first use, else a new, empty one."""
        with self._index_lock:
            if self._index is None:
                self._index = self._load()
            return self._index

    def _load(self) -> VectorIndex:
        dimension = self.embedder.dimension
        path = self.index_path
        if path is not None and path.exists():
            self._loaded_stamp = _stamp(path)
            try:
                return VectorIndex.load(
                    path,
                    model=self.embedder.model_name,
                    dimension=dimension,
                    exact_max=self.config.exact_max,
                    ivf=self.ivf,
                )
            except SimilarError as exc:
                self.load_error = str(exc)
                _log.warning("similar-incident index not used, rebuilding it: %s", exc)
        return self._new_index(dimension)

    def _new_index(self, dimension: int) -> VectorIndex:
        return VectorIndex(
            dimension,
            exact_max=self.config.exact_max,
            ivf=self.ivf,
            model=self.embedder.model_name,
        )

    def reload_if_changed(self) -> bool:
        """Read the saved index again if another process saved it since (True when so).

        For a process that asks and does not run the worker (``soc api serve``
        beside ``soc run``): the worker's own index is newer than its save, so a
        started memory never reloads.
        """
        path = self.index_path
        if path is None or self._thread is not None:
            return False
        stamp = _stamp(path)
        if stamp is None:
            return False
        with self._index_lock:
            if stamp == self._loaded_stamp:
                return False
            self._loaded_stamp = stamp
            changed = self._index is not None
            self._index = None  # loaded again on next use
        return changed

    def __len__(self) -> int:
        return len(self._ready())

    def stats(self) -> dict[str, Any]:
        """What the memory holds and does: count, mode, lists, pending, errors."""
        index = self._ready()
        with self._index_lock:
            return {
                "incidents": len(index),
                "mode": index.mode,
                "nlist": index.nlist,
                "nprobe": index.nprobe,
                "model": index.model,
                "pending": self.pending,
                "embedded": self.embedded,
                "unchanged": self.unchanged,
                "watermark": dict(index.watermark),
                "index_path": None if self.index_path is None else str(self.index_path),
                "load_error": self.load_error,
            }

    def save(self) -> bool:
        """Write the index (and its watermark) if it changed; False when kept in memory."""
        if self.index_path is None:
            return False
        index = self._ready()
        with self._index_lock:
            if self.pending == 0 and self._newest_id:
                # Nothing notified is left behind: the watermark may move on.
                mark = index.watermark
                index.watermark = {
                    "updated_at": max(float(mark.get("updated_at", 0.0)), self._newest_update),
                    "max_id": max(int(mark.get("max_id", 0)), self._newest_id),
                }
                self._newest_update, self._newest_id = 0.0, 0
            index.save(self.index_path)
            self._loaded_stamp = _stamp(self.index_path)  # our own save is not news
            self._dirty = False
            self._saved_at = self.clock.monotonic()
        return True

    # --- notified incidents --------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Incidents notified and not embedded yet (those being embedded included)."""
        with self._lock:
            return len(self._pending) + self._in_flight

    def notify(self, incident_ids: Iterable[int]) -> None:
        """Incidents opened or updated (thread-safe, returns at once: the worker embeds them)."""
        with self._lock:
            self._pending.update(dict.fromkeys(int(i) for i in incident_ids))
        self._wake.set()

    def run_pending(self) -> int:
        """Embed what was notified, now, on this thread; returns how many were (re)embedded."""
        with self._work_lock:
            return self._run_pending()

    def _run_pending(self) -> int:
        with self._lock:
            ids = list(self._pending)
            self._pending.clear()
            self._in_flight = len(ids)
        try:
            return self._refresh(ids)
        except BaseException:
            with self._lock:  # not lost: tried again on the next pass
                for incident_id in ids:
                    self._pending.setdefault(incident_id, None)
            raise
        finally:
            with self._lock:
                self._in_flight = 0

    def _refresh(self, ids: Sequence[int]) -> int:
        """Re-describe ``ids`` from the store; embed the changed, drop the gone and expired.

        A description is embedded again only when its digest differs from the
        tag its vector was stored with (the tags are saved with the index).
        """
        index = self._ready()
        cutoff = self._cutoff()
        done = 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            found = {int(i.id or 0): i for i in self.store.get_incidents(chunk)}
            gone = [i for i in chunk if i not in found or found[i].last_seen < cutoff]
            live = [found[i] for i in chunk if i in found and found[i].last_seen >= cutoff]
            texts = [describe(incident) for incident in live]
            digests = [_digest(text) for text in texts]
            with self._index_lock:
                changed = [
                    n
                    for n, incident in enumerate(live)
                    if index.tag(int(incident.id or 0)) != digests[n]
                ]
            vectors = self.embedder.encode([texts[n] for n in changed])
            with self._index_lock:
                removed = index.remove(gone) if gone else 0
                if changed:
                    index.upsert(
                        [int(live[n].id or 0) for n in changed],
                        vectors,
                        [digests[n] for n in changed],
                    )
                for incident in live:
                    updated = float(incident.updated_at or 0.0)
                    self._newest_update = max(self._newest_update, updated)
                    self._newest_id = max(self._newest_id, int(incident.id or 0))
                self._dirty = self._dirty or bool(removed or changed)
            self.embedded += len(changed)
            self.unchanged += len(live) - len(changed)
            done += len(changed)
        return done

    def _cutoff(self) -> float:
        # In event time, as the store's aggregate retention: a replayed log from
        # long ago is searchable; what is old next to the newest incident leaves.
        newest = self.store.latest_incident_seen()
        return (self.clock.now() if newest is None else newest) - self.config.retention_days * DAY

    # --- in line with the store ----------------------------------------------------------
    def sync(self) -> dict[str, int]:
        """Bring the index in line with the store; returns how many were embedded and removed.

        Incidents updated since the saved watermark (or newer than its highest
        id) are described again and embedded if their description changed; ids
        the store no longer has, or last seen before the retention, leave. An
        index that was not loaded (none saved, or refused) embeds everything.
        Incidents notified meanwhile are embedded between chunks (a long first
        sync does not hold fresh incidents back); a :meth:`stop` interrupts it,
        the watermark unmoved, and the next sync skips what was embedded (the
        saved tags say so).
        """
        with self._work_lock:
            index = self._ready()
            cutoff = self._cutoff()
            alive = set(self.store.incident_ids())
            expired = set(self.store.incident_ids(seen_before=cutoff))
            with self._index_lock:
                mark = dict(index.watermark)
            since = float(mark["updated_at"]) if "updated_at" in mark else None
            changes = self.store.incident_changes(
                since, after_id=int(mark.get("max_id", 0)), seen_since=cutoff
            )
            with self._index_lock:
                # Nothing else adds to the index while the work lock is held: an id
                # held and not in the store was deleted.
                leaving = [i for i in index.ids() if i not in alive or i in expired]
                removed = index.remove(leaving)
                self._dirty = self._dirty or bool(removed)
            embedded = 0
            complete = True
            for start in range(0, len(changes), CHUNK):
                if self._stop.is_set() and threading.current_thread() is self._thread:
                    complete = False  # the worker is being stopped
                    break
                chunk = changes[start : start + CHUNK]
                embedded += self._refresh([incident_id for incident_id, _ in chunk])
                if self.pending:
                    self._run_pending()
            with self._index_lock:
                if complete and changes:
                    newest = max(updated for _, updated in changes)
                    index.watermark = {
                        "updated_at": max(float(mark.get("updated_at", newest)), newest),
                        "max_id": max(int(mark.get("max_id", 0)), changes[-1][0]),
                    }
                elif complete and "updated_at" not in mark:
                    index.watermark = {"updated_at": 0.0, "max_id": max(alive, default=0)}
                dirty = self._dirty
        if dirty:
            self.save()
        return {"embedded": embedded, "removed": removed, "checked": len(changes)}

    def rebuild(self) -> int:
        """Embed every incident within the retention again into a new index; returns how many.

        Searches go on over the old index until the new one replaces it.
        """
        with self._work_lock:
            changes = self.store.incident_changes(None, seen_since=self._cutoff())
            ids = [incident_id for incident_id, _ in changes]
            fresh = self._new_index(self.embedder.dimension)
            all_ids: list[int] = []
            digests: list[bytes] = []
            parts: list[NDArray[np.float32]] = []
            for start in range(0, len(ids), CHUNK):
                incidents = self.store.get_incidents(ids[start : start + CHUNK])
                texts = [describe(incident) for incident in incidents]
                parts.append(self.embedder.encode(texts))
                all_ids.extend(int(incident.id or 0) for incident in incidents)
                digests.extend(_digest(text) for text in texts)
            if parts:
                # One FAISS build, not one per chunk.
                fresh.upsert(all_ids, np.concatenate(parts), digests)
            if changes:
                fresh.watermark = {
                    "updated_at": max(updated for _, updated in changes),
                    "max_id": changes[-1][0],
                }
            else:
                fresh.watermark = {"updated_at": 0.0, "max_id": 0}
            with self._index_lock:
                self._index = fresh
                self._newest_update, self._newest_id = 0.0, 0
                self._dirty = True
                self.load_error = None
            self.embedded += len(all_ids)
        self.save()
        return len(all_ids)

    def prune(self) -> int:
        """Remove incidents last seen before the retention; returns how many left."""
        expired = self.store.incident_ids(seen_before=self._cutoff())
        index = self._ready()
        with self._index_lock:
            removed = index.remove(expired)
            self._dirty = self._dirty or bool(removed)
        return removed

    # --- asking ------------------------------------------------------------------------
    def similar(self, incident_id: int, k: int = 5, *, same_kind: bool = False) -> list[Match]:
        """Incidents most like ``incident_id`` (itself excluded), best first.

        An incident not embedded yet is described and embedded on the fly (and
        left for the worker to index). ``same_kind``: only incidents of its kind.
        """
        index = self._ready()
        with self._index_lock:
            vector = index.vector(int(incident_id))
        kind: str | None = None
        if vector is None or same_kind:
            found = self.store.get_incidents([int(incident_id)])
            if not found:
                return []
            incident = found[0]
            kind = incident.kind if same_kind else None
            if vector is None:
                vector = self.embedder.encode([describe(incident)])[0]
        return self._matches(vector, k, kind=kind, exclude={int(incident_id)})

    def similar_if_ready(self, incident_id: int, k: int = 5) -> list[Match] | None:
        """:meth:`similar` without waiting: None while the index or the incident is not ready.

        For a page that refreshes on its own: it never waits for the model to
        load, for the worker's pass to release the index, nor embeds on the fly.
        """
        if self._index is None or not self._index_lock.acquire(timeout=0.05):
            return None
        try:
            vector = self._index.vector(int(incident_id))
        finally:
            self._index_lock.release()
        if vector is None:
            return None
        return self._matches(vector, k, kind=None, exclude={int(incident_id)})

    def similar_to(
        self,
        incident: Incident,
        k: int = 5,
        *,
        kind: str | None = None,
        exclude: Iterable[int] = (),
    ) -> list[Match]:
        """Indexed incidents most like ``incident`` (embedded now), best first; synchronous.

        ``kind``: only incidents of that kind. ``incident.id`` (when it has one)
        and ``exclude`` are left out.
        """
        skip = {int(i) for i in exclude}
        if incident.id is not None:
            skip.add(int(incident.id))
        vector = self.embedder.encode([describe(incident)])[0]
        return self._matches(vector, k, kind=kind, exclude=skip)

    def search(self, text: str, k: int = 5) -> list[Match]:
        """Incidents whose description is nearest to free text ("spray against oracle")."""
        vector = self.embedder.encode([text])[0]
        return self._matches(vector, k, kind=None, exclude=set())

    def candidates(self, incident: Incident) -> list[tuple[int, float]]:
        """Earlier incidents of the same kind whose report ``incident`` may reuse, best first.

        (id, score) at or above ``reuse_min_score``: the analysis worker's
        ``Precedents`` (it checks the report's age and facts itself).
        """
        matches = self.similar_to(incident, self.config.k, kind=incident.kind)
        return [(m.incident_id, m.score) for m in matches if m.score >= self.config.reuse_min_score]

    def _matches(
        self, vector: NDArray[np.float32], k: int, *, kind: str | None, exclude: set[int]
    ) -> list[Match]:
        if k < 1:
            return []
        index = self._ready()
        cutoff = self._cutoff()
        wanted = k if kind is None else max(4 * k, 32)
        while True:
            with self._index_lock:
                hits = index.search(vector, wanted, exclude=exclude)
                held = len(index)
            rows = self.store.incident_summaries([incident_id for incident_id, _ in hits])
            matches = [
                _match(incident_id, score, rows[incident_id])
                for incident_id, score in hits
                if incident_id in rows
                and (kind is None or rows[incident_id]["kind"] == kind)
                and rows[incident_id]["last_seen"] >= cutoff
            ]
            if len(matches) >= k or wanted >= held:
                return matches[:k]
            wanted *= 4  # too many filtered out (another kind, deleted, expired)

    # --- on a thread -------------------------------------------------------------------
    def start(self, *, sync: bool = True) -> None:
        """Embed notified incidents on a daemon thread until :meth:`stop` (syncing first)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(sync,), name="soc-similar", daemon=True
        )
        self._thread.start()

    def _loop(self, sync: bool) -> None:
        synced = not sync
        while not self._stop.is_set():
            try:
                if not synced:
                    self.sync()
                    synced = True
                self.run_pending()
                self._housekeeping()
            except Exception:  # the memory is an aid: a failure must not end it for good
                _log.exception("similar-incident pass failed; retrying")
                self._stop.wait(max(self.poll, 5.0))
                continue
            self._wake.wait(self.poll)
            self._wake.clear()

    def _housekeeping(self) -> None:
        now = self.clock.monotonic()
        if now - self._pruned_at >= self.prune_every:
            self._pruned_at = now
            self.prune()
        if self._dirty and now - self._saved_at >= self.save_every:
            self.save()

    def stop(self) -> None:
        """Stop the thread after the pass it is in, and save the index if it changed."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._dirty:
            self.save()

    def drain(self) -> int:
        """Stop, embed everything still pending, and save; returns how many were embedded."""
        self.stop()
        done = self.run_pending()
        if self._dirty:
            self.save()
        return done


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells one save of the index file from the next (a save replaces the file)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _match(incident_id: int, score: float, row: dict[str, Any]) -> Match:
    structured = row.get("structured")
    verdict: str | None = None
    if isinstance(structured, dict):
        summary = structured.get("summary") or structured.get("severity")
        verdict = str(summary) if summary else None
    return Match(
        incident_id=incident_id,
        score=round(float(score), 4),
        kind=str(row["kind"]),
        status=str(row["status"]),
        severity=str(row["severity"]),
        last_seen=float(row["last_seen"]),
        verdict=verdict,
        analysis_id=row.get("analysis_id"),
        analysed_at=row.get("analysed_at"),
    )


__all__ = ["CHUNK", "IncidentMemory", "Match"]
