"""Which walks the Shapley method computes next, and when its run stops.

Walks are numbered in one flat order, position ``column * n + k``, the k-th sample of a fixed
shuffle of the n samples (``sample_order``, from the seed); batches (here) and Dask tasks (on a
cluster) are ranges of it, merged in that order. The shuffle makes the samples walked so far in a
column a simple random sample of all n, whatever the order of X's rows, so their mean is an
honest interim estimate (:meth:`ShapleyState.interim`); the first column's batches grow from
20 samples, so that estimate comes after one batch. A run stops at the end of a
column: at the cap, or (random orderings) once converged. Because every walk's numbers are
independent of the walks that share its calls, how the order is cut never changes the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from aefi_widget.engine.permutations import permutations
from aefi_widget.engine.shapley_state import MIN_INTERIM_SAMPLES, ShapleyState

__all__ = ["Schedule", "sample_order"]


@dataclass
class Schedule:
    """The run's walk order and stopping rule.

    ``all_orders`` (L, F): every ordering enumerated (``n_permutations="all"``; only the cap
    stops the run), else None (random orderings from ``seed``); ``antithetic``: every ordering
    is walked reversed too; ``expected_columns``: the columns a run to convergence will likely
    need (updated as columns finish; progress reports and batches use it).
    """

    n_samples: int
    n_units: int
    seed: int
    all_orders: np.ndarray | None
    antithetic: bool
    max_columns: int
    tol: float
    samples_per_batch: int
    expected_columns: int = field(init=False)
    sample_order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.expected_columns = min(2, self.max_columns)
        self.sample_order = sample_order(self.seed, self.n_samples)

    @property
    def exact(self) -> bool:
        """Every ordering is enumerated: no convergence stop, exact values at the end."""
        return self.all_orders is not None

    def orders(self, columns: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """The orderings (len(samples), F) int64 of ``samples`` in ``columns`` (both (K,)):
        permutations of the units from (seed, column, sample), or (``"all"``) ordering
        (column + sample) mod L of the enumerated list."""
        if self.all_orders is not None:
            return self.all_orders[(columns + samples) % len(self.all_orders)]
        orders = np.empty((len(samples), self.n_units), dtype=np.int64)
        for column in np.unique(columns):
            where = columns == column
            orders[where] = permutations(self.seed, int(column), samples[where], self.n_units)
        return orders

    def next_batch(self, state: ShapleyState) -> tuple[np.ndarray, np.ndarray]:
        """Columns and samples (K,) of the next batch: up to ``samples_per_batch`` samples, in
        column order, across column ends (small problems then fill their forward calls). With
        a convergence check to come, no further than the columns the run is expected to need:
        columns beyond the one where it stops are computed in vain (and dropped)."""
        n, column, sample = self.n_samples, state.column, state.sample
        span = self.samples_per_batch
        if column == 0:  # 20, 20, 40, 80, ... samples: a first interim estimate after one batch
            span = min(span, max(MIN_INTERIM_SAMPLES, sample))
        if not self.exact:
            span = min(span, max(n - sample, (self.expected_columns - column) * n - sample))
        start = column * n + sample
        return self.walks(start, min(start + span, self.max_columns * n))

    def walks(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns and samples (K,) of flat positions ``[start, stop)``."""
        flat = np.arange(start, stop)
        return flat // self.n_samples, self.sample_order[flat % self.n_samples]

    def tasks(self, state: ShapleyState, span: int) -> Iterator[tuple[int, int]]:
        """Flat ranges ``(start, stop)`` of ``span`` walks from the state's position to the cap
        (a cluster's tasks; the consumer stops taking them when the run stops)."""
        end = self.max_columns * self.n_samples
        for start in range(state.column * self.n_samples + state.sample, end, span):
            yield start, min(start + span, end)

    def absorb(
        self, state: ShapleyState, columns: np.ndarray, samples: np.ndarray, values: np.ndarray
    ) -> bool:
        """Add a batch's (K, F) contributions column by column; True when the run is done
        (columns computed beyond the stopping one are dropped)."""
        for column in np.unique(columns):
            where = np.flatnonzero(columns == column)
            if state.absorb(samples[where], values[where]):
                self.update_expected(state)
                if self.finished(state):
                    return True
        return False

    def finished(self, state: ShapleyState) -> bool:
        """The cap is reached, or (random orderings) the estimates converged."""
        if state.column >= self.max_columns:
            return True
        return not self.exact and state.converged(self.tol)

    def update_expected(self, state: ShapleyState) -> None:
        """Columns a run to convergence will likely need: R (ratio / tol)^2 (SE ~ 1/sqrt(R))."""
        R = state.column
        if R < 2 or state.ratio is None or not math.isfinite(state.ratio):
            expected = max(2, R + 1)
        elif state.converged(self.tol):
            expected = R
        else:
            expected = max(R + 1, math.ceil(R * (state.ratio / self.tol) ** 2))
        self.expected_columns = min(expected, self.max_columns)

    def evaluations_done(self, state: ShapleyState) -> int:
        """Sample-coalitions evaluated up to the state's position (walks x F)."""
        walks = (state.column * self.n_samples + state.sample) * (2 if self.antithetic else 1)
        return walks * self.n_units


def sample_order(seed: int, n_samples: int) -> np.ndarray:
    """The (n,) int64 order in which every column walks the samples: a shuffle from ``seed``
    (stream word -1, apart from every column's orderings)."""
    return permutations(seed, -1, np.zeros(1, dtype=np.int64), n_samples)[0]
