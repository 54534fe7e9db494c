"""Extra peak memory and time of a ``max_samples`` permutation run as the number of rows grows.

Usage::

    python benchmarks/bench_memory_rows.py                       # n = 950, 10k, 50k, 100k; d=2000
    python benchmarks/bench_memory_rows.py --n 950 20000 --d 500  # smaller
    python benchmarks/bench_memory_rows.py --backed --n 1000000  # from a backed .h5ad on disk

Each n runs in a fresh child process (so one run's freed memory cannot hide the next one's
peak): it builds the untrained seed-like autoencoder of :mod:`aefi_widget.demo` and a float32 X
of standard normals, records its resident memory, runs ``permutation_importance(model, X,
n_repeats=1, max_samples=200)`` and reports the peak resident memory above that point (read
from ``/proc/self/status``'s VmHWM after resetting it through ``/proc/self/clear_refs``, so the
peak is that of the call alone) and the wall time. The parent prints one table row per n with
the extra peak as a multiple of X and the time as a multiple of the first n's.

The work is the same 200 sampled rows per feature at every n; what grows with n is what the
engine keeps or passes over for every row (the baseline error over all rows, X's digest).

``--backed`` writes X (standard normals, float32) to an ``.h5ad`` file first, block by block
(X is never whole in memory; the file is removed after), and the child opens it with
``anndata.read_h5ad(path, backed="r")``: the extra peak then includes the engine's one private
copy of X read from disk, and the time the read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def write_h5ad(path: str, n: int, d: int, seed: int = 1) -> None:
    """An .h5ad whose X is (n, d) float32 standard normals, written in 64 MB row blocks."""
    import anndata
    import h5py
    import numpy as np
    import pandas as pd

    names = pd.Index([f"cell{i}" for i in range(n)])
    genes = pd.Index([f"gene{j}" for j in range(d)])
    anndata.AnnData(obs=pd.DataFrame(index=names), var=pd.DataFrame(index=genes)).write_h5ad(path)
    rng = np.random.default_rng(seed)
    step = max(1, 64 * 2**20 // (4 * d))
    with h5py.File(path, "a") as file:
        X = file.create_dataset("X", shape=(n, d), dtype="float32", chunks=(min(n, 256), d))
        X.attrs["encoding-type"], X.attrs["encoding-version"] = "array", "0.2.0"
        for start in range(0, n, step):
            X[start : start + step] = rng.standard_normal((min(step, n - start), d), np.float32)


def child(n: int, d: int, max_samples: int, backed: str | None = None) -> dict[str, float]:
    """One run in this process: X's size, the extra peak memory and the time (MB, s)."""
    import torch

    import aefi_widget
    from aefi_widget.demo import seed_like_autoencoder

    torch.manual_seed(0)
    model = seed_like_autoencoder(d)
    if backed is None:
        X = torch.randn(n, d, generator=torch.Generator().manual_seed(1))
        warm = X[:64]
    else:
        import anndata

        X = anndata.read_h5ad(backed, backed="r")
        warm = X[:64].to_memory()
    # A warm-up at small n: torch's lazy initialisation is not what grows with n.
    aefi_widget.permutation_importance(model, warm, n_repeats=1, max_samples=32)
    del warm
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM (the peak resident set) to the current resident set
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    aefi_widget.permutation_importance(model, X, n_repeats=1, max_samples=max_samples)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return {
        "x_mb": n * d * 4 / 2**20,
        "extra_mb": (peak - before) / 1024,
        "seconds": seconds,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[950, 10_000, 50_000, 100_000])
    parser.add_argument("--d", type=int, default=2000)
    parser.add_argument("--max-samples", type=int, default=200)
    parser.add_argument("--backed", action="store_true", help="X from a backed .h5ad file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        backed = args.child or None
        print(json.dumps(child(args.n[0], args.d, args.max_samples, backed)))
        return
    where = "a backed .h5ad (dense)" if args.backed else "memory"
    print(f"d = {args.d}, max_samples = {args.max_samples}, n_repeats = 1, float32 X in {where}")
    print(f"{'n':>9} {'X MB':>8} {'extra peak MB':>14} {'x X':>6} {'time s':>7} {'x first':>8}")
    first = None
    for n in args.n:
        with tempfile.TemporaryDirectory() as folder:
            path = ""
            if args.backed:
                path = os.path.join(folder, "X.h5ad")
                write_h5ad(path, n, args.d)
            command = [sys.executable, __file__, "--child", path, "--n", str(n), "--d",
                       str(args.d), "--max-samples", str(args.max_samples)]  # fmt: skip
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
