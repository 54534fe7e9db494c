"""Extra peak memory and time of a ``max_samples`` permutation run as the number of rows grows.

Usage::

    python benchmarks/bench_memory_rows.py                       # n = 950, 10k, 50k, 100k; d=2000
    python benchmarks/bench_memory_rows.py --n 950 20000 --d 500  # smaller

Each n runs in a fresh child process (so one run's freed memory cannot hide the next one's
peak): it builds the untrained seed-like autoencoder of :mod:`aefi_widget.demo` and a float32 X
of standard normals, records its resident memory, runs ``permutation_importance(model, X,
n_repeats=1, max_samples=200)`` and reports the peak resident memory above that point (read
from ``/proc/self/status``'s VmHWM after resetting it through ``/proc/self/clear_refs``, so the
peak is that of the call alone) and the wall time. The parent prints one table row per n with
the extra peak as a multiple of X and the time as a multiple of the first n's.

The work is the same 200 sampled rows per feature at every n; what grows with n is what the
engine keeps or passes over for every row (the baseline error over all rows, X's digest).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(n: int, d: int, max_samples: int) -> dict[str, float]:
    """One run in this process: X's size, the extra peak memory and the time (MB, s)."""
    import torch

    import aefi_widget
    from aefi_widget.demo import seed_like_autoencoder

    torch.manual_seed(0)
    model = seed_like_autoencoder(d)
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(1))
    # A warm-up at small n: torch's lazy initialisation is not what grows with n.
    aefi_widget.permutation_importance(model, X[:64], n_repeats=1, max_samples=32)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM (the peak resident set) to the current resident set
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    aefi_widget.permutation_importance(model, X, n_repeats=1, max_samples=max_samples)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return {
        "x_mb": X.numel() * X.element_size() / 2**20,
        "extra_mb": (peak - before) / 1024,
        "seconds": seconds,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[950, 10_000, 50_000, 100_000])
    parser.add_argument("--d", type=int, default=2000)
    parser.add_argument("--max-samples", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.n[0], args.d, args.max_samples)))
        return
    print(f"d = {args.d}, max_samples = {args.max_samples}, n_repeats = 1, float32 X")
    print(f"{'n':>9} {'X MB':>8} {'extra peak MB':>14} {'x X':>6} {'time s':>7} {'x first':>8}")
    first = None
    for n in args.n:
        command = [sys.executable, __file__, "--child", "--n", str(n), "--d", str(args.d),
                   "--max-samples", str(args.max_samples)]  # fmt: skip
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        first = first or row["seconds"]
        print(
            f"{n:>9,} {row['x_mb']:>8.0f} {row['extra_mb']:>14.0f} "
            f"{row['extra_mb'] / row['x_mb']:>6.2f} {row['seconds']:>7.1f} "
            f"{row['seconds'] / first:>8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
