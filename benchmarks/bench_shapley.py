"""Time aefi_widget's Shapley values of the loss against sage-importance, in one process.

Usage::

    python benchmarks/bench_shapley.py --quick     # d=50 only, short design and d=1000 rows
    python benchmarks/bench_shapley.py             # d=50 and 100, design table, d=1000 rows
    python benchmarks/bench_shapley.py --d 100 --calibration 8   # + whose SEs are calibrated

For each d: the seed-like autoencoder of :mod:`aefi_widget.demo` trained briefly on n=512
correlated samples, 64 background rows drawn once and given to both, then (1) aefi's
``shapley_importance(..., tol=0.025)`` and (2) ``sage.PermutationEstimator(
sage.MarginalImputer(model, background), "mse")(X, X, thresh=0.025, batch_size=512)`` inside
``torch.no_grad``, run alternately (``--repeats`` rounds; medians). Printed: wall time to
convergence, orderings walked (sample-orderings; aefi's columns in brackets), and the largest
difference between the estimates in units of their combined SE (sage's "mse" sums over outputs,
so aefi's values are multiplied by d).

The design table measures the estimator choices on the first d's problem with the engine's walks:
the variance of a column per model evaluation for one ordering shared by all samples vs one
ordering per sample, with and without reversed (antithetic) pairs, and SAGE's one-sample draws.
The last table times one ordering (one sample, 64 background rows, F steps) at d=1000 on the
rank-1 path and on the plain path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.stats
import torch
from bench_permutation import build_problem

import aefi_widget
from aefi_widget.demo import seed_like_autoencoder
from aefi_widget.engine.shapley_walk import Background, BatchWalk, UnitTable, empty_losses


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


class _CountingImputer:
    """Built lazily (sage is an optional dependency): a MarginalImputer counting its calls."""

    @staticmethod
    def make(sage: Any, model: torch.nn.Module, background: np.ndarray) -> Any:
        class Counting(sage.MarginalImputer):
            calls = 0

            def __call__(self, x: np.ndarray, S: np.ndarray) -> np.ndarray:
                Counting.calls += 1
                return super().__call__(x, S)

        return Counting(model, background)


def run_aefi(model: torch.nn.Module, X: torch.Tensor, background: torch.Tensor, tol: float):
    return timed(lambda: aefi_widget.shapley_importance(model, X, background=background, tol=tol))


def run_sage(model: torch.nn.Module, X: torch.Tensor, background: torch.Tensor, tol: float):
    import contextlib
    import io

    import sage

    with contextlib.redirect_stdout(io.StringIO()):  # sage prints a note about torch models
        imputer = _CountingImputer.make(sage, model, background.numpy())
    estimator = sage.PermutationEstimator(imputer, "mse", random_state=0)
    X_np = X.numpy()
    with torch.no_grad():
        seconds, explanation = timed(
            lambda: estimator(X_np, X_np, thresh=tol, batch_size=512, bar=False)
        )
    d = X.shape[1]
    orderings = type(imputer).calls // (d + 1) * 512
    return seconds, explanation, orderings


def compare(d: int, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """aefi vs sage on one problem: medians over alternating runs."""
    model, X = build_problem(d, n, args.epochs)
    model.eval()
    rows = np.random.default_rng(0).choice(n, min(64, n), replace=False)
    background = X[torch.as_tensor(rows)]
    aefi_times, sage_times = [], []
    for _ in range(args.repeats):
        seconds, ours = run_aefi(model, X, background, args.tol)
        aefi_times.append(seconds)
        seconds, theirs, sage_orderings = run_sage(model, X, background, args.tol)
        sage_times.append(seconds)
    columns = ours.importances.shape[1]
    walks = 2 if ours.settings["antithetic"] else 1
    difference = ours.importances_mean.to_numpy() * d - theirs.values
    se = np.hypot(ours.extras["se"] * d, theirs.std)
    calibrated = calibration(model, X, background, args.tol, args.calibration, theirs)
    return {
        **calibrated,
        "d": d,
        "aefi_s": statistics.median(aefi_times),
        "sage_s": statistics.median(sage_times),
        "aefi_orderings": columns * n * walks,
        "aefi_columns": columns,
        "sage_orderings": sage_orderings,
        "max_diff_se": float(np.max(np.abs(difference) / se)),
        # The 3-SE check per feature, and how often d unbiased estimates would break it by chance
        # (z-scores of independent normal differences; Sidak).
        "within_3se": float(np.mean(np.abs(difference) / se <= 3)),
        "rms_z": float(np.sqrt(np.mean((difference / se) ** 2))),
        "chance_max_over_3": float(1 - (1 - 2 * scipy.stats.norm.sf(3)) ** d),
        "aefi_ratio": ours.settings["convergence_ratio"],
    }


def calibration(
    model: torch.nn.Module, X: torch.Tensor, background: torch.Tensor, tol: float, runs: int,
    theirs: Any,
) -> dict[str, float]:
    """Whose standard errors explain the aefi-sage differences: ``runs`` aefi runs (seeds
    0..runs-1; < 2: skipped). Each run against the mean of the others (leave one out) gives
    aefi's own z-scores, and the spread of the runs over their reported SEs; sage's estimates
    against the mean of all runs (whose SE is sqrt(runs) times smaller) give sage's z-scores.
    Calibrated SEs give RMS z near 1 (and a sd/SE ratio near 1)."""
    if runs < 2:
        return {}
    d = X.shape[1]
    results = [aefi_widget.shapley_importance(model, X, background=background, tol=tol, seed=s)
               for s in range(runs)]  # fmt: skip
    values = np.array([r.importances_mean.to_numpy() * d for r in results])  # (runs, F)
    se = np.array([r.extras["se"] * d for r in results])
    z_aefi = []
    for s in range(runs):
        others = np.delete(np.arange(runs), s)
        reference_se = np.sqrt((se[others] ** 2).sum(axis=0)) / len(others)
        z_aefi.append((values[s] - values[others].mean(axis=0)) / np.hypot(se[s], reference_se))
    z_aefi = np.asarray(z_aefi)
    reference_se = np.sqrt((se**2).sum(axis=0)) / runs
    z_sage = (theirs.values - values.mean(axis=0)) / np.hypot(theirs.std, reference_se)
    spread_over_se = np.sqrt(np.mean(values.var(axis=0, ddof=1) / np.mean(se**2, axis=0)))
    return {
        "calibration_runs": runs,
        "aefi_rms_z": float(np.sqrt(np.mean(z_aefi**2))),
        "aefi_max_z": float(np.abs(z_aefi).max()),
        "aefi_comparisons": int(z_aefi.size),
        "aefi_sd_over_se": float(spread_over_se),
        "sage_rms_z": float(np.sqrt(np.mean(z_sage**2))),
        "sage_max_z": float(np.abs(z_sage).max()),
    }


def _walk(engine: Any, samples: np.ndarray, orders: np.ndarray, steps: int | None = None):
    """Run the engine's walks of ``samples`` along ``orders`` (W, F); (W, F) contributions."""
    session = engine.session
    background = Background.prepare(session, engine.background_rows)
    targets = session.X.to(torch.float64)
    empty = empty_losses(session, background, targets)
    units = UnitTable.of(engine.units, session.device)
    walk = BatchWalk(session, background, units, samples, orders, targets, empty)
    with session.computing():
        for _ in range(steps or walk.n_units):
            walk.step()
    return walk


