"""AnnData as X: the matrix (``adata.X`` or a layer, in memory or backed), gene names and cell
labels, checked; the memory a dense copy would take, refused before it is made.

``anndata`` is never imported here: an object can only be an ``AnnData`` if the user's code
imported the package already, so it is looked up in ``sys.modules``. The engine therefore imports
and runs without anndata installed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pandas as pd

from aefi_widget.engine.row_blocks import describe, is_block_matrix
from aefi_widget.engine.shared_x import SharedX

__all__ = ["anndata_matrix", "check_dense_fits", "dense_bytes", "is_anndata", "row_labels"]

# A dense copy above this share of the machine's memory is refused: the engine holds it in the
# model's dtype, plus the model's own activations and whatever else the notebook holds.
_DENSE_SHARE_OF_MEMORY = 0.4


def is_anndata(X: Any) -> bool:
    """Whether ``X`` is an ``anndata.AnnData`` (or a view of one)."""
    module = sys.modules.get("anndata")
    kind = getattr(module, "AnnData", None)
    return kind is not None and isinstance(X, kind)


def dense_bytes(shape: Any, itemsize: int = 4) -> str:
    """Memory a dense array of ``shape`` takes at ``itemsize`` bytes a value, in readable units."""
    size = float(itemsize) * float(np.prod([float(s) for s in shape]))
    kind = f"float{8 * itemsize}"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit} in {kind}"
    return f"{size:.0f} bytes in {kind}"


def anndata_matrix(adata: Any, layer: str | None) -> tuple[Any, list[str], str]:
    """The (n_obs, n_vars) matrix of ``adata.X`` (or ``adata.layers[layer]``), the
    ``var_names`` as feature names, and where the matrix came from (for messages).

    Dense in-memory values come back as a numpy array; a sparse matrix, a Dask array and the
    HDF5 datasets of an AnnData opened with ``backed="r"`` come back as they are, for
    :mod:`aefi_widget.engine.row_blocks` to read in blocks into the engine's private copy.
    """
    if not is_anndata(adata):
        raise TypeError(
            f"layer={layer!r} is only for an anndata.AnnData X, got {type(adata).__name__}; "
            "drop layer= or pass the AnnData"
        )
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if layer is None:
        matrix = adata.X
        if matrix is None:
            raise ValueError(
                f"the AnnData has no X (adata.X is None); pass layer= (its layers: "
                f"{_layer_list(adata)})"
            )
    else:
        if not isinstance(layer, str):
            raise TypeError(f"layer must be the name of a layer (a str), got {layer!r}")
        if layer not in adata.layers:
            raise ValueError(
                f"the AnnData has no layer {layer!r}; its layers: {_layer_list(adata)} "
                "(or leave layer=None for adata.X)"
            )
        matrix = adata.layers[layer]
    names = [str(name) for name in adata.var_names]
    if isinstance(matrix, pd.DataFrame):
        return matrix.to_numpy(), names, where
    if is_block_matrix(matrix):
        return matrix, names, where
    return np.asarray(matrix), names, where


def check_dense_fits(matrix: Any, itemsize: int, where: str) -> None:
    """Refuse, before any copy, a matrix whose dense (n, d) copy at ``itemsize`` bytes a value
    would take more than :data:`_DENSE_SHARE_OF_MEMORY` of this machine's memory."""
    shape = tuple(int(s) for s in matrix.shape)
    needed = float(itemsize) * float(np.prod([float(s) for s in shape]))
    memory = machine_memory_bytes()
    if memory is None or needed <= _DENSE_SHARE_OF_MEMORY * memory:
        return
    sparse = "sparse " if "sparse" in describe(matrix) else ""
    raise MemoryError(
        f"{where} is a {sparse}{shape[0]:,} x {shape[1]:,} matrix ({describe(matrix)}); the "
        f"engine holds it dense ({dense_bytes(shape, itemsize)}), more than "
        f"{_DENSE_SHARE_OF_MEMORY:.0%} of this machine's {memory / 2**30:,.1f} GiB of memory; "
        "pass fewer genes (e.g. adata[:, adata.var.highly_variable]) or fewer cells "
        "(e.g. adata[:50_000]); importances on a few thousand cells rank genes well"
    )


def machine_memory_bytes() -> float | None:
    """Physical memory of this machine in bytes, or None where the OS does not say."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE")) * float(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


def _layer_list(adata: Any) -> str:
    layers = [str(name) for name in adata.layers]
    return ", ".join(repr(name) for name in layers) if layers else "none"


def row_labels(X: Any) -> list[int] | list[str] | None:
    """Labels of X's rows, JSON-able: a DataFrame's index (ints or strings) or an AnnData's
    ``obs_names``; None for arrays, tensors and the default 0..n-1 index."""
    if is_anndata(X):
        return [str(name) for name in X.obs_names]
    if isinstance(X, SharedX):
        return X.sample_names
    if not isinstance(X, pd.DataFrame):
        return None
    index = X.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    if pd.api.types.is_integer_dtype(index):
        return [int(v) for v in index]
    return [str(v) for v in index]
