"""The rows race (top_k with tolerance): the PAC claim, its decision rule, determinism, bad input.

``simulate`` is model-free: the race's own loop (:func:`rows_race_rounds`) runs on per-row values
drawn from known, skewed distributions (k clear winners, near-ties at the boundary, a bulk near
0), so the PAC claim is checked against the true means. ``benchmarks/bench_race_rows.py --pac
200`` runs it over 200 seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import stats

import aefi_widget as aefi
from aefi_widget.engine.pac_race import hopeless, look_sizes, pac_decide, row_bounds
from aefi_widget.engine.rows_race import (
    GranuleSums,
    RowsRaceSettings,
    RowsRaceState,
    Totals,
    rows_race_rounds,
)


@dataclass(frozen=True)
class Outcome:
    correct: bool  # the PAC claim held for every settled unit
    certified: bool
    share: float  # rows spent / the cap of every unit


def planted_means(seed: int, units: int = 120, k: int = 6) -> np.ndarray:
    """3 clear winners, the k-th boundary in a near-tie (4 units within 3 %), a bulk near 0."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.0, 0.15, units)
    means[:3] = rng.uniform(1.5, 2.0, 3)
    means[3:9] = 1.0 - 0.01 * np.arange(6)  # ranks 4-9: ties across the k/k+1 boundary
    return rng.permutation(means)


def simulate(seed: int, tolerance: float = 0.1, confidence: float = 0.95) -> Outcome:
    """One race on planted per-row values: mean mu_j, spread 0.5, skewness 1 (gamma(4))."""
    means = planted_means(seed)
    k, n, repeats = 6, 400, 10
    settings = RowsRaceSettings(k, confidence, tolerance, True, n, repeats)
    F = means.size
    state = RowsRaceState(settings, Totals.zeros(F, repeats, 1, False),
                          Totals.zeros(F, repeats, 1, False))  # fmt: skip

    def evaluate(chunk: np.ndarray) -> tuple[GranuleSums, float]:
        count, total, m2 = [], [], []
        for unit, repeat, p0, p1 in chunk:
            rng = np.random.default_rng([seed, unit, repeat, p0])
            values = means[unit] + 0.5 * (rng.gamma(4.0, size=p1 - p0) - 4.0) / 2.0
            count.append(p1 - p0)
            total.append(values.sum())
            m2.append(((values - values.mean()) ** 2).sum())
        return GranuleSums(np.array(count), np.array(total), np.array(m2), None), 0.0

    for _ in rows_race_rounds(state, 4096, evaluate, lambda s: None):
        pass
    decision = state.decision
    ranked = np.sort(means)[::-1]
    epsilon = tolerance * ranked[k - 1]
    correct = bool(
        (means[decision.settled_in] >= ranked[k - 1] - epsilon).all()
        and (means[decision.settled_out] <= ranked[k] + epsilon).all()
    )
    share = state.totals.count.sum() / (F * settings.cap)
    return Outcome(correct, decision.certified, float(share))


def test_planted_races_keep_the_pac_claim_and_stop_early():
    outcomes = [simulate(seed) for seed in range(6)]
    assert all(o.correct for o in outcomes)  # allowed: 5 %; the 200-seed run is in benchmarks
    assert sum(o.certified for o in outcomes) >= 5  # the ties are within the tolerance
    assert max(o.share for o in outcomes) < 0.2


def test_bounds_are_t_intervals_split_over_units_sides_and_looks():
    sizes = look_sizes(32, 4000)
    assert sizes[:5].tolist() == [32, 64, 96, 160, 256] and sizes[-1] == 4000
    count = np.array([32, 160, 4000])
    mean, m2 = np.array([1.0, 2.0, 3.0]), np.array([31.0, 159.0 * 4, 3999.0 * 9])
    lower, upper = row_bounds(count, mean, m2, sizes, 0.95, 400)
    alpha = 0.05 / (2 * 3 * sizes.size)
    half = stats.t.ppf(1 - alpha, count - 1) * np.sqrt(np.array([1.0, 4, 9]) * 400 / 399 / count)
    np.testing.assert_allclose(upper - mean, half, rtol=1e-9)
    np.testing.assert_allclose(mean - lower, half, rtol=1e-9)
    with pytest.raises(ValueError, match="look size"):  # the union covers look sizes only
        row_bounds(np.array([33, 160, 4000]), mean, m2, sizes, 0.95, 400)


