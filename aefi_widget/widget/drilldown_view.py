"""bqplot drilldown of the selected feature: values, moved outputs, per-sample error, profile.

Panels: (a) original vs reconstructed value of the feature for every sample, with the
reconstruction after shuffling overlaid; (b) the outputs that move most when it is shuffled;
(c) per-sample increase of the reconstruction error, sorted (click a point); (d) the clicked
sample's original, reconstructed and shuffled-reconstruction values across the most affected
outputs. Numbers come from ``engine.drilldown()``; this module only draws them, on its own
thread, because a drilldown is a full pass over X and must not delay the live dashboard.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
from bqplot import Bars, LinearScale, Lines, OrdinalScale, Scatter, Tooltip

from aefi_widget.result import ImportanceResult
from aefi_widget.widget.closing import close_widget_tree
from aefi_widget.widget.figures import (
    COLORS,
    DIAGONAL_COLOR,
    PICKED_COLOR,
    figure,
    legend_html,
    names_margin,
    nice_ticks,
    short_labels,
    title_name,
)
from aefi_widget.widget.messages import InvalidMessage, check_index
from aefi_widget.widget.worker import OnDemandThread

__all__ = ["DrilldownView", "display_positions"]

# SVG scatter plots get slow beyond a few thousand points; larger sets are drawn thinned.
MAX_POINTS = 2000
# A group's members listed in the caption (the rest are counted).
MAX_MEMBERS = 30
# Left margin of panels with output names on the vertical axis.
NAMES_MARGIN = 140


def display_positions(m: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Evenly spaced positions in ``range(m)`` (all when m <= limit; ends always kept)."""
    if m <= limit:
        return np.arange(m)
    return np.unique(np.linspace(0, m - 1, limit).round().astype(np.int64))


