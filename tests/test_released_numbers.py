"""Today's engine against numbers saved from the released version (tests/fixtures/released_*).

Bit-identical on the machine the fixture was made on wherever the same kernels run; on another
CPU (AVX2 vs AVX-512 or AMX) MKL and oneDNN pick other matrix-product kernels, whose sums round
differently, so "the same kernels" is checked to a few units in the last place of each
quantity's scale (5e-8 on float32 errors of size 1 on an AMX machine; 7e-17 for float64). Bit
for bit on one machine is what the determinism tests check. The one deliberate change: fused
oneDNN kernels are
now used only where they are faster, decided by the layers' shapes, so on small models (the
5-wide Tanh case below) the rest of the network runs through the modules instead, and the numbers
agree to 1e-5 relative (both are float32 evaluations of the same function; only the order of the
sums inside a matrix product differs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import aefi_widget as aefi

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from make_released import cases  # noqa: E402

RELEASED = np.load(FIXTURES / "released_v1.npz")


def _check(name: str, actual: np.ndarray, key: str, exact: bool, eps: float) -> None:
    """``actual`` equals the fixture's ``key`` of case ``name``; ``eps``: the model's float
    precision (importances are float64 sums of float32 errors for a float32 model)."""
    expected = RELEASED[f"{name}/{key}"]
    # Relative to the quantity's scale: a per-sample difference of two float32 errors of size
    # ~1 moves by one ulp of the errors (~1e-7), however small the difference itself.
    scale = max(1.0, float(RELEASED[f"{name}/baseline_error"]), float(np.abs(expected).max()))
    # Same kernels: a few ulps of the scale (0 on the fixture's machine); else 1e-5.
    tolerance = 16 * eps if exact else 1e-5
    np.testing.assert_allclose(
        actual, expected, rtol=tolerance, atol=tolerance * scale, err_msg=f"{name}: {key}"
    )


@pytest.mark.parametrize("name", list(cases()))
def test_numbers_equal_the_released_version(name):
    model, X, keywords = cases()[name]
    engine = aefi.PermutationImportance(model, X, **keywords)
    result = engine.run()
    # Same kernels (fused both times, or modules both times): bit for bit.
    exact = bool(result.settings["fused_kernels"]) == bool(RELEASED[f"{name}/fused"])
    eps = float(np.finfo(np.asarray(X).dtype).eps)
    _check(name, result.importances, "importances", exact, eps)
    if result.delta_sum is not None:
        _check(name, result.delta_sum, "delta_sum", exact, eps)
    _check(name, np.asarray(result.baseline_error), "baseline_error", exact, eps)
    drill = engine.drilldown(engine.feature_names[1], repeat=1, top_outputs=4)
    for field in ("error_increase", "shuffled_reconstruction", "output_shift", "profile_shuffled"):
        _check(name, np.asarray(getattr(drill, field)), f"drilldown/{field}", exact, eps)


@pytest.mark.parametrize("name", list(cases()))
def test_released_result_files_load_and_equal_themselves(name, tmp_path):
    path = FIXTURES / f"released_{name}.npz"
    loaded = aefi.ImportanceResult.load(path)
    assert loaded == aefi.ImportanceResult.load(path)
    assert loaded.method == "permutation" and loaded.labels["axis"] == "repeat"
    np.testing.assert_array_equal(loaded.importances, RELEASED[f"{name}/importances"])
    assert loaded.resume is None  # version 1 carries no identity: it cannot be continued
    again = aefi.ImportanceResult.load(loaded.save(tmp_path / "again.npz"))
    assert again == loaded
    # A released file's numbers equal today's run of the same case.
    model, X, keywords = cases()[name]
    today = aefi.PermutationImportance(model, X, **keywords).run()
    exact = today.settings["fused_kernels"] == loaded.settings["fused_kernels"]
    _check(name, today.importances, "importances", exact, float(np.finfo(np.asarray(X).dtype).eps))