def test_plateau_units_are_given_up_but_not_the_top_k_or_separable_ones():
    # k = 2: units 0-1 lead; 2 is 0.5 % below unit 1 (a plateau at a 1 % tolerance), 3 far.
    count = np.full(4, 1000)
    mean = np.array([1.0, 0.9, 0.895, 0.3])
    m2 = np.full(4, 999.0 * 0.25)  # spread 0.5
    out = hopeless(count, mean, m2, 2, 0.01, True, 10, 0.95, 4000, 400)
    assert out.tolist() == [False, False, True, False]
    # With a 20 % tolerance unit 2 can settle out: not hopeless.
    assert not hopeless(count, mean, m2, 2, 0.2, True, 10, 0.95, 4000, 400).any()


def test_the_rule_settles_within_the_tolerance_and_certifies_ranks():
    # Units 0-1 clear, 2-4 a plateau (tied within 0.05 for k = 3), 5-9 clearly out.
    mean = np.array([10.0, 9.0, 5.0, 4.99, 4.98, 1, 1, 1, 1, 1])
    half = np.array([0.5, 0.5, 0.3, 0.3, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2])
    lower, upper = mean - half, mean + half
    exact = pac_decide(lower, upper, mean, 3, 0.0, False)
    assert exact.settled_in.tolist() == [True, True] + [False] * 8
    assert exact.settled_out[5:].all() and not exact.certified
    assert exact.certified_ranks == 2
    loose = pac_decide(lower, upper, mean, 3, 0.7, False)  # covers the plateau's overlap
    assert loose.certified and loose.settled_in.sum() == 3 and set(np.flatnonzero(
        loose.settled_in)) == {0, 1, 2}  # fmt: skip
    # 0.1 x the 3rd lower bound 4.7 = 0.47 < the plateau's overlap 0.61; 0.15 x 4.7 covers it.
    relative = pac_decide(lower, upper, mean, 3, 0.1, True)
    assert relative.epsilon == pytest.approx(0.47) and not relative.certified
    assert pac_decide(lower, upper, mean, 3, 0.15, True).certified


