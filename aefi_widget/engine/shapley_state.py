"""The Shapley method's accumulators, standard errors, resume position and resume checks.

Column r of the estimates averages, over all n samples, each sample's contributions along its own
ordering for column r (with antithetic pairs: the mean of the ordering and its reverse). Columns
are independent draws, and within a column the samples' orderings are independent, so the
variance of a column is ``sum_i Var(c_i) / n^2``; it is estimated from each sample's spread over
the columns (n (R - 1) degrees of freedom, reliable from the second column on), which needs the
per-sample sums ``sample_sums`` (n, F) and the sum of squares ``square_sums`` (F,) over the
finished columns. The column in progress keeps its per-sample values apart (``column_values``)
until its last sample arrives, so the standard errors always describe finished columns.

Sums over samples run in sample order (``numpy.cumsum`` is sequential), so they do not depend on
how samples were split into batches; a resume state is checked against the new run before any
work.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aefi_widget._stats import t_quantile_975
from aefi_widget.engine.resume_checks import check_same_run
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["ShapleyState"]

# Degrees of freedom of the variance estimate, n (R - 1), before convergence is judged.
MIN_DEGREES_OF_FREEDOM = 20
# Samples walked before the first column's interim estimate is shown: a loss's contributions are
# skewed, and t intervals from 2-4 of them missed the exact values by up to 37 SE (measured).
MIN_INTERIM_SAMPLES = 20
_WHAT = {
    "model": "the model's parameters",
    "outputs": "the model's outputs on the first rows of X",
    "data": "the data X",
    "settings": "the settings that fix the numbers (seed, metric, background, groups, "
    "antithetic, orderings, dtype or forward path)",
}


def _in_order(start: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``start + rows[0] + rows[1] + ...`` added in this order (F,)."""
    return np.cumsum(np.vstack([start[None, :], rows]), axis=0)[-1]


