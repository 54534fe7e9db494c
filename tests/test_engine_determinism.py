"""Determinism: batch sizes, rounds, increments, resume, seeds, drilldowns, snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import EncoderDecoderAE, correlated_data, sequential_ae

import aefi_widget as aefi
from aefi_widget.engine.permutations import (
    permutation,
    permutations,
    permutations_of_pairs,
    row_subset,
)

N, D = 20, 6


def _model(kind: str):
    if kind == "wide":
        return sequential_ae(40, hidden=32, dtype=torch.float32)
    return {
        "rank1": sequential_ae(D, dtype=torch.float32),
        "plain": sequential_ae(D, dtype=torch.float32),
        "encoder_decoder": EncoderDecoderAE(D, dtype=torch.float32),
    }[kind]


def _engine(kind: str = "rank1", X=None, **keywords) -> aefi.PermutationImportance:
    if kind == "plain":
        keywords["_forward_path"] = "plain"
    if X is None:
        X = correlated_data(N, 40 if kind == "wide" else D)
    keywords.setdefault("n_repeats", 3)
    return aefi.PermutationImportance(_model(kind), X, **keywords)


def _assert_same(a: aefi.ImportanceResult, b: aefi.ImportanceResult) -> None:
    np.testing.assert_array_equal(a.importances, b.importances)
    np.testing.assert_array_equal(a.delta_sum, b.delta_sum)
    assert a.baseline_error == b.baseline_error
    assert a.feature_names == b.feature_names


SETTINGS = {
    "plain_settings": {},
    "groups_permuted": {"groups": {"g": [0, 4]}, "target": "permuted"},
    "max_samples_mae": {"max_samples": 0.7, "metric": "mae"},
}


def _batch_size_mismatches(kind: str, setting: str) -> list[str]:
    """Which batch sizes (1, 5, huge, and the one-call API) differ from the auto batch size."""
    keywords = {**SETTINGS[setting], "seed": 4, "n_repeats": 1 if kind == "wide" else 2}
    auto = _engine(kind, **keywords)
    assert auto.forward_path == ("plain" if kind == "plain" else "rank1")
    reference = auto.run()
    sizes = (7, 10**9) if kind == "wide" else (1, 5, 10**9)  # wide: 40 units, keep it quick
    runs = {bs: _engine(kind, batch_size=bs, **keywords).run() for bs in sizes}
    if kind != "plain":
        X = correlated_data(N, 40 if kind == "wide" else D)
        runs["api"] = aefi.permutation_importance(_model(kind), X, **keywords)
    mismatches = []
    for batch_size, result in runs.items():
        try:
            _assert_same(result, reference)
        except AssertionError:
            mismatches.append(f"{kind}/{setting}/batch_size={batch_size}")
    return mismatches


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("kind", ["rank1", "plain", "encoder_decoder", "wide"])
def test_same_seed_same_numbers_for_any_batch_size(kind, setting):
    # Regression: rows used to be rounded differently by their position in a forward call.
    assert _batch_size_mismatches(kind, setting) == []


@pytest.mark.parametrize("batch_size", [None, 7])
@pytest.mark.parametrize("kind", ["rank1", "plain"])
def test_round_k_snapshot_equals_a_k_repeat_run(kind, batch_size):
    snapshots = list(_engine(kind, n_repeats=4, batch_size=batch_size).rounds())
    assert len(snapshots) == 4
    for k, snapshot in enumerate(snapshots, start=1):
        assert snapshot.rounds_done == k
        assert np.isnan(snapshot.importances[:, k:]).all()
        fresh = _engine(kind, n_repeats=k, batch_size=batch_size).run()
        np.testing.assert_array_equal(snapshot.importances[:, :k], fresh.importances)
        np.testing.assert_array_equal(snapshot.delta_sum, fresh.delta_sum)
    assert snapshots[-1].complete


def test_resume_from_every_increment_gives_identical_final_numbers(tmp_path):
    # batch_size 7 with m = 20: most chunks end inside a feature (partial sums in flight).
    keywords = {"n_repeats": 2, "batch_size": 7, "groups": {"g": ["x1", "x3"]}}
    snapshots = list(_engine(**keywords).increments())
    final = snapshots[-1]
    assert final.complete and final.evaluations_done == final.evaluations_total
    assert len(snapshots) == 2 * -(-(5 * N) // 7)
    partial = [s for s in snapshots if s.resume.position["partial_error_sum"] != 0.0]
    assert partial, "the test needs snapshots that stop inside a feature"
    for i, snapshot in enumerate(snapshots[:-1]):
        if i % 3 == 1:  # through a file, as a checkpoint would
            snapshot = aefi.ImportanceResult.load(snapshot.save(tmp_path / f"s{i}"))
        rest = list(_engine(**keywords).increments(resume=snapshot))
        assert len(rest) == len(snapshots) - i - 1
        _assert_same(rest[-1], final)
        assert rest[-1].evaluations_done == final.evaluations_done


def test_resuming_a_finished_run_with_more_repeats_computes_only_the_new_rounds():
    ten = _engine(n_repeats=10).run()
    chunks_per_round = len(list(_engine(n_repeats=1).increments()))
    more = list(_engine(n_repeats=15).increments(resume=ten))
    assert len(more) == 5 * chunks_per_round
    fifteen = _engine(n_repeats=15).run()
    _assert_same(more[-1], fifteen)
    _assert_same(_engine(n_repeats=15).run(resume=ten), fifteen)
    np.testing.assert_array_equal(more[-1].importances[:, :10], ten.importances)


def test_resume_refuses_a_result_with_more_repeats_or_other_features():
    ten = _engine(n_repeats=4).run()
    with pytest.raises(ValueError, match="repeats"):
        _engine(n_repeats=2).run(resume=ten)
    with pytest.raises(ValueError, match="features"):
        list(_engine(groups={"g": [0, 1]}, n_repeats=4).increments(resume=ten))


def test_different_seeds_give_different_numbers_and_none_records_its_seed():
    by_seed = {seed: _engine(seed=seed).run().importances for seed in (0, 1, -1, 2**63)}
    values = list(by_seed.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not np.array_equal(values[i], values[j])
    drawn = _engine(seed=None).run()
    again = _engine(seed=drawn.settings["seed"]).run()
    np.testing.assert_array_equal(drawn.importances, again.importances)


@pytest.mark.parametrize(
    "keywords",
    [
        {},
        {"_forward_path": "plain", "target": "permuted"},
        {"groups": {"pair": ["x5", "x2"]}, "max_samples": 11, "metric": "rmse_pct"},
        {"batch_size": 3, "metric": "mae"},
    ],
    ids=["rank1", "plain_permuted", "groups_max_samples", "small_batches"],
)
def test_drilldown_mean_equals_the_reported_importance(keywords):
    pi = _engine(n_repeats=3, **keywords)
    result = pi.run()
    m, X = pi.samples_per_repeat, correlated_data(N, D)
    for g, feature in enumerate(result.feature_names):
        for repeat in range(3):
            drill = pi.drilldown(feature, repeat, top_outputs=D)
            assert drill.error_increase.shape == (m,)
            np.testing.assert_allclose(
                drill.error_increase.mean(), result.importances[g, repeat], rtol=1e-12, atol=1e-15
            )
            np.testing.assert_array_equal(drill.sample_index, row_subset(pi.seed, repeat, N, m))
            column = int(drill.shown_column[1:])
            np.testing.assert_array_equal(drill.original, X[drill.sample_index, column])


def test_drilldown_shift_equals_per_output_delta_for_one_repeat():
    pi = _engine(n_repeats=1, groups={"g": [1, 2]})
    result = pi.run()
    for feature in result.feature_names:
        drill = pi.drilldown(feature, 0, top_outputs=3)
        assert len(drill.top_outputs) == 3
        expected = result.delta_recon.loc[feature, list(drill.top_outputs)].to_numpy()
        np.testing.assert_allclose(drill.output_shift, expected, rtol=1e-6)
        assert drill.output_shift[0] == pytest.approx(result.delta_recon.loc[feature].max())
    with pytest.raises(ValueError, match="Did you mean"):
        pi.drilldown("x33", 0)
    with pytest.raises(ValueError, match="repeat"):
        pi.drilldown("x0", 1)


def test_snapshots_are_independent_and_read_only():
    snapshots = list(_engine(n_repeats=2, batch_size=9).increments())
    done = [int((~np.isnan(s.importances)).sum()) for s in snapshots]
    assert done == sorted(done) and done[0] < done[-1]
    assert int((~np.isnan(snapshots[0].importances)).sum()) == done[0]
    for snapshot in (snapshots[0], snapshots[-1]):
        assert not snapshot.importances.flags.writeable
        with pytest.raises(ValueError):
            snapshot.importances[0, 0] = 1.0
        with pytest.raises(ValueError):
            snapshot.delta_sum[0, 0] = 1.0


@pytest.mark.parametrize("seed", [0, -7, 2**64 - 1])
def test_vectorised_permutations_equal_one_unit_at_a_time(seed):
    # The engine builds a call's shuffles in one pass; each must be the unit's own permutation.
    units = np.array([0, 17, 3, 3, 999_999])
    together = permutations(seed, 5, units, 950)
    assert together.shape == (5, 950) and together.dtype == np.int64
    for row, unit in zip(together, units, strict=True):
        np.testing.assert_array_equal(row, permutation(seed, 5, int(unit), 950))
    assert sorted(together[1]) == list(range(950))
    assert permutations(seed, 5, np.array([], dtype=np.int64), 950).shape == (0, 950)


@pytest.mark.parametrize("seed", [0, -7, 2**64 - 1])
def test_permutations_of_pairs_equal_one_pair_at_a_time(seed):
    # A packed call hashes every (repeat, unit) pair at once; each must be that pair's own shuffle.
    repeats = np.array([0, 0, 3, 49, 7, 2**40])
    units = np.array([4, 1, 4, 0, 999_999, 2])
    together = permutations_of_pairs(seed, repeats, units, 27)
    assert together.shape == (6, 27) and together.dtype == np.int64
    for row, repeat, unit in zip(together, repeats, units, strict=True):
        np.testing.assert_array_equal(row, permutation(seed, int(repeat), int(unit), 27))


def test_run_returns_the_last_increment_without_the_per_round_snapshots():
    # run() skips the snapshots at round ends inside a packed chunk; its result is the same.
    engine = _engine(n_repeats=6, seed=3)
    streamed = list(engine.increments())
    assert engine.plan().rounds_per_chunk > 1 and len(streamed) >= 6  # rounds were packed
    ran = engine.run()
    np.testing.assert_array_equal(ran.importances, streamed[-1].importances)
    np.testing.assert_array_equal(ran.delta_sum, streamed[-1].delta_sum)
    assert ran.evaluations_done == streamed[-1].evaluations_done
    assert engine.round_snapshots  # restored after run()
