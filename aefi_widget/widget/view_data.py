"""What the dashboard's compare, outputs and latent views draw, aggregated in the kernel.

Pure functions from :class:`~aefi_widget.result.ImportanceResult` objects to the trait values of
the multi-method protocol (``compare``/``compare_points``, ``heatmap``/``heatmap_values``,
``latent_top``). The page gets only what it draws: a (K, K) table of method agreement, one
(2, F) float32 scatter, and heat maps capped at 40 rows x 60 columns, so an update stays under
~200 KB even at 20,000 features (the scatter, 160 KB there, is the largest part).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.stats import spearmanr

from aefi_widget.result import ImportanceResult
from aefi_widget.result_summary import ranking_order

__all__ = ["MAX_COLUMNS", "MAX_ROWS", "compare_table", "latent_map", "latent_top", "output_map"]

# Heat-map caps of the protocol: 40 x 60 float32 cells are 9.6 KB, and more rows or columns than
# this would not be readable on a notebook-sized page anyway.
MAX_ROWS = 40
MAX_COLUMNS = 60
# Spearman's rho of fewer pairs is not informative (and of 2 it is always +-1).
_MIN_RHO_UNITS = 3
_LATENT_EXTRAS = ("latent_shift", "latent_map")


# ---------------------------------------------------------------------------- validation helpers
def _check_int(value: Any, name: str, low: int) -> int:
    """``value`` as an int >= ``low``; TypeError/ValueError that say what is expected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_result(result: Any, name: str = "result") -> ImportanceResult:
    if not isinstance(result, ImportanceResult):
        raise TypeError(f"{name} must be an ImportanceResult, got {type(result).__name__}")
    return result


def _means(result: ImportanceResult) -> np.ndarray:
    """(F,) float64 mean per unit over finished estimates, NaN for units not started."""
    return result.importances_mean.to_numpy(dtype=np.float64)


def _top_set(mean: np.ndarray, usable: np.ndarray, k: int) -> set[int]:
    """Indices of the k largest means among ``usable`` units (``ranking_order``'s tie rule)."""
    order = ranking_order(np.where(usable, mean, np.nan))
    return {int(i) for i in order[: min(k, int(usable.sum()))]}


