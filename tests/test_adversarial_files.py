"""Adversarial sweep, round three (issue 21), result files: a load reads only the extras the
result's method defines, each at the shape the result's own sizes imply, checked before any
of its bytes are read (a 1.05 MB file declaring a 2^27-element extra took 13 s and +2.2 GB);
a malformed known extra is refused at load, not by ``certified_top_k`` or ``per_sample`` later.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import aefi_widget as aefi
from aefi_widget.engine import gradients, latent_permutation, permutation_options, shapley_inputs
from aefi_widget.npz_io import Members
from aefi_widget.result_file import MAX_IMPORTANCES
from tests.test_adversarial import rewrite

pytestmark = pytest.mark.timeout(60)

F = 6
BIG = 2**20  # 8 MB of float64 zeros: read in full by the old code, never now


def _model_and_data() -> tuple[torch.nn.Module, torch.nn.Module, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = torch.nn.Sequential(torch.nn.Linear(F, 2), torch.nn.Tanh())
        model = torch.nn.Sequential(encoder, torch.nn.Linear(2, F))
    X = torch.randn(30, F, generator=torch.Generator().manual_seed(1))
    return model, encoder, X


def _results() -> dict[str, aefi.ImportanceResult]:
    model, encoder, X = _model_and_data()
    groups = {"g": ["x0", "x1"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "permutation": aefi.PermutationImportance(model, X, n_repeats=4, top_k=2).run(),
            "shapley": aefi.ShapleyImportance(model, X, n_permutations=4, groups=groups).run(),
            "gradient": aefi.gradient_importance(model, X, groups=groups),
            "latent": aefi.latent_importance(model, X, encoder=encoder),
            "latent-gradient": aefi.latent_importance(model, X, encoder=encoder, method="gradient"),
            "weights": aefi.weight_importance(model),
        }


RESULTS = _results()


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Names of the members every load in the test reads."""
    names: list[str] = []
    original = Members.array

    def spying(self, name, max_bytes):
        names.append(name)
        return original(self, name, max_bytes)

    monkeypatch.setattr(Members, "array", spying)
    return names


@pytest.mark.parametrize("key", sorted(RESULTS))
def test_every_methods_result_and_its_extras_round_trip(tmp_path, key) -> None:
    result = RESULTS[key]
    assert aefi.ImportanceResult.load(result.save(tmp_path / "r.npz")) == result


def _with_extra(tmp_path, key: str, name: str, values: np.ndarray):
    path = RESULTS[key].save(tmp_path / "r.npz")
    rewrite(
        path,
        change_header=lambda header: header["extras"].update({name: list(values.shape)}),
        change_arrays=lambda arrays: arrays.update({f"extra.{name}": values}),
    )  # resealed: the checksum matches, as a deliberate crafter would make it
    return path


@pytest.mark.parametrize(
    ("key", "name", "match"),
    [
        ("permutation", "junk", "not one a permutation result carries"),
        ("permutation", "settled", r"declares shape \(1048576,\), not \(6,\)"),
        ("gradient", "per_sample", r"not \(30, 5\)"),
        ("weights", "delta_sum", "those are: none"),
    ],
)
def test_undeclared_or_oversized_extras_are_refused_before_their_bytes_are_read(
    tmp_path, reads, key, name, match
) -> None:
    path = _with_extra(tmp_path, key, name, np.zeros(BIG))
    with pytest.raises(ValueError, match=match):
        aefi.ImportanceResult.load(path)
    assert f"extra.{name}" not in reads and "importances" not in reads


MALFORMED = {
    "settled of 3 codes for 6 features": ("permutation", "settled", np.zeros(3)),
    "settled code 7": ("permutation", "settled", np.full(F, 7.0)),
    "delta_sum of a column too few": ("permutation", "delta_sum", np.zeros((F, F - 1))),
    "se transposed": ("shapley", "se", np.zeros((1, 5))),
    "per_sample of (F, n)": ("gradient", "per_sample", np.zeros((5, 30))),
    "baseline_row of the units, not the columns": ("gradient", "baseline_row", np.zeros(5)),
    "latent_map of (d, F)": ("latent-gradient", "latent_map", np.zeros((2, F))),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_known_extra_is_refused_at_load(tmp_path, case) -> None:
    key, name, values = MALFORMED[case]
    with pytest.raises(ValueError, match=name):
        aefi.ImportanceResult.load(_with_extra(tmp_path, key, name, values))


def test_a_custom_methods_extras_are_bounded_by_the_results_sizes(tmp_path) -> None:
    names = tuple(f"f{i}" for i in range(4))
    result = aefi.ImportanceResult(
        feature_names=names, output_names=("a", "b"), importances=np.ones((4, 3)),
        baseline_error=1.0, settings={"method": "toy"},
        extras={"per_unit": np.arange(4.0), "grid": np.ones((3, 2))},
    )  # fmt: skip
    path = result.save(tmp_path / "toy.npz")
    assert aefi.ImportanceResult.load(path) == result
    rewrite(
        path,
        change_header=lambda header: header["extras"].update(grid=[3, BIG // 3]),
        change_arrays=lambda arrays: arrays.update({"extra.grid": np.zeros((3, BIG // 3))}),
    )
    with pytest.raises(ValueError, match="custom method"):
        aefi.ImportanceResult.load(path)


def test_importances_declaring_more_estimates_than_any_method_computes_are_refused_unread(
    tmp_path, reads
) -> None:
    path = RESULTS["permutation"].save(tmp_path / "many.npz")
    columns = MAX_IMPORTANCES // F + 1  # one column more than the engine allows F features
    rewrite(path, change_header=lambda header: header.update(importances_shape=[F, columns]))
    with pytest.raises(ValueError, match="more than any method computes"):
        aefi.ImportanceResult.load(path)
    assert "importances" not in reads


def test_the_load_bound_admits_every_result_the_engine_can_compute() -> None:
    for module in (permutation_options, shapley_inputs, latent_permutation):
        assert module.MAX_ESTIMATES <= MAX_IMPORTANCES, module.__name__
    assert gradients.MAX_ATTRIBUTIONS <= MAX_IMPORTANCES
