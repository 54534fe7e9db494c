"""The same permutation run on the main thread and on a new thread (where Job and Explorer compute).

Usage::

    python benchmarks/bench_threads.py                 # 4 interleaved pairs, ~20 s
    OMP_NUM_THREADS=1 python benchmarks/bench_threads.py
    GOMP_SPINCOUNT=0 python benchmarks/bench_threads.py

The explorer's first look at d = 1,000 (the seed-like autoencoder of :mod:`aefi_widget.demo`,
untrained: the cost does not depend on the weights; n = 950, one repeat on 40 samples), run by
``PermutationImportance(...).run()`` on the main thread and on a fresh ``threading.Thread``,
alternately, after one warm-up run. Prints each pair and the median ratio thread / main.
Measured here (2 cores, torch's OpenMP = libgomp, 2 threads): a new thread is 1.3-1.8x slower;
with ``OMP_NUM_THREADS=1`` or ``GOMP_SPINCOUNT=0`` the two are equal (and as slow as the thread),
so the main thread's advantage comes from its OpenMP team's spinning workers. The mechanism: once
libgomp manages more threads than there are CPUs (the main thread's team, idle but alive, plus the
new thread's team) it throttles every team's spin-waiting, so each parallel region pays a futex
wake-up. The main thread alone: 1.16-1.40 s; the main thread while another thread merely holds
an idle team: 1.79 s (same run, same process).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="interleaved main/thread pairs")
    parser.add_argument("--d", type=int, default=1000, help="features")
    parser.add_argument("--samples", type=int, default=40, help="samples of the one repeat")
    args = parser.parse_args()
    frame = make_correlated_data(n_samples=950, n_features=args.d, seed=0)
    model = seed_like_autoencoder(args.d, seed=0).eval()

    def run() -> float:
        engine = aefi.PermutationImportance(model, frame, n_repeats=1, max_samples=args.samples)
        start = time.perf_counter()
        engine.run()
        return time.perf_counter() - start

    def on_thread() -> float:
        box: dict[str, float] = {}
        thread = threading.Thread(target=lambda: box.update(seconds=run()))
        thread.start()
        thread.join()
        return box["seconds"]

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, d={args.d}, "
          f"{args.samples} samples x 1 repeat")  # fmt: skip
    run()  # warm-up
    ratios = []
    for k in range(args.pairs):
        # Alternate which goes first, so a drift in the machine's speed hits both alike.
        if k % 2:
            thread_s, main_s = on_thread(), run()
        else:
            main_s, thread_s = run(), on_thread()
        ratios.append(thread_s / main_s)
        print(f"  main thread {main_s:.2f} s, new thread {thread_s:.2f} s, ratio {ratios[-1]:.2f}")
    print(f"median ratio new thread / main thread: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
