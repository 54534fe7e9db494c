"""What the Shapley method checks and derives from its options: background rows and orderings.

Runs before the model is first called, so bad options fail without any model call.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any

import numpy as np
import pandas as pd
import torch

from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.permutations import row_subset

__all__ = [
    "DEFAULT_BACKGROUND_ROWS",
    "MAX_ESTIMATES",
    "all_orders",
    "background_rows",
    "check_estimates_fit",
    "stopping_rule",
]

DEFAULT_BACKGROUND_ROWS = 128
# Estimates a snapshot holds (F x n_permutations float64, 1.6 GB): past this, refuse at
# construction rather than fail inside numpy part way (the permutation method's bound).
MAX_ESTIMATES = 200_000_000
# The background draw's stream word (row_subset's "repeat"), apart from any repeat's subset.
_BACKGROUND_DRAW = -1


def all_orders(n_units: int, antithetic: bool) -> np.ndarray:
    """Every ordering of the units (L, F) int64, lexicographic; with antithetic pairs one of each
    pair {ordering, its reverse} (the one whose first unit is smaller than its last)."""
    orders = np.array(list(itertools.permutations(range(n_units))), dtype=np.int64)
    if antithetic:
        orders = orders[orders[:, 0] <= orders[:, -1]]
    return orders


def background_rows(
    background: Any, X: torch.Tensor, names: tuple[str, ...], seed: int
) -> tuple[torch.Tensor, str]:
    """The background rows (B, d) in X's dtype and device, and how they were chosen."""
    n, d = X.shape
    if background is None or isinstance(background, numbers.Integral):
        count = min(DEFAULT_BACKGROUND_ROWS, n) if background is None else check_int(
            background, "background", 1, n
        )  # fmt: skip
        rows = torch.as_tensor(row_subset(seed, _BACKGROUND_DRAW, n, count), device=X.device)
        return X[rows].clone(), "sampled"
    if isinstance(background, pd.DataFrame):
        columns = [str(c) for c in background.columns]
        if columns != list(names):
            missing = [c for c in names if c not in columns][:5]
            raise ValueError(
                f"background must have X's columns in X's order; missing {missing}, "
                f"{len(columns)} columns vs {d}. Pass background[X.columns]."
            )
        background = background.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(background, np.ndarray):
        if background.dtype.kind not in "biuf":
            raise TypeError(f"background has dtype {background.dtype}; pass numbers")
        background = torch.as_tensor(np.asarray(background, dtype=np.float64))
    if not isinstance(background, torch.Tensor):
        raise TypeError(
            "background must be None, an int (rows of X to draw), an array, a tensor or a "
            f"DataFrame, got {type(background).__name__}"
        )
    if background.ndim != 2 or background.shape[1] != d or background.shape[0] < 1:
        raise ValueError(
            f"background must have shape (rows, {d}) like X, got {tuple(background.shape)}"
        )
    if background.is_complex() or not bool(torch.isfinite(background.double()).all()):
        raise ValueError("background holds NaN, inf or complex values; pass finite rows")
    rows = background.detach().to(device=X.device, dtype=X.dtype, copy=True)
    if not bool(torch.isfinite(rows).all()):
        raise ValueError(f"background has values too large for the model's dtype {X.dtype}")
    return rows, "given"


def stopping_rule(n_permutations: Any, tol: Any) -> tuple[int | str | None, float]:
    """Checked ``n_permutations`` (an int >= 1, ``"all"`` or None) and ``tol`` (> 0, finite)."""
    if isinstance(n_permutations, str) and n_permutations != "all":
        raise TypeError(f"n_permutations must be an integer, 'all' or None, got {n_permutations!r}")
    if n_permutations is not None and n_permutations != "all":
        n_permutations = check_int(n_permutations, "n_permutations", 1)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < math.inf:
        raise ValueError(f"tol must be a positive number (e.g. 0.025), got {tol!r}")
    return n_permutations, float(tol)


def check_estimates_fit(n_permutations: int, n_units: int) -> None:
    """Refuse a cap whose (F, n_permutations) float64 estimates would not fit memory."""
    estimates = n_units * n_permutations
    if estimates > MAX_ESTIMATES:
        raise ValueError(
            f"n_permutations={n_permutations:,} for {n_units:,} features needs "
            f"{estimates * 8 / 2**30:,.1f} GiB for the estimates alone; use fewer "
            "permutations, or n_permutations=None (until converged, tol=)"
        )
