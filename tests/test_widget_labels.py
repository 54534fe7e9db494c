"""Words on the page follow the result: title, value label with its unit, header, drilldown."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aefi_widget.display_labels import header_fields, page_labels
from aefi_widget.result import ImportanceResult
from aefi_widget.widget import Explorer
from aefi_widget.widget import drilldowns as drilldowns_module
from aefi_widget.widget.drilldown_view import DrilldownView
from aefi_widget.widget.drilldowns import (
    DrilldownContext,
    NoDrilldown,
    build_drilldown,
    register_drilldown,
    registered_methods,
)
from aefi_widget.widget.figures import names_margin, nice_ticks, short_labels


def _result(settings: dict, labels: dict | None = None, baseline: float = 0.5) -> ImportanceResult:
    return ImportanceResult(("a", "b"), ("a", "b"), np.ones((2, 3)), baseline_error=baseline,
                            settings=settings, labels=labels)  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "value_label"),
    [
        ("mse", "Δ error (MSE, squared input units)"),
        ("mae", "Δ error (MAE, input units)"),
        ("rmse_pct", "Δ error (RMSE %, percent)"),
        ("my_cosine_error", "Δ error (my_cosine_error)"),
    ],
)
def test_the_value_label_carries_the_metric_unit(metric, value_label) -> None:
    labels = page_labels(_result({"method": "permutation", "metric": metric}))
    assert labels["title"] == "Permutation importance"
    assert labels["value"] == "Δ error"
    assert labels["value_label"] == value_label
    assert labels["axis"] == "repeat"


def test_a_unit_stated_by_the_method_wins_over_the_metric() -> None:
    own = {"title": "Saliency", "value": "|∂ error/∂ x|", "unit": "MSE/x", "axis": "sample"}
    labels = page_labels(_result({"method": "grad", "metric": "mse"}, own))
    value_label = "|∂ error/∂ x| (MSE/x)"
    assert labels == {**own, "method": "grad", "value_label": value_label, "interval": "",
                      "count": "sample"}


def test_header_fields_name_estimates_by_the_axis_and_show_the_baseline() -> None:
    settings = dict(method="permutation", metric="mse", target="original", seed=3,
                    samples_per_repeat=40, n_repeats=3, device="cpu", per_output=True)  # fmt: skip
    assert header_fields(_result(settings)) == {
        "metric": "mse", "target": "original", "seed": 3, "samples": 40, "repeats": 3,
        "baseline error": 0.5,
    }  # fmt: skip
    # Before the baseline is known (NaN) it is left out rather than shown as "nan".
    assert "baseline error" not in header_fields(_result(settings, baseline=float("nan")))


def test_a_real_explorer_labels_its_axes_with_the_metric_unit() -> None:
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.Tanh(), torch.nn.Linear(2, 5))
    explorer = Explorer(model, X, n_repeats=2, metric="mae", seed=0)
    try:
        assert explorer.job.wait(30) and explorer.publisher.flush()
        assert explorer.dashboard.labels["value_label"] == "Δ error (MAE, input units)"
        assert explorer.dashboard.labels["title"] == "Permutation importance"
        header = explorer.dashboard.header
        assert header["metric"] == "mae" and header["repeats"] == 2
        assert header["baseline error"] == pytest.approx(explorer.result.baseline_error)
        assert isinstance(explorer.drilldown, DrilldownView)
        assert explorer.drilldown.error_figure.axes[1].label == "Δ error (MAE, input units)"
        # Nothing empty is drawn before a selection; the figures show once a feature is drawn.
        assert explorer.drilldown.figures not in explorer.drilldown.widget.children
        explorer.selected_feature = "x2"
        assert explorer.drilldown.flush(30)
        assert explorer.drilldown.figures in explorer.drilldown.widget.children
        assert "aefi-drilldown" in explorer.drilldown.widget._dom_classes
    finally:
        explorer.close()


class _Recorder:
    def __init__(self, context: DrilldownContext) -> None:
        import ipywidgets

        self.context, self.shown = context, []
        self.widget = ipywidgets.HTML("recorder")

    def show(self, feature: str) -> None:
        self.shown.append(feature)

    def flush(self, timeout: float = 30.0) -> bool:
        return True

    def close(self) -> None:
        pass


def test_the_drilldown_is_chosen_by_method(monkeypatch) -> None:
    monkeypatch.setattr(drilldowns_module, "_FACTORIES", dict(drilldowns_module._FACTORIES))
    register_drilldown("recorded", _Recorder)
    assert {"permutation", "recorded"} <= set(registered_methods())

    def context(method: str, engine: object = object()) -> DrilldownContext:
        return DrilldownContext(engine, lambda: None, lambda text: None, {"method": method})

    view = build_drilldown(context("recorded"))
    assert isinstance(view, _Recorder) and view.context.labels["method"] == "recorded"
    assert "aefi-drilldown" in view.widget._dom_classes
    unknown = build_drilldown(context("<b>shapley</b>"))
    assert isinstance(unknown, NoDrilldown)
    assert "No drilldown for the method" in unknown.note
    assert "<b>shapley" not in unknown.widget.value  # the name is escaped, not rendered
    without_model = build_drilldown(context("recorded", engine=None))
    assert isinstance(without_model, NoDrilldown) and "without its model" in without_model.note
    with pytest.raises(ValueError):
        register_drilldown("", _Recorder)
    with pytest.raises(TypeError):
        register_drilldown("x", "not callable")  # type: ignore[arg-type]


def test_drilldown_axis_names_are_short_unique_and_fit_their_margin() -> None:
    names = [f"ENSG{i:08d}.3|GENE{i}_ANTISENSE_RNA" for i in (336, 343, 1302)] + ["g0061"]
    labels = short_labels(names)
    assert len(set(labels)) == len(names)  # an ordinal axis would merge equal labels
    assert labels[-1] == "g0061"
    for name, label in zip(names[:3], labels[:3], strict=True):
        head, tail = label.split("…")
        assert name.startswith(head) and name.endswith(tail) and len(label) < len(name)
    assert names_margin(labels)["left"] >= 7 * max(map(len, labels))


def test_nice_ticks_step_on_1_2_5() -> None:
    np.testing.assert_allclose(nice_ticks(0.0, 0.0412), [0.0, 0.02, 0.04])
    np.testing.assert_allclose(nice_ticks(-3.0, 12.5, 4), [0.0, 5.0, 10.0])
    assert str(nice_ticks(0.0, 0.0412)[0]) == "0.0"  # not "-0.0"
    np.testing.assert_array_equal(nice_ticks(2.0, 2.0), [2.0])