def _rho(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho of two equal-length vectors; None when it is undefined."""
    if len(a) < _MIN_RHO_UNITS or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    with warnings.catch_warnings():  # constant or degenerate input: rho is NaN -> None
        warnings.simplefilter("ignore")
        rho = float(spearmanr(a, b).statistic)
    return None if math.isnan(rho) else rho


# ---------------------------------------------------------------------------- compare view
def compare_table(
    results: Mapping[str, ImportanceResult],
    titles: Mapping[str, str],
    k: int,
    x: str | None,
    y: str | None,
    feature_names: Sequence[str],
) -> tuple[dict[str, Any], bytes]:
    """How far the methods agree, over the units of the shown run.

    Parameters
    ----------
    results : mapping of method key -> ImportanceResult
        The runs with results, in the order the page lists them. Only those over exactly
        ``feature_names`` are compared; the others are named in ``note``.
    titles : mapping of method key -> str
        Display titles; a key without one uses its result's ``labels["title"]``.
    k : int >= 1
        Size of the top-k sets whose overlap is counted; clamped to F.
    x, y : str or None
        Keys of the scatter pair; None picks the first (x) and second (y) compared key.
    feature_names : sequence of str, length F
        Units of the shown run.

    Returns
    -------
    compare : dict
        ``keys`` and ``titles`` (K compared methods), ``rho`` (K x K, Spearman's rank correlation
        of the per-unit means, ``scipy.stats.spearmanr``, None when undefined: fewer than 3
        units with values in both, or a constant vector), ``overlap`` (K x K ints, size of the
        intersection of the two top-k sets), ``k``, ``x``, ``y`` and ``note``. Pairs of partial
        (streaming) results use only the units with values in both.
    points : bytes
        (2, F) float32 little-endian, row 0 the means of run x and row 1 of run y, in feature
        order (NaN where a unit has no value yet); b"" when nothing is compared.
    """
    if not isinstance(results, Mapping) or not isinstance(titles, Mapping):
        raise TypeError("results and titles must be mappings keyed by method key")
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence):
        raise TypeError("feature_names must be a sequence of unit names")
    names = tuple(str(n) for n in feature_names)
    k = min(_check_int(k, "k", 1), len(names))
    keys: list[str] = []
    skipped: list[str] = []
    for key, result in results.items():
        _check_result(result, f"results[{key!r}]")
        (keys if result.feature_names == names else skipped).append(key)
    for name, given in (("x", x), ("y", y)):
        if given is not None and given not in keys:
            raise ValueError(f"{name}={given!r} is not among the compared methods {keys}")
    x = x if x is not None else (keys[0] if keys else None)
    y = y if y is not None else (keys[1] if len(keys) > 1 else x)

    means = {key: _means(results[key]) for key in keys}
    have = {key: ~np.isnan(mean) for key, mean in means.items()}
    rho: list[list[float | None]] = [[None] * len(keys) for _ in keys]
    overlap = [[0] * len(keys) for _ in keys]
    for i, a in enumerate(keys):
        for j in range(i, len(keys)):
            b = keys[j]
            both = have[a] & have[b]
            rho[i][j] = rho[j][i] = _rho(means[a][both], means[b][both])
            overlap[i][j] = overlap[j][i] = len(
                _top_set(means[a], both, k) & _top_set(means[b], both, k)
            )

    notes = []
    if skipped:
        notes.append(f"Not compared (over other units than the shown run): {', '.join(skipped)}.")
    partial = [f"{key} {int(have[key].sum()):,}" for key in keys if not have[key].all()]
    if partial:
        notes.append(
            f"Partial results (units with values, of {len(names):,}): {', '.join(partial)}; "
            "each pair uses the units with values in both."
        )
    if x is not None and y is not None and not (have[x] & have[y]).all():
        notes.append(f"Scatter {x} vs {y}: {int((have[x] & have[y]).sum()):,} units in both.")
    compare = {
        "keys": keys,
        "titles": [str(titles.get(key, results[key].labels["title"])) for key in keys],
        "rho": rho,
        "overlap": overlap,
        "k": k,
        "x": x,
        "y": y,
        "note": " ".join(notes),
    }
    if x is None or y is None:
        return compare, b""
    points = np.stack([means[x], means[y]]).astype("<f4")
    return compare, points.tobytes()


# ---------------------------------------------------------------------------- heat maps
def _leaf_order(profiles: np.ndarray) -> np.ndarray:
    """Order of the rows of ``profiles`` (m, c) that puts similar patterns next to each other.

    Average-linkage clustering with optimal leaf ordering (Bar-Joseph et al. 2001), scipy's,
    deterministic. Each row is scaled by its largest |value| first, so rows group by *which*
    columns they move, not by how strongly (the rows' strengths already differ by rank).
    """
    if len(profiles) < 3:  # 1 or 2 rows: every order is optimal; keep the given one
        return np.arange(len(profiles))
    scale = np.max(np.abs(profiles), axis=1, keepdims=True)
    scaled = profiles / np.where(scale > 0, scale, 1.0)
    return leaves_list(linkage(scaled, method="average", optimal_ordering=True))


def _columns_moved_most(rows: np.ndarray, cap: int) -> np.ndarray:
    """Union, in round-robin order, of each row's columns by decreasing |value|, <= ``cap``.

    Round r adds every row's r-th largest column, so each row shows its strongest outputs
    before any row shows its weaker ones; NaN cells sort last. Stable sort: deterministic ties.
    """
    magnitude = np.where(np.isnan(rows), -np.inf, np.abs(rows))
    ranked = np.argsort(-magnitude, axis=1, kind="stable")[:, :cap]  # (m, <= cap)
    flat = ranked.T.ravel()  # rounds major, rows minor
    _, first = np.unique(flat, return_index=True)
    return flat[np.sort(first)][:cap]


def _heatmap(
    matrix: np.ndarray,
    mean: np.ndarray,
    column_names: Sequence[str],
    top_n: int,
    head: dict[str, Any],
) -> tuple[dict[str, Any], bytes]:
    """Top rows by ``mean`` x the columns they move most, both clustered; see :func:`output_map`."""
    n_units, n_columns = matrix.shape
    usable = ~np.isnan(mean) & np.isfinite(matrix).all(axis=1)
    order = ranking_order(np.where(usable, mean, np.nan))
    chosen = order[: min(top_n, MAX_ROWS, int(usable.sum()))]
    if len(chosen) == 0 or n_columns == 0:
        empty = {"rows": [], "columns": [], "column_indices": []}
        return {**head, **empty, "note": "No unit has a value yet."}, b""
    columns = _columns_moved_most(matrix[chosen], MAX_COLUMNS)
    block = matrix[np.ix_(chosen, columns)]
    row_order = _leaf_order(block)
    column_order = _leaf_order(block.T)
    values = block[np.ix_(row_order, column_order)].astype("<f4")
    notes = [f"Top {len(chosen)} of {n_units:,} units by mean"]
    if not usable.all():
        notes.append(f"{int((~usable).sum()):,} units without values yet left out")
    if len(columns) < n_columns:
        notes.append(f"{len(columns)} of {n_columns:,} {head['column_axis']}s: those the rows "
                     "move most")  # fmt: skip
    view = {
        **head,
        "rows": [int(i) for i in chosen[row_order]],
        "columns": [str(column_names[i]) for i in columns[column_order]],
        # Positions in the full output / latent axis: the shown columns are a clustered subset,
        # so a column's place on screen is not its index (the page sends this in latent_dim).
        "column_indices": [int(i) for i in columns[column_order]],
        "note": "; ".join(notes) + "; rows and columns clustered so blocks show.",
    }
    return view, values.tobytes()


def output_map(result: ImportanceResult, top_n: int) -> tuple[dict[str, Any], bytes]:
    """Heat map of which outputs the most important units move (``result.delta_recon``).

    Parameters
    ----------
    result : ImportanceResult
        A result with per-output deltas (permutation importance with ``per_output``).
    top_n : int >= 1
        Rows wanted; at most 40 are shown.

    Returns
    -------
    heatmap : dict
        ``kind`` "outputs", ``rows`` (unit indices into ``result.feature_names``: the
        ``min(top_n, 40)`` largest means), ``columns`` (output names: the union of each row's
        largest ``|delta|``, <= 60), ``value_label``, ``column_axis`` "output", ``note``. Rows and
        columns are ordered by clustering so blocks show; with no per-output data, empty rows and
        columns and a note that says why.
    values : bytes
        (len(rows), len(columns)) float32 little-endian, row-major: mean over samples and
        finished repeats of ``|recon_permuted - recon|``, in the outputs' units; b"" when empty.
    """
    result = _check_result(result)
    top_n = _check_int(top_n, "top_n", 1)
    head = {"kind": "outputs", "value_label": "mean |Δ reconstruction|", "column_axis": "output"}
    delta = result.delta_recon
    if delta is None:
        note = (f"{result.labels['title']} has no per-output deltas; permutation importance "
                "records them with per_output=True (the default up to a size limit).")  # fmt: skip
        return {**head, "rows": [], "columns": [], "column_indices": [], "note": note}, b""
    return _heatmap(delta.to_numpy(dtype=np.float64), _means(result), result.output_names,
                    top_n, head)  # fmt: skip


def _latent_matrix(result: ImportanceResult) -> np.ndarray | None:
    """The (F, L) input x latent-dimension matrix of a latent result, or None when absent."""
    for name in _LATENT_EXTRAS:
        matrix = result.extras.get(name)
        if matrix is not None:
            expected = (result.n_features, len(result.output_names))
            if matrix.shape != expected:
                raise ValueError(f"extras[{name!r}] must have shape (units, latent dimensions) "
                                 f"= {expected}, got {matrix.shape}")  # fmt: skip
            return np.asarray(matrix, dtype=np.float64)
    return None


def latent_map(result: ImportanceResult, top_n: int) -> tuple[dict[str, Any], bytes]:
    """Heat map of which latent dimensions the most important inputs drive.

    Parameters
    ----------
    result : ImportanceResult
        A latent-code result (``latent_importance`` or ``LatentPermutation``): its (F, L) matrix is
        ``extras["latent_shift"]`` (permutation) or ``extras["latent_map"]`` (gradient, mutual
        information); the latent dimensions are named by ``result.output_names`` ("z0", ...).
    top_n : int >= 1
        Rows wanted; at most 40 are shown.

    Returns
    -------
    heatmap : dict
        As :func:`output_map`, with ``kind`` "latent", ``column_axis`` "latent dimension",
        columns the (<= 60) dimensions the rows load on most, ``value_label`` the result's
        ``labels["value"]`` (e.g. "mean |Δ code|", "MI (nats)").
    values : bytes
        (len(rows), len(columns)) float32 little-endian, row-major, in those units.
    """
    result = _check_result(result)
    top_n = _check_int(top_n, "top_n", 1)
    head = {"kind": "latent", "value_label": result.labels["value"],
            "column_axis": "latent dimension"}  # fmt: skip
    matrix = _latent_matrix(result)
    if matrix is None:
        note = (f"{result.labels['title']} has no input x latent-dimension matrix; the latent "
                "methods (latent_importance) record one.")  # fmt: skip
        return {**head, "rows": [], "columns": [], "column_indices": [], "note": note}, b""
    return _heatmap(matrix, _means(result), result.output_names, top_n, head)


def latent_top(result: ImportanceResult, dimension: int, n: int = 20) -> dict[str, Any]:
    """The units that drive one latent dimension most.

    Parameters
    ----------
    result : ImportanceResult
        A latent-code result (see :func:`latent_map`).
    dimension : int
        Index of the latent dimension, ``0 <= dimension < L``.
    n : int >= 1, default 20
        Units listed (fewer when fewer have values).

    Returns
    -------
    dict
        ``{"dimension": int, "name": str (e.g. "z3"), "features": [[unit index, value], ...]}``,
        by decreasing value (ties by index), values in the units of ``labels["value"]``.
    """
    result = _check_result(result)
    n = _check_int(n, "n", 1)
    matrix = _latent_matrix(result)
    if matrix is None:
        raise ValueError(f"{result.labels['title']} has no latent dimensions; pass a result of "
                         "latent_importance or LatentPermutation")  # fmt: skip
    n_latent = matrix.shape[1]
    valid = isinstance(dimension, (int, np.integer)) and not isinstance(dimension, bool)
    if not valid or not 0 <= dimension < n_latent:
        raise ValueError(f"dimension must be an int in [0, {n_latent}), got {dimension!r}")
    column = matrix[:, int(dimension)]
    order = ranking_order(column)
    chosen = [int(i) for i in order[:n] if not np.isnan(column[i])]
    return {
        "dimension": int(dimension),
        "name": result.output_names[int(dimension)],
        "features": [[i, float(column[i])] for i in chosen],
    }