def design_table(d: int, n: int, columns: int, epochs: int) -> list[tuple[str, float]]:
    """Variance of a column x sample-orderings walked, for the unit where it is largest, for
    four designs and SAGE's draws (the seed-like AE, 64 background rows); relative to the best."""
    model, X = build_problem(d, n, epochs)
    engine = aefi_widget.ShapleyImportance(model, X, background=min(64, n), seed=1)
    rng = np.random.default_rng(5)
    samples = np.arange(n)
    shared, own = [], []  # per column: (n, F) contributions of forward and reverse walks
    for _ in range(columns):
        for kind, store in (("shared", shared), ("own", own)):
            if kind == "shared":
                orders = np.tile(rng.permutation(d), (n, 1))
            else:
                orders = np.stack([rng.permutation(d) for _ in range(n)])
            both = np.concatenate([orders, orders[:, ::-1]])
            walk = _walk(engine, np.concatenate([samples, samples]), both)
            values = walk.contributions.numpy()
            store.append((values[:n], values[n:]))
    rows = []
    for name, store in (("one ordering shared by all samples", shared), ("one per sample", own)):
        forward = np.array([f.mean(axis=0) for f, _ in store])  # (R, F) column means
        paired = np.array([((f + r) / 2).mean(axis=0) for f, r in store])
        # Variance of a column x walks it costs (n or 2n), for the unit where it is largest.
        rows.append((f"{name}, single", float(forward.var(axis=0, ddof=1).max() * n)))
        rows.append((f"{name}, antithetic pair", float(paired.var(axis=0, ddof=1).max() * 2 * n)))
    draws = np.concatenate([f for f, _ in own])  # SAGE: a random sample with its own ordering
    rows.append(("SAGE: one sample, one ordering per draw", float(draws.var(axis=0).max())))
    best = min(value for _, value in rows)
    return [(name, value / best) for name, value in rows]


