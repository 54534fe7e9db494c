"""Time and peak memory of ``correlated_groups`` at d = 2,000 and d = 20,000 genes (n = 950).

Usage::

    python benchmarks/bench_groups.py --quick          # d=2,000 only, with the dense baseline
    nohup python benchmarks/bench_groups.py > /tmp/bench_groups.log 2>&1 &   # both sizes

Each size runs in a fresh subprocess, so its peak memory is its own: the child's peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read right after the call) covers the whole
process (Python, numpy, scipy, torch, the data). The data are planted correlated blocks, generated
here in numpy (``aefi_widget.demo.make_correlated_data`` has little correlation above 0.8 at
d = 20,000: its background factors dominate there). At d <= 2,000 the same child then times the
naive dense approach (``scipy.stats.spearmanr`` on all d, average linkage on all d x d distances)
and checks it finds the same groups. Targets on the 2-core machine: d = 2,000 in <= 3 s;
d = 20,000 in <= 120 s and <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

# (d, seconds, GB) targets; None where the issue sets no target.
TARGETS = {2_000: (3.0, None), 20_000: (120.0, 4.0)}


def planted_blocks(n: int, d: int, seed: int = 0) -> pd.DataFrame:
    """(n, d) float32 frame: 70 % of columns in blocks of one latent factor each, 30 % noise.

    Block sizes are geometric (mean 20) plus one block of d // 40: within-block correlations
    ``a_i a_j`` with loadings ``a`` in [0.8, 0.99] straddle 0.8, so average linkage splits some
    blocks. Columns are shuffled so blocks are not contiguous.
    """
    rng = np.random.default_rng(seed)
    in_blocks = int(0.7 * d)
    sizes = [d // 40]
    while sum(sizes) < in_blocks:
        sizes.append(int(rng.geometric(1 / 20)) + 1)
    block = np.repeat(np.arange(len(sizes)), sizes)[:in_blocks]
    factors = rng.standard_normal((n, len(sizes)), dtype=np.float32)
    loading = rng.uniform(0.8, 0.99, in_blocks).astype(np.float32)
    values = rng.standard_normal((n, d), dtype=np.float32)
    values[:, :in_blocks] *= np.sqrt(1 - loading**2)
    values[:, :in_blocks] += factors[:, block] * loading
    values = values[:, rng.permutation(d)]
    return pd.DataFrame(values, columns=[f"g{j:05d}" for j in range(d)])


def dense_groups(X: pd.DataFrame, threshold: float) -> dict[str, list[str]]:
    """The naive approach: every pairwise Spearman rho, average linkage on all d features."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from scipy.stats import spearmanr

    distance = 1.0 - np.abs(spearmanr(X.to_numpy()).statistic)
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(np.maximum(distance, 0.0), checks=False)
    labels = fcluster(linkage(condensed, "average"), t=1 - threshold + 1e-9, criterion="distance")
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    return {str(i): [X.columns[j] for j in g] for i, g in enumerate(groups) if len(g) > 1}


def measure(d: int, n: int, threshold: float, repeats: int, dense: bool) -> dict[str, float]:
    """Median seconds and peak RSS of ``correlated_groups`` on one size, in this process."""
    from aefi_widget.engine.correlated_groups import correlated_groups

    X = planted_blocks(n, d)
    data_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        groups = correlated_groups(X, threshold=threshold)
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    row = {
        "d": d, "seconds": statistics.median(seconds), "peak_gb": peak, "data_gb": data_rss,
        "groups": len(groups), "grouped": sum(len(m) for m in groups.values()),
        "largest": max((len(m) for m in groups.values()), default=0),
    }  # fmt: skip
    if dense:
        start = time.perf_counter()
        baseline = dense_groups(X, threshold)
        row["dense_seconds"] = time.perf_counter() - start
        row["dense_same"] = sorted(baseline.values()) == sorted(groups.values())
    return row


def run_child(d: int, args: argparse.Namespace) -> dict[str, float]:
    """One size in a fresh interpreter, so that its peak memory is not mixed with another's."""
    command = [sys.executable, __file__, "--child", str(d), "--n", str(args.n),
               "--threshold", str(args.threshold), "--repeats", str(args.repeats)]  # fmt: skip
    if d <= 2_000:
        command.append("--dense")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(value: float, target: float | None) -> str:
    """PASS/MISS against a target, or '-' where there is none."""
    return "-" if target is None else ("PASS" if value <= target else "MISS")


def main(argv: Sequence[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2_000, 20_000])
    parser.add_argument("--n", type=int, default=950)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--repeats", type=int, default=3, help="median of this many calls")
    parser.add_argument("--quick", action="store_true", help="d=2,000 only")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.n, args.threshold, args.repeats, args.dense)))
        return []
    sizes = [2_000] if args.quick else args.sizes
    print(
        f"correlated_groups, n={args.n}, threshold={args.threshold}, Spearman, median of "
        f"{args.repeats}; peak = whole-process max RSS of a fresh subprocess"
    )
    header = ("d", "seconds", "time", "peak GB", "mem", "data GB", "groups", "grouped", "largest")
    print(" ".join(f"{h:>8}" for h in header))
    rows = []
    for d in sizes:
        row = run_child(d, args)
        rows.append(row)
        max_seconds, max_gb = TARGETS.get(d, (None, None))
        cells = (d, f"{row['seconds']:.2f}", verdict(row["seconds"], max_seconds),
                 f"{row['peak_gb']:.2f}", verdict(row["peak_gb"], max_gb), f"{row['data_gb']:.2f}",
                 row["groups"], row["grouped"], row["largest"])  # fmt: skip
        print(" ".join(f"{c:>8}" for c in cells), flush=True)
        if "dense_seconds" in row:
            dense = row["dense_seconds"]
            same = "yes" if row["dense_same"] else "NO"
            print(
                f"  dense baseline at d={d} (spearmanr + average linkage on all d): {dense:.2f} s, "
                f"{dense / row['seconds']:.1f}x the time; same groups: {same}",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    main()
