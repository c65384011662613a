"""A live engine's saved state: its windows and detector in a versioned, compressed envelope.

Part of the engine (:mod:`soc.engine`, which saves it with the sources'
checkpoints in every commit of a durable engine and continues it at start),
apart because it is a format: what is written, how it is checked when read back,
and what is kept when it cannot be continued.

The envelope is a JSON object: ``format``, ``version``, ``generation`` (see
:attr:`soc.detect.Detector.generation`), ``encoding`` and ``data``, the body as
compact JSON, zlib-compressed and base64-encoded. The body holds the window
length, the event time and the wall-clock time it was reached, the states of
:mod:`soc.window.state` and :mod:`soc.detect.state`, and each stream's parser state
(``FormatParser.state``: sshd's connections, the stamps' year, …). All plain JSON,
never pickle: it is read back from the database. Version 1 state (before parsers
were saved) is still continued, its parsers starting afresh.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from soc.config import Settings
from soc.detect import Detector
from soc.detect import state as detect_state
from soc.parse import FormatParser
from soc.window import Windower
from soc.window import state as window_state

#: The checkpoint row a durable engine keeps its state in (no source may take the name).
STATE_CHECKPOINT: Final = "(engine)"
STATE_FORMAT: Final = "soc-engine-state"
#: Bumped whenever the body's layout changes (the parts have versions of their own).
STATE_VERSION: Final = 2
#: Versions :func:`decode` continues (1: no parser states).
_READABLE: Final = (1, 2)


@dataclass(frozen=True, slots=True)
class SavedParser:
    """One stream's parser as saved: its source and stream, format, reference and state."""

    source: str
    stream: str
    format: str
    reference_time: float
    state: Mapping[str, Any]


@dataclass(slots=True)
class Restored:
    """What a saved state continues as: the settings it was saved under, and the objects."""

    settings: Settings
    windower: Windower
    detector: Detector
    event_time: float | None
    event_wall: float
    parsers: list[SavedParser]


def encode(
    settings: Settings,
    windower: Windower,
    detector: Detector,
    *,
    event_time: float | None,
    event_wall: float,
    parsers: Mapping[tuple[str, str], FormatParser] | None = None,
) -> dict[str, Any]:
    """The envelope of the engine's state now (JSON-ready); ``parsers`` by (source, stream)."""
    body = {
        "window_seconds": settings.window.seconds,
        "event_time": event_time,
        "event_wall": event_wall,
        "windower": window_state.dump(windower),
        "detector": detect_state.dump(detector),
        "parsers": [
            [source, stream, parser.name, parser.reference_time, parser.state()]
            for (source, stream), parser in (parsers or {}).items()
        ],
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "generation": detector.generation,
        "encoding": "json+zlib+base64",
        "data": base64.b64encode(zlib.compress(raw, 1)).decode("ascii"),
    }


def generation_of(envelope: Mapping[str, Any]) -> int:
    """The detector generation an envelope names (0 when it names none it can)."""
    generation = envelope.get("generation")
    return generation if isinstance(generation, int) and generation >= 0 else 0


def decode(
    envelope: Mapping[str, Any], settings: Settings, host_addresses: Iterable[str]
) -> Restored:
    """The windower and detector ``envelope`` continues, built for ``settings``.

    A saved window length other than the configured one is kept (the returned
    settings have it): the caller changes it as a run-time window change does.
    Raises ``ValueError`` (with the reason) for state of another format or
    version, or damaged state.
    """
    if envelope.get("format") != STATE_FORMAT:
        raise ValueError(f"not {STATE_FORMAT} state")
    version = envelope.get("version")
    if version not in _READABLE:
        raise ValueError(f"version {version!r}, not one of {', '.join(map(str, _READABLE))}")
    try:
        body = json.loads(zlib.decompress(base64.b64decode(str(envelope["data"]))))
        seconds = float(body["window_seconds"])
        if seconds != settings.window.seconds:
            settings = replace(
                settings,
                window=replace(settings.window, seconds=seconds),
                detect=replace(settings.detect, window_seconds=seconds),
            )
        windower = Windower(settings.window)
        detector = Detector(settings.detect, host_addresses=host_addresses)
        window_state.load(windower, body["windower"])
        detect_state.load(detector, body["detector"])
        event_time = body["event_time"]
        parsers = [
            SavedParser(str(source), str(stream), str(name), float(reference), dict(state))
            for source, stream, name, reference, state in body.get("parsers", [])
        ]
        return Restored(
            settings,
            windower,
            detector,
            None if event_time is None else float(event_time),
            float(body["event_wall"]),
            parsers,
        )
    except (KeyError, TypeError, zlib.error) as exc:
        raise ValueError(f"damaged state: {exc!r}") from None


__all__ = [
    "STATE_CHECKPOINT",
    "STATE_FORMAT",
    "STATE_VERSION",
    "Restored",
    "SavedParser",
    "decode",
    "encode",
    "generation_of",
]
