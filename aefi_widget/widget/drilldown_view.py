"""bqplot drilldown of the selected feature: values, moved outputs, per-sample error, profile.

Panels: (a) original vs reconstructed value of the feature for every sample, with the
reconstruction after shuffling overlaid; (b) the outputs that move most when it is shuffled;
(c) per-sample increase of the reconstruction error, sorted (click a point); (d) the clicked
sample's original, reconstructed and shuffled-reconstruction values across the most affected
outputs. Numbers come from ``engine.drilldown()``; this module only draws them, on its own
thread, because a drilldown is a full pass over X and must not delay the live dashboard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, Bars, Figure, LinearScale, Lines, OrdinalScale, Scatter

from aefi_widget.result import ImportanceResult
from aefi_widget.widget.messages import InvalidMessage, check_index
from aefi_widget.widget.worker import OnDemandThread

__all__ = ["DrilldownView", "display_positions"]

# SVG scatter plots get slow beyond a few thousand points; larger sets are drawn thinned.
MAX_POINTS = 2000
# Panel (d) draws its lines in this order: the original last, on top of a close reconstruction.
# Mid-tone colours readable on JupyterLab's light and dark backgrounds alike (contrast >= 3:1
# against white and against #111); text and axes follow the theme through widget.css.
_COLORS = {"reconstructed": "#1f77b4", "shuffled": "#ff7f0e", "original": "#8c8c8c"}
_DIAGONAL_COLOR = "#999999"
_PICKED_COLOR = "#d62728"


def display_positions(m: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Evenly spaced positions in ``range(m)`` (all when m <= limit; ends always kept)."""
    if m <= limit:
        return np.arange(m)
    return np.unique(np.linspace(0, m - 1, limit).round().astype(np.int64))


def _figure(
    title: str,
    marks: list[Any],
    x: Any,
    y: Any,
    x_label: str,
    y_label: str,
    legend_location: str = "top-left",
) -> Figure:
    axes = [
        Axis(scale=x, label=x_label, tick_rotate=-30 if isinstance(x, OrdinalScale) else 0),
        Axis(scale=y, label=y_label, side="left", label_offset="40px"),
    ]
    return Figure(
        title=title,
        marks=marks,
        axes=axes,
        # Room on the right for the last rotated output name.
        fig_margin={"top": 40, "bottom": 60, "left": 60, "right": 40},
        layout=widgets.Layout(width="460px", height="300px"),
        legend_location=legend_location,
    )


def _legend_scatter(name: str, x: LinearScale, y: LinearScale) -> Scatter:
    """Small points in the colour of ``name``, labelled in the legend."""
    return Scatter(
        scales={"x": x, "y": y},
        colors=[_COLORS[name]],
        default_size=10,
        labels=[name],
        display_legend=True,
    )


