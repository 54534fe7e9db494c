"""Matrices that are not one dense array in memory, read block by block into X's private copy.

An AnnData opened with ``backed="r"`` gives ``adata.X`` as an ``h5py.Dataset`` (dense on disk)
or anndata's ``CSRDataset``/``CSCDataset`` (sparse on disk); an in-memory AnnData may hold a
``scipy.sparse`` matrix; a Dask array may live on a cluster. The engine needs X dense in the
model's dtype, so each is read here in blocks of about :data:`BLOCK_BYTES` straight into the
one private tensor: no dense copy in the source's dtype and no whole-matrix temporary is ever
made, so reading costs X's private copy plus one block. Values are the same bits as converting
the whole matrix at once (elementwise casts), so results are the same numbers as from the
in-memory array.

Neither h5py, anndata, scipy nor dask is imported here: each kind is recognised by its module
and its attributes, so the engine runs without them installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["BLOCK_BYTES", "BlockRead", "block_kind", "describe", "is_block_matrix", "read_blocks"]

# Dense bytes of one block in the source's dtype: large enough that an HDF5 or Dask read is
# efficient, small enough to be negligible next to X's private copy.
BLOCK_BYTES = 64 * 2**20


def block_kind(matrix: Any) -> str | None:
    """ "h5py", "anndata-csr", "anndata-csc", "scipy", "dask" or None for anything else."""
    module = type(matrix).__module__.split(".")[0]
    if module == "h5py" and hasattr(matrix, "shape") and hasattr(matrix, "dtype"):
        return "h5py"
    if module == "anndata" and hasattr(matrix, "format") and hasattr(matrix, "shape"):
        return "anndata-csc" if matrix.format == "csc" else "anndata-csr"
    if module == "scipy" and hasattr(matrix, "toarray") and hasattr(matrix, "tocsr"):
        return "scipy"
    if module == "dask" and hasattr(matrix, "compute") and hasattr(matrix, "chunks"):
        return "dask"
    return None


def is_block_matrix(matrix: Any) -> bool:
    """Whether ``matrix`` is one of the kinds :func:`read_blocks` reads (see the module)."""
    return block_kind(matrix) is not None


def describe(matrix: Any) -> str:
    """A few words naming the kind of ``matrix``, for messages."""
    return {
        "h5py": "a dense matrix in an HDF5 file (a backed AnnData)",
        "anndata-csr": "a sparse CSR matrix in an HDF5 file (a backed AnnData)",
        "anndata-csc": "a sparse CSC matrix in an HDF5 file (a backed AnnData)",
        "scipy": "a scipy sparse matrix",
        "dask": "a Dask array",
    }.get(block_kind(matrix) or "", type(matrix).__name__)


class BlockRead:
    """What :func:`read_blocks` found besides the values.

    Attributes
    ----------
    nonfinite : numpy.ndarray
        (d,) bool: columns with a NaN or inf in the source (before the cast to the model's dtype).
    blocks : int
        How many blocks were read (each of at most :data:`BLOCK_BYTES` dense source bytes).
    """

    def __init__(self, d: int) -> None:
        self.nonfinite = np.zeros(d, dtype=bool)
        self.blocks = 0


def _spans(length: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, length, step):
        yield start, min(length, start + step)


def _dask_spans(chunks: tuple[int, ...], step: int) -> Iterator[tuple[int, int]]:
    """Row spans that follow the Dask array's own chunk boundaries, several chunks per span up
    to ``step`` rows (a chunk larger than that is split), so no chunk is computed twice."""
    start = end = 0
    for size in chunks:
        if end > start and end - start + size > step:
            yield start, end
            start = end
        end += size
        while end - start > step:
            yield start, start + step
            start += step
    if end > start:
        yield start, end


def _dense(block: Any) -> np.ndarray:
    """A dense numpy array from whatever one block slice returned."""
    if hasattr(block, "compute"):
        block = block.compute()
    if hasattr(block, "toarray"):
        block = block.toarray()
    return np.asarray(block)


def read_blocks(
    matrix: Any, dtype: torch.dtype, device: torch.device, block_bytes: int | None = None
) -> tuple[torch.Tensor, BlockRead]:
    """Read the (n, d) ``matrix`` into a new C-contiguous tensor of ``dtype`` on ``device``.

    Parameters
    ----------
    matrix
        One of the kinds :func:`is_block_matrix` accepts, of a real numeric dtype.
    dtype, device
        The private copy's dtype and device (the model's).
    block_bytes
        Dense source bytes per block read (default :data:`BLOCK_BYTES`).

    Returns
    -------
    (torch.Tensor, BlockRead)
        The (n, d) values and what was found on the way (non-finite columns of the source).
    """
    kind = block_kind(matrix)
    if kind is None:
        raise TypeError(f"cannot read {type(matrix).__name__} in blocks")
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    n, d = (int(s) for s in matrix.shape)
    itemsize = int(np.dtype(matrix.dtype).itemsize)
    found = BlockRead(d)
    out = torch.empty((n, d), dtype=dtype, device=device)
    if kind == "anndata-csc":  # reading rows of CSC on disk reads every column: go by columns
        step = max(1, block_bytes // max(1, n * itemsize))
        for start, stop in _spans(d, step):
            _store(out[:, start:stop], _dense(matrix[:, start:stop]), found, slice(start, stop))
        return out, found
    if kind == "scipy":
        matrix = matrix.tocsr()  # row blocks of CSR are cheap; a CSC copy as CSR is its size
    step = max(1, block_bytes // max(1, d * itemsize))
    spans = _dask_spans(matrix.chunks[0], step) if kind == "dask" else _spans(n, step)
    for start, stop in spans:
        _store(out[start:stop], _dense(matrix[start:stop]), found, slice(None))
    return out, found


def _store(target: torch.Tensor, block: np.ndarray, found: BlockRead, columns: slice) -> None:
    """Cast ``block`` into ``target`` and note its non-finite columns."""
    if block.shape != tuple(target.shape):
        raise ValueError(
            f"a block read from the matrix has shape {block.shape}, expected {tuple(target.shape)}"
        )
    if block.dtype.kind == "f":
        found.nonfinite[columns] |= ~np.isfinite(block).all(axis=0)
    target.copy_(torch.from_numpy(np.ascontiguousarray(block)))
    found.blocks += 1
