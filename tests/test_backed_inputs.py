"""Matrices not held dense in memory: a backed AnnData (dense, CSR and CSC on disk), sparse
AnnData layers and Dask arrays give the numbers of the in-memory array bit for bit, for every
method; they are read in bounded blocks (a Dask array that records what it is asked for, and a
child process's peak memory); bad values and too-large matrices are refused before any work."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from child_memory import run_child
from reference import sequential_ae

import aefi_widget as aefi
from aefi_widget.engine import anndata_input, inputs, row_blocks

anndata = pytest.importorskip("anndata")
dask_array = pytest.importorskip("dask.array")

pytestmark = pytest.mark.timeout(300)

N, D = 203, 7  # n prime: blocks end mid-way through the rows
GENES = [f"gene-{j}" for j in range(D)]


def expression(dtype=np.float32) -> np.ndarray:
    """(N, D), about half zeros, correlated columns."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal((N, 2)) @ rng.standard_normal((2, D))
    values += 0.5 * rng.standard_normal((N, D))
    return np.where(values > 0, values, 0.0).astype(dtype)


def annotated(matrix) -> anndata.AnnData:
    obs = pd.DataFrame(index=[f"cell-{i}" for i in range(N)])
    return anndata.AnnData(matrix, obs=obs, var=pd.DataFrame(index=GENES))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of about 300 bytes: a read of N x D float32 takes many blocks."""
    monkeypatch.setattr(row_blocks, "BLOCK_BYTES", 300)


def _backed(tmp_path, matrix, name: str):
    path = tmp_path / f"{name}.h5ad"
    annotated(matrix).write_h5ad(path)
    return anndata.read_h5ad(path, backed="r")


SOURCES = {
    "backed dense": lambda X, tmp: _backed(tmp, X, "dense"),
    "backed csr": lambda X, tmp: _backed(tmp, scipy.sparse.csr_matrix(X), "csr"),
    "backed csc": lambda X, tmp: _backed(tmp, scipy.sparse.csc_matrix(X), "csc"),
    "in-memory csc": lambda X, tmp: annotated(scipy.sparse.csc_matrix(X)),
    "dask array": lambda X, tmp: dask_array.from_array(X, chunks=(37, D)),
    "AnnData of a dask array": lambda X, tmp: annotated(dask_array.from_array(X, chunks=(50, 4))),
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_permutation_from_each_source_equals_the_in_memory_array(
    source, dtype, tmp_path, small_blocks
):
    X = expression(dtype)
    model = sequential_ae(D, hidden=5, dtype=torch.float32)
    keywords = {"n_repeats": 2, "seed": 3, "max_samples": 150}
    reference = aefi.permutation_importance(model, X, **keywords)
    result = aefi.permutation_importance(model, SOURCES[source](X, tmp_path), **keywords)
    np.testing.assert_array_equal(result.importances, reference.importances)
    assert result.baseline_error == reference.baseline_error
    if source != "dask array":
        assert result.feature_names == tuple(GENES)


METHODS = {
    "shapley": lambda m, X: aefi.shapley_importance(m, X, background=16, n_permutations=3),
    "gradient": lambda m, X: aefi.gradient_importance(m, X, steps=4),
    "latent": lambda m, X: aefi.latent_importance(m, X, encoder=m[0], n_repeats=2),
    "groups": lambda m, X: aefi.permutation_importance(m, X, n_repeats=2, groups="auto"),
}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_from_a_backed_anndata_equals_the_in_memory_array(
    method, tmp_path, small_blocks
):
    X = expression()
    model = sequential_ae(D, hidden=5, dtype=torch.float32)
    reference = METHODS[method](model, X)
    result = METHODS[method](model, _backed(tmp_path, scipy.sparse.csr_matrix(X), "csr"))
    np.testing.assert_array_equal(result.importances, reference.importances)


class RecordingArray:
    """A numpy-like array that records the row spans Dask asks it for."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, 2
        self.asked: list[tuple[int, int]] = []

    def __getitem__(self, index):
        rows = index[0] if isinstance(index, tuple) else index
        start, stop, _ = rows.indices(self.shape[0])
        self.asked.append((start, stop))
        return self.values[index]