def ordering_times(d: int, walks: int, steps: int) -> dict[str, float]:
    """Seconds per ordering (one sample, 64 background rows, all d steps) by forward path,
    from ``steps`` steps of ``walks`` walks (an untrained AE: the cost does not depend on it)."""
    model = seed_like_autoencoder(d, seed=0).eval()
    X = torch.randn(max(walks, 64), d)
    samples = np.arange(walks) % len(X)
    orders = np.stack([np.random.default_rng(i).permutation(d) for i in range(walks)])
    times = {}
    for path in ("auto", "plain"):
        engine = aefi_widget.ShapleyImportance(model, X, background=64, _forward_path=path)
        _walk(engine, samples, orders, steps=2)  # warm-up
        seconds, _ = timed(lambda e=engine: _walk(e, samples, orders, steps=steps))
        times[engine.forward_path] = seconds / steps * d / walks
    return times


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, nargs="+", default=[50, 100], help="feature counts")
    parser.add_argument("--n", type=int, default=512, help="samples")
    parser.add_argument("--tol", type=float, default=0.025, help="convergence threshold")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds per d")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the AE")
    parser.add_argument("--design-columns", type=int, default=8, help="columns per design")
    parser.add_argument("--big-d", type=int, default=1000, help="d of the per-ordering timing")
    parser.add_argument("--big-walks", type=int, default=32, help="walks per call there")
    parser.add_argument("--big-steps", type=int, default=20, help="steps timed there")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice); 1 is steadier on a busy machine",
    )
    parser.add_argument("--calibration", type=int, default=0, metavar="RUNS",
                        help="also run aefi RUNS times per d to check whose SEs are calibrated")
    parser.add_argument("--quick", action="store_true", help="d=50, 4 design columns, 10 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.d, args.design_columns, args.big_steps = [50], 4, 10
    return args


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n={args.n}, "
          f"64 background rows, tol={args.tol}", flush=True)  # fmt: skip
    rows = []
    for d in args.d:
        rows.append(compare(d, args.n, args))
        print(f"d={d} done", flush=True)
    print("\nTime to convergence (max SE / range < tol), medians of", args.repeats, "round(s)")
    print(f"{'d':>5} {'aefi s':>8} {'sage s':>8} {'speed-up':>8} {'aefi orderings':>22} "
          f"{'sage orderings':>14} {'max |diff| / SE':>15} {'within 3 SE':>11} {'RMS z':>6}"
          f" {'P(max > 3) by chance':>20}")  # fmt: skip
    for r in rows:
        walked = f"{r['aefi_orderings']:,} ({r['aefi_columns']} col)"
        print(f"{r['d']:>5} {r['aefi_s']:>8.1f} {r['sage_s']:>8.1f} "
              f"{r['sage_s'] / r['aefi_s']:>7.1f}x {walked:>22} {r['sage_orderings']:>14,} "
              f"{r['max_diff_se']:>15.2f} {r['within_3se']:>11.0%} {r['rms_z']:>6.2f}"
              f" {r['chance_max_over_3']:>20.0%}")  # fmt: skip
    for r in rows:
        if "calibration_runs" in r:
            print(
                f"calibration, d={r['d']}: {r['calibration_runs']} aefi runs (seeds 0..): each "
                f"vs the others' mean RMS z {r['aefi_rms_z']:.3f}, max |z| {r['aefi_max_z']:.2f} "
                f"of {r['aefi_comparisons']}; their spread / reported SE "
                f"{r['aefi_sd_over_se']:.3f}; sage vs their mean RMS z {r['sage_rms_z']:.3f}, "
                f"max |z| {r['sage_max_z']:.2f} (calibrated SEs: RMS z ~ 1)"
            )
    worst = min(r["sage_s"] / r["aefi_s"] for r in rows)
    print(f"target: aefi >= 5x faster: {'met' if worst >= 5 else 'NOT met'} (worst {worst:.1f}x)")
    if args.design_columns >= 2:
        d = args.d[0]
        print(
            f"\nEstimator design, d={d}, n={args.n} ({args.design_columns} columns each): "
            "variance of a column x orderings walked,\nlargest unit, relative to the best"
        )
        for name, value in design_table(d, args.n, args.design_columns, args.epochs):
            print(f"  {name:<46} {value:>8.1f}")
    times = ordering_times(args.big_d, args.big_walks, args.big_steps)
    print(
        f"\nSeconds per ordering at d={args.big_d} (one sample, 64 background rows, "
        f"{args.big_d} steps;\n{args.big_walks} walks per call, {args.big_steps} steps timed)"
    )
    for path, seconds in times.items():
        print(f"  {path:<6} {seconds:8.3f} s")
    if "rank1" in times and "plain" in times:
        print(f"  rank-1 path: {times['plain'] / times['rank1']:.2f}x faster than plain")
    return rows


if __name__ == "__main__":
    main()
