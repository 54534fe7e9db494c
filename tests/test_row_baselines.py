"""A run that samples rows (``max_samples``) computes its baselines for those rows only.

Bit for bit what the whole baseline gives at those rows (every forward path, both float types,
rows at any alignment, any batch size), the baseline error still over all n rows, and memory
that does not grow by X's size for every per-row cache (measured in a child process).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from child_memory import run_child
from reference import EncoderDecoderAE, correlated_data, sequential_ae

import aefi_widget as aefi

N, D = 1030, 9  # n not a multiple of 16: sampled rows sit at every alignment


def _runs(model, X, **keywords):
    """(run computing row baselines only, run on the whole baseline computed first)."""
    sampled = aefi.PermutationImportance(model, X, **keywords)
    whole = aefi.PermutationImportance(model, X, **keywords)
    whole.session.baseline(whole.call_rows)
    return sampled, whole


CASES = {
    "rank1_float64_mae": (sequential_ae(D, hidden=7), np.float64, {"metric": "mae"}),
    "rank1_float32_per_output": (
        sequential_ae(D, hidden=7, dtype=torch.float32), np.float32, {"target": "permuted"}),
    "plain_float32": (EncoderDecoderAE(D, hidden=6).float(), np.float32,
                      {"_forward_path": "plain", "metric": "rmse_pct"}),
    "fused_float32_groups": (
        sequential_ae(D, hidden=7, dtype=torch.float32), np.float32,
        {"_forward_path": "fused", "groups": {"g": ["x1", "x4", "x7"]}}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("batch_size", [None, 48])
def test_sampled_rows_give_the_whole_baselines_numbers_bit_for_bit(name, batch_size):
    model, dtype, keywords = CASES[name]
    X = correlated_data(N, D, seed=5).astype(dtype)
    sampled, whole = _runs(model, X, n_repeats=3, max_samples=100, seed=4,
                           batch_size=batch_size, **keywords)  # fmt: skip
    a, b = sampled.run(), whole.run()
    assert sampled.session.cached_baseline() is None  # no (n, d) cache was built
    np.testing.assert_array_equal(a.importances, b.importances)
    if b.delta_sum is not None:
        np.testing.assert_array_equal(a.delta_sum, b.delta_sum)
    assert a.baseline_error == b.baseline_error
    assert a.baseline_error == float(np.float64(whole.session.baseline(16).errors.mean()))
    for repeat in (0, 2):
        da = sampled.drilldown(sampled.feature_names[2], repeat=repeat)
        db = whole.drilldown(whole.feature_names[2], repeat=repeat)
        for field in ("sample_index", "original", "reconstructed", "shuffled_reconstruction",
                      "error_increase", "output_shift"):  # fmt: skip
            np.testing.assert_array_equal(getattr(da, field), getattr(db, field), err_msg=field)
    assert sampled.session.cached_baseline() is None


def test_more_than_half_the_rows_use_the_whole_baseline():
    X = correlated_data(40, D, seed=5)
    sampled, whole = _runs(sequential_ae(D, hidden=7), X, n_repeats=2, max_samples=25)
    np.testing.assert_array_equal(sampled.run().importances, whole.run().importances)
    assert sampled.session.cached_baseline() is not None


def test_a_run_without_max_samples_is_unchanged_by_an_earlier_sampled_one():
    X = correlated_data(200, D, seed=5)
    model = sequential_ae(D, hidden=7)
    engine = aefi.PermutationImportance(model, X, n_repeats=2, max_samples=50)
    engine.run()
    full = aefi.PermutationImportance(model, X, n_repeats=2).run()
    assert full.baseline_error == engine.run().baseline_error


_CHILD = """
import torch
import aefi_widget
n, d, max_samples = 500_000, 100, 100
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.ReLU(), torch.nn.Linear(16, d))
X = torch.randn(n, d, generator=torch.Generator().manual_seed(1))
aefi_widget.permutation_importance(model, X[:64], n_repeats=1, max_samples=32)  # warm-up
extra, result = measure(
    lambda: aefi_widget.permutation_importance(model, X, n_repeats=2, max_samples=max_samples)
)
print(json.dumps({"extra": extra, "x": X.numel() * 4, "error": result.baseline_error}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_of_a_sampled_run_is_x_once_not_a_cache_per_row():
    # 200 MB of X. Before row baselines, the (n, d) reconstruction, X transposed, the checks'
    # temporaries and the digest's copy took 4-5x X more on top of the private copy of X; now
    # the copy and bounded temporaries (one forward call's activations, up to 128 MB; the
    # checks' 8 MB blocks): any other array of X's size would exceed the bound.
    row = run_child(_CHILD)
    assert np.isfinite(row["error"])
    assert row["extra"] < row["x"] + 160 * 2**20, row


def test_a_drilldown_inside_computing_and_a_run_starting_do_not_deadlock():
    # A drilldown (inside computing(), holding the model's lock) asks for its rows' baseline
    # while a run's thread starts computing the baseline error: both take the model's lock
    # before the session's, so neither waits on the other for ever (found by a stress loop).
    import threading
    import time

    from aefi_widget.engine.model_mode import computing

    X = correlated_data(400, D, seed=5)
    engine = aefi.PermutationImportance(sequential_ae(D, hidden=7), X, n_repeats=2,
                                        max_samples=50)  # fmt: skip
    session, rows = engine.session, np.arange(0, 100, 3)
    errors_thread = threading.Thread(target=session.baseline_error, args=(64, 50), daemon=True)
    done = threading.Event()

    def drilldown_like() -> None:
        with computing(session.model):
            errors_thread.start()
            # Before the fix the other thread took the session's lock here, then waited for
            # the model's, which this thread holds.
            deadline = time.monotonic() + 2.0
            while not session._lock.locked() and time.monotonic() < deadline:
                time.sleep(0.01)
            session.rows_baseline(rows, 64)
        done.set()

    holder = threading.Thread(target=drilldown_like, daemon=True)
    holder.start()
    holder.join(60)
    assert done.is_set(), "rows_baseline waited on the session's lock for 60 s"
    errors_thread.join(60)
    assert not errors_thread.is_alive()
    assert session.cached_error() == session.baseline_error(64, 50)
