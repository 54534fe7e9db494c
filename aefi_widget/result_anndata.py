"""An importance result written into an AnnData: one row per gene in ``adata.var``, the method's
matrices in ``adata.varm`` / ``adata.varp`` / ``adata.layers`` (scvi-tools' DRVI keeps per-gene x
per-latent scores in ``varm`` the same way), the run's settings in ``adata.uns``, the way scanpy's
own tools store what they compute. Nothing the user already has is replaced without
``overwrite=True``.

``anndata`` is imported only when a result is written, so the package works without it.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
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
# Gene x latent-dimension extras of the latent lenses (permutation, gradient/MI) -> adata.varm.
_LATENT_EXTRAS = ("latent_shift", "latent_map")
_SLOTS = ("varm", "varp", "layers")


def write_to_anndata(result: Any, adata: Any, key: str = "aefi", overwrite: bool = False) -> None:
    """Write ``result`` into ``adata`` in place: per-gene summary in ``adata.var``, matrices in
    ``adata.varm``, ``adata.varp`` and ``adata.layers``, settings in ``adata.uns``.

    Modifies ``adata`` in place and returns None, like scanpy's tools with ``copy=False``.

    Parameters
    ----------
    result : ImportanceResult
        Any method's result; its features (or its groups' members) must be in ``adata.var_names``.
    adata : anndata.AnnData
        Written in place. Genes the result does not cover (e.g. a run on the highly variable
        genes written into the full AnnData) get NaN and ``<NA>``.
    key : str, default "aefi"
        Prefix of everything written (see Notes) and the name of ``adata.uns[key]``.
    overwrite : bool, default False
        Whether to replace keys ``adata`` already has. False raises ``ValueError`` naming them,
        before anything is written. True replaces them, and removes what an earlier write with the
        same key listed in ``adata.uns[key]`` (so no stale matrix of another method stays).

    Notes
    -----
    Written, each only when the result has it:

    - ``adata.var``: ``{key}_mean``, ``{key}_std``, ``{key}_ci_low``, ``{key}_ci_high``,
      ``{key}_normalized`` (float64), ``{key}_rank``, ``{key}_n_done`` (nullable Int64),
      ``{key}_group`` (categorical: the gene's group, NaN when single).
    - ``adata.varm[f"{key}_latent_shift"]`` or ``[f"{key}_latent_map"]``: (n_vars, L) float64,
      the latent lens' gene x latent-dimension matrix.
    - ``adata.varp[f"{key}_delta_recon"]``: (n_vars, n_vars) float64, row g = mean
      ``|recon_permuted - recon|`` of every output gene when gene g is shuffled (permutation runs
      with ``per_output=True``); written only when every output is one of ``adata.var_names``
      (outputs are the genes), NaN in columns of genes that are not outputs.
    - ``adata.layers[f"{key}_per_sample"]``: (n_obs, n_vars) float64, the signed per-sample
      attributions (gradient methods), matched to ``obs_names`` by the result's sample labels
      (by position when it has none).

    A group (``groups=`` or ``groups="auto"``) is one unit with one estimate: each member gene
    gets the group's numbers, rank, matrix rows and per-sample values, and ``{key}_group`` names
    the group. ``adata.uns[key]`` holds ``method``, ``labels`` (title, value and its units),
    ``settings`` (JSON-safe: lists that h5ad cannot store natively become JSON strings),
    ``groups`` (name -> members), ``baseline_error``, ``evaluations_done``,
    ``evaluations_total``, ``elapsed_s``, ``columns`` (the var columns written) and ``matrices``
    (``"varm/<name>"``, ``"varp/<name>"``, ``"layers/<name>"`` written).
    """
    _require_anndata()
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise TypeError(f"to_anndata needs an anndata.AnnData, got {type(adata).__name__}")
    if not isinstance(key, str) or not key or "/" in key:
        raise ValueError(f"key must be a non-empty string without '/', got {key!r}")
    genes = [str(name) for name in adata.var_names]
    unit_of_gene = _unit_of_each_gene(result)
    _refuse_missing(list(unit_of_gene), set(genes), "features", "adata.var_names")
    unit_rows = _unit_row_of_each_gene(result, genes, unit_of_gene)
    columns = _var_columns(result, genes, unit_rows, key)
    matrices = _matrices(result, adata, unit_rows, key)
    _check_free(adata, key, list(columns), list(matrices), overwrite)
    if overwrite:
        _remove_earlier_write(adata, key)
    for column, values in columns.items():
        adata.var[column] = values
    for where, values in matrices.items():
        slot, name = where.split("/", 1)
        getattr(adata, slot)[name] = values
    adata.uns[key] = {**_uns_entry(result, list(columns)), "matrices": list(matrices)}


def _unit_row_of_each_gene(
    result: Any, genes: list[str], unit_of_gene: dict[str, str]
) -> np.ndarray:
    """(n_vars,) int64: the result's row carrying each gene's numbers, -1 for genes it lacks."""
    row_of_unit = {unit: row for row, unit in enumerate(result.feature_names)}
    return np.array(
        [row_of_unit[unit_of_gene[g]] if g in unit_of_gene else -1 for g in genes], dtype=np.int64
    )


def _per_gene(matrix: np.ndarray, unit_rows: np.ndarray, axis: int = 0) -> np.ndarray:
    """``matrix`` with its unit axis ``axis`` re-indexed by gene; NaN for genes without a unit."""
    taken = np.take(np.asarray(matrix, dtype=np.float64), np.maximum(unit_rows, 0), axis=axis)
    shape = [1] * taken.ndim
    shape[axis] = len(unit_rows)
    return np.where((unit_rows >= 0).reshape(shape), taken, np.nan)


def _var_columns(result: Any, genes: list[str], unit_rows: np.ndarray, key: str) -> dict[str, Any]:
    """The ``adata.var`` columns, by name."""
    summary = result.summary(sort=False)
    columns: dict[str, Any] = {}
    for name in SUMMARY_COLUMNS:
        picked = _per_gene(summary[name].to_numpy(dtype=np.float64), unit_rows)
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
    return columns


def _matrices(result: Any, adata: Any, unit_rows: np.ndarray, key: str) -> dict[str, np.ndarray]:
    """``"slot/name" -> array`` for the varm, varp and layers entries the result has."""
    matrices: dict[str, np.ndarray] = {}
    for name in _LATENT_EXTRAS:
        if name in result.extras:
            matrices[f"varm/{key}_{name}"] = _per_gene(result.extras[name], unit_rows)
    delta = result.delta_recon
    genes = [str(name) for name in adata.var_names]
    if delta is not None and set(result.output_names) <= set(genes):
        by_output = delta.reindex(columns=genes).to_numpy(dtype=np.float64)  # NaN: not an output
        matrices[f"varp/{key}_delta_recon"] = _per_gene(by_output, unit_rows)
    per_sample = result.per_sample
    if per_sample is not None:
        rows = _sample_rows(result, per_sample, [str(n) for n in adata.obs_names])
        by_gene = _per_gene(per_sample.to_numpy(dtype=np.float64), unit_rows, axis=1)
        layer = np.full((adata.n_obs, len(genes)), np.nan)
        layer[rows] = by_gene
        matrices[f"layers/{key}_per_sample"] = layer
    return matrices


def _sample_rows(result: Any, per_sample: pd.DataFrame, cells: list[str]) -> np.ndarray:
    """(n,) int64: the ``adata`` row of each of the result's samples."""
    if result.settings.get("sample_index") is None:
        if len(per_sample) != len(cells):
            raise ValueError(
                f"the result has {len(per_sample)} unnamed samples but adata has {len(cells)} "
                "cells; write into the AnnData the result was computed on"
            )
        return np.arange(len(cells))
    row_of = {cell: row for row, cell in enumerate(cells)}
    labels = [str(label) for label in per_sample.index]
    _refuse_missing(labels, set(row_of), "samples", "adata.obs_names")
    return np.array([row_of[label] for label in labels], dtype=np.int64)


def _refuse_missing(names: list[str], present: set[str], what: str, where: str) -> None:
    """ValueError listing the ``names`` (the result's features or samples) not in ``where``."""
    missing = [name for name in names if name not in present]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:_SHOWN_MISSING])
        raise ValueError(
            f"{len(missing)} of the result's {len(names)} {what} are not in {where}: {shown}"
            f"{', ...' if len(missing) > _SHOWN_MISSING else ''}; write into the AnnData the "
            f"result was computed on (or one holding all its {what})"
        )


