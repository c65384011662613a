"""The command center's look: one dark, high-contrast palette for Streamlit and Plotly.

``.streamlit/config.toml`` carries the same colours for Streamlit's own widgets;
:func:`plotly_template` gives every chart the same background, fonts and
category colours, and severities always use the red heat scale
(:data:`SEVERITY_COLORS`), from pale for low to hot red for critical, so the
worst items stand out on a wall screen.
"""

from __future__ import annotations

from typing import Any, Final, cast

import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]

BACKGROUND: Final = "#0b0f14"
SURFACE: Final = "#151b23"
GRID: Final = "#2a3440"
TEXT: Final = "#e8edf2"
MUTED: Final = "#9aa7b4"
PRIMARY: Final = "#38bdf8"
FONT: Final = "Inter, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

#: Severity → colour: a red heat scale (low is pale, critical is the hottest red).
SEVERITY_COLORS: Final[dict[str, str]] = {
    "none": "#5b6673",
    "low": "#fdd49e",
    "medium": "#fc8d59",
    "high": "#ef3b2c",
    "critical": "#ff0033",
}
#: The same scale as a continuous colour scale (for values, not categories).
RED_HEAT_SCALE: Final[list[list[float | str]]] = [
    [0.0, "#fdd49e"],
    [0.35, "#fc8d59"],
    [0.7, "#ef3b2c"],
    [1.0, "#ff0033"],
]

#: Category colours (event kinds, providers): bright and distinguishable on dark.
CATEGORY_COLORS: Final[list[str]] = [
    "#38bdf8",
    "#f472b6",
    "#facc15",
    "#34d399",
    "#a78bfa",
    "#fb923c",
    "#94a3b8",
    "#2dd4bf",
    "#e879f9",
    "#f87171",
]

TEMPLATE_NAME: Final = "soc_dark"


def plotly_template() -> Any:
    """The Plotly template every chart uses (registered once as ``soc_dark``)."""
    if TEMPLATE_NAME not in pio.templates:
        axis = {
            "automargin": True,
            "gridcolor": GRID,
            "linecolor": GRID,
            "zerolinecolor": GRID,
            "tickfont": {"color": TEXT},
            "title": {"font": {"color": MUTED}},
        }
        pio.templates[TEMPLATE_NAME] = go.layout.Template(
            layout={
                "paper_bgcolor": BACKGROUND,
                "plot_bgcolor": BACKGROUND,
                "font": {"family": FONT, "color": TEXT, "size": 14},
                "colorway": CATEGORY_COLORS,
                "xaxis": axis,
                "yaxis": axis,
                "legend": {"bgcolor": "rgba(0,0,0,0)", "font": {"color": TEXT}},
                "hoverlabel": {"bgcolor": SURFACE, "font": {"color": TEXT}},
                "margin": {"l": 10, "r": 10, "t": 48, "b": 10, "autoexpand": True},
                "title": {"font": {"color": TEXT, "size": 16}},
            }
        )
    return cast(Any, pio.templates[TEMPLATE_NAME])


__all__ = [
    "BACKGROUND",
    "CATEGORY_COLORS",
    "PRIMARY",
    "RED_HEAT_SCALE",
    "SEVERITY_COLORS",
    "SURFACE",
    "TEMPLATE_NAME",
    "TEXT",
    "plotly_template",
]
