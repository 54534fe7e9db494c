"""Evaluations per second of ``Job(backend="process")`` vs ``Job(backend="thread")`` vs headless.

Usage::

    python benchmarks/bench_worker.py                  # d=1000, n=950, 3 interleaved rounds
    python benchmarks/bench_worker.py --busy           # another process keeps one core busy
    python benchmarks/bench_worker.py --d 2000

The seed-like autoencoder of :mod:`aefi_widget.demo` is first trained a few steps on the main
thread (as a notebook does, so the kernel's OpenMP team exists), then the same permutation run
(one repeat on ``--samples`` samples) is computed three ways, in a rotating order each round:
``engine.increments()`` on the main thread (headless), a ``Job`` on a thread (today's live path)
and a ``Job`` in a worker process (the worker spawned once and reused, as an explorer keeps it).
The rate is the evaluations between the first and the last snapshot over the seconds between
them, so a worker's start (torch's import, the engine's unpickling) is left out of it and printed
apart (``first snapshot after``). Also printed: the engine's pickled size and pickling time (what
goes to the worker), and how long a cancel of the worker job takes mid-run and inside a 30 s
forward call, and the peak resident memory of the kernel and of the worker over one thread and
one worker run. Ratios are medians over rounds; the three share one machine, so a busy neighbour
hits them alike.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder
from aefi_widget.job import Job
from aefi_widget.worker_process import close_idle_workers, ship

Marks = list[tuple[float, int]]  # (perf_counter seconds, evaluations done) per snapshot


def train_on_main_thread(model: torch.nn.Module, X: torch.Tensor, steps: int) -> None:
    """A few Adam steps on the main thread: the kernel's OpenMP team starts, as in a notebook."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = ((model(X) - X) ** 2).mean()
        loss.backward()
        optimiser.step()
    model.eval()


def rate(marks: Marks) -> float:
    """Evaluations per second between the first and the last snapshot (all, if only one)."""
    (t0, done0), (t1, done1) = marks[0], marks[-1]
    return (done1 - done0) / (t1 - t0) if t1 > t0 else float("nan")


def headless(engine: aefi.PermutationImportance, started: float) -> Marks:
    """The run on this (main) thread, with a time stamp per snapshot; starts at ``started``."""
    marks: Marks = [(started, 0)]
    for snapshot in engine.increments():
        marks.append((time.perf_counter(), snapshot.evaluations_done))
    return marks


def in_job(engine: aefi.PermutationImportance, backend: str, started: float) -> Marks:
    """The run as a ``Job`` on ``backend``, time-stamping each new snapshot as it arrives."""
    marks: Marks = [(started, 0)]
    job = Job(engine, backend=backend)

    def mark(j: Job) -> None:
        done = j.snapshot().evaluations_done
        if done > marks[-1][1]:
            marks.append((time.perf_counter(), done))

    job.subscribe(mark)
    job.start().result(3600)
    return marks


def cancel_seconds(engine: aefi.PermutationImportance) -> float:
    """Seconds from ``cancel()`` to the end of a worker job cancelled after its first chunk."""
    job = Job(engine, backend="process").start()
    while job.snapshot().evaluations_done == 0 and job.status == "running":
        time.sleep(0.005)
    started = time.perf_counter()
    job.cancel()
    job.wait(60)
    return time.perf_counter() - started


class SleepyAutoencoder(torch.nn.Module):
    """A d -> 3 -> d autoencoder whose forward sleeps 30 s in a worker process (not here, where
    the engine probes it)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.encode, self.decode = torch.nn.Linear(d, 3), torch.nn.Linear(3, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if multiprocessing.parent_process() is not None:
            time.sleep(30)
        return self.decode(torch.tanh(self.encode(x)))


def cancel_in_forward_seconds(X: torch.Tensor) -> float:
    """Seconds from ``cancel()`` to the end of a worker job inside a 30 s forward call."""
    job = Job(aefi.PermutationImportance(SleepyAutoencoder(X.shape[1]), X), backend="process")
    job.start()
    time.sleep(3.0)  # the worker loads (1-3 s) and enters its first, 30 s forward call
    started = time.perf_counter()
    job.cancel()
    job.wait(60)
    return time.perf_counter() - started


def _peak_mb(pid: int | str) -> float:
    """The process's peak resident memory (VmHWM) in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/PID/status")


