"""(epsilon, delta)-PAC top-k over rows: which units are within a tolerance of the top k.

The rows race (:mod:`aefi_widget.engine.rows_race`) evaluates each unit on blocks of rows; this
module turns each unit's per-row values (count, mean, sum of squared deviations) into confidence
bounds and decides which units are settled.

The estimand and the sampling
-----------------------------
For unit j, position t of its row stream is row ``order[r, j][t mod n]`` of the data under the
exact run's shuffle ``pi[r, j]`` of repeat ``r = t // n`` (``order`` a counter-based row order of
its own, :func:`~aefi_widget.engine.permutations.row_orders`). The per-row value is
``y = error_i(x_i with unit j's columns taken from row pi(i)) - error_i(x_i)``. Under a uniform
shuffle the donor ``pi(i)`` of any row is uniform, so ``E[y] = mu[j]``, the mean over all n^2
(row, donor) pairs: exactly the expectation, over shuffles, of the exact run's n-row importance.
After n rows of repeat r the block's mean *is* the exact run's ``importances[j, r]``.

The bound: Student t, Bonferroni over units, sides and looks; no finite-population shrinkage
------------------------------------------------------------------------------------------
A unit is looked at only when its row count reaches a size of a schedule fixed in advance
(``first``, growing 1.5x, up to ``cap``: L sizes; a bound at any other count is refused). Its
interval at size m is ``mean +- t_{m-1}(1 - alpha) * sqrt(c * s^2 / m)`` with
``alpha = delta / (2 F L)``. Each member of the family {unit, size} depends only on a prefix of
that unit's own stream, fixed in advance, so the union bound over F units x L sizes x 2 sides
holds whatever the allocation does: the adaptive choices (which units get rows, when the run
stops) only select which members are read. That is why the guarantee survives optional
stopping and adaptive allocation.

Rows are drawn without replacement, and so are donors (a shuffle is a bijection). Writing
``y[i, k] = m + a_i + b_k + c_ik`` (c doubly centred), the m-row mean of one shuffle has variance
``[(s_a^2 + s_b^2) (n - m) / (n - 1) + s_c^2 (1 + (m - 1) / (n - 1)^2)] / m``: the
finite-population correction shrinks the row and donor effects but not the interaction, which
can dominate (a feature that matters through other features). So no shrinkage is applied; the
interaction's tiny excess is covered by ``c = n / (n - 1)``. Blocks of different shuffles are
independent, so the bound holds across repeats too. The per-row values are not normal: the t
quantile is a normal approximation of the mean of >= ``first`` rows (the assumption the whole-
repeat race makes for 950-row means); ``tests/test_pac_race.py`` and
``benchmarks/bench_race_rows.py --pac`` check the miss rate on skewed planted values.

The decision (LUCB with tolerance, Kalyanakrishnan et al. 2012)
---------------------------------------------------------------
``eps = tolerance`` (absolute) or ``tolerance * max(0, k-th largest lower bound)`` (relative: on
the event that every interval holds, that lower bound is at most the true k-th importance, so the
claim holds for the true k-th). Unit j is settled *inside* when at least F - k other units have
``upper[i] < lower[j] + eps``: then ``mu[j] >= mu_(k) - eps``. It is settled *outside* when at
least k other units have ``lower[i] > upper[j] - eps``: then ``mu[j] <= mu_(k+1) + eps``. The set
is *certified* when the k units ``T`` with the largest means (settled-inside units first) have
``min_T lower >= max_(not T) upper - eps``: then every unit of T is within eps of the true k-th
and every other unit within eps of the true (k+1)-th. A unit whose interval is within eps both
ways is settled too (either answer is right). A unit whose projected need exceeds the per-unit
cap is *tied*: it gets no more rows, and the result says which units share the open places.
The tie rule (:func:`hopeless`) asks whether a unit outside the top k by mean could settle out
even if every unit reached the cap; a tie is no claim, so the rule costs power, never coverage.
The top k by mean are never given up before the cap: their tight lower bounds are what every
other unit is settled against (on the seed-like autoencoder's top 20, freezing them left the
bulk running to the cap in vain: 41 % of the budget instead of 26 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["PacDecision", "hopeless", "look_sizes", "pac_decide", "projected_rows", "row_bounds"]

# Projected rows: the half-widths of the unit and of the boundary both shrink; 1.5 (not 2)
# because the boundary's leaders get more rows than the unit.
_NEED_FACTOR = 1.5


@dataclass(frozen=True)
class PacDecision:
    """Which units are settled after one look of the rows race.

    Attributes
    ----------
    settled_in, settled_out, tied : numpy.ndarray of bool, shape (F,)
        Within the tolerance of the top k / of the rest / given up (no separation within the
        cap); disjoint.
    certified : bool
        ``settled_in`` is a certified top-k set (k units) and every other unit is settled out.
    lower, upper : numpy.ndarray of float64, shape (F,)
        The simultaneous bounds (``-inf``/``inf`` before a unit's first look).
    epsilon : float
        The absolute tolerance used, in the units of the importances.
    certified_ranks : int
        The largest k' <= k such that some k' units are each within ``epsilon`` of the true
        k'-th importance (the top k' is certified as a set).
    """

    settled_in: np.ndarray
    settled_out: np.ndarray
    tied: np.ndarray
    certified: bool
    lower: np.ndarray
    upper: np.ndarray
    epsilon: float
    certified_ranks: int

    @property
    def settled(self) -> np.ndarray:
        """(F,) bool: settled either way or tied (such units get no more rows)."""
        return self.settled_in | self.settled_out | self.tied


def look_sizes(first: int, cap: int, step: int = 32) -> np.ndarray:
    """The row counts at which a unit is looked at: ``first``, then x 1.5 rounded up to a
    multiple of ``step`` (32, 64, 96, 160, 256, ...), and ``cap``: (L,).

    Growth 1.5 rather than doubling: a unit overshoots the rows it needs by 1.23x on average
    instead of 1.44x, for a union over ~1.7x as many looks (the t quantile grows ~2 %); on the
    seed-like autoencoder's values (d = 1,000, top 20) the race spends 26 % instead of 29 %."""
    sizes = [first]
    while -(-sizes[-1] * 3 // (2 * step)) * step < cap:
        sizes.append(-(-sizes[-1] * 3 // (2 * step)) * step)
    if sizes[-1] < cap:
        sizes.append(cap)
    return np.array(sizes, dtype=np.int64)


def _quantile(count: np.ndarray, n_units: int, sizes: np.ndarray, confidence: float) -> np.ndarray:
    """t_{m-1}(1 - alpha) with alpha = (1 - confidence) / (2 F L), per count (a look size: the
    union bound covers the family {unit, look size} only)."""
    look = np.searchsorted(sizes, count)
    if (look >= sizes.size).any() or (sizes[np.minimum(look, sizes.size - 1)] != count).any():
        raise ValueError("a bound was asked at a row count that is not a look size")
    alpha = (1.0 - confidence) / (2.0 * n_units * sizes.size)
    return -special.stdtrit(count.astype(np.float64) - 1.0, alpha)


def row_bounds(
    count: np.ndarray, mean: np.ndarray, m2: np.ndarray, sizes: np.ndarray, confidence: float,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Simultaneous lower and upper bounds on each unit's importance (module notes).

    Parameters
    ----------
    count, mean, m2 : numpy.ndarray, shape (F,)
        Rows done, their mean and sum of squared deviations (units without rows: count 0).
    sizes : numpy.ndarray of int, shape (L,)
        The look schedule; every count of at least 2 is one of its sizes.
    confidence : float
        In (0, 1): the probability that every bound of the run holds.
    n : int
        Rows of the data (for the interaction's variance factor n / (n - 1)).
    """
    lower = np.full(count.shape, -np.inf)
    upper = np.full(count.shape, np.inf)
    seen = count >= 2
    if seen.any():
        m = count[seen].astype(np.float64)
        variance = m2[seen] / (m - 1.0) * (n / max(n - 1.0, 1.0))
        half = _quantile(count[seen], count.size, sizes, confidence) * np.sqrt(variance / m)
        lower[seen] = mean[seen] - half
        upper[seen] = mean[seen] + half
    return lower, upper


def projected_rows(
    count: np.ndarray, mean: np.ndarray, m2: np.ndarray, k: int, epsilon: float,
    n_looks: int, confidence: float,
) -> np.ndarray:  # fmt: skip
    """(F,) float: rows each unit would need for its interval to clear the k/k+1 boundary
    (the midpoint of the k-th and (k+1)-th largest means), at its current spread; a rough
    projection for the ETA, the tie rule and the separation estimate (inf for zero gap)."""
    n_units = count.size
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(np.where(count > 1, m2 / np.maximum(count - 1, 1), 0.0))
    ranked = np.sort(np.where(count > 0, mean, -np.inf))[::-1]
    boundary = 0.5 * (ranked[k - 1] + ranked[k]) if k < n_units else ranked[k - 1] - epsilon
    z = -special.ndtri((1.0 - confidence) / (2.0 * n_units * n_looks))
    gap = np.abs(mean - boundary) + epsilon
    with np.errstate(invalid="ignore", divide="ignore"):
        need = (_NEED_FACTOR * z * spread / gap) ** 2
    need = np.where(spread == 0.0, 0.0, need)
    return np.where(np.isfinite(boundary), need, np.inf)


def hopeless(
    count: np.ndarray, mean: np.ndarray, m2: np.ndarray, k: int, tolerance: float,
    relative: bool, n_looks: int, confidence: float, cap: int, n: int,
) -> np.ndarray:  # fmt: skip
    """(F,) bool: units outside the top k by mean that could not settle out even at the cap.

    The best any unit's bounds can get is its half-width at ``cap`` rows (at its current
    spread). A unit j outside the top k by mean settles out once its upper bound is below the
    k-th largest lower bound plus the tolerance; if that fails even with every unit at the cap
    and j's mean taken 2 standard errors lower than it is (so noise alone rarely gives a unit
    up), j is hopeless: it sits in a plateau with the k-th unit that the cap cannot separate.
    Giving up makes no claim (a tied unit is neither in nor out), so this rule only spends
    power, never coverage. The top k by mean are never hopeless: their rows tighten the k-th
    lower bound that every other unit is settled against.
    """
    n_units = count.size
    result = np.zeros(n_units, dtype=bool)
    seen = count >= 2
    if k >= n_units or not seen.all():
        return result
    z = -special.ndtri((1.0 - confidence) / (2.0 * n_units * n_looks))
    spread = np.sqrt(m2 / np.maximum(count - 1, 1) * (n / max(n - 1.0, 1.0)))
    at_cap = z * spread / np.sqrt(cap)
    order = _by_mean(mean)
    best_lower = np.sort(mean - at_cap)[::-1][k - 1]
    epsilon = tolerance * max(0.0, best_lower) if relative else tolerance
    optimistic = mean - 2.0 * spread / np.sqrt(np.maximum(count, 1))
    result = optimistic + at_cap > best_lower + epsilon
    result[order[:k]] = False
    return result


def pac_decide(
    lower: np.ndarray,
    upper: np.ndarray,
    mean: np.ndarray,
    k: int,
    tolerance: float,
    relative: bool,
    previous: PacDecision | None = None,
    give_up: np.ndarray | None = None,
) -> PacDecision:
    """Settle units by the PAC rule of the module notes.

    Parameters
    ----------
    lower, upper, mean : numpy.ndarray of float, shape (F,)
        Bounds (infinite before a unit's first look) and current means (NaN without rows).
    k : int
        Size of the top set, in [1, F].
    tolerance : float
        >= 0: absolute, or a fraction of the k-th importance when ``relative``.
    previous : PacDecision, optional
        Settled and tied units stay so.
    give_up : numpy.ndarray of bool, shape (F,), optional
        Units to call tied now unless they are settled (projected past the cap).
    """
    n_units = lower.size
    before_in, before_out, before_tied = _previous(previous, n_units)
    finite_lower = np.sort(np.where(np.isfinite(lower), lower, -np.inf))[::-1]
    kth_lower = finite_lower[k - 1]
    if relative:
        epsilon = tolerance * max(0.0, kth_lower) if np.isfinite(kth_lower) else 0.0
    else:
        epsilon = float(tolerance)
    eligible = np.isfinite(lower) & np.isfinite(upper)
    below, above = _surely_counts(lower, upper, epsilon)
    fresh = eligible & ~(before_in | before_out | before_tied)
    new_in = fresh & (below >= n_units - k)
    new_out = fresh & (above >= k)
    # Within epsilon both ways: either answer is right; keep the one the means give.
    rank = np.empty(n_units, dtype=np.int64)
    rank[_by_mean(mean)] = np.arange(n_units)
    both = new_in & new_out
    new_in &= ~both | (rank < k)
    new_out &= ~new_in
    settled_in, settled_out = before_in | new_in, before_out | new_out
    tied = before_tied.copy()
    if give_up is not None:
        tied |= np.asarray(give_up, dtype=bool) & ~(settled_in | settled_out)
    certified, top = _certified(lower, upper, mean, settled_in, settled_out, k, epsilon)
    if certified:
        settled_in = np.zeros(n_units, dtype=bool)
        settled_in[top] = True
        settled_out, tied = ~settled_in, np.zeros(n_units, dtype=bool)
    ranks = k if certified else _certified_ranks(below, eligible, k)
    return PacDecision(settled_in, settled_out, tied, certified, lower, upper, epsilon, ranks)


def _surely_counts(
    lower: np.ndarray, upper: np.ndarray, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: other units surely below it (upper < lower_j + eps) and surely above it
    (lower > upper_j - eps)."""
    n_units = lower.size
    with np.errstate(invalid="ignore"):
        below = np.searchsorted(np.sort(upper), lower + epsilon, side="left")
        below -= (upper < lower + epsilon).astype(np.int64)  # not the unit itself
        above = n_units - np.searchsorted(np.sort(lower), upper - epsilon, side="right")
        above -= (lower > upper - epsilon).astype(np.int64)
    return below, above


def _by_mean(mean: np.ndarray) -> np.ndarray:
    """Unit indices by decreasing mean, ties by index, units without rows last."""
    return np.argsort(-np.where(np.isnan(mean), -np.inf, mean), kind="stable")


def _certified(
    lower: np.ndarray, upper: np.ndarray, mean: np.ndarray, settled_in: np.ndarray,
    settled_out: np.ndarray, k: int, epsilon: float,
) -> tuple[bool, np.ndarray]:  # fmt: skip
    """LUCB's stopping rule on T (settled-inside units first, then open ones, then settled-
    outside ones, each by mean): min_T lower >= max_(not T) upper - eps."""
    order = _by_mean(mean)
    group = np.where(settled_in, 0, np.where(settled_out, 2, 1))[order]
    top = order[np.argsort(group, kind="stable")][:k]
    if top.size == lower.size:
        return bool(np.isfinite(lower[top]).all()), top
    rest = np.ones(lower.size, dtype=bool)
    rest[top] = False
    return bool(lower[top].min() >= upper[rest].max() - epsilon), top


def _certified_ranks(below: np.ndarray, eligible: np.ndarray, k: int) -> int:
    """Largest k' <= k with at least k' units each surely above F - k' others."""
    n_units = below.size
    rank_bound = np.where(eligible, n_units - below, n_units + 1)  # j is within the top this
    counts = np.searchsorted(np.sort(rank_bound), np.arange(1, k + 1), side="right")
    good = np.flatnonzero(counts >= np.arange(1, k + 1))
    return int(good[-1] + 1) if good.size else 0


def _previous(
    previous: PacDecision | None, n_units: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if previous is None:
        none = np.zeros(n_units, dtype=bool)
        return none, none.copy(), none.copy()
    return previous.settled_in.copy(), previous.settled_out.copy(), previous.tied.copy()