def _series(
    name: str, x: Any, y: Any, axes: tuple[str, str], marker: str = "circle", size: int = 14,
    per_sample: bool = False,
) -> Scatter:  # fmt: skip
    """Points of one named series in its colour (the legend is HTML, outside the plots), with
    a tooltip naming the series and both values (and the sample, for one point per sample)."""
    fields, labels = ["x", "y"], [f"{name}: {axes[0]}", axes[1]]
    if per_sample:  # the point's ``names`` hold sample labels
        fields, labels = ["name", *fields], ["sample", *labels]
    return Scatter(
        scales={"x": x, "y": y}, colors=[COLORS[name]], default_size=size, marker=marker,
        display_names=False, tooltip=Tooltip(fields=fields, labels=labels),
    )  # fmt: skip


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
        axes_a = ("original", "reconstruction")
        self._recon = _series("reconstructed", xa, ya, axes_a, size=10, per_sample=True)
        self._shuffled = _series("shuffled", xa, ya, axes_a, size=10, per_sample=True)
        self._diagonal = Lines(
            scales={"x": xa, "y": ya}, colors=[DIAGONAL_COLOR], line_style="dashed"
        )
        self.values_figure = figure(
            "(a) values", [self._diagonal, self._recon, self._shuffled], xa, ya,
            "original", "reconstruction",
        )  # fmt: skip
        # Horizontal bars: output names read on the vertical axis and never overlap.
        yb, xb = OrdinalScale(reverse=True), LinearScale(min=0.0)
        self._shift = Bars(
            scales={"x": yb, "y": xb}, colors=[COLORS["shuffled"]], orientation="horizontal",
            tooltip=Tooltip(fields=["x", "y"], labels=["output", "mean |Δ|"], formats=["", ".3g"]),
        )  # fmt: skip
        self.shift_figure = figure(
            "(b) outputs that move most", [self._shift], xb, yb, "mean |Δ reconstruction|", "",
            left=NAMES_MARGIN, y_ordinal=True,
        )  # fmt: skip
        xc, yc = LinearScale(), LinearScale()
        self._errors = Scatter(
            scales={"x": xc, "y": yc}, colors=[COLORS["reconstructed"]], default_size=12,
            display_names=False,
            tooltip=Tooltip(fields=["name", "y"], labels=["sample", self.value_name],
                            formats=["", ".3g"]),
        )  # fmt: skip
        self._errors.on_element_click(self._on_sample_click)
        self._picked = Scatter(scales={"x": xc, "y": yc}, colors=[PICKED_COLOR], default_size=60)
        self.error_figure = figure(
            "(c) error increase per sample (click one)", [self._errors, self._picked], xc, yc,
            "samples, sorted", self.value_label,
        )  # fmt: skip
        # A dot plot over the same outputs as (b): names on the vertical axis, no overlap.
        yd, xd = OrdinalScale(reverse=True), LinearScale()
        self._profile = {
            name: _series(name, xd, yd, ("value", "output"), marker=marker, size=22)
            for name, marker in (("reconstructed", "square"), ("shuffled", "triangle-up"),
                                 ("original", "diamond"))
        }  # fmt: skip
        self.profile_figure = figure(
            "(d) sample profile", list(self._profile.values()), xd, yd, "value", "",
            left=NAMES_MARGIN, y_ordinal=True,
        )  # fmt: skip
        self.message = widgets.HTML("")
        self.legend = widgets.HTML(legend_html(list(COLORS)))
        # Shown once a feature is drawn: empty 0-1 axes would look broken (the dashboard says
        # what to click meanwhile). Added then rather than unhidden: bqplot sizes a figure when
        # it is first rendered, and one rendered while hidden stays blank.
        self.figures = widgets.VBox(
            [
                self.legend,
                widgets.Box(
                    [self.values_figure, self.shift_figure, self.error_figure,
                     self.profile_figure],
                    layout=widgets.Layout(flex_flow="row wrap", width="100%"),
                ),
            ]
        )  # fmt: skip
        self.widget = widgets.VBox([self.message])

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
        """Stop the drawing thread and close the widgets."""
        self._thread.close()
        close_widget_tree(self.figures)
        close_widget_tree(self.widget)

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
            # Names and error texts come from data: escaped, since ipywidgets.HTML sets innerHTML.
            name = html.escape(feature)
            self.message.value = f"computing the drilldown of <b>{name}</b>…"
            try:
                drill = self.engine.drilldown(feature, repeat=0, top_outputs=self.top_outputs)
            except Exception as error:  # shown, never raised on a background thread
                self.message.value = html.escape(
                    f"drilldown of {feature} failed: {type(error).__name__}: {error}"
                )
                self._shown_feature = feature
                return
            self._draw_feature(drill)
            if self.figures not in self.widget.children:
                self.widget.children = (self.message, self.figures)
            self.message.value = _caption(drill)
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
        labels = drill.labels()
        low = float(np.nanmin(drill.original)) if len(shown) else 0.0
        high = float(np.nanmax(drill.original)) if len(shown) else 1.0
        with self._recon.hold_sync(), self._shuffled.hold_sync(), self._diagonal.hold_sync():
            self._recon.x = self._shuffled.x = drill.original[shown]
            self._recon.y = drill.reconstructed[shown]
            self._recon.names = self._shuffled.names = [labels[i] for i in shown]
            self._shuffled.y = drill.shuffled_reconstruction[shown]
            self._diagonal.x = self._diagonal.y = np.array([low, high])
        names, values = self._moved_outputs(drill)
        outputs = short_labels(names)
        with self._shift.hold_sync():
            self._shift.x, self._shift.y = outputs, values
        self.shift_figure.fig_margin = names_margin(outputs)
        self.shift_figure.axes[0].tick_values = nice_ticks(0.0, float(np.max(values, initial=0.0)))
        order = np.argsort(drill.error_increase, kind="stable")
        self._points = order[display_positions(len(order))]
        with self._errors.hold_sync():
            self._errors.x = np.arange(len(order))[display_positions(len(order))]
            self._errors.y = drill.error_increase[self._points]
            # Hover shows each point's sample: its label (DataFrame index, AnnData obs_names).
            self._errors.names = [labels[i] for i in self._points]
        # Short enough for a panel of ~320 px (bqplot does not wrap or clip titles).
        self.error_figure.title = f"(c) {title_name(drill.feature)} per sample (click one)"

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
        outputs = short_labels([str(n) for n in drill.top_outputs])
        profiles = {
            "reconstructed": drill.profile_reconstructed[position],
            "shuffled": drill.profile_shuffled[position],
            "original": drill.profile_original[position],
        }
        for name, values in profiles.items():
            with self._profile[name].hold_sync():
                self._profile[name].x = np.asarray(values, dtype=np.float64)
                self._profile[name].y = outputs
        self.profile_figure.fig_margin = names_margin(outputs)
        every = np.concatenate([np.asarray(v, dtype=np.float64) for v in profiles.values()])
        finite = every[np.isfinite(every)]
        if finite.size:
            self.profile_figure.axes[0].tick_values = nice_ticks(finite.min(), finite.max(), 4)
        self.profile_figure.title = (
            f"(d) sample {title_name(drill.labels()[position])}: {self.value_name} "
            f"{float(drill.error_increase[position]):.3g}"
        )


def _caption(drill: Any) -> str:
    """The line above the panels: unit, repeat, samples, the column drawn; a group's members."""
    feature = html.escape(drill.feature)
    line = (
        f"<b>{feature}</b> (the shuffle of repeat {drill.repeat + 1}, "
        f"{len(drill.sample_index):,} samples; "
        f"panel (a) shows column {html.escape(drill.shown_column)})"
    )
    if len(drill.columns) > 1 or drill.columns[:1] != (drill.feature,):
        shown = ", ".join(html.escape(str(c)) for c in drill.columns[:MAX_MEMBERS])
        more = len(drill.columns) - MAX_MEMBERS
        line += f"<br>group of {len(drill.columns)}, shuffled together: {shown}"
        line += f" and {more} more" if more > 0 else ""
    return line
