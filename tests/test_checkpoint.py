"""Checkpoints: exact resume, more repeats, mismatches and broken files refused, faults survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import FailingOnCall

import aefi_widget as aefi
from aefi_widget.engine.probes import PROBE_CALLS

D = 12


def make_model(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D, 8), torch.nn.ReLU(), torch.nn.Linear(8, D))


@pytest.fixture
def data() -> torch.Tensor:
    return torch.randn(100, D, generator=torch.Generator().manual_seed(1))


def partial_run(model, X, path: Path, stop_after: int, **keywords) -> aefi.ImportanceResult:
    """Run until ``stop_after`` snapshots, then close the generator (as a cancel does)."""
    engine = aefi.PermutationImportance(model, X, checkpoint=path, checkpoint_every=0, **keywords)
    increments = engine.increments()
    snapshots = [snapshot for _, snapshot in zip(range(stop_after), increments, strict=False)]
    increments.close()
    return snapshots[-1]


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, data):
    model, path = make_model(), tmp_path / "run.npz"
    reference = aefi.permutation_importance(model, data, n_repeats=4, batch_size=64)
    partial = partial_run(model, data, path, stop_after=7, n_repeats=4, batch_size=64)
    assert not partial.complete and path.exists()
    resumed = aefi.permutation_importance(model, data, n_repeats=4, batch_size=64, checkpoint=path)
    np.testing.assert_array_equal(resumed.importances, reference.importances)
    np.testing.assert_array_equal(resumed.delta_sum, reference.delta_sum)


def test_resume_uses_the_checkpoint_plan_even_with_another_batch_size(tmp_path, data):
    model, path = make_model(), tmp_path / "run.npz"
    reference = aefi.permutation_importance(model, data, n_repeats=3, batch_size=48)
    partial_run(model, data, path, stop_after=5, n_repeats=3, batch_size=48)
    resumed = aefi.permutation_importance(model, data, n_repeats=3, batch_size=7, checkpoint=path)
    np.testing.assert_array_equal(resumed.importances, reference.importances)


def test_more_repeats_compute_only_the_new_rounds(tmp_path, data):
    model, path = make_model(), tmp_path / "run.npz"
    aefi.permutation_importance(model, data, n_repeats=10, checkpoint=path)
    engine = aefi.PermutationImportance(model, data, n_repeats=15, checkpoint=path)
    snapshots = list(engine.increments())
    fresh = aefi.permutation_importance(model, data, n_repeats=15)
    new_evaluations = snapshots[-1].evaluations_done - snapshots[0].evaluations_done
    first_chunk = snapshots[0].evaluations_done - 10 * engine.n_features * engine.n_samples
    assert new_evaluations + first_chunk == 5 * engine.n_features * engine.n_samples
    np.testing.assert_array_equal(snapshots[-1].importances, fresh.importances)


def test_finished_checkpoint_returns_without_work(tmp_path, data):
    model, path = make_model(), tmp_path / "run.npz"
    first = aefi.permutation_importance(model, data, n_repeats=2, checkpoint=path)
    engine = aefi.PermutationImportance(model, data, n_repeats=2, checkpoint=path)
    # No chunk is left: the finished result once (what a Job resumed from the file shows).
    (only,) = list(engine.increments())
    assert only.complete and only.evaluations_done == first.evaluations_done
    np.testing.assert_array_equal(only.importances, first.importances)
    np.testing.assert_array_equal(engine.run().importances, first.importances)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_seed": 5}, "model's parameters"),
        ({"scale_X": 2.0}, "data X"),
        ({"seed": 3}, "settings"),
        ({"metric": "mae"}, "settings"),
        ({"target": "permuted"}, "settings"),
        ({"groups": {"pair": ["x0", "x1"]}}, "settings"),
        ({"max_samples": 50}, "settings"),
    ],
)
def test_mismatched_checkpoint_is_refused(tmp_path, data, change, message):
    path = tmp_path / "run.npz"
    aefi.permutation_importance(make_model(), data, n_repeats=2, checkpoint=path)
    before = path.read_bytes()
    model = make_model(change.pop("model_seed", 0))
    X = data * change.pop("scale_X", 1.0)
    with pytest.raises(ValueError, match=message):
        aefi.permutation_importance(model, X, n_repeats=2, checkpoint=path, **change)
    assert path.read_bytes() == before, "a refused checkpoint must not be overwritten"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_broken_checkpoint_is_refused(tmp_path, data, damage):
    path = tmp_path / "run.npz"
    aefi.permutation_importance(make_model(), data, n_repeats=2, checkpoint=path)
    raw = path.read_bytes()
    path.write_bytes(
        {"truncate": raw[: len(raw) // 2], "garbage": b"x" * 999, "empty": b""}[damage]
    )
    with pytest.raises(ValueError, match="truncated or corrupt"):
        aefi.permutation_importance(make_model(), data, n_repeats=2, checkpoint=path)


def test_fault_keeps_finished_chunks_and_resume_completes(tmp_path, data):
    inner, path = make_model(), tmp_path / "run.npz"
    # The wrapper hides the Sequential, so both runs take the plain path.
    reference = aefi.permutation_importance(
        FailingOnCall(inner, fail_at=-1), data, n_repeats=3, batch_size=100
    )
    # Calls before the first chunk (checks, identity, baseline), counted; then one per chunk
    # (batch_size=100): fail in the third chunk.
    counting = FailingOnCall(inner, fail_at=-1)
    counted = aefi.PermutationImportance(counting, data, n_repeats=3, batch_size=100)
    next(iter(counted.increments(checkpoint=tmp_path / "count.npz")))
    failing = FailingOnCall(inner, fail_at=counting.calls - 1 + 3)
    engine = aefi.PermutationImportance(
        failing, data, n_repeats=3, batch_size=100, checkpoint=path, checkpoint_every=3600
    )
    with pytest.raises(RuntimeError, match="odd batch"):
        for _ in engine.increments():
            pass
    saved = aefi.ImportanceResult.load(path)
    assert saved.evaluations_done == 2 * 100
    failing.fail_at = -1  # "fix the cause"
    resumed = aefi.PermutationImportance(
        failing, data, n_repeats=3, batch_size=100, checkpoint=path
    ).run()
    np.testing.assert_array_equal(resumed.importances, reference.importances)


class OutOfMemoryAbove(torch.nn.Module):
    """Raises MemoryError for forward calls larger than ``limit`` rows, as an OOM would."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.largest = inner, limit, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise MemoryError(f"{x.shape[0]} rows")
        self.largest = max(self.largest, x.shape[0])
        return self.inner(x)


