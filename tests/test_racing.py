"""Certified top-k racing (aefi_widget.engine.racing) on simulated problems with a known truth.

The simulations play the engine's loop: each unit's per-repeat values are drawn in advance (the
engine computes (unit, repeat) the same way whether or not others are settled), a round gives one
more repeat to every unsettled unit, and :func:`race` looks after every round.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from aefi_widget.engine.racing import RaceDecision, confidence_bounds, decide, race

BUDGET = 50


def _run(
    draws: np.ndarray,
    k: int,
    confidence: float = 0.95,
    min_repeats: int = 3,
    looks: list[RaceDecision] | None = None,
    bounds=None,
) -> tuple[RaceDecision, np.ndarray]:
    """Race over pre-drawn (F, budget) values; returns the last decision and the values computed.

    ``bounds(values, n_repeats_max)`` replaces the module's bounds (to show a bad bound is caught).
    """
    n_units, budget = draws.shape
    values = np.full((n_units, budget), np.nan)
    decision = None
    for repeat in range(budget):
        active = np.ones(n_units, dtype=bool) if decision is None else ~decision.settled
        values[active, repeat] = draws[active, repeat]
        if bounds is None:
            decision = race(
                values, k, confidence, min_repeats, n_repeats_max=budget, previous=decision
            )
        else:
            lower, upper = bounds(values, budget)
            decision = decide(lower, upper, k, previous=decision)
        if looks is not None:
            looks.append(decision)
        if decision.certified:
            break
    return decision, values


def _planted(seed: int, n_units: int = 60, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """k units of importance ~1 (noise sd 0.1), the rest near 0 (noise sd 0.05)."""
    rng = np.random.default_rng(seed)
    planted = rng.choice(n_units, size=k, replace=False)
    means = rng.uniform(0.0, 0.05, n_units)
    sds = np.full(n_units, 0.05)
    means[planted], sds[planted] = 1.0 + rng.uniform(-0.1, 0.1, k), 0.1
    draws = means[:, None] + sds[:, None] * rng.standard_normal((n_units, BUDGET))
    return draws, np.sort(planted)


def _wrong(decision: RaceDecision, means: np.ndarray, k: int) -> bool:
    """Whether any unit is settled on the wrong side of the true top k (distinct means)."""
    truly_in = np.zeros(means.size, dtype=bool)
    truly_in[np.argsort(means)[-k:]] = True
    return bool(np.any(decision.settled_in & ~truly_in) or np.any(decision.settled_out & truly_in))


def _hard(seed: int, noise: str) -> tuple[np.ndarray, np.ndarray]:
    """20 units with means spread evenly over [0, 1] (gap 0.053) and noise sd 0.1 (~2 gaps)."""
    rng = np.random.default_rng(seed)
    means = rng.permutation(np.linspace(0.0, 1.0, 20))
    if noise == "normal":
        noise_draws = rng.standard_normal((20, BUDGET))
    else:
        # Standardized gamma(10): skewness 0.63, at the top of what the seed-like autoencoder's
        # per-repeat permutation importances show (-0.55 to 0.69 over 100 units x 60 repeats).
        noise_draws = (rng.gamma(10.0, size=(20, BUDGET)) - 10.0) / np.sqrt(10.0)
    return means[:, None] + 0.1 * noise_draws, means


def _tolerance(rate: float, trials: int) -> float:
    """Largest failure fraction a correct bound with true rate ``rate`` gives at p = 0.001."""
    return stats.binom.ppf(0.999, trials, rate) / trials


@pytest.mark.parametrize("seed", range(20))
def test_planted_top_k_is_certified_exactly_and_cheaply(seed):
    draws, planted = _planted(seed)
    decision, values = _run(draws, k=6)
    assert decision.certified
    np.testing.assert_array_equal(np.flatnonzero(decision.settled_in), planted)
    assert np.all(decision.settled_in ^ decision.settled_out)
    spent = np.isfinite(values).sum() / values.size
    assert spent < 0.3, f"spent {spent:.0%} of the budget"


def _missed(looks: list[RaceDecision], means: np.ndarray) -> bool:
    """Whether any unit's interval missed its true mean at any look of the run."""
    return any(np.any((look.lower > means) | (look.upper < means)) for look in looks)


