"""Acquisition: log sources behind one small interface, registered by short name.

Each source module defines a config dataclass (validated before anything runs,
unknown keys refused) and a source class built from it. ``SOURCE_TYPES`` maps the
short name used in ``soc.toml`` (``type = "file"``) to ``"module:ConfigClass:SourceClass"``
so that importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any

from soc.acquire.base import AcquireStats, Source, decode_line
from soc.registry import resolve

SOURCE_TYPES: dict[str, str] = {
    "file": "soc.acquire.file:FileSourceConfig:FileSource",
    "replay": "soc.acquire.replay:ReplaySourceConfig:ReplaySource",
    "syslog": "soc.acquire.syslog:SyslogSourceConfig:SyslogSource",
    "journal": "soc.acquire.journal:JournalSourceConfig:JournalSource",
    "stdin": "soc.acquire.stdin:StdinSourceConfig:StdinSource",
}


def source_classes(type_name: str) -> tuple[type[Any], type[Any]]:
    """The (config class, source class) registered under ``type_name``."""
    config_class, source_class = resolve(SOURCE_TYPES, type_name, "source type")
    return config_class, source_class


__all__ = ["SOURCE_TYPES", "AcquireStats", "Source", "decode_line", "source_classes"]
