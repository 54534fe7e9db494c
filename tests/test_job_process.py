"""The process backend of Job: same bits as a thread and headless, pause, checkpoint, cancel at
once, faults that leave the kernel alive and the partial result exact, no orphaned process.

A worker whose job ended cleanly is reused by the next job (one spawn, ~1-2 s of torch import,
serves most of these tests); the fault tests kill theirs.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from reference import correlated_data, sequential_ae
from worker_models import FaultInWorker

import aefi_widget as aefi
from aefi_widget.engine.checkpoint import load_checkpoint
from aefi_widget.job import Job
from aefi_widget.widget.lineup import Lineup
from aefi_widget.widget.methods import METHOD_KEYS
from aefi_widget.worker_process import WorkerDied

pytestmark = pytest.mark.timeout(180)

D, N = 6, 48
ROOT = Path(__file__).resolve().parents[1]


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def assert_same_bits(a: aefi.ImportanceResult, b: aefi.ImportanceResult) -> None:
    assert a == b  # names, settings, labels, every array bit for bit (NaN equal to NaN)
    assert a.resume == b.resume
    assert a.evaluations_done == b.evaluations_done


def _many_chunks_engine(model, **keywords) -> aefi.PermutationImportance:
    """~18 chunks of 16 rows: a fault or a pause lands in the middle of the run."""
    return aefi.PermutationImportance(
        model, correlated_data(N, D), n_repeats=6, batch_size=16, **keywords
    )


def _paused_once(job: Job) -> list[aefi.ImportanceResult]:
    """Pause ``job`` at its first partial snapshot, check nothing moves, resume; the snapshots."""
    seen: list[aefi.ImportanceResult] = []
    parked = threading.Event()

    def pause_once(j: Job) -> None:
        snapshot = j.snapshot()
        if snapshot.evaluations_done and (not seen or seen[-1] is not snapshot):
            seen.append(snapshot)
            if len(seen) == 1 and snapshot.evaluations_done < snapshot.evaluations_total:
                j.pause()
        if j.status == "paused":
            parked.set()

    job.subscribe(pause_once)
    job.start()
    if wait_until(lambda: parked.is_set() or job.status == "done"):
        frozen = job.snapshot()
        time.sleep(0.2)
        assert job.snapshot() is frozen  # parked: the job shows nothing new while paused
        job.resume()
    return seen


@pytest.mark.parametrize("groups", [None, "auto"])
def test_every_method_gives_the_same_bits_in_a_worker_on_a_thread_and_headless(tmp_path, groups):
    """Each method in one reused worker (method switches), paused and resumed, continued from a
    mid-run snapshot and checkpointed: every result bit for bit the headless one."""
    lineup = Lineup(sequential_ae(D, dtype=torch.float32), correlated_data(N, D), "permutation",
                    {"n_repeats": 2}, {"shapley": {"n_permutations": 3},
                                       "gradient": {"batch_size": 16}}, groups)  # fmt: skip
    setting = "auto:0.8" if groups else "none"
    pids, continued = set(), []
    for key in METHOD_KEYS:
        if lineup.notes.get(key) or lineup.setting_for(key, setting) != setting:
            continue  # with groups: only the methods that attribute groups
        engine = lineup.build(key, lineup.setting_for(key, setting))
        headless = engine.run() if hasattr(engine, "run") else list(engine.increments())[-1]
        assert_same_bits(Job(engine, backend="thread").start().result(60), headless)
        checkpoint = "checkpoint" in inspect.signature(engine.increments).parameters
        path = tmp_path / f"{key}.npz" if checkpoint else None
        job = Job(engine, backend="process", checkpoint=path)
        seen = _paused_once(job)
        assert job.backend == "process" and job.notice == ""
        assert_same_bits(job.result(60), headless)
        pids.add(job.worker_pid)
        if path is not None:
            assert_same_bits(load_checkpoint(path, engine.identity()), headless)
        middle = [
            s for s in seen if s.resume is not None and s.evaluations_done < s.evaluations_total
        ]
        if middle:  # continued from a partial snapshot in the worker: the uninterrupted bits
            chosen = middle[len(middle) // 2]
            resumed, streamed = Job(engine, resume=chosen, backend="process"), []
            resumed.subscribe(lambda j, streamed=streamed: streamed.append(j.snapshot()))
            assert_same_bits(resumed.start().result(60), headless)
            # It went on from the snapshot (every chunk streamed lies past it), not from zero.
            chunks = [x for x in streamed if x is not chosen]
            assert chunks and all(x.evaluations_done > chosen.evaluations_done for x in chunks)
            continued.append(key)
    assert len(pids) == 1  # one worker served every method in turn
    assert {"permutation", "shapley"} <= set(continued)
    if groups is None:
        assert {"first_look", "gradient", "latent"} <= set(continued)


def test_pause_cancel_checkpoint_and_continue_in_a_worker_give_the_uninterrupted_bits(tmp_path):
    engine = _many_chunks_engine(sequential_ae(D))
    headless = engine.run()
    path = tmp_path / "run.npz"
    job = Job(engine, checkpoint=path, backend="process")
    first = threading.Event()
    job.subscribe(lambda j: (j.pause(), first.set()) if j.snapshot().evaluations_done else None)
    job.start()
    assert first.wait(60) and wait_until(lambda: job.status == "paused")
    frozen = job.snapshot()
    time.sleep(0.3)  # parked: nothing moves while paused
    assert job.snapshot() is frozen and job.snapshot().evaluations_done < headless.evaluations_done
    pid = job.worker_pid
    job.cancel()  # kills the parked worker; the last snapshot is kept and checkpointed
    assert job.wait(10) and job.status == "cancelled"
    assert not process_alive(pid)
    kept = job.snapshot()
    assert kept.evaluations_done >= frozen.evaluations_done > 0
    assert_same_bits(load_checkpoint(path, engine.identity()), kept)
    # Continue from the checkpoint alone (a new job, a new worker): exactly the full run.
    assert_same_bits(Job(engine, checkpoint=path, backend="process").start().result(60), headless)


def test_cancel_ends_a_30_s_forward_call_at_once_and_leaves_no_process(tmp_path):
    inside = tmp_path / "inside"
    engine = aefi.PermutationImportance(FaultInWorker(D, "sleep", inside), correlated_data(N, D))
    job = Job(engine, backend="process").start()
    assert wait_until(lambda: inside.exists())  # the worker sleeps in forward now
    pid = job.worker_pid
    started = time.monotonic()
    job.cancel()
    assert job.wait(10)
    took = time.monotonic() - started
    assert job.status == "cancelled" and job.error is None
    assert took < 10, f"cancel waited {took:.1f} s: it must not wait for the 30 s forward call"
    assert not process_alive(pid)


@pytest.mark.parametrize(
    "fault, error, words",
    [
        ("raise", RuntimeError, "the model failed in the worker"),
        ("memory", MemoryError, "out of memory"),  # the engine's own words
        ("exit", WorkerDied, "exited with status 3"),
        ("segfault", WorkerDied, "SIGSEGV"),
    ],
)
def test_a_fault_in_the_worker_keeps_the_partial_result_and_continue_is_exact(
    tmp_path, fault, error, words
):
    trigger, path = tmp_path / "fault-now", tmp_path / "run.npz"
    engine = _many_chunks_engine(FaultInWorker(D, fault, trigger))
    job = Job(engine, checkpoint=path, backend="process")
    armed = []

    def arm_once(j: Job) -> None:  # after the first snapshot: the fault comes a few chunks later
        if j.snapshot().evaluations_done and not armed:
            armed.append(trigger.touch())

    job.subscribe(arm_once)
    job.start()
    assert job.wait(60) and job.status == "error"
    assert isinstance(job.error, error) and words in str(job.error)
    kept = job.snapshot()
    assert 0 < kept.evaluations_done < engine.evaluations_total
    assert_same_bits(load_checkpoint(path, engine.identity()), kept)
    if fault in ("exit", "segfault"):
        assert not process_alive(job.worker_pid)
    continued = Job(engine, resume=kept, backend="process").start().result(60)
    assert not trigger.exists()
    assert_same_bits(continued, engine.run())


def test_an_engine_that_cannot_be_pickled_runs_on_a_thread_and_names_the_object():
    model = sequential_ae(D)
    model.log_lock = threading.Lock()  # e.g. a model holding a lock or an open file
    engine = aefi.PermutationImportance(model, correlated_data(N, D), n_repeats=2)
    with pytest.warns(RuntimeWarning, match=r"engine\.session\.model.*log_lock.*_thread\.lock"):
        job = Job(engine, backend="process")
    assert job.backend == "thread" and "computing on a thread" in job.notice
    assert_same_bits(job.start().result(60), engine.run())


def test_a_worker_starts_after_ipython_reset_took_the_main_modules_spec(monkeypatch):
    """%reset -f clears __main__'s __dict__ (IPython's user namespace), __spec__ included."""
    from aefi_widget.worker_process import close_idle_workers

    close_idle_workers()  # a fresh spawn, not the idle worker
    main = sys.modules["__main__"]
    monkeypatch.delattr(main, "__spec__", raising=False)
    engine = aefi.PermutationImportance(sequential_ae(D), correlated_data(N, D), n_repeats=2)
    job = Job(engine, backend="process").start()
    assert_same_bits(job.result(120), engine.run())
    assert job.worker_pid is not None
    assert not hasattr(main, "__spec__")  # left as the user's namespace had it


class _KernelShell:
    kernel = object()  # what ipykernel's shell has and a terminal IPython's has not


class _IPython:
    def __init__(self, shell):
        self.shell = shell

    def get_ipython(self):
        return self.shell


@pytest.mark.parametrize(
    ("shell", "variable", "expected"),
    [
        (None, "", "thread"),  # a script, a test suite
        (object(), "", "thread"),  # terminal IPython: no kernel
        (_KernelShell(), "", "process"),  # a Jupyter kernel
        (_KernelShell(), "thread", "thread"),
        (None, "process", "process"),
    ],
)
def test_the_default_backend_is_a_worker_in_a_kernel_only(monkeypatch, shell, variable, expected):
    from aefi_widget.job_worker import check_backend

    monkeypatch.setitem(sys.modules, "IPython", _IPython(shell))
    monkeypatch.setenv("AEFI_WIDGET_BACKEND", variable)
    assert check_backend(None, None) == expected
    assert check_backend("thread", None) == "thread"
    assert check_backend(None, object()) == "thread"  # a Dask client: the cluster computes


def test_a_default_worker_is_not_used_for_a_large_x(monkeypatch):
    from aefi_widget import job_worker

    monkeypatch.setitem(sys.modules, "IPython", _IPython(_KernelShell()))
    monkeypatch.delenv("AEFI_WIDGET_BACKEND", raising=False)
    monkeypatch.setattr(job_worker, "SHIP_LIMIT_BYTES", N * D * 8 - 1)  # X is float64
    engine = aefi.PermutationImportance(sequential_ae(D), correlated_data(N, D), n_repeats=2)
    with pytest.warns(RuntimeWarning, match=r"X takes 0.0 GiB.*second copy.*backend='process'"):
        job = Job(engine)
    assert job.backend == "thread" and "computing on a thread" in job.notice
    asked = Job(engine, backend="process")  # asked for: a worker whatever the size
    assert asked.backend == "process" and asked.notice == ""
    asked.cancel()


def test_backend_is_checked():
    engine = aefi.PermutationImportance(sequential_ae(D), correlated_data(N, D), n_repeats=1)
    with pytest.raises(ValueError, match="backend must be 'process' or 'thread'"):
        Job(engine, backend="fork")


_SCRIPT = """
import os, signal, sys, threading
import torch
from torch import nn
import aefi_widget as aefi
from aefi_widget.job import Job
from reference import correlated_data
from worker_models import FaultInWorker

