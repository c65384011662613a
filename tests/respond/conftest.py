"""Response fixtures: a SQLite store, incidents in it, responders built as the engine does."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from soc.clock import Clock
from soc.config import settings_from_dict
from soc.detect.rules import playbooks_by_kind
from soc.engine import build_responder
from soc.respond import Protected, Responder
from soc.respond.base import Command, Outcome
from soc.store import SqlStore, open_store
from soc.store.response import BlockRecord, ResponseLog
from tests.store.builders import T0, make_incident

#: The playbooks the project ships.
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """A fresh SQLite store in a temporary file (the response tables are plain SQL)."""
    opened = open_store(f"sqlite:///{tmp_path}/soc.db")
    try:
        yield opened
    finally:
        opened.close()


def add_incident(
    store: SqlStore, key: str = "203.0.113.9", *, now: float = T0, **fields: Any
) -> int:
    """Store an incident as the detector would (``make_incident`` fields) and return its id."""
    with store.transaction(now=now) as tx:
        return tx.upsert_incident(make_incident(key, **fields), key)


def make_responder(
    store: SqlStore,
    clock: Clock,
    *,
    playbooks_dir: Path = PLAYBOOKS,
    host_addresses: Sequence[str] = (),
    run: Callable[..., Outcome] | None = None,
    exports: Sequence[dict[str, Any]] = (),
    **respond: Any,
) -> Responder:
    """A responder over ``store`` with ``[respond]`` set to ``respond``.

    Built by ``build_responder`` as the engine builds it; with ``run`` (a
    :class:`Recorder`), built the same way but running its commands through ``run``
    (and without export sinks). ``exports``: ``[[exports]]`` tables.
    """
    document: dict[str, Any] = {"respond": {"playbooks_dir": str(playbooks_dir), **respond}}
    if exports:
        document["exports"] = list(exports)
    settings = settings_from_dict(document)
    if run is None:
        return build_responder(settings, store, clock, host_addresses=list(host_addresses))
    protected = Protected.of(
        [*settings.respond.allow_list, *settings.detect.allow_list], host_addresses
    )
    return Responder(
        settings.respond,
        ResponseLog(store),
        store,
        clock,
        protected=protected,
        recommended=playbooks_by_kind(),
        run=run,
    )


def write_playbook(folder: Path, name: str, text: str) -> Path:
    """``folder/name.yaml`` holding ``text`` (the folder is created)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def playbooks_with(folder: Path, **extra: str) -> Path:
    """``folder`` holding the shipped playbooks plus ``extra`` (name → YAML, ``_`` for ``-``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in PLAYBOOKS.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    for name, text in extra.items():
        write_playbook(folder, name.replace("_", "-"), text)
    return folder


def block_for(ttl: str) -> str:
    """A playbook that only blocks, for ``ttl`` (its name: ``block-<ttl>``)."""
    return f"name: block-{ttl}\nttl: {ttl}\nsteps:\n  - action: block_ip\n"


@dataclass
class Recorder:
    """A ``run=`` callable that records the argv lists it is given and runs nothing.

    For tests whose point is the responder's bookkeeping, not the firewall (that
    runs for real in ``test_netns.py``). ``fail``: answer every call with exit 1.
    """

    fail: bool = False
    calls: list[list[list[str]]] = field(default_factory=list)
    prefixes: list[list[str]] = field(default_factory=list)

    def __call__(
        self, commands: Sequence[Command], *, prefix: Sequence[str] = (), timeout: float = 30.0
    ) -> Outcome:
        self.calls.append([list(c.argv) for c in commands])
        self.prefixes.append(list(prefix))
        if self.fail:
            return Outcome(False, 1, "Error: simulated failure")
        return Outcome(True, 0, "")


def all_blocks(store: SqlStore) -> list[BlockRecord]:
    """Every block row, ended ones included, oldest first."""
    return ResponseLog(store).block_history()
