"""What incident memory is configured with, and where its index lives beside the store.

``[similar]`` in ``soc.toml``: whether past incidents are embedded and searched,
which sentence-transformers model does it, how large the index may grow before
search turns approximate, and when a similar incident's report may be reused
instead of a model call.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from soc.errors import ConfigError, SocError

#: Seconds in a day: the config speaks in days, the store in epoch seconds.
DAY: Final = 86_400.0

#: Where a server database's index goes (relative to the working directory).
SERVER_INDEX_DIR: Final = Path("data")


class SimilarError(SocError):
    """The similar-incident index cannot be used (a stale or foreign file, a bad model)."""


@dataclass(slots=True)
class SimilarConfig:
    """Incident memory: embeddings of past incidents and the index they are searched in.

    ``index_path``: empty derives it from the store (:func:`index_path_for`).
    ``model``: empty is the packaged all-MiniLM-L6-v2; else a local
    sentence-transformers directory (nothing is ever downloaded). Search is exact
    up to ``exact_max`` vectors and approximate above. ``k``: how many similar
    incidents a page or a report gets. With ``reuse``, a similar incident's report may be reused
    instead of a model call when the two score at least ``reuse_min_score``
    (cosine) and that report is at most ``reuse_max_age_days`` old. Incidents last
    seen more than ``retention_days`` before the newest incident (event time) leave the
    index (not the store).
    """

    enabled: bool = True
    index_path: str = ""
    model: str = ""
    exact_max: int = 50_000
    k: int = 5
    reuse: bool = True
    reuse_min_score: float = 0.97
    reuse_max_age_days: float = 7.0
    retention_days: float = 365.0

    def __post_init__(self) -> None:
        for flag in ("enabled", "reuse"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError("must be true or false", where=flag)
        for name in ("index_path", "model"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError("must be a string", where=name)
        for name in ("exact_max", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("must be a whole number of at least 1", where=name)
        score = self.reuse_min_score
        if not _number(score) or not 0 < score <= 1:
            raise ConfigError("must be more than 0 and at most 1", where="reuse_min_score")
        if not _number(self.reuse_max_age_days) or self.reuse_max_age_days < 0:
            raise ConfigError("must be a number, not negative", where="reuse_max_age_days")
        if not _number(self.retention_days) or self.retention_days <= 0:
            raise ConfigError("must be a number more than 0", where="retention_days")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def index_path_for(store_url: str, config: SimilarConfig) -> Path | None:
    """Where the index of the store at ``store_url`` is kept; None keeps it in memory.

    ``config.index_path`` wins when set. A SQLite file ``data/soc.db`` gets
    ``data/soc.similar.faiss`` beside it; an in-memory SQLite store gets an
    in-memory index (nothing persisted); a database server's store gets
    ``data/similar-<database name>.faiss``.
    """
    if config.index_path:
        return Path(config.index_path).expanduser()
    import sqlalchemy as sa  # here: reading the configuration does not load SQLAlchemy

    try:
        url = sa.make_url(store_url)
    except sa.exc.ArgumentError:
        raise ConfigError("not a database URL", where="store.url") from None
    database = url.database or ""
    if url.get_backend_name() == "sqlite":
        memory = (
            database in ("", ":memory:")
            or "mode=memory" in database
            or url.query.get("mode") == "memory"
        )
        if memory:
            return None
        if database.startswith("file:"):
            database = database[len("file:") :].partition("?")[0]
        db_file = Path(database).expanduser()
        return db_file.with_name(f"{db_file.stem}.similar.faiss")
    name = _UNSAFE_NAME.sub("_", Path(database).name).strip("._") or "default"
    return SERVER_INDEX_DIR / f"similar-{name}.faiss"


__all__ = ["DAY", "SimilarConfig", "SimilarError", "index_path_for"]
