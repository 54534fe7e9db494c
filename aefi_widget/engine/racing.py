"""Certified top-k by racing: which units are surely inside or surely outside the k largest means.

The engine computes repeats in rounds; after each complete round it calls :func:`race` on the
finished values. A unit whose confidence interval places it surely inside or surely outside the
top k is *settled* and gets no more repeats (racing, Maron & Moore 1993; the elimination rule of
LUCB, Kalyanakrishnan et al. 2012). The run ends when the top-k set is certified or the budget is
spent.

The statistical model
---------------------
For unit j the per-repeat values ``X[j, 1], X[j, 2], ...`` are independent and identically
distributed with mean ``mu[j]``, the importance in expectation over the random permutations (and
sample subsets), given the data and the model. This holds because repeat r of unit j uses a
permutation drawn from (seed, r, j) alone, and the engine computes (j, r) the same way whether or
not other units are settled: each unit's values are a prefix of a sequence fixed in advance.
The top k is defined by ``mu``; nothing is assumed about how units relate to one another.

The bound (default): Student t with a Bonferroni union over units, sample sizes and sides
--------------------------------------------------------------------------------------------
The interval of unit j after n finished repeats is ``mean +- t_{n-1}(1 - alpha_n) * s / sqrt(n)``
(``s`` the sample standard deviation). Its assumption: **each per-repeat value is normally
distributed**. It is the mean, over the repeat's m samples, of per-sample error changes under a
uniformly random permutation, so Hoeffding's combinatorial central limit theorem makes it close to
normal for m in the hundreds; the t interval is exact for normal values, needs no range and no
known variance, and adapts to the large spread of important units and the tiny spread of
unimportant ones. It is not distribution-free: with few samples per repeat or a heavy-tailed
metric, pass ``value_range`` instead (below). Checked: on the seed-like autoencoder of
``aefi_widget.demo`` (d = 100, n = 950, 60 repeats) the per-unit skewness of the repeats lies in
[-0.55, 0.69] and Shapiro-Wilk rejects normality at 1 % for 2 % of units (chance level); in
simulation (tests/test_racing.py) repeats with skewness 0.63 keep the whole-run miss rate near
1 % at a nominal 5 %, while a skewness of 1.4 (gamma(2)) pushes it to about 11 %. A unit whose
repeats are all equal (a feature the model ignores gives exactly 0 each time) gets a zero-width
interval, which the normal model allows only for a constant: right for that case.

Alternative (``value_range`` given): empirical Bernstein
--------------------------------------------------------
When every per-repeat value of unit j is known a priori to lie in an interval of width ``b[j]``,
Maurer & Pontil (2009, Theorem 4) give, for any distribution, with probability >= 1 - alpha,
``mu - mean <= sqrt(2 V ln(2/alpha) / n) + 7 b ln(2/alpha) / (3 (n - 1))`` (V the unbiased sample
variance), and the same for ``mean - mu``. It needs no normality but its range term is large
(about 40 b / n at the levels used here), so it only helps when the range is small next to the
gaps between units. The range is the caller's a-priori knowledge: it is not estimated from the
data (an estimated range would void the guarantee); observed values spread wider than ``b`` are
refused.

Why the intervals hold simultaneously over all units and all looks
------------------------------------------------------------------
Let ``I[j, n]`` be unit j's interval from its first n values, for every unit and every n in
``[min_repeats, n_repeats_max]``: a family fixed in advance, because each member depends only on
a prefix of unit j's sequence. Each side of each member misses with probability at most
``alpha_n``, and ``alpha_n = delta / (2 F L)`` with ``delta = 1 - confidence`` and
``L = n_repeats_max - min_repeats + 1`` sample sizes (without ``n_repeats_max``: the schedule
``alpha_n = delta / (2 F) * 6 / (pi^2 q^2)``, ``q = n - min_repeats + 1``, which sums to the same
over every n). By the union bound every member of the family covers its mean with probability at
least ``confidence``, whatever the dependence between units and between looks. The engine's
adaptive choices (when to look, which units stop) only select which members it reads, so the
guarantee survives repeated looks and optional stopping; a settled unit keeps the interval of its
last n. The levels depend on n only, not on the round, so a unit's interval at a given n is the
same at every look.

The decision rule and why it is right on that event
---------------------------------------------------
Unit j is settled inside when at least ``F - k`` other units have ``upper[i] < lower[j]``: then
``mu[i] <= upper[i] < lower[j] <= mu[j]`` for F - k units, so j is in every top k (also when
means tie). It is settled outside when at least k units have ``lower[i] > upper[j]``: k units
have larger means, so j is in no top k. (This count rule implies LUCB's "lower bound above every
upper bound outside the current top k" and settles at least as much.) Units with fewer than
``min_repeats`` values have infinite intervals: they are neither settled nor counted as surely
below or above anything. Once k units are settled inside (or F - k outside, k < F), the set is
*certified* and the remaining units are settled by elimination. So, with probability at least
``confidence``, no unit is ever settled wrongly during the whole run.

Cost: at F = 1,000, n_repeats_max = 50, confidence = 0.95 the half-width is about 11.5 s/sqrt(n)
at n = 6, 3.7 s at n = 10 and 2.1 s at n = 15 (s the per-repeat spread), the price of an unknown
variance at small n and of 96,000 intervals.

References
----------
Maurer, A. & Pontil, M. (2009). Empirical Bernstein bounds and sample variance penalization. COLT.
Kalyanakrishnan, S., Tewari, A., Auer, P. & Stone, P. (2012). PAC subset selection in stochastic
multi-armed bandits. ICML.
Mnih, V., Szepesvari, C. & Audibert, J.-Y. (2008). Empirical Bernstein stopping. ICML.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["RaceDecision", "confidence_bounds", "decide", "race"]


@dataclass(frozen=True)
class RaceDecision:
    """Which units are settled after one look.

    Attributes
    ----------
    settled_in, settled_out : numpy.ndarray of bool, shape (F,)
        Surely inside / surely outside the top k (never both).
    certified : bool
        The top-k set is decided: ``settled_in`` is that set and every other unit is settled out.
    lower, upper : numpy.ndarray of float64, shape (F,)
        The simultaneous confidence bounds used, in the units of the importances; ``-inf``/``inf``
        for units with fewer than ``min_repeats`` values.
    """

    settled_in: np.ndarray
    settled_out: np.ndarray
    certified: bool
    lower: np.ndarray
    upper: np.ndarray

    @property
    def settled(self) -> np.ndarray:
        """(F,) bool: settled either way (such units get no more repeats)."""
        return self.settled_in | self.settled_out


def race(
    importances: np.ndarray,
    k: int,
    confidence: float = 0.95,
    min_repeats: int = 3,
    value_range: np.ndarray | float | None = None,
    n_repeats_max: int | None = None,
    previous: RaceDecision | None = None,
) -> RaceDecision:
    """Settle the units whose simultaneous confidence intervals decide their top-k membership.

    Parameters
    ----------
    importances : numpy.ndarray of float, shape (F, R)
        Per-repeat values of each unit (higher = more important); NaN where not computed.
    k : int
        Size of the top set, in ``[1, F]``.
    confidence : float, default 0.95
        Probability, in (0, 1), that no unit is ever settled wrongly over all looks of the run.
    min_repeats : int, default 3
        A unit is settled only once it has at least this many values (>= 2: a spread is needed).
    value_range : float or numpy.ndarray of shape (F,), optional
        A-priori width of the interval that holds every per-repeat value of a unit; given, the
        distribution-free empirical Bernstein bound replaces the t bound (see the module notes).
    n_repeats_max : int, optional
        The run's repeat budget; the confidence is split over sample sizes up to it. Without it a
        schedule summing over all sample sizes is used (slightly wider intervals).
    previous : RaceDecision, optional
        The last look's decision: settled units stay settled.

    Returns
    -------
    RaceDecision

    Raises
    ------
    ValueError
        For a bad ``k``, ``confidence``, ``min_repeats``, ``value_range``, ``n_repeats_max`` or
        ``previous``, or importances that are not a 2-D array of finite values and NaN.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> values = np.r_[np.ones(2), np.zeros(8)][:, None] + 0.01 * rng.standard_normal((10, 12))
    >>> race(values, k=2, n_repeats_max=12).certified
    True
    """
    values = _check_importances(importances)
    n_units = values.shape[0]
    _check_k(k, n_units)
    lower, upper = confidence_bounds(
        values, confidence, min_repeats, value_range=value_range, n_repeats_max=n_repeats_max
    )
    eligible = np.isfinite(lower)
    return decide(lower, upper, k, eligible=eligible, previous=previous)


def confidence_bounds(
    importances: np.ndarray,
    confidence: float = 0.95,
    min_repeats: int = 3,
    value_range: np.ndarray | float | None = None,
    n_repeats_max: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds on each unit's mean, valid simultaneously over units and looks.

    Parameters are those of :func:`race`. Returns two (F,) float64 arrays; units with fewer than
    ``min_repeats`` values get ``(-inf, inf)``.
    """
    values = _check_importances(importances)
    n_units = values.shape[0]
    if not isinstance(confidence, numbers.Real) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}")
    min_repeats = _check_int(min_repeats, "min_repeats", 2)
    done = np.isfinite(values)
    n_done = done.sum(axis=1)
    if n_repeats_max is not None:
        n_repeats_max = _check_int(n_repeats_max, "n_repeats_max", min_repeats)
        if n_done.max(initial=0) > n_repeats_max:
            raise ValueError(
                f"a unit has {n_done.max()} finished repeats, more than n_repeats_max="
                f"{n_repeats_max}; pass the run's repeat budget"
            )
    widths = _check_range(value_range, n_units)

    eligible = n_done >= min_repeats
    lower = np.full(n_units, -np.inf)
    upper = np.full(n_units, np.inf)
    if not eligible.any():
        return lower, upper
    n = n_done[eligible].astype(np.float64)
    rows = np.where(done[eligible], values[eligible], 0.0)
    mean = rows.sum(axis=1) / n
    deviations = np.where(done[eligible], values[eligible] - mean[:, None], 0.0)
    variance = (deviations**2).sum(axis=1) / (n - 1.0)  # unbiased: what both bounds are stated with
    alpha = _error_per_side(n, n_units, 1.0 - float(confidence), min_repeats, n_repeats_max)
    if widths is None:
        # The lower alpha-quantile, negated (the t law is symmetric): 1 - alpha would lose digits
        # at alpha ~ 1e-7. special.stdtrit, not stats.t.isf: same numbers, far less overhead.
        half = -special.stdtrit(n - 1.0, alpha) * np.sqrt(variance / n)
    else:
        width = widths[eligible]
        spread = np.where(done[eligible], values[eligible], -np.inf).max(axis=1) - np.where(
            done[eligible], values[eligible], np.inf
        ).min(axis=1)
        if np.any(spread > width * (1.0 + 1e-12)):
            unit = int(np.flatnonzero(eligible)[np.argmax(spread - width)])
            raise ValueError(
                f"unit {unit}'s repeats spread over more than its value_range; value_range must "
                "bound every per-repeat value a priori (or pass None for the t bound)"
            )
        log_term = np.log(2.0 / alpha)
        half = np.sqrt(2.0 * variance * log_term / n) + 7.0 * width * log_term / (3.0 * (n - 1.0))
    lower[eligible] = mean - half
    upper[eligible] = mean + half
    return lower, upper


