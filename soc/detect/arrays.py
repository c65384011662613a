"""Small numpy helpers the detector's columns use."""

from __future__ import annotations

import numpy as np


def first_per_unit(mask: np.ndarray, units: np.ndarray) -> dict[int, int]:
    """For each unit where ``mask`` holds somewhere, the first such position."""
    positions = np.flatnonzero(mask)
    if not len(positions):
        return {}
    found, index = np.unique(units[positions], return_index=True)
    return dict(zip(found.tolist(), positions[index].tolist(), strict=True))


def where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask`` holds, else None (object arrays)."""
    out = np.array(values, dtype=object)
    out[~mask] = None
    return out


__all__ = ["first_per_unit", "where"]
