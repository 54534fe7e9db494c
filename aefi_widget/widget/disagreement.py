""" "Why do the methods disagree?" for one feature: a few sentences drawn from the results.

The methods answer different questions (docs/methods.md): permutation importance, how much the
reconstruction error grows when the feature's values are shuffled (information the model loses);
Shapley values, the feature's share of the loss explained when credit is split fairly among all
features; gradients, how sensitive the loss is to small changes of the feature around each
sample. Each sentence here is a fact of the data (ranks, the feature's correlated partners in X,
the signs of its per-sample gradients) followed by what that fact does to the methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from aefi_widget.result import ImportanceResult, ranking_order, summary_columns

__all__ = ["DOC_LINK", "PARTNER_THRESHOLD", "why_they_disagree"]

DOC_LINK = "docs/methods.md#why-methods-disagree"
# |Pearson r| at which another column counts as a partner that can stand in for the feature
# (the dashboard's default threshold for automatic groups).
PARTNER_THRESHOLD = 0.8
_SHOWN_PARTNERS = 4


def _rank(result: ImportanceResult, index: int) -> int | None:
    """1-based rank of unit ``index`` by mean (None without a value)."""
    mean = summary_columns(np.asarray(result.importances), result.race_values())["mean"]
    if np.isnan(mean[index]):
        return None
    order = ranking_order(mean)
    return int(np.flatnonzero(order == index)[0]) + 1


def _columns(X: Any) -> np.ndarray | None:
    """X as an (n, d) float64 array (None for a type this cannot read without copying it)."""
    values = getattr(X, "X", X)  # AnnData keeps its matrix in .X
    if hasattr(values, "toarray"):
        values = values.toarray()
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 else None


def partners(X: Any, names: tuple[str, ...], feature: str) -> list[tuple[str, float]]:
    """Columns whose |Pearson r| with ``feature`` reaches PARTNER_THRESHOLD, strongest first."""
    matrix = _columns(X)
    if matrix is None or matrix.shape[1] != len(names) or feature not in names:
        return []
    centred = matrix - matrix.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    j = names.index(feature)
    if scale[j] == 0:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        r = centred.T @ centred[:, j] / (scale * scale[j])
    r[j] = 0.0
    found = np.flatnonzero(np.abs(np.nan_to_num(r)) >= PARTNER_THRESHOLD)
    found = found[np.argsort(-np.abs(r[found]))]
    return [(names[i], float(r[i])) for i in found]


def _sign_spread(result: ImportanceResult, index: int) -> tuple[float, int] | None:
    """Share of samples with a positive attribution, and how many are non-zero."""
    per_sample = result.extras.get("per_sample")
    if per_sample is None:
        return None
    values = np.asarray(per_sample)[:, index]
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        return None
    return float(np.mean(values > 0)), int(values.size)


def why_they_disagree(
    feature: str,
    results: Mapping[str, ImportanceResult],
    titles: Mapping[str, str],
    X: Any = None,
) -> dict[str, Any]:
    """The ``why`` trait: sentences about ``feature`` across the compared ``results``.

    Parameters
    ----------
    feature : str
        A unit of every result in ``results``.
    results : mapping of method key -> ImportanceResult
        The compared runs (same units).
    titles : mapping of method key -> str
        What the page calls each method.
    X : array-like (n, d), optional
        The data, for the feature's correlated partners (skipped when its columns are not the
        results' units, e.g. for groups).

    Returns
    -------
    dict
        ``feature``, ``sentences`` (list of str) and ``doc`` (the docs page's anchor); empty
        sentences when fewer than two results have a value for the feature.
    """
    ranks = {}
    for key, result in results.items():
        if feature in result.feature_names:
            rank = _rank(result, result.feature_names.index(feature))
            if rank is not None:
                ranks[key] = (rank, result.n_features)
    if len(ranks) < 2:
        return {"feature": feature, "sentences": [], "doc": DOC_LINK}
    listed = ", ".join(f"#{rank:,} by {titles.get(key, key)}" for key, (rank, _n) in ranks.items())
    n_units = next(iter(ranks.values()))[1]
    sentences = [f"{feature} ranks {listed} (of {n_units:,})."]
    spread = max(rank for rank, _n in ranks.values()) - min(rank for rank, _n in ranks.values())
    if spread == 0:
        sentences.append("The methods agree on its rank.")
    sentences.append(
        "They answer different questions: permutation, how much the error grows when its values "
        "are shuffled (information lost); Shapley values, its fair share of the loss explained, "
        "credit split among features; gradients, how sensitive the loss is to small changes "
        "around each sample."
    )
    names = next(iter(results.values())).feature_names
    found = partners(X, names, feature) if X is not None else []
    if found:
        shown = ", ".join(f"{name} (r = {r:.2f})" for name, r in found[:_SHOWN_PARTNERS])
        more = f" and {len(found) - _SHOWN_PARTNERS} more" if len(found) > _SHOWN_PARTNERS else ""
        sentences.append(
            f"It is correlated with {len(found):,} other features at |r| ≥ {PARTNER_THRESHOLD}: "
            f"{shown}{more}. Shuffling it alone keeps what its partners carry, and Shapley values "
            "split the credit they share, so correlated features move between ranks; grouped "
            "units (Units: groups) ask about the block as a whole."
        )
    elif X is not None:
        sentences.append(
            f"No other feature is correlated with it at |r| ≥ {PARTNER_THRESHOLD}: "
            "shared credit does not explain the difference."
        )
    for key, result in results.items():
        sign = _sign_spread(result, result.feature_names.index(feature))
        if sign is None:
            continue
        positive, count = sign
        sentences.append(
            f"Under {titles.get(key, key)} its per-sample attribution is positive for "
            f"{positive:.0%} of {count:,} samples and negative for {1 - positive:.0%}: "
            + ("its importance (mean |attribution|) counts effects of both signs, which partly "
               "cancel in the loss." if 0.2 <= positive <= 0.8 else "mostly one sign.")
        )  # fmt: skip
    return {"feature": feature, "sentences": sentences, "doc": DOC_LINK}
