"""The rows race (top_k with tolerance) against a 10-repeat exact run, on the seed-like autoencoder.

The problem of ``bench_permutation.build_problem``: ``aefi_widget.demo``'s seed-like autoencoder,
trained ``--epochs`` on ``make_correlated_data(n, d)``. In one process: one exact repeat timed
(x ``--repeats`` gives the full run's time; linear in repeats), then the rows race for each
``--top-k``, then (``--reference-repeats`` > 0) an exact reference run whose means judge the
certified sets: every certified unit's reference importance must be >= the reference's k-th
minus the tolerance. Prints evaluations and wall time as shares of the ``--repeats`` exact run.

    python benchmarks/bench_race_rows.py [--d 1000] [--top-k 10 20] [--tolerance 0.1]
    python benchmarks/bench_race_rows.py --pac 200     # the planted simulation over 200 seeds

``--pac SEEDS`` runs the model-free planted simulation of ``tests/test_pac_race.py`` (k clear
winners, near-ties at the boundary, a bulk near 0, skewed per-row values) over SEEDS seeds and
prints the observed PAC failure rate with its 95 % Clopper-Pearson interval.

Targets (issue 29): d = 1,000, top_k = 10 certified with <= 5 % of the evaluations and of the wall
time; top_k = 20 within <= 30 % of the evaluations, certified or the honest tied answer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import aefi_widget as aefi
from aefi_widget import demo


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--n", type=int, default=950)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--top-k", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--repeats", type=int, default=10, help="the exact run compared with")
    parser.add_argument("--reference-repeats", type=int, default=10)
    parser.add_argument("--per-output", action="store_true")
    parser.add_argument("--pac", type=int, default=0, metavar="SEEDS")
    return parser.parse_args(argv)


def pac_table(seeds: int) -> dict[str, Any]:
    """The planted simulation over ``seeds`` seeds: failure rate and its 95 % interval."""
    from scipy import stats
    from test_pac_race import simulate

    failures, spent = 0, []
    for seed in range(seeds):
        outcome = simulate(seed)
        failures += not outcome.correct
        spent.append(outcome.share)
    low = stats.beta.ppf(0.025, failures, seeds - failures + 1) if failures else 0.0
    high = stats.beta.ppf(0.975, failures + 1, seeds - failures)
    print(f"planted simulation, {seeds} seeds: PAC failures {failures} ({failures / seeds:.1%}, "
          f"95 % CI {low:.1%}-{high:.1%}; allowed 5 %), median share of the cap "
          f"{np.median(spent):.1%}")  # fmt: skip
    return {"failures": failures, "seeds": seeds, "ci": (low, high)}


def race_row(
    model: torch.nn.Module, X: torch.Tensor, k: int, args: argparse.Namespace, repeat_s: float
) -> dict[str, Any]:
    started = time.perf_counter()
    result = aefi.permutation_importance(
        model, X, n_repeats=args.repeats, top_k=k, tolerance=args.tolerance,
        confidence=args.confidence, seed=0, per_output=args.per_output,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    full_evals = args.d * args.n * args.repeats
    e = result.extras
    row = {
        "k": k, "result": result, "seconds": seconds,
        "evals": result.evaluations_done / full_evals,
        "time": seconds / (repeat_s * args.repeats),
        "certified": result.certified_top_k, "ranks": int(e["race_certified_ranks"][0]),
        "tied": int((e["settled"] == 0).sum()),
        "separation": float(e["race_separation_rows"][0]) / (args.d * args.n),
        "epsilon": float(e["race_epsilon"][0]),
    }  # fmt: skip
    print(f"top_k={k:>3} tolerance {args.tolerance:.0%}: evaluations {row['evals']:6.2%}, wall "
          f"{seconds:6.1f} s = {row['time']:6.2%} of {args.repeats} x {repeat_s:.2f} s; "
          f"certified {len(row['certified'])} (ranks 1-{row['ranks']} as a set), "
          f"{row['tied']} open/tied units, separation ~{row['separation']:.1f} more full "
          f"repeats", flush=True)  # fmt: skip
    return row


def check_against(rows: list[dict[str, Any]], reference: aefi.ImportanceResult,
                  tolerance: float) -> None:  # fmt: skip
    means = reference.importances_mean
    ranked = means.sort_values(ascending=False)
    for row in rows:
        k = row["k"]
        kth = float(ranked.iloc[k - 1])
        floor = kth - tolerance * kth
        below = [name for name in row["certified"] if means[name] < floor]
        exact_top = set(ranked.index[:k])
        inside = len(set(row["certified"]) & exact_top)
        print(f"top_k={k:>3} vs {reference.n_repeats}-repeat reference: {inside} of "
              f"{len(row['certified'])} certified are in its top {k}; below its k-th minus the "
              f"tolerance: {below or 'none'}; certified {row['certified'][:12]}")  # fmt: skip


def problem(d: int, n: int, epochs: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """``bench_permutation.build_problem``'s model in eval mode; ``epochs=0``: untrained (the
    smoke test: no optimiser, whose first use imports torch's compiler for seconds)."""
    if epochs == 0:
        frame = demo.make_correlated_data(n_samples=n, n_features=d, seed=0)
        model = demo.seed_like_autoencoder(d, seed=0)
        X = torch.tensor(frame.to_numpy())
    else:
        from bench_permutation import build_problem

        model, X = build_problem(d, n, epochs)
    return model.eval(), X


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.pac:
        return pac_table(args.pac)
    print(f"d={args.d} n={args.n} epochs={args.epochs} tolerance={args.tolerance} "
          f"confidence={args.confidence}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} "
          "(shared machine)", flush=True)  # fmt: skip
    model, X = problem(args.d, args.n, args.epochs)
    started = time.perf_counter()
    aefi.permutation_importance(model, X, n_repeats=1, seed=0, per_output=args.per_output)
    repeat_s = time.perf_counter() - started
    print(f"one exact repeat: {repeat_s:.2f} s (a {args.repeats}-repeat run: "
          f"~{args.repeats * repeat_s:.0f} s, {args.d * args.n * args.repeats:,} "
          "evaluations)", flush=True)  # fmt: skip
    rows = [race_row(model, X, k, args, repeat_s) for k in args.top_k]
    out: dict[str, Any] = {"repeat_s": repeat_s, "rows": rows}
    if args.reference_repeats:
        started = time.perf_counter()
        reference = aefi.permutation_importance(
            model, X, n_repeats=args.reference_repeats, seed=1, per_output=False
        )
        print(f"reference: {args.reference_repeats} exact repeats (seed 1) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        check_against(rows, reference, args.tolerance)
        out["reference"] = reference
    return out


if __name__ == "__main__":
    main()