def _reset_peak(pid: int | str) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM restarts from the current resident set


def resident_peaks_mb(engine: aefi.PermutationImportance, backend: str) -> tuple[float, float]:
    """Peak resident MB of this process (the kernel) and of the worker (0 on a thread) over one
    ``Job`` run: what the two hold together, torch's own libraries included in each."""
    _reset_peak("self")
    job = Job(engine, backend=backend)
    job.prepare()
    worker = job.worker_pid
    if worker is not None:
        _reset_peak(worker)
    job.start().result(3600)
    return _peak_mb("self"), 0.0 if worker is None else _peak_mb(worker)


def busy_neighbour() -> subprocess.Popen[bytes]:
    """Another process that keeps one core busy (as a browser tab or a second kernel does)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=1000, help="features")
    parser.add_argument("--n", type=int, default=950, help="samples in X")
    parser.add_argument("--samples", type=int, default=250, help="samples of the one repeat")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--train-steps", type=int, default=5, help="training steps first")
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    args = parser.parse_args(argv)
    frame = make_correlated_data(n_samples=args.n, n_features=args.d, seed=0)
    model = seed_like_autoencoder(args.d, seed=0)
    train_on_main_thread(model, torch.as_tensor(frame.to_numpy(), dtype=torch.float32),
                         args.train_steps)  # fmt: skip

    def engine() -> aefi.PermutationImportance:
        return aefi.PermutationImportance(model, frame, n_repeats=1, max_samples=args.samples)

    pickling = time.perf_counter()
    size = len(ship(engine()))
    pickling = time.perf_counter() - pickling
    neighbour = busy_neighbour() if args.busy else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, d={args.d}, "
          f"n={args.n}, {args.samples} samples x 1 repeat, busy neighbour: {args.busy}; engine "
          f"shipped to the worker: {size / 1e6:.1f} MB, pickled in {pickling:.2f} s")  # fmt: skip
    ways: dict[str, Callable[[aefi.PermutationImportance, float], Marks]] = {
        "headless": headless,
        "thread": lambda e, t: in_job(e, "thread", t),
        "process": lambda e, t: in_job(e, "process", t),
    }
    try:
        ways["process"](engine(), time.perf_counter())  # warm-up: spawns the worker it reuses
        ways["headless"](engine(), time.perf_counter())
        rates: dict[str, list[float]] = {name: [] for name in ways}
        firsts: dict[str, list[float]] = {name: [] for name in ways}
        walls: dict[str, list[float]] = {name: [] for name in ways}
        chunks: dict[str, int] = {}
        names = list(ways)
        for k in range(args.rounds):
            for name in names[k % 3 :] + names[: k % 3]:  # rotate who goes first
                marks = ways[name](engine(), time.perf_counter())
                rates[name].append(rate(marks[1:]) if len(marks) > 2 else rate(marks))
                firsts[name].append(marks[1][0] - marks[0][0])
                walls[name].append(marks[-1][0] - marks[0][0])
                chunks[name] = len(marks) - 1
            print("  round " + ", ".join(f"{name} {rates[name][-1]:,.0f} evals/s"
                                         for name in names))  # fmt: skip
        peaks = {name: resident_peaks_mb(engine(), name) for name in ("thread", "process")}
        cancel = cancel_seconds(engine())
        in_forward = cancel_in_forward_seconds(torch.as_tensor(frame.to_numpy()[:48, :16]))
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
        close_idle_workers()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name in names:
        print(f"{name:>9}: {medians[name]:,.0f} evals/s (median), first snapshot after "
              f"{statistics.median(firsts[name]):.2f} s, whole run "
              f"{statistics.median(walls[name]):.2f} s, {chunks[name]} snapshots")  # fmt: skip
    for name, (kernel, worker) in peaks.items():
        print(f"resident peak, {name}: kernel {kernel:,.0f} MB + worker {worker:,.0f} MB = "
              f"{kernel + worker:,.0f} MB")  # fmt: skip
    best = max(medians["headless"], medians["thread"])
    ratios = {
        "process/headless": medians["process"] / medians["headless"],
        "process/thread": medians["process"] / medians["thread"],
        "process/best": medians["process"] / best,
        "cancel_s": cancel,
        "cancel_in_forward_s": in_forward,
    }
    print(", ".join(f"{key} {value:.2f}" for key, value in ratios.items()))
    return ratios


if __name__ == "__main__":
    main()