class ShapleyState:
    """Mutable accumulators of one run; snapshots copy out of it.

    ``values`` holds the finished columns (each (F,)); the next batch starts at the ``sample``-th
    sample of ``sample_order`` (n,) in column ``column`` (= len(values)); ``column_values``
    (n, F) holds the column's per-sample contributions so far (rows indexed by sample; zero in
    the rows of ``sample_order[sample:]``).
    """

    def __init__(
        self, n_units: int, n_samples: int, sample_order: np.ndarray | None = None
    ) -> None:
        self.n_units, self.n_samples = n_units, n_samples
        self.sample_order = np.arange(n_samples) if sample_order is None else sample_order
        self.values: list[np.ndarray] = []
        self.sample_sums = np.zeros((n_samples, n_units))
        self.square_sums = np.zeros(n_units)
        self.column_values = np.zeros((n_samples, n_units))
        self.sample = 0
        self.elapsed_s = 0.0
        self.se = np.full(n_units, np.nan)
        self.ratio: float | None = None

    @property
    def column(self) -> int:
        return len(self.values)

    # ------------------------------------------------------------------ accumulating
    def absorb(self, samples: np.ndarray, contributions: np.ndarray) -> bool:
        """Add the (K, F) contributions of ``samples`` (K,), the next K of ``sample_order``, in
        the current column; True when that finishes the column."""
        stop = self.sample + len(samples)
        if not np.array_equal(samples, self.sample_order[self.sample : stop]):
            raise RuntimeError("batches must arrive in the schedule's sample order")
        self.column_values[samples] = contributions
        self.sample = stop
        if stop < self.n_samples:
            return False
        column = self.column_values
        self.values.append(_in_order(np.zeros(self.n_units), column) / self.n_samples)
        self.sample_sums += column
        self.square_sums = _in_order(self.square_sums, column**2)
        self.column_values = np.zeros_like(column)
        self.sample = 0
        self.update_se()
        return True

    def update_se(self) -> None:
        """Standard error of every unit's mean over the finished columns (NaN before two)."""
        R, n = self.column, self.n_samples
        if R < 2:
            self.se = np.full(self.n_units, np.nan)
            self.ratio = None
            return
        spread = self.square_sums - (self.sample_sums**2).sum(axis=0) / R
        variance_sum = np.clip(spread, 0.0, None) / (R - 1)  # sum_i of per-sample variances
        self.se = np.sqrt(variance_sum / (n * n * R))
        values = np.mean(self.values, axis=0)
        gap = float(values.max() - values.min())
        largest = float(self.se.max())
        self.ratio = 0.0 if largest == 0.0 else (largest / gap if gap > 0 else math.inf)

    def interim(self) -> np.ndarray | None:
        """(4, F) float64 estimate shown before two columns finish, or None from then on.

        Rows: the mean, its standard error, the half-width of its 95 % interval (Student's t,
        m - 1 degrees of freedom) and the columns' worth walked (R + m / n, the same for every
        unit). In the first column, the mean over the m >= 20 samples walked so far (all n if
        fewer; a simple random sample of the n: see ``sample_order``) and ``s / sqrt(m)`` from their
        spread; after it, column 0 and ``s / sqrt(n)``. This SE counts the differences
        between samples too, which the n-sample estimand does not have: conservative, most at
        m = n, where it is replaced by the columns' SE once a second column finishes.
        """
        R, n = self.column, self.n_samples
        if R >= 2 or (R == 0 and self.sample < max(2, min(MIN_INTERIM_SAMPLES, self.n_samples))):
            return None
        if R == 0:
            m = self.sample
            rows = self.column_values[np.sort(self.sample_order[:m])]
            mean, spread = rows.mean(axis=0), rows.std(axis=0, ddof=1)
        else:
            m, mean = n, self.values[0]
            spread = np.sqrt(np.clip(self.square_sums - n * mean**2, 0.0, None) / max(1, n - 1))
        se = spread / math.sqrt(m)
        walked = np.full(self.n_units, R + self.sample / n)
        return np.stack([mean, se, t_quantile_975(m - 1) * se, walked])

    def converged(self, tol: float) -> bool:
        """max SE / (max value - min value) < tol, once the variance has enough data."""
        enough = self.n_samples * (self.column - 1) >= MIN_DEGREES_OF_FREEDOM
        return self.column >= 2 and enough and self.ratio is not None and self.ratio < tol

    # ------------------------------------------------------------------ exporting
    def progress(self, tol: float, exact: bool) -> dict[str, Any]:
        """The run's progress fields for a result's settings: columns done, whether converged
        at ``tol`` (never claimed for an ``exact`` enumeration: its SEs are 0), and the ratio
        max SE / (max value - min value) (None until known or when infinite)."""
        ratio = self.ratio if self.ratio is None or math.isfinite(self.ratio) else None
        return {
            "permutations_done": self.column,
            "samples_walked": self.sample,
            "converged": bool(not exact and self.converged(tol)),
            "convergence_ratio": ratio,
        }

    def importances(self, width: int) -> np.ndarray:
        """(F, max(width, R)) float64: finished columns, then NaN."""
        out = np.full((self.n_units, max(width, self.column)), np.nan)
        if self.values:
            out[:, : self.column] = np.column_stack(self.values)
        return out

    def resume_state(self, identity: dict[str, str]) -> ResumeState:
        position = {"column": self.column, "sample": self.sample}
        arrays = {
            "sample_sums": self.sample_sums.copy(),
            "square_sums": self.square_sums.copy(),
            "column_values": self.column_values.copy(),
        }
        return ResumeState("shapley", position, arrays, identity)

    # ------------------------------------------------------------------ resuming
    @classmethod
    def resumed(
        cls,
        result: ImportanceResult,
        identity: dict[str, str],
        feature_names: tuple[str, ...],
        n_samples: int,
        max_columns: int,
        sample_order: np.ndarray,
    ) -> ShapleyState:
        """Continue ``result``: the same run (the cap and tol may differ), checked first."""
        resume = check_same_run(result, "shapley", identity, feature_names, _WHAT)
        F = len(feature_names)
        column = _integer(resume.position, "column", 0, result.importances.shape[1])
        sample = _integer(resume.position, "sample", 0, n_samples - 1)
        if column > max_columns:
            raise ValueError(
                f"the result holds {column} permutations, more than n_permutations={max_columns}"
            )
        values = result.importances
        finished = np.zeros(values.shape, dtype=bool)
        finished[:, :column] = True
        if not np.array_equal(~np.isnan(values), finished):
            raise ValueError(
                "the result's importances do not match its resume position (estimates missing "
                "where finished, or present where not yet computed)"
            )
        if not np.isfinite(values[:, :column]).all():
            raise ValueError("the result's importances hold inf")
        state = cls(F, n_samples, sample_order)
        state.values = [values[:, r].copy() for r in range(column)]
        shapes = {
            "sample_sums": (n_samples, F),
            "square_sums": (F,),
            "column_values": (n_samples, F),
        }
        for name, shape in shapes.items():
            array = resume.arrays.get(name)
            if array is None or array.shape != shape or not np.isfinite(array).all():
                raise ValueError(f"the resume state lacks a finite {shape} array {name!r}")
            setattr(state, name, np.array(array, dtype=np.float64))
        if state.column_values[sample_order[sample:]].any():
            raise ValueError("the resume state holds contributions of samples not yet computed")
        state.sample = sample
        state.elapsed_s = result.elapsed_s
        state.update_se()
        return state


def _integer(position: dict, key: str, low: int, high: int) -> int:
    value = position.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(
            f"the resume position's {key} is {value!r}, not an integer in [{low}, {high}]"
        )
    return value
