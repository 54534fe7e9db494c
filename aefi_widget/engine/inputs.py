"""Validation and conversion of everything a user passes to an engine, before any work starts.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, wrong value)
with a message that names the problem and says what to do. The README's "Input checks" table lists
them all; keep the two in step.
"""

from __future__ import annotations

import difflib
import math
import numbers
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from aefi_widget.engine.anndata_input import (
    anndata_matrix,
    check_dense_fits,
    dense_bytes,
    is_anndata,
)
from aefi_widget.engine.row_blocks import block_kind, read_blocks
from aefi_widget.engine.shared_x import SharedX

__all__ = [
    "as_feature_matrix",
    "check_int",
    "did_you_mean",
    "reconstruction_of",
    "resolve_max_samples",
]  # fmt: skip

_SHOWN_NAN_COLUMNS = 10
# Checks of X's values run over row blocks of about this size (their temporaries stay small).
_CHECK_CHUNK_BYTES = 8 * 2**20


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """A ' Did you mean ...?' hint with close matches of ``name`` (empty when none)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``, else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value}")
    return value


def as_feature_matrix(
    X: Any,
    feature_names: Sequence[str] | None,
    dtype: torch.dtype,
    device: torch.device,
    layer: str | None = None,
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Validate ``X`` and return a private (n, d) copy in the model's dtype and its column names.

    The copy means the user's array is never written and may change while a job runs in the
    background without changing the results. An ``anndata.AnnData`` gives ``adata.X`` (or
    ``adata.layers[layer]``), densified when sparse, with ``var_names`` as column names.
    """
    if isinstance(X, SharedX):  # another engine's private copy: checked already, held once
        names = _feature_names(list(X.names), feature_names, X.shape[1])
        if X.tensor.dtype == dtype and X.tensor.device == device:
            return X.tensor, names
        return as_feature_matrix(X.tensor, names, dtype, device)
    names_from_frame: list[str] | None = None
    where = "X"
    if layer is not None or is_anndata(X):
        X, names_from_frame, where = anndata_matrix(X, layer)
    # Sparse, on-disk or lazy matrices are read in blocks (scipy sparse only from an AnnData:
    # passed alone it is refused below with a hint, as a torch sparse tensor is).
    if block_kind(X) not in (None, "scipy") or (where != "X" and block_kind(X) == "scipy"):
        return _from_blocks(X, where, names_from_frame, feature_names, dtype, device)
    if isinstance(X, pd.DataFrame):
        non_numeric = [
            str(c)
            for c, t in X.dtypes.items()
            if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))
            or pd.api.types.is_complex_dtype(t)
        ]
        if non_numeric:
            shown = ", ".join(repr(c) for c in non_numeric[:_SHOWN_NAN_COLUMNS])
            raise TypeError(
                f"X has non-numeric columns ({shown}{', ...' if len(non_numeric) > 10 else ''}); "
                "drop them or encode them as numbers before computing importances"
            )
        names_from_frame = [str(c) for c in X.columns]
        array = X.to_numpy(dtype=np.float64, na_value=np.nan) if X.shape[1] else X.to_numpy()
    elif isinstance(X, torch.Tensor):
        _check_tensor_storage(X)
        array = X.detach()
    elif isinstance(X, np.ndarray):
        array = X
    else:
        raise TypeError(
            f"X must be a torch.Tensor, numpy.ndarray or pandas.DataFrame (or an AnnData), got "
            f"{type(X).__module__}.{type(X).__name__}; {_conversion_hint(X)}"
        )

    _check_shape(tuple(array.shape))
    _check_numeric_dtype(array)

    tensor = _shared_tensor(array) if isinstance(array, np.ndarray) else array
    nonfinite = _nonfinite_columns(tensor)
    if nonfinite is not None:
        _refuse_nonfinite(nonfinite.cpu().numpy(), names_from_frame, feature_names)
    # C-contiguous whatever the layout given (Fortran, transposed, sliced, a CSC layer):
    # strided copies keep their strides, and kernels sum in stride order, so another layout
    # gave other rounding (1e-17 to 1e-8), unseen by the data digest.
    private = tensor.to(
        device=device, dtype=dtype, copy=True, memory_format=torch.contiguous_format
    )
    _check_private(private)
    return private, _feature_names(names_from_frame, feature_names, private.shape[1])