def _check_free(
    adata: Any, key: str, columns: list[str], matrices: list[str], overwrite: bool
) -> None:
    """ValueError naming every key ``adata`` already holds, unless ``overwrite``."""
    if overwrite:
        return
    taken = [f"adata.var[{c!r}]" for c in columns if c in adata.var.columns]
    for where in matrices:
        slot, name = where.split("/", 1)
        if name in getattr(adata, slot):
            taken.append(f"adata.{slot}[{name!r}]")
    if key in adata.uns:
        taken.append(f"adata.uns[{key!r}]")
    if taken:
        raise ValueError(
            f"adata already holds {', '.join(taken)}; pass overwrite=True to replace them, or "
            "choose another key="
        )


def _remove_earlier_write(adata: Any, key: str) -> None:
    """Drop what an earlier write with ``key`` recorded in ``adata.uns[key]``."""
    earlier = adata.uns.get(key)
    if not isinstance(earlier, Mapping):
        return
    for column in np.asarray(earlier.get("columns", []), dtype=object).tolist():
        if column in adata.var.columns:
            del adata.var[column]
    for where in np.asarray(earlier.get("matrices", []), dtype=object).tolist():
        slot, _, name = str(where).partition("/")
        if slot in _SLOTS and name in getattr(adata, slot):
            del getattr(adata, slot)[name]


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