def decide(
    lower: np.ndarray,
    upper: np.ndarray,
    k: int,
    eligible: np.ndarray | None = None,
    previous: RaceDecision | None = None,
) -> RaceDecision:
    """Apply the settling rule to given bounds (see the module notes for why it is right).

    Parameters
    ----------
    lower, upper : numpy.ndarray of float, shape (F,)
        Bounds on each unit's mean, ``lower <= upper``; infinite for units without an interval.
    k : int
        Size of the top set, in ``[1, F]``.
    eligible : numpy.ndarray of bool, shape (F,), optional
        Units that may be settled by their own interval (default: finite bounds).
    previous : RaceDecision, optional
        Settled units stay settled, either way.
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    n_units = lower.shape[0] if lower.ndim == 1 else -1
    if lower.ndim != 1 or upper.shape != lower.shape or np.any(lower > upper):
        raise ValueError("lower and upper must be (F,) arrays with lower <= upper")
    _check_k(k, n_units)
    if eligible is None:
        eligible = np.isfinite(lower) & np.isfinite(upper)
    eligible = np.asarray(eligible, dtype=bool)
    before_in, before_out = _previous(previous, n_units)

    # Units surely below j: upper[i] < lower[j]; surely above j: lower[i] > upper[j]. Neither
    # count includes j itself, since lower[j] <= upper[j].
    surely_below = np.searchsorted(np.sort(upper), lower, side="left")
    surely_above = n_units - np.searchsorted(np.sort(lower), upper, side="right")
    settled_in = before_in | (eligible & (surely_below >= n_units - k) & ~before_out)
    settled_out = before_out | (eligible & (surely_above >= k) & ~settled_in)

    certified = bool(settled_in.sum() >= k or (k < n_units and settled_out.sum() >= n_units - k))
    if certified:
        # The set is decided: the rest follows by elimination.
        if settled_in.sum() >= k:
            settled_out = ~settled_in
        else:
            settled_in = ~settled_out
    return RaceDecision(settled_in, settled_out, certified, lower, upper)


def _error_per_side(
    n: np.ndarray, n_units: int, delta: float, min_repeats: int, n_repeats_max: int | None
) -> np.ndarray:
    """Miss probability allowed to one side of one unit's interval at sample size n."""
    per_unit_side = delta / (2.0 * n_units)
    if n_repeats_max is not None:
        return np.full(n.shape, per_unit_side / (n_repeats_max - min_repeats + 1))
    q = n - min_repeats + 1.0
    return per_unit_side * 6.0 / (math.pi**2 * q**2)


