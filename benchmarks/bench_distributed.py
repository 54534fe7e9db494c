"""Permutation importance on a Dask LocalCluster vs in one process, and a sizing model for clusters.

Usage::

    python benchmarks/bench_distributed.py --quick      # d=200: a minute
    python benchmarks/bench_distributed.py              # d=1000, n=950, 2 repeats

Prints, in one process (interleaved, medians): the local run (all cores, one process) and the same
run with ``client=`` on a ``LocalCluster(n_workers=2, threads_per_worker=1)``; the scheduling
overhead (1 - work done in tasks / (wall time x workers)); work per task; bytes per task sent
and returned; then a model of where the time goes at 20,000 genes on N GPU workers (FLOPs per
chunk, bytes per chunk, expected parallel efficiency), so a user can size a cluster from it.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_permutation import build_problem, linear_flops_per_sample

import aefi_widget as aefi

# Assumed for the cluster model (not measured here): float32 matmul rate of one data-centre GPU
# without TF32 (H100/H200 class), and the per-task cost Dask documents (~1 ms scheduler overhead).
_GPU_FLOPS = 50e12
_TASK_OVERHEAD_S = 1e-3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--n", type=int, default=950)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="interleaved runs of each way")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="d=200, n=400, one run")
    args = parser.parse_args(argv)
    if args.quick:
        args.d, args.n, args.runs, args.epochs = 200, 400, 1, 2
    return args


def cluster_model(d: int = 20_000, n: int = 950, repeats: int = 50) -> str:
    """Expected time at ``d`` genes on N GPU workers, from FLOPs and bytes per chunk."""
    h, latent = int(0.75 * d), int(0.5 * d)
    flops_per_sample = 2 * (h * latent + latent * h + h * d)  # rank-1 path skips the first layer
    chunk_seconds = 0.25  # the engine sizes chunks by an assumed rate; on a GPU: 20 TFLOP/s
    rows = int(chunk_seconds * 20e12 / flops_per_sample)
    work = d * repeats * n * flops_per_sample
    returned = 8 * (rows // n + 2) * (d + 1)  # per-segment error and (d,) per-output sums
    lines = [
        f"cluster model at d = {d:,} genes, n = {n}, {repeats} repeats (rank-1 path, float32):",
        f"  FLOPs per permuted sample {flops_per_sample / 1e9:.2f} G; whole run "
        f"{work / 1e18:.2f} EFLOP; chunk = {rows:,} samples = "
        f"{rows * flops_per_sample / 1e12:.1f} TFLOP",
        f"  bytes per task: sent ~200 B (a plan position); returned ~{returned / 1e6:.2f} MB; "
        f"model sent once per worker: {4 * (2 * d * h + 2 * h * latent) / 1e9:.1f} GB",
        "  N GPUs | hours (at 50 TFLOP/s each) | parallel efficiency (1 ms/task overhead)",
    ]
    task_seconds = rows * flops_per_sample / _GPU_FLOPS
    efficiency = task_seconds / (task_seconds + _TASK_OVERHEAD_S)
    for gpus in (1, 2, 4, 8, 16):
        hours = work / (_GPU_FLOPS * gpus * efficiency) / 3600
        lines.append(f"  {gpus:6d} | {hours:8.1f} | {efficiency:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import distributed

    model, X = build_problem(args.d, args.n, args.epochs)
    keywords = {"n_repeats": args.repeats, "seed": 0}
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        # Warm both ways once (worker start-up, scatter, baselines) before timing.
        aefi.permutation_importance(model, X, n_repeats=1, client=client)
        aefi.permutation_importance(model, X, n_repeats=1)
        local_s, cluster_s, work_s = [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            local = aefi.permutation_importance(model, X, **keywords)
            local_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            remote = aefi.permutation_importance(model, X, client=client, **keywords)
            cluster_s.append(time.perf_counter() - started)
            work_s.append(remote.elapsed_s)  # seconds spent inside tasks, summed over workers
        same = np.array_equal(local.importances, remote.importances)
        engine = aefi.PermutationImportance(model, X, **keywords)
        plan = engine.plan()
        tasks = sum(1 for _ in engine.increments()) if args.d <= 200 else None
        sums = engine.chunk_sums(plan, 0, 0)
        sent = len(pickle.dumps((plan, 0, 0)))
        returned = len(pickle.dumps(sums))
    finally:
        client.close()
        cluster.close()
    wall, work = statistics.median(cluster_s), statistics.median(work_s)
    overhead = 1 - work / (wall * 2)
    chunks = plan.chunks_per_round * args.repeats
    flops = linear_flops_per_sample(model, skip_first=True)
    print(f"d = {args.d}, n = {args.n}, {args.repeats} repeats; {chunks} tasks "
          f"({plan.rows} samples, {plan.rows * flops / 1e9:.1f} GFLOP each)")  # fmt: skip
    print("| way | seconds (median) | x local |")
    print("|---|---:|---:|")
    print(f"| one process, 2 threads | {statistics.median(local_s):.2f} | 1.00 |")
    print(f"| LocalCluster 2 workers x 1 thread | {wall:.2f} | "
          f"{wall / statistics.median(local_s):.2f} |")  # fmt: skip
    print(f"bit-identical to the local run: {same}")
    print(f"work per task: {work / chunks:.3f} s; scheduling and transfer overhead: "
          f"{overhead:.1%} of the workers' time (target <= 5 %: "
          f"{'PASS' if overhead <= 0.05 else 'MISS'})")  # fmt: skip
    print(f"bytes per task: sent {sent} B (a plan position; the model and X travel once per "
          f"worker), returned {returned / 1024:.1f} KiB")  # fmt: skip
    if tasks is not None:
        print(f"snapshots streamed: {tasks}")
    print()
    print(cluster_model())


if __name__ == "__main__":
    main()
