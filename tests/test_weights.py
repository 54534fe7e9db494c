"""weight_importance: the L2 norm of each input's column of the first Linear, found from the
model's structure, as the shared result type; clear errors when the first operation is not a
Linear."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from reference import EncoderDecoderAE, sequential_ae
from torch import nn

import aefi_widget as aefi
from aefi_widget.demo import seed_like_autoencoder

D = 6


def _column_norms(layer: nn.Linear) -> np.ndarray:
    weight = layer.weight.detach().to(torch.float64).numpy()
    return np.sqrt((weight**2).sum(axis=0))


@pytest.mark.parametrize(
    ("make", "first"),
    [
        (lambda: sequential_ae(D), lambda m: m[0]),
        (lambda: EncoderDecoderAE(D), lambda m: m.encoder[0]),
        (lambda: seed_like_autoencoder(D), lambda m: m.encoder[0]),
        (lambda: nn.Sequential(nn.Sequential(nn.Linear(D, 4)), nn.Linear(4, D)), lambda m: m[0][0]),
        (lambda: nn.Linear(D, 3), lambda m: m),
    ],
    ids=["sequential", "model.encoder", "seed_like", "nested_sequential", "the_layer_itself"],
)
def test_norms_equal_the_first_linear_columns(make, first):
    model = make()
    before = copy.deepcopy(model.state_dict())
    res = aefi.weight_importance(model)
    np.testing.assert_allclose(res.importances[:, 0], _column_norms(first(model)), rtol=1e-12)
    assert res.importances.shape == (D, 1) and res.method == "weights"
    assert res.feature_names == tuple(f"x{j}" for j in range(D))
    assert res.labels["title"] == "First-layer weight norm" and res.complete
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_input_with_zero_weights_ranks_last_and_names_are_kept():
    model = sequential_ae(D)
    with torch.no_grad():
        model[0].weight[:, 3] = 0.0
        model[0].weight[:, 1] *= 10.0
    names = pd.Index([f"f{j}" for j in range(D)])
    res = aefi.weight_importance(model, feature_names=names)
    summary = res.summary()
    assert summary.index[0] == "f1" and summary.index[-1] == "f3"
    assert summary.loc["f3", "mean"] == 0.0
    assert aefi.ImportanceResult.from_arrays(res.to_arrays()) == res


class _ConvFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, D))


class _CustomForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(D, 3)

    def forward(self, x):
        return self.fc1(x)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (_ConvFirst(), r"model.encoder\[0\] is a Conv1d"),
        (_CustomForward(), r"the model is a _CustomForward.*weight_importance\(model.fc1\)"),
        (nn.Sequential(nn.BatchNorm1d(D), nn.Linear(D, D)), r"the model\[0\] is a BatchNorm1d"),
    ],
    ids=["conv_first", "custom_forward", "normalisation_first"],
)
def test_a_first_operation_that_is_not_a_linear_is_refused(model, match):
    with pytest.raises(ValueError, match=match):
        aefi.weight_importance(model)


def test_bad_feature_names_are_refused():
    model = sequential_ae(D)
    with pytest.raises(ValueError, match="has 2 names but the first Linear has 6 inputs"):
        aefi.weight_importance(model, feature_names=["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        aefi.weight_importance(model, feature_names=["a"] * D)
    with pytest.raises(TypeError, match="sequence of strings"):
        aefi.weight_importance(model, feature_names="abcdef")