@pytest.mark.parametrize("noise", ["normal", "skewed"])
def test_wrong_settlements_are_rarer_than_one_minus_confidence(noise):
    """200 runs on a hard problem: the fraction of runs with any wrong settlement, and the fraction
    where any interval missed its mean at any look (the event the bound controls), are at most
    1 - confidence (binomial tolerance: the 99.9 % quantile of Binomial(200, 0.05)/200 = 0.105)."""
    trials, wrong, missed, settled = 200, 0, 0, 0
    for seed in range(trials):
        draws, means = _hard(seed, noise)
        looks: list[RaceDecision] = []
        decision, _ = _run(draws, k=5, looks=looks)
        wrong += _wrong(decision, means, 5)
        missed += _missed(looks, means)
        settled += decision.settled.sum()
    assert wrong / trials <= _tolerance(0.05, trials)
    assert missed / trials <= _tolerance(0.05, trials)
    assert settled > 0.3 * trials * 20  # the test has power: many units get settled


def test_the_error_test_catches_a_bound_without_union_over_units_and_looks():
    """Per-look 95 % t intervals (no correction for 20 units x 48 looks) miss some mean at some
    look in most runs: the harness above tells a valid bound from an invalid one."""

    def naive(values, _budget):
        n = np.isfinite(values).sum(axis=1)
        mean = np.nanmean(values, axis=1)
        half = np.full(n.size, np.inf)
        ok = n >= 3
        spread = np.nanstd(values[ok], axis=1, ddof=1) / np.sqrt(n[ok])
        half[ok] = stats.t.ppf(0.975, n[ok] - 1) * spread
        return mean - half, mean + half

    trials, missed = 100, 0
    for seed in range(trials):
        draws, means = _hard(seed, "normal")
        looks: list[RaceDecision] = []
        _run(draws, k=5, looks=looks, bounds=naive)
        missed += _missed(looks, means)
    assert missed / trials > 0.5


def test_single_look_interval_is_the_student_t_interval():
    """With one unit and one possible sample size the interval is the textbook t interval."""
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 2.0, size=(1, 7))
    lower, upper = confidence_bounds(values, confidence=0.9, min_repeats=7, n_repeats_max=7)
    expected = stats.t.interval(0.9, 6, loc=values.mean(), scale=stats.sem(values[0]))
    np.testing.assert_allclose([lower[0], upper[0]], expected, rtol=1e-12)


def test_simultaneous_coverage_over_units_matches_bonferroni():
    """10 independent normal units, one look: P(any interval misses) = 1 - (1 - delta/10)^10."""
    rng = np.random.default_rng(2)
    trials, n_units, delta = 4000, 10, 0.2
    draws = rng.standard_normal((trials, n_units, 5))
    misses = 0
    for sample in draws:
        lower, upper = confidence_bounds(sample, 1 - delta, min_repeats=5, n_repeats_max=5)
        misses += np.any((lower > 0) | (upper < 0))
    expected = 1 - (1 - delta / n_units) ** n_units
    assert abs(misses / trials - expected) < 4 * np.sqrt(expected * (1 - expected) / trials)


def test_empirical_bernstein_covers_where_the_t_bound_cannot():
    """Rare 0/1 values (mean 0.02): five zeros make the t interval a point at 0, which misses;
    the range-based bound still covers the true mean."""
    rng = np.random.default_rng(3)
    draws = (rng.random((2000, 5)) < 0.02).astype(float)
    t_lower, t_upper = confidence_bounds(draws, 0.95, min_repeats=5, n_repeats_max=5)
    eb_lower, eb_upper = confidence_bounds(draws, 0.95, 5, value_range=1.0, n_repeats_max=5)
    assert np.mean((t_lower > 0.02) | (t_upper < 0.02)) > 0.5
    assert np.all((eb_lower <= 0.02) & (eb_upper >= 0.02))


def test_empirical_bernstein_races_bounded_values_to_the_right_set():
    rng = np.random.default_rng(4)
    means = np.r_[np.full(3, 0.9), np.full(17, 0.1)]
    draws = np.clip(means[:, None] + rng.uniform(-0.05, 0.05, (20, 400)), 0, 1)
    values = np.full_like(draws, np.nan)
    decision = None
    for repeat in range(400):
        values[~decision.settled if decision else slice(None), repeat] = draws[
            ~decision.settled if decision else slice(None), repeat
        ]
        decision = race(values, 3, value_range=0.1, n_repeats_max=400, previous=decision)
        if decision.certified:
            break
    assert decision.certified
    np.testing.assert_array_equal(np.flatnonzero(decision.settled_in), [0, 1, 2])


