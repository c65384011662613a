"""The windower's state as plain data, so that a restarted engine continues it.

:func:`dump` gives the open windows (their counts, kinds and distinct values),
which keys are least recently seen, the watermarks and the running counts, as
JSON-ready lists and numbers; :func:`load` puts them into a new windower with
the same window length. Open windows are what a crash would lose: their lines
are already read (the sources' checkpoints moved past them) while the windows
wait ``late_seconds`` for late lines. The state is bounded as the windower is:
at most ``max_keys`` keys, ``max_distinct`` values per window and set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from soc.events import Event, WindowStats
from soc.window.base import WindowConfig
from soc.window.windower import Windower, _Window

#: Bumped whenever the layout below changes; :func:`load` refuses other versions.
VERSION: Final = 1
_FIELDS: Final = ("events", "failures", "successes", "late")


class StateError(ValueError):
    """Saved state this version cannot continue from (the reason is the message)."""


def dump(windower: Windower) -> dict[str, Any]:
    """The windower's state: open windows key by key, least recently seen key first."""
    keys: list[list[Any]] = []
    for (kt, key), indexes in windower._keys.items():
        windows = []
        for index in sorted(indexes):
            window = windower._open[(kt, key, index)]
            windows.append(
                [
                    index,
                    [getattr(window, name) for name in _FIELDS],
                    _finite(window.first),
                    _finite(window.last),
                    window.by_kind,
                    {
                        name: [list(d.values), d.overflow]
                        for name, d in window.sets.items()
                        if d.values or d.overflow
                    },
                ]
            )
        keys.append([kt, key, windows])
    return {
        "version": VERSION,
        "seconds": windower.config.seconds,
        "watermark": windower.watermark,
        "watermarks": dict(windower.watermarks),
        "keys": keys,
        "stats": windower.stats.as_dict(),
    }


def load(windower: Windower, state: Mapping[str, Any]) -> None:
    """Continue ``state`` (from :func:`dump`) in ``windower``, a new one.

    Raises :class:`StateError` when the state is of another version or window
    length (its windows cannot be merged with these), or is malformed; the
    windower is then left as it was.
    """
    if state.get("version") != VERSION:
        raise StateError(f"window state version {state.get('version')!r}, not {VERSION}")
    if state.get("seconds") != windower.config.seconds:
        raise StateError(
            f"windows of {state.get('seconds')} s saved, {windower.config.seconds} s configured"
        )
    try:
        opened: dict[tuple[int, str, int], _Window] = {}
        by_index: dict[int, set[tuple[int, str, int]]] = {}
        order: dict[tuple[int, str], set[int]] = {}
        for kt, key, windows in state["keys"]:
            held = order.setdefault((int(kt), str(key)), set())
            for index, counts, first, last, by_kind, sets in windows:
                window = _Window()
                for name, value in zip(_FIELDS, counts, strict=True):
                    setattr(window, name, int(value))
                window.first = math.inf if first is None else float(first)
                window.last = -math.inf if last is None else float(last)
                window.by_kind = {str(k): int(n) for k, n in by_kind.items()}
                for name, (values, overflow) in sets.items():
                    distinct = window.distinct(str(name))
                    distinct.values = dict.fromkeys(values)
                    distinct.overflow = int(overflow)
                wkey = (int(kt), str(key), int(index))
                opened[wkey] = window
                by_index.setdefault(int(index), set()).add(wkey)
                held.add(int(index))
        watermark = state["watermark"]
        watermarks = {str(k): float(v) for k, v in state["watermarks"].items()}
        counts = {str(k): int(v) for k, v in state["stats"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"malformed window state: {exc!r}") from None
    windower._open = opened
    windower._by_index = by_index
    windower._keys.clear()
    windower._keys.update(order)
    windower.watermark = None if watermark is None else float(watermark)
    windower.watermarks = watermarks
    stats = windower.stats
    for name, value in counts.items():
        if hasattr(stats, name):
            setattr(stats, name, value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = ["VERSION", "StateError", "dump", "load"]


def window_batch(
    config: WindowConfig,
    events: Sequence[Event],
    state: Mapping[str, Any] | None,
    *,
    stream: str = "",
    flush: bool = False,
) -> tuple[list[WindowStats], dict[str, Any]]:
    """The windowing stage as a pure function: (batch, carried state) → (windows, state).

    ``state`` is what the previous call returned (None at the start); with
    ``flush`` every open window is handed over after the batch (the end of a
    stream). The same windows come out as from one :class:`Windower` fed batch
    after batch: the shape a distributed engine's per-key-group operator runs.
    """
    windower = Windower(config)
    if state is not None:
        load(windower, state)
    out = windower.add(events, stream) if events else []
    if flush:
        out.extend(windower.flush())
    return out, dump(windower)
