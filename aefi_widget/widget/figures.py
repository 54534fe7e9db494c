"""Building blocks of the bqplot drilldown figures: theme-neutral colours, sizes, short labels.

Text colours are not set here: ``js/widget.css`` styles every bqplot figure inside a drilldown
from JupyterLab's theme variables. Series colours are mid-tones that read on light and dark
backgrounds (contrast >= 3:1 against white and against #111).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, Figure

__all__ = [
    "COLORS",
    "DIAGONAL_COLOR",
    "PICKED_COLOR",
    "figure",
    "legend_html",
    "names_margin",
    "nice_ticks",
    "panel_layout",
    "short_labels",
    "title_name",
]

COLORS = {"reconstructed": "#1f77b4", "shuffled": "#d95f02", "original": "#8c8c8c"}
DIAGONAL_COLOR = "#999999"
PICKED_COLOR = "#d62728"
# Drilldowns at least this wide (px) show two panels a row; the dashboard stacks its charts
# below the same width (SIDE_BY_SIDE_MIN in js/views/charts.ts).
TWO_COLUMNS_MIN = 720
# ipywidgets' margin around every widget (--jp-widgets-margin), px.
WIDGET_MARGIN = 2
# Panel titles name a feature or a sample in at most this many characters: a panel can be as
# narrow as ~320 px, and bqplot centres a title on the plot area without clipping it.
TITLE_NAME_CHARS = 16
# Output names on a vertical axis: at most this many characters (shortened in the middle).
LABEL_CHARS = 16


def short_labels(names: Sequence[str], max_chars: int = LABEL_CHARS) -> list[str]:
    """``names`` shortened in the middle to ``max_chars``, still unique (an ordinal axis merges
    equal labels): where two shortened names collide, both keep more characters."""
    labels = list(names)
    for keep in range(max_chars, max(max_chars, *(len(n) for n in names), 1) + 1):
        labels = [_middle(name, keep) for name in names]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label} #{i}" for i, label in enumerate(labels)]  # equal names given twice


def title_name(name: str, max_chars: int = TITLE_NAME_CHARS) -> str:
    """``name`` shortened in the middle for a panel title (the caption above the panels and
    the tooltips give it in full)."""
    return _middle(name, max_chars)


def names_margin(labels: Sequence[str]) -> dict[str, int]:
    """Figure margins leaving room for ``labels`` on the left axis (11 px tick font, see
    widget.css: at most ~7 px a character)."""
    longest = max((len(label) for label in labels), default=4)
    return {"top": 36, "bottom": 48, "left": min(220, 24 + 7 * longest), "right": 20}


def nice_ticks(low: float, high: float, count: int = 3) -> np.ndarray:
    """About ``count`` tick values on 1-2-5 steps covering [low, high] (bqplot's own ticks
    crowd a narrow panel: "0.005 0.01 0.015 ..." run into each other)."""
    span = high - low
    if not np.isfinite(span) or span <= 0:
        return np.array([low]) if np.isfinite(low) else np.array([])
    raw = span / max(1, count)
    power = 10.0 ** np.floor(np.log10(raw))
    step = power * next(m for m in (1, 2, 5, 10) if raw <= m * power * (1 + 1e-9))
    first, last = np.ceil(low / step - 1e-9), np.floor(high / step + 1e-9)
    return np.round(np.arange(first, last + 1) * step, 12) + 0.0  # no -0.0 label


def _middle(name: str, keep: int) -> str:
    if len(name) <= keep:
        return name
    head = (keep - 1) * 11 // 20  # ~55 % of the kept characters before the ellipsis
    return name[:head] + "…" + name[len(name) - (keep - 1 - head) :]


def figure(
    title: str,
    marks: list[Any],
    x: Any,
    y: Any,
    x_label: str,
    y_label: str,
    *,
    left: int = 64,
    y_ordinal: bool = False,
) -> Figure:
    """A drilldown panel whose width follows its container, in CSS only (the kernel never
    learns the page's width): two a row where the drilldown is at least :data:`TWO_COLUMNS_MIN`
    px wide, else one a row; bqplot redraws a figure whenever its box changes size."""
    axes = [
        Axis(scale=x, label=x_label),
        Axis(
            scale=y,
            label=y_label,
            side="left",
            # Ordinal names need their width; numbers leave room for the label.
            label_offset=f"{left - 14}px" if not y_ordinal else f"{left - 8}px",
        ),
    ]
    return Figure(
        title=title,
        marks=marks,
        axes=axes,
        fig_margin={"top": 36, "bottom": 48, "left": left, "right": 20},
        layout=panel_layout(),
    )


def panel_layout() -> widgets.Layout:
    """A drilldown panel's box: half its row (less the 2 x 2 px margins ipywidgets puts around
    every widget) but never narrower than half of :data:`TWO_COLUMNS_MIN`, so two panels share a
    row from that width on and each takes a row of its own below it, like the dashboard's
    charts; never wider than its container either (a narrow notebook or a side panel)."""
    half = TWO_COLUMNS_MIN // 2 - 2 * WIDGET_MARGIN
    return widgets.Layout(
        flex=f"1 1 calc(50% - {2 * WIDGET_MARGIN}px)",
        min_width=f"min({half}px, calc(100% - {2 * WIDGET_MARGIN}px))",
        height="340px",
    )


def legend_html(names: Sequence[str]) -> str:
    """A one-line legend (HTML) for series drawn in :data:`COLORS`: outside the plots, so it
    never covers data."""
    items = [
        f'<span class="aefi-swatch" style="color:{COLORS[name]}">●</span> {html.escape(name)}'
        for name in names
    ]
    return '<span class="aefi-figure-legend">' + " &nbsp; ".join(items) + "</span>"
