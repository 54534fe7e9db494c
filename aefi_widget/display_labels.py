"""Words the page shows for a result: title, value label with the metric's unit, header fields.

Everything comes from the result (``labels``, ``settings``, ``baseline_error``), so a new method
shows its own title and axis name without any change here or in ``js/``.
"""

from __future__ import annotations

import math
from typing import Any

from aefi_widget.result import ImportanceResult

__all__ = ["METRIC_UNITS", "header_fields", "metric_unit", "page_labels"]

# What each built-in metric (engine/metrics.py) measures, for axis labels: (short name, unit).
METRIC_UNITS: dict[str, tuple[str, str]] = {
    "mse": ("MSE", "squared input units"),
    "mae": ("MAE", "input units"),
    "rmse_pct": ("RMSE %", "percent"),
}

# Settings shown in the header when present, in this order: (settings key, shown name).
_HEADER_SETTINGS = (
    ("metric", "metric"),
    ("target", "target"),
    ("seed", "seed"),
    ("samples_per_repeat", "samples"),
)


def metric_unit(metric: Any) -> str:
    """The unit of a built-in metric ("MSE, squared input units"), a custom metric's name, or ""."""
    if not isinstance(metric, str) or not metric:
        return ""
    name, unit = METRIC_UNITS.get(metric, (metric, ""))
    return f"{name}, {unit}" if unit else name


def page_labels(result: ImportanceResult) -> dict[str, str]:
    """The ``labels`` trait: what the title, the value axis and the per-estimate axis say.

    Returns
    -------
    dict of str -> str
        ``method``; ``title`` (e.g. "Permutation importance"); ``value`` (short, for tooltips,
        e.g. "Δ error"); ``unit`` (e.g. "MSE, squared input units", "" when unknown);
        ``value_label`` (``value (unit)``, for axes); ``interval`` (what the whiskers are when
        not a t interval over the estimates, else ""); ``count`` (what ``n_done`` counts: the axis,
        or a race's "row"); ``axis`` (what one estimate is: "repeat",
        "permutation", "sample").
    """
    labels = result.labels
    # A method may state its unit itself; otherwise its value is in the metric's units.
    unit = str(labels.get("unit") or metric_unit(result.settings.get("metric")))
    value = str(labels.get("value", "importance"))
    return {
        "method": result.method,
        "title": str(labels.get("title", f"{result.method} importance")),
        "value": value,
        "unit": unit,
        "value_label": f"{value} ({unit})" if unit else value,
        "axis": str(labels.get("axis", "repeat")),
        # What the whiskers are when they are not a t interval over the estimates, and what the
        # summary's n_done counts when not estimates (a race's rows).
        "interval": str(labels.get("interval", "")),
        "count": str(labels.get("count", labels.get("axis", "repeat"))),
    }


def header_fields(result: ImportanceResult) -> dict[str, str | int | float]:
    """The ``header`` trait: shown name -> value, in display order (JSON scalars only).

    Holds the scalar settings that say how the numbers were made (metric, target, seed,
    samples), the estimates per unit named by the result's axis (e.g. ``"repeats": 10``) and
    the unperturbed ``baseline error`` once it is known.
    """
    settings = result.settings
    fields: dict[str, str | int | float] = {}
    for key, shown in _HEADER_SETTINGS:
        value = settings.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            fields[shown] = value
    fields[f"{result.labels.get('axis', 'repeat')}s"] = result.n_repeats
    if math.isfinite(result.baseline_error):
        fields["baseline error"] = result.baseline_error
    return fields
