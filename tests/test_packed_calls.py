"""Packed calls (whole units of many rounds at once) equal the segment path bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import correlated_data, sequential_ae

import aefi_widget as aefi
from aefi_widget.engine import permutation_rows


@pytest.mark.parametrize(
    "keywords",
    [
        {"metric": "mse"},
        {"metric": "mae", "target": "permuted"},
        {"metric": "rmse_pct", "_forward_path": "plain"},
        {"metric": "mse", "target": "permuted", "_forward_path": "plain"},
        {"metric": "mse", "_forward_path": "fused"},
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packed_calls_equal_the_segment_path(monkeypatch, keywords, dtype):
    model = sequential_ae(7, hidden=6, dtype=dtype)
    X = correlated_data(27, 7)
    calls = []
    real = permutation_rows.evaluate_packed_call

    def counting(*args):
        result = real(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(permutation_rows, "evaluate_packed_call", counting)
    packed = aefi.permutation_importance(model, X, n_repeats=20, **keywords)
    assert any(calls), "the packed path must run in this test"
    monkeypatch.setattr(permutation_rows, "evaluate_packed_call", lambda *args: None)
    segments = aefi.permutation_importance(model, X, n_repeats=20, **keywords)
    np.testing.assert_array_equal(packed.importances, segments.importances)
    np.testing.assert_array_equal(packed.delta_sum, segments.delta_sum)


def test_an_ignored_feature_is_exactly_zero_on_the_packed_path():
    model = sequential_ae(6, dtype=torch.float32)
    with torch.no_grad():
        model[0].weight[:, 2] = 0.0
    result = aefi.permutation_importance(model, correlated_data(30, 6), n_repeats=10)
    assert (result.importances[2] == 0).all() and (result.delta_sum[2] == 0).all()