def test_out_of_memory_halves_the_call_with_the_same_numbers(data):
    inner = make_model()
    reference = aefi.permutation_importance(
        OutOfMemoryAbove(inner, limit=10**9), data, n_repeats=3, batch_size=400
    )
    limited = OutOfMemoryAbove(inner, limit=120)
    result = aefi.permutation_importance(limited, data, n_repeats=3, batch_size=400)
    np.testing.assert_array_equal(result.importances, reference.importances)
    assert limited.largest <= 120


class OutOfMemoryAfterProbe(torch.nn.Module):
    """Accepts the input checks' probe calls, then raises MemoryError on every call."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > PROBE_CALLS:
            raise MemoryError("no memory at all")
        return self.inner(x)


def test_out_of_memory_even_for_one_small_call_fails_clearly(data):
    with pytest.raises(MemoryError, match=r"out of memory even for \d+ samples"):
        aefi.permutation_importance(OutOfMemoryAfterProbe(make_model()), data, n_repeats=1)


KILLED_RUN = textwrap.dedent(
    """
    import sys, time, torch, aefi_widget as aefi
    torch.manual_seed(0)
    d = 20
    model = torch.nn.Sequential(torch.nn.Linear(d, 15), torch.nn.ReLU(), torch.nn.Linear(15, d))
    X = torch.randn(200, d, generator=torch.Generator().manual_seed(1))
    engine = aefi.PermutationImportance(model, X, n_repeats=20, batch_size=300,
                                        checkpoint=sys.argv[1], checkpoint_every=0)
    mode = sys.argv[2]
    for i, snapshot in enumerate(engine.increments()):
        if mode == "run" and i == 20:
            print("checkpointed", flush=True)
        if mode == "run" and i >= 20:
            time.sleep(0.05)  # slow enough that SIGKILL lands mid-run
    if mode == "resume":
        import numpy as np
        np.save(sys.argv[3], snapshot.importances)
    """
)


def test_killed_process_resumes_bit_for_bit(tmp_path):
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN)
    checkpoint = tmp_path / "run.npz"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runner = subprocess.Popen(
        [sys.executable, str(script), str(checkpoint), "run"], stdout=subprocess.PIPE, env=env
    )
    assert runner.stdout.readline().strip() == b"checkpointed"
    time.sleep(0.3)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    assert runner.returncode == -signal.SIGKILL
    killed_at = aefi.ImportanceResult.load(checkpoint)
    assert 0 < killed_at.evaluations_done < killed_at.evaluations_total
    out = tmp_path / "final.npy"
    subprocess.run(
        [sys.executable, str(script), str(checkpoint), "resume", str(out)],
        check=True,
        env=env,
        timeout=120,
    )
    uninterrupted = tmp_path / "fresh.npy"
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "other.npz"), "resume", str(uninterrupted)],
        check=True,
        env=env,
        timeout=120,
    )
    np.testing.assert_array_equal(np.load(out), np.load(uninterrupted))


@pytest.mark.parametrize("keywords", [{}, {"top_k": 3, "tolerance": 0.1}],
                         ids=["exact", "rows race"])  # fmt: skip
def test_a_job_resumed_from_a_finished_checkpoint_shows_its_result(data, tmp_path, keywords):
    path = tmp_path / "done.npz"
    model = make_model()
    first = aefi.Job(aefi.PermutationImportance(model, data, n_repeats=2, checkpoint=path,
                                                **keywords), backend="thread").start()  # fmt: skip
    assert first.wait(60) and first.status == "done" and path.exists()
    # Nothing is left to compute: the job shows the file's result, not an empty one.
    again = aefi.Job(aefi.PermutationImportance(model, data, n_repeats=2, checkpoint=path,
                                                **keywords), backend="thread").start()  # fmt: skip
    assert again.wait(60) and again.status == "done"
    assert again.snapshot().evaluations_done == first.snapshot().evaluations_done > 0
    np.testing.assert_array_equal(again.snapshot().importances, first.snapshot().importances)