class Notebook(nn.Module):  # defined in __main__: it travels by value
    def __init__(self, d):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(d, 3), nn.Tanh(), nn.Linear(3, d)).double()
        self.scale = 0.5
    def forward(self, x):
        return self.inner(x) * self.scale

def main():
    X = correlated_data(48, 6)
    weight = 2.0
    metric = lambda recon, target: weight * ((recon - target) ** 2).mean(dim=1)  # a closure
    engine = aefi.PermutationImportance(Notebook(6), X, n_repeats=2, metric=metric)
    job = Job(engine, backend="process")
    same = job.start().result(120) == engine.run()
    sleeping = Job(aefi.PermutationImportance(FaultInWorker(6, "sleep", sys.argv[2]), X),
                   backend="process").start()
    print(same, sleeping.worker_pid, flush=True)
    while not os.path.exists(sys.argv[2]):
        pass
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # the kernel dies: no atexit runs

if __name__ == "__main__":
    main()
"""


def test_main_classes_travel_and_no_worker_outlives_its_interpreter(tmp_path):
    """Two notebook-like interpreters at once: one returns (atexit), one is SIGKILLed (none)."""
    script = tmp_path / "notebook_like.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    runs = {
        how: subprocess.Popen(
            [sys.executable, str(script), how, str(tmp_path / f"inside-{how}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for how in ("exit", "kill")
    }
    for how, run in runs.items():
        out, err = run.communicate(timeout=170)
        assert run.returncode == (-signal.SIGKILL if how == "kill" else 0), err
        same, pid = out.split()
        assert same == "True"  # __main__ class and closure metric: worker bits = headless bits
        assert wait_until(lambda pid=int(pid): not process_alive(pid), timeout=20), how
