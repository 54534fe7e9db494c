"""top_k: certified top-k permutation importance (racing) on the engine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import aefi_widget as aefi
from aefi_widget.engine.permutation_race import (
    LEADER_REPEATS,
    LEADERS_EXTRA,
    RaceSettings,
    allocate,
    finished_mask,
    replay,
)


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


def _slow_race(seed: int = 5, d: int = 40, k: int = 4, n: int = 80):
    """A race that runs past min_repeats with many units unsettled: importances spread evenly,
    so the leaders' extra repeats are used for several rounds."""
    rng = np.random.default_rng(seed)
    weights = np.linspace(0.2, 0.6, d)[rng.permutation(d)]
    X = rng.normal(size=(n, d)).astype(np.float32)
    return Planted(weights), X, k


def test_allocation_gives_the_leaders_two_repeats_a_round():
    settings = RaceSettings(top_k=2, confidence=0.95, min_repeats=3, n_repeats=6)
    values = np.full((20, 6), np.nan)
    # Before min_repeats: one repeat each.
    assert allocate(values, None, settings) == tuple((j, 0) for j in range(20))
    values[:, :3] = np.arange(20)[:, None] + np.array([0.0, 0.1, -0.1])
    values[19, 3:5] = 19.0  # unit 19 is a leader already at 5 repeats: capped at n_repeats
    slots = allocate(values, None, settings)
    leaders = set(range(20 - settings.top_k - LEADERS_EXTRA, 20))  # the 12 largest means
    for j in range(20):
        expected = [(j, 3), (j, 4)] if j in leaders else [(j, 3)]
        if j == 19:
            expected = [(19, 5)]
        assert [slot for slot in slots if slot[0] == j] == expected, j
    assert LEADER_REPEATS == 2
    decision = settings.decide(values, None)
    certified = replace(decision, certified=True)
    assert allocate(values, certified, settings) == ()


def test_engine_allocation_is_the_replayed_rule_and_resumes_exactly(tmp_path):
    model, X, k = _slow_race()
    keywords = {"n_repeats": 10, "top_k": k, "seed": 1, "batch_size": 700}
    full = aefi.permutation_importance(model, X, n_repeats=10, seed=1, batch_size=700)
    snapshots = list(aefi.PermutationImportance(model, X, **keywords).increments())
    final = snapshots[-1]
    n_done = [np.isfinite(s.importances).sum(axis=1) for s in snapshots]
    unsettled = [n[s.settled.to_numpy() == 0] for s, n in zip(snapshots, n_done, strict=True)]
    assert any(u.size and u.max() > u.min() for u in unsettled)  # leaders ran ahead
    # The engine's computed estimates are what the rule, replayed on the full run, computes.
    settings = RaceSettings(k, 0.95, 3, 10)
    replayed = replay(full.importances, 10, settings)
    mask = finished_mask(full.importances.shape, replayed.slots, 10, 0)
    np.testing.assert_array_equal(np.isfinite(final.importances), mask)
    np.testing.assert_array_equal(final.importances[mask], full.importances[mask])
    assert final.evaluations_done == mask.sum() * X.shape[0]
    for snapshot in snapshots:
        assert snapshot.evaluations_done <= snapshot.evaluations_total
        assert snapshot.evaluations_total <= full.evaluations_total
    # Resume from every snapshot (mid-round ones included) ends bit for bit where the run did.
    for i, snapshot in enumerate(snapshots[:-1]):
        if i % 3 == 0:
            snapshot = aefi.ImportanceResult.load(snapshot.save(tmp_path / f"s{i}.npz"))
        rest = list(aefi.PermutationImportance(model, X, **keywords).increments(resume=snapshot))
        np.testing.assert_array_equal(rest[-1].importances, final.importances)
        assert rest[-1].evaluations_done == final.evaluations_done
        assert rest[-1].certified_top_k == final.certified_top_k
