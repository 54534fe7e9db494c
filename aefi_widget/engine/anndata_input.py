"""AnnData as X: the matrix (``adata.X`` or a layer), gene names and cell labels, checked.

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

__all__ = ["anndata_matrix", "dense_bytes", "is_anndata", "row_labels"]

# A dense copy of a sparse layer above this share of the machine's memory is refused: the engine
# holds it and a second copy in the model's dtype, plus the model's own activations.
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


def anndata_matrix(adata: Any, layer: str | None) -> tuple[np.ndarray, list[str]]:
    """The (n_obs, n_vars) values of ``adata.X`` (or ``adata.layers[layer]``), dense, and the
    ``var_names`` as feature names.

    A sparse matrix is densified (the engine shuffles and reconstructs dense rows); one too large
    for this machine's memory is refused with ``MemoryError`` before any copy is made.
    """
    if not is_anndata(adata):
        raise TypeError(
            f"layer={layer!r} is only for an anndata.AnnData X, got {type(adata).__name__}; "
            "drop layer= or pass the AnnData"
        )
    if adata.isbacked:
        raise ValueError(
            "the AnnData is backed by a file (opened with backed='r'); load it into memory "
            "first: adata = adata.to_memory() (or pass a subset: adata[:5000].to_memory())"
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
        return matrix.to_numpy(), names
    if hasattr(matrix, "toarray"):  # scipy.sparse matrices and arrays
        return _densified(matrix, where), names
    if hasattr(matrix, "compute") and not isinstance(matrix, np.ndarray):
        raise TypeError(
            f"{where} is a lazy (Dask) array; compute it first: {where} = {where}.compute()"
        )
    return np.asarray(matrix), names


def _densified(matrix: Any, where: str) -> np.ndarray:
    """A dense copy of a sparse matrix, refused when it would not fit memory comfortably."""
    shape = matrix.shape
    itemsize = int(np.dtype(matrix.dtype).itemsize)
    needed = float(itemsize) * float(np.prod([float(s) for s in shape]))
    memory = machine_memory_bytes()
    hint = (
        f"{where} is a sparse {shape[0]:,} x {shape[1]:,} matrix; the engine needs it dense "
        f"({dense_bytes(shape, itemsize)})"
    )
    fix = (
        "pass fewer genes (e.g. adata[:, adata.var.highly_variable]) or fewer cells "
        "(e.g. adata[:5000]); importances on a few thousand cells rank genes well"
    )
    if memory is not None and needed > _DENSE_SHARE_OF_MEMORY * memory:
        raise MemoryError(
            f"{hint}, more than {_DENSE_SHARE_OF_MEMORY:.0%} of this machine's "
            f"{memory / 2**30:,.1f} GiB of memory; {fix}"
        )
    try:
        return np.asarray(matrix.toarray())
    except MemoryError:
        raise MemoryError(f"{hint}, and that did not fit in memory; {fix}") from None


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
    if not isinstance(X, pd.DataFrame):
        return None
    index = X.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    if pd.api.types.is_integer_dtype(index):
        return [int(v) for v in index]
    return [str(v) for v in index]