def test_same_input_same_decision_and_units_can_be_reordered():
    draws, _ = _planted(5)
    first, values = _run(draws, k=6)
    again, values_again = _run(draws, k=6)
    np.testing.assert_array_equal(values, values_again)
    for name in ("settled_in", "settled_out", "lower", "upper"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    order = np.random.default_rng(0).permutation(draws.shape[0])
    shuffled = race(draws[order, :10], 6, n_repeats_max=BUDGET)
    plain = race(draws[:, :10], 6, n_repeats_max=BUDGET)
    np.testing.assert_array_equal(shuffled.settled_in, plain.settled_in[order])
    np.testing.assert_array_equal(shuffled.settled_out, plain.settled_out[order])


def test_settled_units_stay_settled():
    looks: list[RaceDecision] = []
    _run(_hard(7, "normal")[0], k=5, looks=looks)
    for before, after in itertools.pairwise(looks):
        assert np.all(after.settled_in[before.settled_in])
        assert np.all(after.settled_out[before.settled_out])
        assert not np.any(after.settled_in & after.settled_out)
    # A previous decision is kept even when the current data alone would not settle the unit.
    ambiguous = np.random.default_rng(0).normal(size=(6, 4))
    previous = RaceDecision(
        np.eye(6, dtype=bool)[0], np.eye(6, dtype=bool)[1], False, np.zeros(6), np.zeros(6)
    )
    kept = race(ambiguous, 2, previous=previous)
    assert kept.settled_in[0] and kept.settled_out[1] and not kept.certified


def test_units_with_too_few_repeats_are_never_settled():
    values = np.full((8, 10), np.nan)
    values[:, :6] = np.r_[5.0, 4.0, np.zeros(6)][:, None] + 0.001 * np.arange(6)
    values[0, 2:] = np.nan  # unit 0: only two repeats, far above the rest
    decision = race(values, 2, min_repeats=3, n_repeats_max=10)
    assert not decision.settled[0] and np.isinf(decision.lower[0]) and np.isinf(decision.upper[0])
    # Unit 0 is not counted as surely above the zeros either: only unit 1 is, so none is out yet.
    np.testing.assert_array_equal(decision.settled_in, np.eye(8, dtype=bool)[1])
    assert not decision.settled_out.any() and not decision.certified
    values[0, 2:6] = 5.0 + 0.001 * np.arange(4)  # its third repeat onwards: now it counts
    assert race(values, 2, min_repeats=3, n_repeats_max=10, previous=decision).certified
    assert not race(values[:, :6], 2, min_repeats=7).settled.any()


def test_certified_by_elimination_settles_the_rest_inside():
    """Four of six units are surely below two others' lower bounds: the top 2 is decided."""
    lower = np.array([5.0, 4.0, 0.0, 0.0, 0.0, 0.0])
    upper = np.array([9.0, 9.0, 1.0, 1.0, 1.0, 1.0])
    decision = decide(lower, upper, 2)
    assert decision.certified
    np.testing.assert_array_equal(decision.settled_in, [True, True, False, False, False, False])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k"),
        ({"k": 5}, "k"),
        ({"k": 1.5}, "k"),
        ({"k": True}, "k"),
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 1.2}, "confidence"),
        ({"confidence": "high"}, "confidence"),
        ({"min_repeats": 1}, "min_repeats"),
        ({"n_repeats_max": 3}, "n_repeats_max"),
        ({"value_range": -1.0}, "value_range"),
        ({"value_range": np.ones(3)}, "value_range"),
        ({"value_range": 0.01}, "value_range"),
        (
            {"previous": RaceDecision(*(np.zeros(3, bool),) * 2, False, np.zeros(3), np.zeros(3))},
            "previous",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(kwargs, message):
    values = np.random.default_rng(0).normal(size=(4, 6))
    arguments = {"k": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        race(values, **arguments)


def test_bad_importances_are_refused():
    with pytest.raises(ValueError, match="units, repeats"):
        race(np.zeros(5), 1)
    with pytest.raises(ValueError, match="inf"):
        race(np.array([[1.0, np.inf, 2.0]]), 1)
    with pytest.raises(ValueError, match="lower <= upper"):
        decide(np.array([1.0]), np.array([0.0]), 1)