class DrilldownView:
    """The four drilldown panels for one engine; ``show(name)`` switches the feature.

    Parameters
    ----------
    engine : PermutationImportance
        Provides ``drilldown(feature, repeat, top_outputs)``.
    latest_result : callable returning ImportanceResult
        The live snapshot; its ``delta_recon`` row feeds panel (b) when available.
    warn : callable(str)
        Shows a warning in the dashboard (invalid sample clicks).
    labels : dict of str -> str, optional
        The page's labels (``value``, ``value_label`` with the metric's unit); permutation
        importance's when omitted.
    top_outputs : int
        Outputs shown in panels (b) and (d).
    """

    def __init__(
        self,
        engine: Any,
        latest_result: Callable[[], ImportanceResult],
        warn: Callable[[str], None],
        labels: dict[str, str] | None = None,
        top_outputs: int = 20,
    ) -> None:
        self.engine, self._latest_result, self._warn = engine, latest_result, warn
        labels = labels or {}
        self.value_name = labels.get("value", "Δ error")
        self.value_label = labels.get("value_label", self.value_name)
        self.top_outputs = top_outputs
        self.drilldown: Any = None  # the Drilldown drawn now
        self._lock = threading.Lock()
        self._wanted_feature = ""
        self._wanted_sample: int | None = None  # position in the drilldown's arrays
        self._shown_feature = ""
        self._shown_sample: int | None = None
        self._points = np.arange(0)  # panel (c): drawn point -> position in the arrays
        self._build()
        self._thread = OnDemandThread("aefi-drilldown", self._step)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        xa, ya = LinearScale(), LinearScale()
        self._recon = _legend_scatter("reconstructed", xa, ya)
        self._shuffled = _legend_scatter("shuffled", xa, ya)
        self._diagonal = Lines(
            scales={"x": xa, "y": ya}, colors=[_DIAGONAL_COLOR], line_style="dashed"
        )
        self.values_figure = _figure(
            "(a) values",
            [self._diagonal, self._recon, self._shuffled],
            xa,
            ya,
            "original",
            "reconstruction",
        )
        xb, yb = OrdinalScale(), LinearScale(min=0.0)
        self._shift = Bars(scales={"x": xb, "y": yb}, colors=[_COLORS["shuffled"]])
        self.shift_figure = _figure(
            "(b) outputs that move most", [self._shift], xb, yb, "output", "mean |Δ reconstruction|"
        )
        xc, yc = LinearScale(), LinearScale()
        self._errors = Scatter(
            scales={"x": xc, "y": yc}, colors=[_COLORS["reconstructed"]], default_size=12
        )
        self._errors.on_element_click(self._on_sample_click)
        self._picked = Scatter(scales={"x": xc, "y": yc}, colors=[_PICKED_COLOR], default_size=60)
        self.error_figure = _figure(
            "(c) error increase per sample (click one)",
            [self._errors, self._picked],
            xc,
            yc,
            "samples, sorted",
            self.value_label,
        )
        xd, yd = OrdinalScale(), LinearScale()
        self._profile = Lines(
            scales={"x": xd, "y": yd},
            colors=list(_COLORS.values()),
            labels=list(_COLORS),
            display_legend=True,
            marker="circle",
        )
        # Outputs are sorted by how much they move, so the lines are tallest on the left.
        self.profile_figure = _figure(
            "(d) sample profile", [self._profile], xd, yd, "output", "value", "top-right"
        )
        self.message = widgets.HTML("")
        # Hidden until a feature is drawn: empty 0-1 axes would look broken (the dashboard
        # says what to click meanwhile).
        self.figures = widgets.Box(
            [self.values_figure, self.shift_figure, self.error_figure, self.profile_figure],
            layout=widgets.Layout(display="none", flex_flow="row wrap"),
        )
        self.widget = widgets.VBox([self.message, self.figures])

    # ------------------------------------------------------------------ requests (any thread)
    def show(self, feature: str) -> None:
        """Draw ``feature`` (a known name; the dashboard validated it). Returns at once."""
        with self._lock:
            self._wanted_feature = feature
        self._thread.wake()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the requested feature and sample are drawn; False on timeout."""
        return self._thread.flush(timeout)

    def close(self) -> None:
        """Stop the drawing thread."""
        self._thread.close()

    def _on_sample_click(self, _mark: Any, content: Any) -> None:
        """bqplot element click on panel (c): untrusted, validated, recorded; tiny."""
        try:
            data = content.get("data") if isinstance(content, dict) else None
            if not isinstance(data, dict):
                raise InvalidMessage("a sample click without data")
            point = check_index(data.get("index"), len(self._points), "sample point")
        except InvalidMessage as error:
            self._warn(f"Ignored a sample click from the page: {error}")
            return
        with self._lock:
            self._wanted_sample = int(self._points[point])
        self._thread.wake()

    # ------------------------------------------------------------------ drawing thread
    def _step(self) -> None:
        with self._lock:
            feature, sample = self._wanted_feature, self._wanted_sample
        if feature and feature != self._shown_feature:
            self.message.value = f"computing the drilldown of <b>{feature}</b>…"
            try:
                drill = self.engine.drilldown(feature, repeat=0, top_outputs=self.top_outputs)
            except Exception as error:  # shown, never raised on a background thread
                self.message.value = (
                    f"drilldown of {feature} failed: {type(error).__name__}: {error}"
                )
                self._shown_feature = feature
                return
            self._draw_feature(drill)
            self.figures.layout.display = "flex"
            self.message.value = (
                f"<b>{feature}</b> (repeat {drill.repeat}, {len(drill.sample_index):,} samples; "
                f"panel (a) shows column {drill.shown_column})"
            )
            self._shown_feature, self._shown_sample = feature, None
            with self._lock:
                # A new feature starts at its most affected sample unless one was clicked since.
                if self._wanted_sample == sample:
                    self._wanted_sample = sample = int(np.argmax(drill.error_increase))
        if self.drilldown is not None and sample is not None and sample != self._shown_sample:
            self._draw_sample(sample)
            self._shown_sample = sample

    def _draw_feature(self, drill: Any) -> None:
        self.drilldown = drill
        shown = display_positions(len(drill.original))
        low = float(np.nanmin(drill.original)) if len(shown) else 0.0
        high = float(np.nanmax(drill.original)) if len(shown) else 1.0
        with self._recon.hold_sync(), self._shuffled.hold_sync(), self._diagonal.hold_sync():
            self._recon.x = self._shuffled.x = drill.original[shown]
            self._recon.y = drill.reconstructed[shown]
            self._shuffled.y = drill.shuffled_reconstruction[shown]
            self._diagonal.x = self._diagonal.y = np.array([low, high])
        names, values = self._moved_outputs(drill)
        with self._shift.hold_sync():
            self._shift.x, self._shift.y = names, values
        order = np.argsort(drill.error_increase, kind="stable")
        self._points = order[display_positions(len(order))]
        with self._errors.hold_sync():
            self._errors.x = np.arange(len(order))[display_positions(len(order))]
            self._errors.y = drill.error_increase[self._points]
        self.error_figure.title = f"(c) error increase of {drill.feature} per sample (click one)"

    def _moved_outputs(self, drill: Any) -> tuple[list[str], np.ndarray]:
        """Top outputs by ``delta_recon`` (mean over finished repeats), else this repeat's."""
        delta = self._latest_result().delta_recon
        if delta is not None and drill.feature in delta.index:
            row = delta.loc[drill.feature].dropna()
            if len(row):
                top = row.sort_values(ascending=False, kind="stable").head(self.top_outputs)
                return [str(n) for n in top.index], top.to_numpy(dtype=np.float64)
        return list(drill.top_outputs), np.asarray(drill.output_shift, dtype=np.float64)

    def _draw_sample(self, position: int) -> None:
        drill = self.drilldown
        rank = int(np.flatnonzero(np.argsort(drill.error_increase, kind="stable") == position)[0])
        with self._picked.hold_sync():
            self._picked.x, self._picked.y = [rank], [float(drill.error_increase[position])]
        with self._profile.hold_sync():
            self._profile.x = list(drill.top_outputs)
            self._profile.y = np.vstack(
                [
                    drill.profile_reconstructed[position],
                    drill.profile_shuffled[position],
                    drill.profile_original[position],
                ]
            )
        self.profile_figure.title = (
            f"(d) sample {int(drill.sample_index[position])}: {self.value_name} "
            f"{float(drill.error_increase[position]):.3g}"
        )
