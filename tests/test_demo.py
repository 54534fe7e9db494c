"""Demo data and the seed-like autoencoder: shapes, determinism, and that training trains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import aefi_widget
from aefi_widget.demo import (
    SeedLikeAutoencoder,
    make_correlated_data,
    seed_like_autoencoder,
    train_autoencoder,
)


def _reconstruction_error(model: torch.nn.Module, frame: pd.DataFrame) -> float:
    x = torch.tensor(frame.to_numpy())
    with torch.no_grad():
        return float(torch.mean((model(x) - x) ** 2))


def test_data_shape_dtype_names_and_standardization() -> None:
    frame = make_correlated_data(n_samples=60, n_features=30, seed=1)
    assert frame.shape == (60, 30)
    assert (frame.dtypes == np.float32).all()
    assert list(frame.columns[:2]) == ["g0000", "g0001"]
    assert frame.columns.is_unique
    np.testing.assert_allclose(frame.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(frame.std(ddof=0), 1.0, atol=1e-4)


def test_data_informative_and_blocks_are_described() -> None:
    frame = make_correlated_data(n_samples=100, n_features=80, n_informative=3, seed=0)
    assert len(frame.attrs["informative"]) == 3
    assert set(frame.attrs["informative"]) <= set(frame.columns)
    assert set(frame.attrs["block"]) == set(frame.columns)


def test_data_blocks_are_correlated() -> None:
    frame = make_correlated_data(n_samples=500, n_features=50, seed=0)
    blocks = pd.Series(frame.attrs["block"])
    members = [c for c in blocks.index[blocks == 0] if c not in frame.attrs["informative"]]
    corr = frame[members].corr().to_numpy()
    assert corr[np.triu_indices(len(members), 1)].min() > 0.5


def test_data_is_deterministic_in_its_seed() -> None:
    a = make_correlated_data(n_samples=40, n_features=20, seed=3)
    b = make_correlated_data(n_samples=40, n_features=20, seed=3)
    c = make_correlated_data(n_samples=40, n_features=20, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a.to_numpy(), c.to_numpy())


def test_names_stay_unique_and_sortable_past_ten_thousand_features() -> None:
    frame = make_correlated_data(n_samples=3, n_features=10_001, seed=0)
    assert frame.columns.is_unique
    assert frame.columns[0] == "g00000" and frame.columns[-1] == "g10000"


@pytest.mark.parametrize("kwargs", [{"n_samples": 1}, {"n_features": 1}, {"n_informative": 0}])
def test_data_rejects_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        make_correlated_data(**{"n_samples": 10, "n_features": 10, **kwargs})


def test_autoencoder_structure() -> None:
    model = seed_like_autoencoder(40)
    assert isinstance(model, SeedLikeAutoencoder)
    widths = [(m.in_features, m.out_features) for m in model.modules() if hasattr(m, "in_features")]
    assert widths == [(40, 30), (30, 20), (20, 30), (30, 40)]
    assert isinstance(model.encoder, torch.nn.Sequential)
    assert isinstance(model.encoder[0], torch.nn.Linear)
    x = torch.randn(5, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.decoder(model.encoder(x)))


def test_autoencoder_init_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = seed_like_autoencoder(12, seed=5), seed_like_autoencoder(12, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    c = seed_like_autoencoder(12, seed=6)
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_training_reduces_error_and_returns_eval_model() -> None:
    frame = make_correlated_data(n_samples=200, n_features=24, seed=0)
    model = seed_like_autoencoder(24)
    before = _reconstruction_error(model, frame)
    returned = train_autoencoder(model, frame, epochs=15, batch_size=32)
    assert returned is model
    assert not model.training
    assert _reconstruction_error(model, frame) < 0.7 * before


def test_training_is_deterministic_in_its_seed_and_keeps_x() -> None:
    frame = make_correlated_data(n_samples=80, n_features=16, seed=0)
    snapshot = frame.copy()
    runs = [
        train_autoencoder(seed_like_autoencoder(16), frame, epochs=3, seed=s) for s in (0, 0, 1)
    ]
    same = zip(runs[0].parameters(), runs[1].parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in same)
    assert not torch.equal(runs[0].encoder[0].weight, runs[2].encoder[0].weight)
    pd.testing.assert_frame_equal(frame, snapshot)


def test_training_accepts_arrays_and_tensors() -> None:
    values = make_correlated_data(n_samples=40, n_features=8, seed=0).to_numpy()
    from_array = train_autoencoder(seed_like_autoencoder(8), values, epochs=2)
    from_tensor = train_autoencoder(seed_like_autoencoder(8), torch.tensor(values), epochs=2)
    for p, q in zip(from_array.parameters(), from_tensor.parameters(), strict=True):
        assert torch.equal(p, q)


def test_informative_features_rank_first_after_default_training() -> None:
    # What the quickstart notebook promises: a few clearly important features.
    frame = make_correlated_data(n_samples=950, n_features=100, seed=0)
    model = train_autoencoder(seed_like_autoencoder(100), frame)
    result = aefi_widget.permutation_importance(model, frame, n_repeats=2, seed=0)
    informative = frame.attrs["informative"]
    assert sorted(result.top(len(informative))) == sorted(informative)
    ranked = result.summary()["mean"]
    assert ranked[informative].min() > 2 * ranked.median()
