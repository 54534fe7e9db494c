"""An importance result as a ``shap.Explanation``, so ``shap.plots.beeswarm`` and
``shap.plots.bar`` (and anything else that takes one) draw it.

``shap`` is imported only when a result is converted, so the package works without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["to_explanation"]


def to_explanation(result: Any, X: Any = None) -> Any:
    """``result`` as a ``shap.Explanation``.

    Parameters
    ----------
    result : ImportanceResult
        Any method's result, partial or complete.
    X : pandas.DataFrame, anndata.AnnData or array-like of shape (n, F), optional
        The samples the result was computed on, used as ``data`` (the colour of
        ``shap.plots.beeswarm``). Columns are matched to the result's features by name
        (DataFrame, AnnData); an array must have exactly the result's F columns, in order, and
        is refused when the result has groups. A group's column is NaN (a group has no single
        value). Ignored for global methods.

    Returns
    -------
    shap.Explanation
        Per-sample methods (results with ``per_sample``: gradient attributions):
        ``values`` (n, F) float64, equal bit for bit to ``result.per_sample`` (NaN rows for
        samples not computed yet); ``base_values`` (n,) the mean over samples of the error at
        the integrated-gradients baseline, ``baseline_error - mean(error_delta)``, so that on
        average over samples ``base_values + values.sum(1)`` is the mean error (per sample up to
        each sample's own error at the baseline, which the result does not keep); None for
        gradient x input, which has no reference point; ``data`` (n, F) from ``X`` or None;
        ``instance_names`` the sample labels.

        Global methods (permutation, Shapley, latent lenses, weights): one row.
        ``values`` (1, F) the mean importance per unit (``result.importances_mean``),
        ``base_values`` (1,) ``result.baseline_error``, ``lower_bounds`` / ``upper_bounds``
        (1, F) the 95 % interval of the mean (``summary()``'s ``ci_low`` / ``ci_high``) and
        ``error_std`` (1, F) its standard error ``std / sqrt(n_done)``; ``data`` None.
        ``shap.plots.bar`` then shows the means (as ``|mean|``: shap's bar plot takes absolute
        values) and ``beeswarm`` one dot per unit. The interval is carried, not drawn: shap's
        plots do not draw bounds.

    Notes
    -----
    The arrays are copies: changing the Explanation never changes the result.
    """
    shap = _require_shap()
    names = list(result.feature_names)
    per_sample = result.per_sample
    if per_sample is None:
        summary = result.summary(sort=False)
        n_done = summary["n_done"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            error_std = summary["std"].to_numpy(dtype=np.float64) / np.sqrt(n_done)
        return shap.Explanation(
            values=result.importances_mean.to_numpy(dtype=np.float64)[None, :].copy(),
            base_values=np.array([result.baseline_error]),
            feature_names=names,
            instance_names=["mean"],
            lower_bounds=summary["ci_low"].to_numpy(dtype=np.float64)[None, :].copy(),
            upper_bounds=summary["ci_high"].to_numpy(dtype=np.float64)[None, :].copy(),
            error_std=error_std[None, :],
        )
    values = np.array(result.extras["per_sample"], dtype=np.float64, copy=True)
    return shap.Explanation(
        values=values,
        base_values=_per_sample_base(result, len(values)),
        data=None if X is None else _data_columns(result, X, len(values)),
        feature_names=names,
        instance_names=[str(label) for label in per_sample.index],
    )


def _require_shap() -> Any:
    """The shap module; ImportError with the install command when it is missing."""
    try:
        import shap
    except ImportError:
        raise ImportError(
            "to_shap needs the shap package: pip install 'aefi_widget[shap]' (pin torch in the "
            "same command, e.g. pip install torch==2.13.0 shap)"
        ) from None
    return shap


def _per_sample_base(result: Any, n: int) -> np.ndarray | None:
    """(n,) mean error at the baseline (integrated gradients), None without a baseline."""
    error_delta = result.extras.get("error_delta")
    if error_delta is None or not np.isfinite(error_delta).any():
        return None
    return np.full(n, result.baseline_error - float(np.nanmean(error_delta)))


def _data_columns(result: Any, X: Any, n: int) -> np.ndarray:
    """(n, F) float64 feature values of each unit's column of ``X``; NaN for groups."""
    frame, named = _as_frame(X)
    if frame.shape[0] != n:
        raise ValueError(f"X has {frame.shape[0]} rows but the result has {n} samples")
    if named:
        missing = [f for f in result.feature_names if f not in result.groups and f not in frame]
        if missing:
            raise ValueError(
                f"{len(missing)} of the result's features are not columns of X: "
                f"{', '.join(repr(m) for m in missing[:10])}; pass the X the result was computed on"
            )
        columns = [
            np.full(n, np.nan) if f in result.groups else frame[f].to_numpy(dtype=np.float64)
            for f in result.feature_names
        ]
        return np.column_stack(columns) if columns else np.empty((n, 0))
    if result.groups or frame.shape[1] != result.n_features:
        raise ValueError(
            f"an array X must have the result's {result.n_features} columns in order (it has "
            f"{frame.shape[1]}) and the result no groups; pass a DataFrame or AnnData to match "
            "columns by name"
        )
    return frame.to_numpy(dtype=np.float64, copy=True)


def _as_frame(X: Any) -> tuple[pd.DataFrame, bool]:
    """``X`` as a DataFrame, and whether its columns are named (DataFrame, AnnData by gene)."""
    if isinstance(X, pd.DataFrame):
        return X, True
    if hasattr(X, "var_names") and hasattr(X, "to_df"):  # AnnData, without importing anndata
        return X.to_df(), True
    if hasattr(X, "detach"):  # torch tensor
        X = X.detach().cpu().numpy()
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"X must be 2-D (n, F), got shape {values.shape}")
    return pd.DataFrame(values), False
