"""Per-unit summary numbers (mean, std, 95 % t interval, share) and the ranking rule.

Shared by :class:`aefi_widget.result.ImportanceResult` (its ``summary``, ``top`` and ranks)
and the dashboard's payload, which encodes them on every update without pandas.
"""

from __future__ import annotations

import numpy as np

from aefi_widget._stats import t_quantile_975

__all__ = ["RACE_KEYS", "race_values", "ranking_order", "summary_columns"]

# A rows race's own per-unit numbers (engine/permutation_rows_race.py): its row-weighted mean,
# its simultaneous bounds and the rows done. Its per-shuffle values (``importances``) mix
# shuffles of very different row counts, so their plain mean and t interval are not its answer.
RACE_KEYS = ("race_mean", "race_lower", "race_upper", "race_rows")


def race_values(extras: dict[str, np.ndarray], n_units: int) -> dict[str, np.ndarray] | None:
    """A rows race's (F,) ``race_*`` extras when ``extras`` holds all of them, else None."""
    values = {key: extras.get(key) for key in RACE_KEYS}
    if any(v is None or np.shape(v) != (n_units,) for v in values.values()):
        return None
    return {key: np.asarray(v, dtype=np.float64) for key, v in values.items()}


def summary_columns(
    importances: np.ndarray, race: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """The numbers of :meth:`ImportanceResult.summary`, in feature order, without pandas (the
    dashboard encodes them on every update).

    Parameters
    ----------
    importances : (F, R) float64 array
        Estimates, NaN where not computed yet.
    race : dict of str -> (F,) array, optional
        A rows race's numbers (:func:`race_values`): then ``mean`` is its row-weighted mean,
        ``ci_low``/``ci_high`` its simultaneous bounds (at the run's confidence, over every
        unit and look: they hold whenever the run is looked at) and ``n_done`` its rows done;
        ``std`` stays the spread over shuffles.

    Returns
    -------
    dict of str -> (F,) array
        ``mean``, ``std`` (ddof=1), ``ci_low``, ``ci_high`` (95 % Student-t interval; equal to
        the mean with one estimate), ``normalized`` (share of the total positive mean, NaN
        without a value), float64; ``n_done`` int64.
    """
    n_done = np.sum(~np.isnan(importances), axis=1).astype(np.int64)
    total = np.nansum(importances, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_done > 0, total / np.maximum(n_done, 1), np.nan)
        squares = np.nansum((importances - mean[:, None]) ** 2, axis=1)
        std = np.where(n_done > 1, np.sqrt(squares / np.maximum(n_done - 1, 1)), np.nan)
        # One t quantile per distinct count (few), not per feature (up to 20,000).
        counts, inverse = np.unique(n_done, return_inverse=True)
        per_count = np.array([t_quantile_975(int(n) - 1) if n > 1 else 0.0 for n in counts])
        t_values = per_count[inverse.reshape(-1)]
        half_width = np.where(
            n_done > 1,
            t_values * std / np.sqrt(np.maximum(n_done, 1)),
            np.where(n_done == 1, 0.0, np.nan),
        )
    low, high = mean - half_width, mean + half_width
    if race is not None:
        mean, n_done = race["race_mean"], race["race_rows"].astype(np.int64)
        # Before a unit's first look its bounds are NaN (no interval): drawn as the mean alone.
        low = np.where(np.isnan(race["race_lower"]), mean, race["race_lower"])
        high = np.where(np.isnan(race["race_upper"]), mean, race["race_upper"])
    positive = np.where(np.isnan(mean), 0.0, np.clip(mean, 0.0, None))
    positive_total = positive.sum()
    normalized = positive / positive_total if positive_total > 0 else np.zeros_like(positive)
    return {
        "mean": mean,
        "std": std,
        "ci_low": low,
        "ci_high": high,
        "normalized": np.where(np.isnan(mean), np.nan, normalized),
        "n_done": n_done,
    }


def ranking_order(mean: np.ndarray) -> np.ndarray:
    """Indices sorting features by decreasing mean, ties by index, NaN (not started) last."""
    key = np.where(np.isnan(mean), -np.inf, mean)
    # lexsort's last key is primary: decreasing mean, then increasing index (stable).
    return np.lexsort((np.arange(len(mean)), -key))