def _from_blocks(
    matrix: Any,
    where: str,
    names_from_frame: list[str] | None,
    feature_names: Sequence[str] | None,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """:func:`as_feature_matrix` for a sparse, on-disk or Dask matrix: the same checks and the
    same values, read block by block into the private copy (no full dense temporary)."""
    _check_shape(tuple(int(s) for s in matrix.shape))
    _check_numeric_dtype(np.empty(0, dtype=matrix.dtype))
    check_dense_fits(matrix, torch.empty(0, dtype=dtype).element_size(), where)
    private, found = read_blocks(matrix, dtype, device)
    if found.nonfinite.any():
        _refuse_nonfinite(found.nonfinite, names_from_frame, feature_names)
    _check_private(private)
    return private, _feature_names(names_from_frame, feature_names, private.shape[1])


def _check_shape(shape: tuple[int, ...]) -> None:
    if len(shape) != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features), got shape {shape}; "
            "reshape it, e.g. X.reshape(len(X), -1) or X[None, :] for a single sample"
        )
    n, d = shape
    if n < 2:
        raise ValueError(f"X needs at least 2 samples (rows) to permute, got {n}")
    if d < 1:
        raise ValueError("X has no feature columns")


def _refuse_nonfinite(
    nonfinite: np.ndarray, names_from_frame: list[str] | None, given: Sequence[str] | None
) -> None:
    """Raise the ValueError naming the (d,) ``nonfinite`` mask's columns."""
    d = len(nonfinite)
    bad = np.flatnonzero(nonfinite).tolist()
    names = names_from_frame or list(given or [f"x{j}" for j in range(d)])
    shown = ", ".join(repr(str(names[j])) if j < len(names) else str(j) for j in bad[:10])
    raise ValueError(
        f"X contains NaN or infinite values in {len(bad)} column(s): {shown}"
        f"{', ...' if len(bad) > 10 else ''}; impute or drop them first"
    )


def _check_private(private: torch.Tensor) -> None:
    """Checks of the private copy in the model's dtype: no overflow in the cast, squares fit."""
    if _nonfinite_columns(private) is not None:
        raise ValueError(
            f"X has values too large for the model's dtype {private.dtype}; rescale X or use a "
            "wider dtype"
        )
    _check_squares_fit(private)


