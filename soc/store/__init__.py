"""The store: incidents, aggregates, checkpoints; SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from soc.store.sql import SqlStore, Transaction, open_store

__all__ = ["SqlStore", "Transaction", "open_store"]
