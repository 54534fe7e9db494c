"""device="cuda": the same numbers as the CPU within float32 tolerance; no CPU-only fast paths.

These run only where torch sees a CUDA GPU (skipped with a reason elsewhere, as on the 2-core CI
machines). The tolerance: GPU and CPU matrix products sum in different orders, and TF32 stays off
unless the user turns it on, so float32 results agree to ~1e-5 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here (these run on a GPU machine)"
)


@pytest.mark.parametrize("keywords", [{}, {"max_samples": 50, "groups": "auto"}])
def test_cuda_matches_cpu_float32(keywords):
    X = make_correlated_data(120, 40, seed=2)
    model = seed_like_autoencoder(40, seed=3)
    cpu = aefi.permutation_importance(model, X, n_repeats=3, **keywords)
    gpu = aefi.permutation_importance(model, X, n_repeats=3, device="cuda", **keywords)
    assert gpu.settings["device"].startswith("cuda") and not gpu.settings["fused_kernels"]
    np.testing.assert_allclose(gpu.importances, cpu.importances, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gpu.delta_sum, cpu.delta_sum, rtol=1e-4, atol=1e-6)
    # The user's model stays where it was.
    assert next(model.parameters()).device.type == "cpu"


def test_cuda_results_do_not_depend_on_batch_size():
    X = make_correlated_data(64, 20, seed=1)
    model = seed_like_autoencoder(20, seed=1)
    a = aefi.permutation_importance(model, X, n_repeats=2, device="cuda")
    b = aefi.permutation_importance(model, X, n_repeats=2, device="cuda", batch_size=37)
    np.testing.assert_allclose(a.importances, b.importances, rtol=1e-6, atol=1e-9)