class Planted(torch.nn.Module):
    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("w", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def _planted(d: int = 40, n: int = 300):
    rng = np.random.default_rng(3)
    weights = np.full(d, 0.05)
    weights[:4] = [1.0, 0.9, 0.85, 0.8]
    weights[4:8] = [0.55, 0.54, 0.53, 0.52]
    return Planted(weights), rng.normal(size=(n, d)).astype(np.float32)


KEYWORDS = {"n_repeats": 4, "top_k": 5, "tolerance": 0.1, "seed": 2}


def _race(model, X, **keywords) -> aefi.PermutationImportance:
    return aefi.PermutationImportance(model, X, **{**KEYWORDS, **keywords})


def _same(a: aefi.ImportanceResult, b: aefi.ImportanceResult) -> None:
    np.testing.assert_array_equal(a.importances, b.importances)
    assert a.evaluations_done == b.evaluations_done
    for key, value in a.extras.items():
        np.testing.assert_array_equal(b.extras[key], value, err_msg=key)


def test_same_decisions_across_batch_sizes_threads_pause_and_checkpoint(tmp_path):
    model, X = _planted(d=20, n=160)
    final = _race(model, X).run()
    assert final.certified_top_k and final.evaluations_done < X.size * 4 * 0.5
    assert final.settings["tolerance"] == 0.1 and final.settings["bound"].startswith("student")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _same(final, _race(model, X, batch_size=37).run())  # calls cut at 37 rows, one thread
    finally:
        torch.set_num_threads(before)
    snapshots = list(_race(model, X, batch_size=1000).increments())  # chunks of several units
    _same(final, snapshots[-1])
    mid_round = [i for i, s in enumerate(snapshots[:-1]) if s.resume.position["granule"] > 0]
    assert mid_round, "the test needs snapshots taken inside a round"
    for i in (mid_round[0], len(snapshots) // 2):
        snapshot = aefi.ImportanceResult.load(snapshots[i].save(tmp_path / f"s{i}.npz"))
        _same(final, list(_race(model, X, batch_size=1000).increments(resume=snapshot))[-1])
    path = tmp_path / "race.npz"
    stream = _race(model, X, batch_size=1000, checkpoint=path, checkpoint_every=0).increments()
    for _ in range(3):
        next(stream)
    stream.close()
    _same(final, _race(model, X, batch_size=1000, checkpoint=path).run())


def test_a_full_shuffle_of_rows_is_the_exact_runs_repeat():
    model, X = _planted(d=12, n=64)
    race = aefi.permutation_importance(model, X, n_repeats=3, top_k=2, tolerance=1e-3, seed=5)
    exact = aefi.permutation_importance(model, X, n_repeats=3, seed=5)
    rows = race.extras["race_rows"]
    full = rows >= 64
    assert full.any()
    np.testing.assert_allclose(race.importances[full, 0], exact.importances[full, 0],
                               rtol=1e-9, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"top_k": 3, "tolerance": -0.1}, "tolerance must be finite and >= 0"),
        ({"top_k": 3, "tolerance": float("nan")}, "tolerance must be finite"),
        ({"top_k": 3, "tolerance": "ten"}, "percentage"),
        ({"top_k": 3, "tolerance": "10"}, "percentage"),
        ({"top_k": 3, "tolerance": 1.5}, "below 1"),
        ({"top_k": 3, "tolerance": 0.1, "tolerance_scale": "abs"}, "tolerance_scale"),
        ({"tolerance": 0.1}, "only to a certified top-k run"),
        ({"confidence": 0.9}, "only to a certified top-k run"),
        ({"min_repeats": 4}, "only to a certified top-k run"),
        ({"top_k": 3, "tolerance": 0.1, "max_samples": 50}, "max_samples"),
        ({"top_k": 3, "tolerance": 0.1, "min_repeats": 4}, "min_repeats"),
    ],
)
def test_bad_options_fail_before_any_work(keywords, message):
    model, X = _planted(d=8, n=40)
    with pytest.raises(ValueError, match=message):
        aefi.PermutationImportance(model, X, **keywords)


def test_percent_strings_and_absolute_tolerances_are_understood():
    model, X = _planted(d=8, n=40)
    engine = aefi.PermutationImportance(model, X, top_k=2, tolerance="10%")
    assert engine.tolerance == pytest.approx(0.1) and engine.tolerance_scale == "relative"
    engine = aefi.PermutationImportance(model, X, top_k=2, tolerance=1e-4,
                                        tolerance_scale="absolute")  # fmt: skip
    assert engine.settings["tolerance_scale"] == "absolute"
    exact = aefi.PermutationImportance(model, X, top_k=2, tolerance=0)
    assert "tolerance" not in exact.settings  # the exact race, as before


def test_methods_without_racing_refuse_top_k_and_tolerance():
    model, X = _planted(d=8, n=40)
    with pytest.raises(TypeError, match=r"tolerance|top_k"):
        aefi.ShapleyImportance(model, X, top_k=2, tolerance=0.1)


def test_the_benchmark_runs_in_miniature(capsys):
    from bench_scripts import load_benchmark

    bench = load_benchmark("bench_race_rows")
    assert bench.main(["--pac", "3"])["seeds"] == 3
    out = bench.main(["--d", "16", "--n", "60", "--epochs", "0", "--top-k", "2",
                      "--repeats", "2", "--reference-repeats", "2"])  # fmt: skip
    assert out["rows"][0]["evals"] > 0
    printed = capsys.readouterr().out
    assert "PAC failures" in printed and "certified" in printed and "reference" in printed
