"""Bad input is refused at construction, before any work, with a message naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from reference import correlated_data, sequential_ae
from torch import nn

import aefi_widget as aefi

N, D = 12, 4


class CountingModel(nn.Module):
    """Wraps an AE and counts forward calls, to prove that no work was done."""

    def __init__(self, d: int = D, out: int | None = None) -> None:
        super().__init__()
        self.inner = nn.Linear(d, out or d)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def _refused(error: type[Exception], match: str, X=None, model=None, **keywords) -> str:
    model = CountingModel() if model is None else model
    X = correlated_data(N, D) if X is None else X
    with pytest.raises(error, match=match) as info:
        aefi.PermutationImportance(model, X, **keywords)
    message = str(info.value)
    assert message.strip()
    return message


def _no_work(**case) -> str:
    """Refused without ever calling the model."""
    model = CountingModel()
    message = _refused(model=model, **case)
    assert model.calls == 0
    return message


def test_nan_and_inf_name_the_columns():
    X = correlated_data(N, D)
    X[3, 1], X[5, 3] = np.nan, -np.inf
    for given in (X, torch.from_numpy(X)):
        message = _no_work(error=ValueError, match="NaN or inf", X=given)
        assert "'x1'" in message and "'x3'" in message and "'x0'" not in message
    frame = pd.DataFrame(X, columns=["alpha", "beta", "gamma", "delta"])
    message = _no_work(error=ValueError, match="NaN", X=frame)
    assert "'beta'" in message and "'delta'" in message and "alpha" not in message
    message = _no_work(error=ValueError, match="NaN", X=X, feature_names=["a1", "b1", "c1", "d1"])
    assert "'b1'" in message and "'d1'" in message
    many = np.full((N, 30), np.nan)
    assert "30 column" in _no_work(error=ValueError, match="NaN", X=many)


def test_nullable_dataframe_missing_values_are_refused():
    frame = pd.DataFrame({"a": pd.array([1, None] * (N // 2), dtype="Int64"), "b": range(N)})
    frame["c"], frame["d"] = 1.0, 2.0
    assert "'a'" in _no_work(error=ValueError, match="NaN", X=frame)


@pytest.mark.parametrize("shape", [(N,), (2, N, D), (N, D, 1)], ids=["1d", "3d_a", "3d_b"])
def test_X_must_be_2d(shape):
    _no_work(error=ValueError, match="2-D", X=np.ones(shape))


@pytest.mark.parametrize("rows", [0, 1])
def test_fewer_than_two_rows(rows):
    _no_work(error=ValueError, match="at least 2", X=np.ones((rows, D)))


def test_model_output_shape_must_equal_input_shape():
    model = CountingModel(out=D + 1)
    message = _refused(ValueError, r"shape", model=model)
    assert str(D + 1) in message
    _refused(ValueError, "shape", model=lambda x: x[:, :2])
    _refused(ValueError, "shape", model=lambda x: x.sum())
    _refused(TypeError, "tensor", model=lambda x: x.numpy())
    _refused(ValueError, "failed", model=nn.Linear(D + 2, D + 2))


def test_duplicate_feature_names():
    message = _no_work(error=ValueError, match="unique", feature_names=["a", "b", "a", "c"])
    assert "'a'" in message
    frame = pd.DataFrame(correlated_data(N, D), columns=["a", "b", "b", "c"])
    assert "'b'" in _no_work(error=ValueError, match="duplicated", X=frame)


def test_wrong_feature_names_length():
    message = _no_work(error=ValueError, match="names", feature_names=["a", "b"])
    assert "2" in message and str(D) in message


def test_unknown_group_member_suggests_a_close_name():
    names = ["gene_alpha", "gene_beta", "gene_gamma", "gene_delta"]
    message = _no_work(
        error=ValueError,
        match="unknown feature",
        feature_names=names,
        groups={"g": ["gene_alpah", "gene_beta"]},
    )
    assert "'gene_alpah'" in message and "Did you mean 'gene_alpha'" in message
    _no_work(error=ValueError, match="out of range", groups={"g": [0, D]})
    _no_work(error=ValueError, match="empty", groups={"g": []})
    _no_work(error=TypeError, match="groups must be a dict", groups=[["x0", "x1"]])


def test_overlapping_groups():
    message = _no_work(
        error=ValueError, match="overlap", groups={"a": ["x0", "x1"], "b": ["x1", "x2"]}
    )
    assert "'x1'" in message and "'a'" in message and "'b'" in message
    _no_work(error=ValueError, match="overlap", groups={"a": ["x0", 0]})


@pytest.mark.parametrize("value", [0, -1])
def test_n_repeats_below_one(value):
    assert "n_repeats" in _no_work(error=ValueError, match=">= 1", n_repeats=value)


@pytest.mark.parametrize("value", [2.5, 2.0, "3", True, None])
def test_n_repeats_not_an_int(value):
    _no_work(error=TypeError, match="n_repeats must be an integer", n_repeats=value)


@pytest.mark.parametrize("value", [0, 1, N + 1, 1.5, -0.1, 0.0, 0.05])
def test_max_samples_out_of_range(value):
    assert "max_samples" in _no_work(error=ValueError, match="max_samples", max_samples=value)


def test_max_samples_wrong_type():
    _no_work(error=TypeError, match="max_samples", max_samples="half")
    _no_work(error=TypeError, match="max_samples", max_samples=True)


def test_non_numeric_dataframe_columns():
    frame = pd.DataFrame(correlated_data(N, D), columns=list("abcd"))
    frame["name"] = ["s"] * N
    frame["when"] = pd.Timestamp("2024-01-01")
    message = _no_work(error=TypeError, match="non-numeric", X=frame)
    assert "'name'" in message and "'when'" in message and "'a'" not in message
    _no_work(error=TypeError, match="not numeric", X=np.array([["a", "b"], ["c", "d"]]))
    _no_work(error=TypeError, match="complex", X=np.ones((N, D), dtype=complex))


def test_unknown_metric_and_target_and_other_options():
    assert "'mse'" in _no_work(error=ValueError, match="unknown metric 'rmse'", metric="rmse")
    _no_work(error=TypeError, match="metric", metric=3)
    _no_work(error=ValueError, match="target", target="reconstruction")
    _no_work(error=TypeError, match="batch_size", batch_size=1.5)
    _no_work(error=ValueError, match="batch_size", batch_size=0)
    _no_work(error=ValueError, match="per_output", per_output="yes")
    _no_work(error=TypeError, match="X must be", X=[[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="model must be"):
        aefi.PermutationImportance(None, correlated_data(N, D))


def test_custom_metric_with_wrong_shape_is_refused_up_front():
    _refused(ValueError, "one error per sample", metric=lambda recon, target: recon - target)


def test_values_too_large_for_the_model_dtype():
    X = correlated_data(N, D) * 1e300
    _no_work(error=ValueError, match="too large", X=X)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_input_is_cast_to_the_model_dtype(dtype):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2 if dtype is np.bool_ else 9, size=(30, D)).astype(dtype)
    for model_dtype in (torch.float32, torch.float64):
        model = sequential_ae(D, dtype=model_dtype)
        pi = aefi.PermutationImportance(model, X, n_repeats=2)
        assert pi.settings["dtype"] == str(model_dtype).replace("torch.", "")
        result = pi.run()
        as_float = aefi.permutation_importance(model, X.astype(np.float64), n_repeats=2)
        np.testing.assert_array_equal(result.importances, as_float.importances)
        assert np.isfinite(result.importances).all()
    tensor = aefi.permutation_importance(model, torch.from_numpy(X), n_repeats=2)
    np.testing.assert_array_equal(tensor.importances, as_float.importances)
