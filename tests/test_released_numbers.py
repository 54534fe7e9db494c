"""Today's engine against numbers saved from the released version (tests/fixtures/released_*).

Bit-identical wherever the same kernels run. The one deliberate change: fused oneDNN kernels are
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


def _check(name: str, actual: np.ndarray, key: str, exact: bool) -> None:
    expected = RELEASED[f"{name}/{key}"]
    if exact:
        np.testing.assert_array_equal(actual, expected, err_msg=f"{name}: {key}")
        return
    # 1e-5 relative to the quantity's scale: a per-sample difference of two float32 errors of
    # size ~1 moves by one ulp of the errors (~1e-7), however small the difference itself.
    scale = max(1.0, float(RELEASED[f"{name}/baseline_error"]), float(np.abs(expected).max()))
    np.testing.assert_allclose(
        actual, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{name}: {key}"
    )


@pytest.mark.parametrize("name", list(cases()))
def test_numbers_equal_the_released_version(name):
    model, X, keywords = cases()[name]
    engine = aefi.PermutationImportance(model, X, **keywords)
    result = engine.run()
    # Same kernels (fused both times, or modules both times): bit for bit.
    exact = bool(result.settings["fused_kernels"]) == bool(RELEASED[f"{name}/fused"])
    _check(name, result.importances, "importances", exact)
    if result.delta_sum is not None:
        _check(name, result.delta_sum, "delta_sum", exact)
    _check(name, np.asarray(result.baseline_error), "baseline_error", exact)
    drill = engine.drilldown(engine.feature_names[1], repeat=1, top_outputs=4)
    for field in ("error_increase", "shuffled_reconstruction", "output_shift", "profile_shuffled"):
        _check(name, np.asarray(getattr(drill, field)), f"drilldown/{field}", exact)


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
    # A released file's numbers equal today's run of the same case (same kernels: exactly).
    model, X, keywords = cases()[name]
    today = aefi.PermutationImportance(model, X, **keywords).run()
    if today.settings["fused_kernels"] == loaded.settings["fused_kernels"]:
        np.testing.assert_array_equal(today.importances, loaded.importances)