def _check_importances(importances: np.ndarray) -> np.ndarray:
    """The importances as a float64 (F, R) array of finite values and NaN, or a clear error."""
    values = np.asarray(importances, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(
            f"importances must be a (units, repeats) array with at least one unit; got shape "
            f"{values.shape}"
        )
    if np.isinf(values).any():
        raise ValueError(
            "importances hold inf; only finite values and NaN (not computed) are allowed"
        )
    return values


def _check_k(k: int, n_units: int) -> None:
    """Refuse a top-set size outside [1, F]."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n_units:
        raise ValueError(f"k (top_k) must be an integer in [1, {n_units}] (the units); got {k!r}")


def _check_int(value: int, name: str, minimum: int) -> int:
    """An integer >= minimum, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_range(value_range: np.ndarray | float | None, n_units: int) -> np.ndarray | None:
    """The a-priori value ranges as an (F,) array, or None for the t bound."""
    if value_range is None:
        return None
    widths = np.asarray(value_range, dtype=np.float64)
    if widths.shape not in ((), (n_units,)):
        raise ValueError(
            f"value_range must be a scalar or have shape ({n_units},); got {widths.shape}"
        )
    widths = np.broadcast_to(widths, (n_units,)).copy()
    if not np.all(np.isfinite(widths)) or np.any(widths < 0):
        raise ValueError("value_range must be finite and >= 0: a scalar or one width per unit")
    return widths


def _previous(previous: RaceDecision | None, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous look's settled sets, checked against F."""
    if previous is None:
        return np.zeros(n_units, dtype=bool), np.zeros(n_units, dtype=bool)
    before_in = np.asarray(previous.settled_in, dtype=bool)
    before_out = np.asarray(previous.settled_out, dtype=bool)
    if before_in.shape != (n_units,) or before_out.shape != (n_units,):
        raise ValueError(f"previous decision is for {before_in.shape[0]} units, not {n_units}")
    return before_in, before_out
