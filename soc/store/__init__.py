"""The store: incidents, aggregates, checkpoints; SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from soc.store.sql import (
    DEFAULT_EVIDENCE_LIMIT,
    SCHEMA_VERSION,
    AnalysisRecord,
    Attacker,
    Bucket,
    OutboxItem,
    PlaybookRun,
    SqlStore,
    Transaction,
    open_store,
)

__all__ = [
    "DEFAULT_EVIDENCE_LIMIT",
    "SCHEMA_VERSION",
    "AnalysisRecord",
    "Attacker",
    "Bucket",
    "OutboxItem",
    "PlaybookRun",
    "SqlStore",
    "Transaction",
    "open_store",
]
