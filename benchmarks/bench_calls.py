"""Engine throughput by forward-call size and kernel path, interleaved in one process.

Usage::

    python benchmarks/bench_calls.py                     # d=1000: default, 2048 and 8192 rows
    python benchmarks/bench_calls.py --d 200 --rows 4096 20960 --seconds 3

Each configuration runs the permutation engine on the seed-like autoencoder for ``--seconds``
after its first chunk, in ``--rounds`` interleaved rounds (so drifts in the machine's speed hit
every configuration alike), and prints the median rate in GFLOP/s of the FLOPs the engine must do
(the Linear layers after the first), its ratio to the default configuration, and the minor page
faults per second (allocation churn, see ``aefi_widget/engine/allocator.py``).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Sequence

import torch
from bench_permutation import linear_flops_per_sample

import aefi_widget
from aefi_widget.demo import seed_like_autoencoder


def measure(
    model: torch.nn.Module, X: torch.Tensor, rows: int | None, path: str, seconds: float
) -> tuple[float, float]:
    """(GFLOP/s, minor page faults per second) over ``seconds`` after the first chunk."""
    engine = aefi_widget.PermutationImportance(model, X, n_repeats=50, _forward_path=path)
    if rows is not None:
        engine.call_rows = rows
    increments = engine.increments()
    first = next(increments)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    last = first
    for last in increments:  # noqa: B007 (the last snapshot is what is measured)
        if time.perf_counter() - start >= seconds:
            break
    increments.close()
    elapsed = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    done = last.evaluations_done - first.evaluations_done
    return done * linear_flops_per_sample(model, skip_first=True) / elapsed / 1e9, faults / elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--n", type=int, default=950)
    parser.add_argument("--rows", type=int, nargs="*", default=[2048, 8192])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    model = seed_like_autoencoder(args.d, seed=0).eval()
    X = torch.randn(args.n, args.d, generator=torch.Generator().manual_seed(0))
    default_rows = aefi_widget.PermutationImportance(model, X, n_repeats=1).call_rows
    configs: list[tuple[str, int | None, str]] = [(f"default ({default_rows} rows)", None, "auto")]
    configs += [(f"{rows} rows", rows, "auto") for rows in args.rows]
    configs.append((f"modules, no fused kernels ({default_rows} rows)", None, "rank1"))
    rates: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    faults: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for _ in range(args.rounds):
        for name, rows, path in configs:
            rate, fault_rate = measure(model, X, rows, path, args.seconds)
            rates[name].append(rate)
            faults[name].append(fault_rate)
    reference = statistics.median(rates[configs[0][0]])
    print(f"d={args.d} n={args.n}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    print(f"{'configuration':<42} {'GFLOP/s':>8} {'ratio':>6} {'faults/s':>9}")
    for name, _, _ in configs:
        rate = statistics.median(rates[name])
        fault_rate = statistics.median(faults[name])
        print(f"{name:<42} {rate:8.1f} {rate / reference:6.2f} {fault_rate:9.0f}")


if __name__ == "__main__":
    main()
