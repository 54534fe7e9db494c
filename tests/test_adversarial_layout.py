"""Adversarial sweep, round three (issue 21): X's memory layout never changes a number.

Fortran-ordered X, a transposed tensor or a CSC AnnData layer shifted permutation results by
~1e-8, Shapley by ~1e-17 and the latent lens by ~2e-9, and the data digest did not see it (a
checkpoint written with one layout and resumed with the other mixed both). The input layer now
makes every X C-contiguous; each layout below gives every method's numbers bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse
import torch

import aefi_widget as aefi

pytestmark = pytest.mark.timeout(120)

N, D = 48, 10


def _model() -> tuple[torch.nn.Module, torch.nn.Module]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.Tanh(),
                                      torch.nn.Linear(16, 3))  # fmt: skip
        model = torch.nn.Sequential(encoder, torch.nn.Tanh(), torch.nn.Linear(3, 16),
                                    torch.nn.Tanh(), torch.nn.Linear(16, D))  # fmt: skip
    return model, encoder


BASE = np.random.default_rng(3).normal(size=(N, D)) * np.linspace(0.5, 4, D)
BASE[np.abs(BASE) < 0.4] = 0.0  # zeros for the sparse layouts to drop


def _layouts() -> dict[str, object]:
    wide = np.zeros((N + 5, 2 * D + 3))
    wide[3 : 3 + N, 1 : 1 + 2 * D : 2] = BASE
    layouts = {
        "C": np.ascontiguousarray(BASE),
        "Fortran": np.asfortranarray(BASE),
        "transposed tensor": torch.from_numpy(np.ascontiguousarray(BASE.T)).T,
        "sliced": wide[3 : 3 + N, 1 : 1 + 2 * D : 2],
        "float32 Fortran": np.asfortranarray(BASE.astype(np.float32)).astype(np.float64),
    }
    anndata = pytest.importorskip("anndata")
    for name, kind in (("CSR", scipy.sparse.csr_matrix), ("CSC", scipy.sparse.csc_matrix)):
        layouts[f"AnnData {name}"] = anndata.AnnData(
            X=kind(BASE), var={"gene": [f"x{j}" for j in range(D)]}
        )
    return layouts


METHODS = {
    "permutation": lambda m, e, X: aefi.PermutationImportance(m, X, n_repeats=3, seed=1).run(),
    "shapley": lambda m, e, X: aefi.ShapleyImportance(m, X, n_permutations=6, seed=1).run(),
    "gradient": lambda m, e, X: aefi.gradient_importance(m, X),
    "integrated gradients": lambda m, e, X: aefi.gradient_importance(
        m, X, method="integrated_gradients", steps=8
    ),
    "latent permutation": lambda m, e, X: aefi.latent_importance(m, X, encoder=e, n_repeats=2),
    "latent gradient": lambda m, e, X: aefi.latent_importance(m, X, encoder=e, method="gradient"),
    "latent mutual information": lambda m, e, X: aefi.latent_importance(
        m, X, encoder=e, method="mutual_information"
    ),
}


def _numbers(result: aefi.ImportanceResult) -> dict[str, np.ndarray]:
    arrays = {"importances": result.importances, **result.extras}
    arrays["baseline_error"] = np.array([result.baseline_error])
    return arrays


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_layout_of_X_gives_the_same_numbers_bit_for_bit(method) -> None:
    model, encoder = _model()
    layouts = _layouts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's implicit index names
        results = {name: METHODS[method](model, encoder, X) for name, X in layouts.items()}
    reference = _numbers(results.pop("C"))
    for name, result in results.items():
        numbers = _numbers(result)
        assert numbers.keys() == reference.keys(), name
        for key, values in reference.items():
            np.testing.assert_array_equal(numbers[key], values, err_msg=f"{name}: {key}")
    assert aefi.correlated_groups(layouts["Fortran"], threshold=0.1) == aefi.correlated_groups(
        layouts["C"], threshold=0.1
    )
