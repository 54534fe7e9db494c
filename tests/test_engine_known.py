"""Known answers: features a model cannot see, and the identity model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import correlated_data
from torch import nn

import aefi_widget as aefi


def _blind_ae(d: int, blind: list[int], dtype: torch.dtype, encoder_decoder: bool) -> nn.Module:
    """An AE whose first layer has zero weights on the ``blind`` columns."""
    torch.manual_seed(3)
    first = nn.Linear(d, 7)
    with torch.no_grad():
        first.weight[:, blind] = 0.0
    if encoder_decoder:
        model = nn.Module()
        model.encoder = nn.Sequential(first, nn.ReLU(), nn.Linear(7, 3))
        model.decoder = nn.Sequential(nn.Linear(3, 7), nn.Tanh(), nn.Linear(7, d))
        model.forward = lambda x: model.decoder(model.encoder(x))
    else:
        model = nn.Sequential(first, nn.ReLU(), nn.Linear(7, 3), nn.Tanh(), nn.Linear(3, d))
    return model.to(dtype).eval()


@pytest.mark.parametrize("metric", ["mse", "mae", "rmse_pct"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "kind", ["rank1", "plain", "encoder_decoder", "max_samples", "small_batches"]
)
def test_feature_with_zero_first_layer_weights_has_exactly_zero_importance(kind, dtype, metric):
    d, blind = 7, [2, 5]
    model = _blind_ae(d, blind, dtype, encoder_decoder=kind == "encoder_decoder")
    keywords = {
        "plain": {"_forward_path": "plain"},
        "max_samples": {"max_samples": 0.6},
        "small_batches": {"batch_size": 5},
    }.get(kind, {})
    pi = aefi.PermutationImportance(
        model, correlated_data(40, d), n_repeats=4, metric=metric, seed=9, **keywords
    )
    assert pi.forward_path == ("plain" if kind == "plain" else "rank1")
    result = pi.run()
    for k in blind:
        assert (result.importances[k] == 0.0).all(), result.importances[k]
        assert (result.delta_recon.iloc[k].to_numpy() == 0.0).all()
    seen = [j for j in range(d) if j not in blind]
    assert (result.importances[seen] != 0.0).any(axis=1).all()
    assert (result.delta_recon.iloc[seen].to_numpy() > 0).any(axis=1).all()


def test_zero_weight_feature_is_exactly_zero_for_many_shapes():
    # Regression: baseline and permuted rows used to sit at different positions in their
    # forward calls, and small GEMM kernels round a row by its position.
    failures = []
    for dtype in (torch.float32, torch.float64):
        for d in (5, 7, 8):
            for n in (39, 40):
                torch.manual_seed(3)
                first = nn.Linear(d, 5)
                with torch.no_grad():
                    first.weight[:, 2] = 0.0
                model = nn.Sequential(first, nn.ReLU(), nn.Linear(5, d)).to(dtype).eval()
                for path in ("auto", "plain"):
                    result = aefi.permutation_importance(
                        model, correlated_data(n, d), n_repeats=2, _forward_path=path
                    )
                    if (result.importances[2] != 0).any() or (result.delta_sum[2] != 0).any():
                        failures.append((str(dtype), d, n, path, result.importances[2].tolist()))
    assert failures == []


def test_group_of_blind_columns_has_exactly_zero_importance():
    model = _blind_ae(6, [1, 4], torch.float32, encoder_decoder=False)
    result = aefi.permutation_importance(
        model, correlated_data(30, 6), groups={"blind": ["x4", "x1"], "seen": [0, 2]}
    )
    blind = result.feature_names.index("blind")
    assert (result.importances[blind] == 0.0).all()
    assert (result.delta_recon.loc["blind"] == 0.0).all()
    assert (result.importances[result.feature_names.index("seen")] != 0.0).all()


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@pytest.mark.parametrize("model", [_identity, nn.Identity()], ids=["function", "nn.Identity"])
@pytest.mark.parametrize("metric", ["mse", "mae", "rmse_pct"])
def test_identity_model_has_exactly_zero_importance_against_permuted_target(model, metric):
    X = correlated_data(25, 5)
    result = aefi.permutation_importance(
        model, X, n_repeats=3, metric=metric, target="permuted", groups={"g": [3, 4]}
    )
    assert result.baseline_error == 0.0
    assert (result.importances == 0.0).all()
    # The reconstruction still moves: exactly where the inputs were shuffled.
    delta = result.delta_recon
    assert (delta.loc["x0", ["x1", "x2", "x3", "x4"]] == 0.0).all()
    assert delta.loc["x0", "x0"] > 0
    assert (delta.loc["g", ["x3", "x4"]] > 0).all()


def test_identity_model_expected_mse_importance_is_twice_the_variance_over_d():
    n, d, repeats = 30, 4, 400
    X = correlated_data(n, d, seed=5)
    result = aefi.permutation_importance(_identity, X, n_repeats=repeats, seed=2)
    importances = result.importances
    assert result.baseline_error == 0.0
    # E over uniform permutations of mean_i (x_pi(i) - x_i)^2 is exactly 2 * var(x, ddof=0).
    expected = 2 * X.var(axis=0) / d
    mean = importances.mean(axis=1)
    stderr = importances.std(axis=1, ddof=1) / np.sqrt(repeats)
    assert (np.abs(mean - expected) < 4 * stderr).all(), (mean, expected, stderr)
    # Each repeat is exactly (1/d) * mean_i (x_pi(i) - x_i)^2 for its own permutation.
    from aefi_widget.engine.permutations import permutation

    X32 = X.astype(np.float32).astype(np.float64)
    for r in (0, 1, repeats - 1):
        for j in range(d):
            order = permutation(2, r, j, n)
            direct = np.mean((X32[order, j] - X32[:, j]) ** 2) / d
            np.testing.assert_allclose(importances[j, r], direct, rtol=1e-5)