def _row_chunks(X: torch.Tensor) -> Iterator[torch.Tensor]:
    """Views of consecutive row blocks of the (n, d) ``X`` of about ``_CHECK_CHUNK_BYTES`` each:
    a check over all of X then allocates one block's temporaries, not X's size again."""
    rows = max(1, _CHECK_CHUNK_BYTES // max(1, X.shape[1] * X.element_size()))
    yield from torch.split(X, rows)


def _nonfinite_columns(X: torch.Tensor) -> torch.Tensor | None:
    """(d,) bool: the columns of ``X`` with a NaN or inf, or None when every value is finite
    (and for integer or bool X, which cannot hold one)."""
    if not X.is_floating_point():
        return None
    bad = torch.zeros(X.shape[1], dtype=torch.bool, device=X.device)
    for chunk in _row_chunks(X):
        bad |= ~torch.isfinite(chunk).all(dim=0)
    return bad if bool(bad.any()) else None


def _check_tensor_storage(X: torch.Tensor) -> None:
    """Refuse tensors without plain values: sparse layouts (most ops the engine needs do not
    exist for them) and meta tensors (no values at all)."""
    if X.layout != torch.strided:
        layout = str(X.layout).replace("torch.", "")
        raise TypeError(
            f"X is a torch sparse tensor ({layout}); pass a dense one: X.to_dense() "
            f"(needs {dense_bytes(X.shape)})"
        )
    if X.is_meta:
        raise ValueError(
            "X is on the meta device: it has a shape but no values. Pass the real data"
        )


def _conversion_hint(X: Any) -> str:
    """How to turn a container we do not take into one we do."""
    kind = type(X)
    module = kind.__module__.split(".")[0]
    if module == "anndata":  # e.g. adata.raw, which is not an AnnData
        return "pass an AnnData (adata.raw.to_adata() for adata.raw) or a DataFrame: adata.to_df()"
    if module == "scipy" and hasattr(X, "toarray"):
        shape = getattr(X, "shape", None)
        size = f" (needs {dense_bytes(shape)})" if shape is not None else ""
        return f"X is a scipy sparse matrix: pass X.toarray(){size}"
    if module == "polars":
        return "convert it with X.to_pandas() (keeps the column names) or X.to_numpy()"
    if isinstance(X, pd.Series):
        return "X is one column: pass X.to_frame() (one feature) or a DataFrame of all features"
    if hasattr(X, "toarray"):
        return "convert it with X.toarray()"
    return "convert it with numpy.asarray(X) first"


def _check_squares_fit(X: torch.Tensor) -> None:
    """Refuse values whose squares overflow X's dtype: every squared-error metric would be inf.

    E.g. uint64 ids near 2**64 cast to float32 are finite, but their squares are not.
    """
    if not X.is_floating_point() or X.numel() == 0:
        return
    largest = max(float(chunk.abs().max()) for chunk in _row_chunks(X))
    limit = math.sqrt(torch.finfo(X.dtype).max) / 4
    if largest > limit:
        raise ValueError(
            f"X has values up to {largest:.3g}, too large for the model's dtype "
            f"{str(X.dtype).replace('torch.', '')}: squared reconstruction errors would overflow "
            f"(the limit is about {limit:.3g}). Rescale X (e.g. standardize each column), drop "
            "id-like columns, or use a model in a wider dtype (model.double())"
        )


def _shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory, read here and copied before any use.

    torch warns that a read-only array gives a tensor one could write through; we never write
    to it, so the warning would only alarm the user who passed a read-only (e.g. memory-mapped)
    array.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(array)


def _check_numeric_dtype(array: np.ndarray | torch.Tensor) -> None:
    if isinstance(array, torch.Tensor):
        if array.is_complex():
            raise TypeError("X is complex; pass real-valued features")
        return
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError("X is complex; pass real-valued features")
    if kind not in "biuf":
        raise TypeError(
            f"X has dtype {array.dtype}, which is not numeric; convert it with X.astype(float)"
        )


def _feature_names(
    from_frame: list[str] | None, given: Sequence[str] | None, d: int
) -> tuple[str, ...]:
    if from_frame is not None:
        if given is not None and [str(g) for g in given] != from_frame:
            raise ValueError(
                "feature_names disagree with the DataFrame's columns (or the AnnData's "
                "var_names); pass one or the other"
            )
        names = from_frame
    elif given is not None:
        if isinstance(given, str) or not isinstance(given, Sequence | np.ndarray | pd.Index):
            raise TypeError("feature_names must be a sequence of strings, one per column of X")
        names = [str(g) for g in given]
        if len(names) != d:
            raise ValueError(f"feature_names has {len(names)} names but X has {d} columns")
    else:
        names = [f"x{j}" for j in range(d)]
    duplicated = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) < d else []
    if duplicated:
        shown = ", ".join(repr(n) for n in duplicated[:10])
        raise ValueError(f"feature names must be unique; duplicated: {shown}")
    return tuple(names)


def resolve_max_samples(max_samples: int | float | None, n: int) -> int:
    """Samples evaluated per repeat: all ``n``, an int in [2, n], or a fraction in (0, 1]."""
    if max_samples is None:
        return n
    if isinstance(max_samples, bool):
        raise TypeError("max_samples must be an int, a float fraction or None, not a bool")
    if isinstance(max_samples, numbers.Integral):
        m = int(max_samples)
        if not 2 <= m <= n:
            raise ValueError(f"max_samples={m} is out of range: use an int in [2, {n}]")
        return m
    if isinstance(max_samples, numbers.Real):
        fraction = float(max_samples)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"max_samples={fraction} as a fraction must be in (0, 1]")
        m = max(1, round(fraction * n))
        if m < 2:
            raise ValueError(f"max_samples={fraction} keeps {m} of {n} samples; at least 2 needed")
        return m
    raise TypeError(f"max_samples must be an int, a float fraction or None, got {max_samples!r}")


def reconstruction_of(output: Any) -> torch.Tensor:
    """The reconstruction in a model's output: the tensor itself, or a tuple's first element."""
    if isinstance(output, tuple | list):
        if not output:
            raise ValueError("the model returned an empty tuple; it must return a reconstruction")
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"the model must return a tensor (or a tuple whose first element is the "
            f"reconstruction), got {type(output).__name__}"
        )
    return output
