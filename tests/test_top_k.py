"""top_k: certified top-k permutation importance (racing) on the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aefi_widget as aefi


class Planted(torch.nn.Module):
    """recon = x * w: feature j's importance is about 2 w_j^2 var(x_j) (target "original")."""

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("w", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def _planted(seed: int, d: int = 24, k: int = 3, n: int = 120):
    rng = np.random.default_rng(seed)
    weights = np.full(d, 0.05)
    chosen = rng.choice(d, size=k, replace=False)
    weights[chosen] = rng.uniform(0.8, 1.2, size=k)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return Planted(weights), X, {f"x{j}" for j in chosen}


@pytest.mark.parametrize("seed", range(20))
def test_the_certified_top_k_is_the_planted_set(seed):
    model, X, planted = _planted(seed)
    result = aefi.permutation_importance(model, X, n_repeats=30, top_k=3, seed=seed)
    assert set(result.certified_top_k) == planted
    assert result.evaluations_done < 0.5 * X.shape[1] * 30 * X.shape[0]
    assert result.evaluations_total == result.evaluations_done  # certified: nothing left
    assert (result.settled == 1).sum() == 3


def test_computed_estimates_equal_the_full_run_and_resume_is_exact(tmp_path):
    model, X, _ = _planted(7, d=30, k=4)
    keywords = {"n_repeats": 12, "top_k": 4, "seed": 3, "batch_size": 500}
    full = aefi.permutation_importance(model, X, n_repeats=12, seed=3, batch_size=500)
    engine = aefi.PermutationImportance(model, X, **keywords)
    snapshots = list(engine.increments())
    final = snapshots[-1]
    done = ~np.isnan(final.importances)
    assert done.sum() < done.size  # settled units stopped early
    np.testing.assert_allclose(final.importances[done], full.importances[done], rtol=1e-12, atol=0)
    for i, snapshot in enumerate(snapshots[:-1]):
        if i % 2:
            snapshot = aefi.ImportanceResult.load(snapshot.save(tmp_path / f"s{i}.npz"))
        rest = list(aefi.PermutationImportance(model, X, **keywords).increments(resume=snapshot))
        np.testing.assert_array_equal(rest[-1].importances, final.importances)
        np.testing.assert_array_equal(rest[-1].delta_sum, final.delta_sum)
        assert rest[-1].evaluations_done == final.evaluations_done


def test_top_k_none_is_the_full_run_bit_for_bit():
    model, X, _ = _planted(1)
    a = aefi.permutation_importance(model, X, n_repeats=4)
    b = aefi.permutation_importance(model, X, n_repeats=4, top_k=None)
    np.testing.assert_array_equal(a.importances, b.importances)
    assert a.settled is None and a.certified_top_k is None


def test_a_full_run_cannot_resume_an_adaptive_one():
    model, X, _ = _planted(2)
    partial = next(iter(aefi.PermutationImportance(model, X, n_repeats=5, top_k=2).increments()))
    with pytest.raises(ValueError, match="settings"):
        aefi.PermutationImportance(model, X, n_repeats=5).run(resume=partial)


@pytest.mark.parametrize(
    ("keywords", "error", "match"),
    [
        ({"top_k": 0}, ValueError, "top_k"),
        ({"top_k": 25}, ValueError, "top_k=25 is more than"),
        ({"top_k": 2.5}, TypeError, "top_k"),
        ({"top_k": 2, "confidence": 1.0}, ValueError, "confidence"),
        ({"top_k": 2, "confidence": 0}, ValueError, "confidence"),
        ({"top_k": 2, "min_repeats": 1}, ValueError, "min_repeats"),
    ],
)
def test_bad_racing_options_fail_before_work(keywords, error, match):
    model, X, _ = _planted(0)
    with pytest.raises(error, match=match):
        aefi.PermutationImportance(model, X, n_repeats=10, **keywords)
