"""result.to_shap(): a shap.Explanation that shap's own plots draw; per-sample values equal
``per_sample`` bit for bit, global results carry their interval; the result is never changed."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from reference import sequential_ae

import aefi_widget as aefi

shap = pytest.importorskip("shap")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

N, D = 30, 5
NAMES = [f"g{i}" for i in range(D)]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    values = np.random.default_rng(4).standard_normal((N, D)).astype(np.float32)
    return pd.DataFrame(values, columns=NAMES, index=[f"cell{i}" for i in range(N)])


@pytest.fixture(scope="module")
def model():
    return sequential_ae(D, hidden=3, seed=1, dtype=torch.float32)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_per_sample_explanation_equals_per_sample_bit_for_bit(model, data) -> None:
    result = aefi.gradient_importance(model, data, steps=4)
    before = result.to_arrays()
    explanation = result.to_shap(data)
    assert isinstance(explanation, shap.Explanation)
    per_sample = result.per_sample.to_numpy()
    assert explanation.values.shape == (N, D)
    assert explanation.values.tobytes() == per_sample.tobytes()
    assert list(explanation.feature_names) == NAMES
    assert list(explanation.instance_names) == list(data.index)
    np.testing.assert_array_equal(explanation.data, data.to_numpy(dtype=np.float64))
    # the mean-error identity of integrated gradients, up to its completeness gap
    error_delta = result.extras["error_delta"]
    expected_base = result.baseline_error - error_delta.mean()
    np.testing.assert_array_equal(explanation.base_values, np.full(N, expected_base))
    mean_output = np.mean(explanation.base_values + explanation.values.sum(axis=1))
    gap = result.settings["completeness_gap"] * np.mean(np.abs(error_delta))
    assert abs(mean_output - result.baseline_error) <= gap + 1e-12
    explanation.values[:] = 0.0  # a copy: the result keeps its numbers
    after = result.to_arrays()
    assert all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)


def test_shap_plots_draw_per_sample_and_global_explanations(model, data) -> None:
    for result in (
        aefi.gradient_importance(model, data, steps=4),
        aefi.gradient_importance(model, data, method="gradient_x_input"),
        aefi.permutation_importance(model, data, n_repeats=3),
    ):
        explanation = result.to_shap(data)
        shap.plots.beeswarm(explanation, show=False)
        assert len(plt.gca().collections) >= 1  # the dots
        plt.close("all")
        shap.plots.bar(explanation, show=False)
        labels = [t.get_text() for t in plt.gca().get_yticklabels()]
        assert {label for label in labels if label in NAMES}, labels
        plt.close("all")


def test_global_explanation_is_one_row_with_the_interval(model, data) -> None:
    result = aefi.shapley_importance(model, data, n_permutations=4, background=8)
    explanation = result.to_shap()
    summary = result.summary(sort=False)
    assert explanation.values.shape == (1, D)
    assert explanation.values[0].tobytes() == result.importances_mean.to_numpy().tobytes()
    np.testing.assert_array_equal(explanation.base_values, [result.baseline_error])
    np.testing.assert_array_equal(explanation.lower_bounds[0], summary["ci_low"])
    np.testing.assert_array_equal(explanation.upper_bounds[0], summary["ci_high"])
    np.testing.assert_allclose(
        explanation.error_std[0], summary["std"] / np.sqrt(summary["n_done"]), rtol=0
    )
    assert explanation.data is None


def test_data_columns_follow_names_and_groups_get_nan(model, data) -> None:
    result = aefi.gradient_importance(model, data, steps=2, groups={"G": ["g0", "g3"]})
    explanation = result.to_shap(data[list(reversed(NAMES))])  # order by name, not position
    for column, unit in enumerate(result.feature_names):
        if unit == "G":
            assert np.isnan(explanation.data[:, column]).all()
        else:
            np.testing.assert_array_equal(explanation.data[:, column], data[unit])


def test_bad_X_gets_a_clear_error(model, data) -> None:
    result = aefi.gradient_importance(model, data, steps=2)
    with pytest.raises(ValueError, match="X has 3 rows but the result has 30 samples"):
        result.to_shap(data.iloc[:3])
    with pytest.raises(ValueError, match="not columns of X: 'g0'"):
        result.to_shap(data.drop(columns="g0"))
    grouped = aefi.gradient_importance(model, data, steps=2, groups={"G": ["g0", "g3"]})
    with pytest.raises(ValueError, match="pass a DataFrame or AnnData"):
        grouped.to_shap(data.to_numpy())
    np.testing.assert_array_equal(result.to_shap(torch.as_tensor(data.to_numpy())).data, data)


def test_without_shap_the_error_says_what_to_install(model, data, monkeypatch) -> None:
    result = aefi.permutation_importance(model, data, n_repeats=1)
    monkeypatch.setitem(sys.modules, "shap", None)
    with pytest.raises(ImportError, match=r"pip install 'aefi_widget\[shap\]'"):
        result.to_shap()