def test_a_dask_array_is_read_once_in_blocks_of_its_chunks(monkeypatch):
    monkeypatch.setattr(row_blocks, "BLOCK_BYTES", 40 * D * 4)  # two chunks a block
    X = expression()
    recording = RecordingArray(X)
    lazy = dask_array.from_array(recording, chunks=(20, D), asarray=False)
    model = sequential_ae(D, hidden=5, dtype=torch.float32)
    reference = aefi.permutation_importance(model, X, n_repeats=1)
    result = aefi.permutation_importance(model, lazy, n_repeats=1)
    np.testing.assert_array_equal(result.importances, reference.importances)
    # Every row asked for exactly once, chunk by chunk: never all N at once (Dask's own
    # empty probes for the chunks' type aside).
    asked = sorted((start, stop) for start, stop in recording.asked if stop > start)
    assert [stop - start for start, stop in asked] == [20] * 10 + [3]
    assert [start for start, _ in asked] == list(range(0, N, 20))


def test_blocks_follow_dask_chunks_and_split_only_chunks_larger_than_a_block():
    spans = list(row_blocks._dask_spans((3, 3, 10, 2, 2), step=5))
    assert spans == [(0, 3), (3, 6), (6, 11), (11, 16), (16, 20)]
    for start_stop in (list(row_blocks._dask_spans((4,) * 5, step=8)),):
        assert start_stop == [(0, 8), (8, 16), (16, 20)]


def test_a_nan_on_disk_is_refused_naming_the_gene(tmp_path, small_blocks):
    X = expression()
    X[150, 4] = np.nan
    backed = _backed(tmp_path, X, "nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 column\(s\): 'gene-4'"):
        aefi.permutation_importance(lambda x: x, backed)


def test_a_backed_matrix_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(anndata_input, "machine_memory_bytes", lambda: 10_000.0)
    read = []
    monkeypatch.setattr(inputs, "read_blocks", lambda *a, **k: read.append(a))
    backed = _backed(tmp_path, scipy.sparse.csr_matrix(expression()), "big")
    with pytest.raises(
        MemoryError, match=r"adata.X is a sparse 203 x 7 matrix \(a sparse CSR matrix in an HDF5"
        r" file.*5.6 KiB in float32.*fewer cells"
    ):  # fmt: skip
        aefi.permutation_importance(lambda x: x, backed)
    assert not read


def test_a_string_dataset_is_refused_as_not_numeric(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "s.h5", "w") as file:
        file["X"] = np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype="S1")
    with h5py.File(tmp_path / "s.h5", "r") as file, pytest.raises(TypeError, match="numeric"):
        aefi.permutation_importance(lambda x: x, file["X"])


def test_a_scipy_sparse_x_alone_is_still_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"toarray\(\)"):
        aefi.permutation_importance(lambda x: x, scipy.sparse.csr_matrix(expression()))


_CHILD = """
import sys, anndata, numpy as np, torch
import aefi_widget
n, d = 600_000, 100
X = np.random.default_rng(1).standard_normal((n, d), dtype=np.float32)
anndata.AnnData(X).write_h5ad(sys.argv[1])
del X
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.ReLU(), torch.nn.Linear(16, d))
backed = anndata.read_h5ad(sys.argv[1], backed="r")
aefi_widget.permutation_importance(model, backed[:64].to_memory(), n_repeats=1)  # warm-up
extra, result = measure(
    lambda: aefi_widget.permutation_importance(model, backed, n_repeats=1, max_samples=100)
)
print(json.dumps({"extra": extra, "x": n * d * 4, "error": result.baseline_error}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_backed_run_holds_x_once_and_no_dense_temporary(tmp_path):
    # 240 MB of X on disk. Loading it (to_memory) and then copying it, as a user had to before,
    # costs 2x X; read in 64 MB blocks into the private copy it is X plus bounded temporaries
    # (a block, one forward call's activations, the checks' 8 MB blocks): bound X + 160 MB.
    row = run_child(_CHILD, str(tmp_path / "big.h5ad"))
    assert np.isfinite(row["error"])
    assert row["extra"] < row["x"] + 160 * 2**20, row
