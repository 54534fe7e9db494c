"""An importance result written into an AnnData: one row per gene in ``adata.var``, the run's
settings in ``adata.uns``, the way scanpy's own tools store what they compute.

``anndata`` is imported only when a result is written, so the package works without it.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SUMMARY_COLUMNS", "write_to_anndata"]

# Columns of ImportanceResult.summary() written per gene, as f"{key}_{column}".
SUMMARY_COLUMNS = ("mean", "std", "ci_low", "ci_high", "normalized", "rank", "n_done")
_INTEGER_COLUMNS = ("rank", "n_done")
# Per-sample labels are already the AnnData's obs_names; kept out of uns.
_LEFT_OUT_SETTINGS = ("sample_index",)
_SHOWN_MISSING = 10


def write_to_anndata(result: Any, adata: Any, key: str = "aefi") -> None:
    """Write ``result``'s per-gene summary into ``adata.var`` and its settings into ``adata.uns``.

    Modifies ``adata`` in place and returns None, like scanpy's tools with ``copy=False``.

    Parameters
    ----------
    result : ImportanceResult
        Any method's result; its features (or its groups' members) must be in ``adata.var_names``.
    adata : anndata.AnnData
        Written in place. Genes the result does not cover (e.g. a run on the highly variable
        genes written into the full AnnData) get NaN and ``<NA>``.
    key : str, default "aefi"
        Prefix of the ``adata.var`` columns ``{key}_mean``, ``{key}_std``, ``{key}_ci_low``,
        ``{key}_ci_high``, ``{key}_normalized`` (float64), ``{key}_rank``, ``{key}_n_done``
        (nullable Int64), ``{key}_group`` (categorical: the gene's group, NaN when single), and
        the name of ``adata.uns[key]``. Writing again with the same key replaces them all.

    Notes
    -----
    A group (``groups=`` or ``groups="auto"``) is one unit with one estimate: each member gene
    gets the group's numbers and rank, and ``{key}_group`` names the group. ``adata.uns[key]``
    holds ``method``, ``labels`` (title, value and its units), ``settings`` (JSON-safe: lists
    that h5ad cannot store natively become JSON strings), ``groups`` (name -> members),
    ``baseline_error``, ``evaluations_done``, ``evaluations_total``, ``elapsed_s`` and
    ``columns`` (the var columns written).
    """
    _require_anndata()
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise TypeError(f"to_anndata needs an anndata.AnnData, got {type(adata).__name__}")
    if not isinstance(key, str) or not key or "/" in key:
        raise ValueError(f"key must be a non-empty string without '/', got {key!r}")
    genes = [str(name) for name in adata.var_names]
    unit_of_gene = _unit_of_each_gene(result)
    position = {gene: row for row, gene in enumerate(genes)}
    missing = [gene for gene in unit_of_gene if gene not in position]
    if missing:
        shown = ", ".join(repr(g) for g in missing[:_SHOWN_MISSING])
        raise ValueError(
            f"{len(missing)} of the result's {len(unit_of_gene)} features are not in "
            f"adata.var_names: {shown}{', ...' if len(missing) > _SHOWN_MISSING else ''}; write "
            "into the AnnData the result was computed on (or one holding all its genes)"
        )
    summary = result.summary(sort=False)
    units = [unit_of_gene.get(gene) for gene in genes]
    rows = [None if unit is None else summary.index.get_loc(unit) for unit in units]
    columns: dict[str, Any] = {}
    for name in SUMMARY_COLUMNS:
        values = summary[name].to_numpy(dtype=np.float64)
        picked = np.array([np.nan if r is None else values[r] for r in rows], dtype=np.float64)
        if name in _INTEGER_COLUMNS:  # nullable: genes without a number get <NA>, not a float
            columns[f"{key}_{name}"] = pd.array(
                [None if math.isnan(v) else int(v) for v in picked], dtype="Int64"
            )
        else:
            columns[f"{key}_{name}"] = picked
    group_of = {member: group for group, members in result.groups.items() for member in members}
    columns[f"{key}_group"] = pd.Categorical(
        [group_of.get(gene) for gene in genes], categories=sorted(result.groups)
    )
    for column, values in columns.items():
        adata.var[column] = values
    adata.uns[key] = _uns_entry(result, list(columns))


def _require_anndata() -> None:
    """ImportError with the install command when anndata is missing."""
    try:
        import anndata  # noqa: F401
    except ImportError:
        raise ImportError(
            "to_anndata needs the anndata package: pip install 'aefi_widget[anndata]'"
        ) from None


def _unit_of_each_gene(result: Any) -> dict[str, str]:
    """Input feature -> the unit (itself, or its group) that carries its numbers."""
    unit_of: dict[str, str] = {}
    for unit in result.feature_names:
        for member in result.groups.get(unit, (unit,)):
            unit_of[member] = unit
    return unit_of


def _uns_entry(result: Any, columns: list[str]) -> dict[str, Any]:
    settings = {
        str(name): json_safe(value)
        for name, value in result.settings.items()
        if name not in _LEFT_OUT_SETTINGS
    }
    return {
        "method": result.method,
        "labels": dict(result.labels),
        "settings": settings,
        "groups": {name: list(members) for name, members in result.groups.items()},
        "baseline_error": float(result.baseline_error),
        "evaluations_done": int(result.evaluations_done),
        "evaluations_total": int(result.evaluations_total),
        "elapsed_s": float(result.elapsed_s),
        "columns": columns,
    }


def json_safe(value: Any) -> Any:
    """``value`` in a form h5ad stores and reads back equal: numbers, strings, bools, None,
    dicts of those, and flat lists of one kind; other lists become a JSON string."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        items = [json_safe(v) for v in value]
        kinds = {_kind(v) for v in items}
        if len(kinds) == 1 and kinds <= {"bool", "number", "str"}:
            return items
        return json.dumps(items, default=str, allow_nan=True)
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    return "other"
