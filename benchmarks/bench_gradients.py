"""Time aefi_widget's gradient_importance against captum's IntegratedGradients, in one process, and
time cheap "first look" configurations against the full answer.

Usage::

    python benchmarks/bench_gradients.py --quick     # d=200, n=256: under a minute
    python benchmarks/bench_gradients.py             # d=1000, n=950: a few minutes

It builds the seed-like autoencoder of :mod:`aefi_widget.demo` (``build_problem`` of
bench_permutation), then, in interleaved rounds (every method once per round; medians reported):

1. ``aefi.gradient_importance`` with its defaults (integrated gradients, 32 Gauss-Legendre steps,
   mean baseline, mse) against ``captum.attr.IntegratedGradients`` on a per-sample loss wrapper
   with the same model, baseline, steps, rule and samples (captum's defaults: one forward and
   backward call for all samples and steps). Target: aefi no slower than captum.
2. First-look configurations, timed end to end (engine set-up included), each with the overlap
   of its top-20 features (by mean |attribution|) with the full answer's top-20. Target: <= 2 s
   at d = 1,000, n = 950.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from bench_permutation import build_problem, describe_rates, matmul_gflops

import aefi_widget as aefi

TOP = 20
FIRST_LOOK_SECONDS = 2.0


@dataclass(frozen=True)
class FirstLook:
    """A cheap configuration: gradient_importance keywords on ``samples`` rows (None: all)."""

    label: str
    keywords: dict[str, Any]
    samples: int | None


FIRST_LOOKS = (
    FirstLook("gradient x input, all samples", {"method": "gradient_x_input"}, None),
    FirstLook("IG 2 steps, all samples", {"steps": 2}, None),
    FirstLook("IG 4 steps, all samples", {"steps": 4}, None),
    FirstLook("IG 8 steps, all samples", {"steps": 8}, None),
    FirstLook("IG 4 steps, 512 samples", {"steps": 4}, 512),
    FirstLook("IG 8 steps, 256 samples", {"steps": 8}, 256),
)


def captum_integrated_gradients(
    model: torch.nn.Module, X: torch.Tensor, baseline: torch.Tensor, steps: int
) -> np.ndarray:
    """(n, d) captum attributions of each sample's mse against itself (the loss wrapper the
    tests use: X as an additional forward argument is expanded with the path points)."""
    from captum.attr import IntegratedGradients

    def loss(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((model(z) - target) ** 2).mean(dim=1)

    attributions = IntegratedGradients(loss).attribute(
        X, baselines=baseline[None, :], additional_forward_args=(X,), n_steps=steps,
        method="gausslegendre",
    )  # fmt: skip
    return attributions.detach().numpy()


def interleaved(
    functions: dict[str, Callable[[], Any]], rounds: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds per function over ``rounds`` rounds that run each once, and last results."""
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    results: dict[str, Any] = {}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            results[name] = function()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}, results


def top_names(result: aefi.ImportanceResult, k: int = TOP) -> set[str]:
    return set(result.top(k))


def subset(X: torch.Tensor, samples: int | None, seed: int = 0) -> torch.Tensor:
    """``samples`` rows of X drawn without replacement (fixed seed), in order; X when None."""
    if samples is None or samples >= len(X):
        return X
    rows = np.sort(np.random.default_rng(seed).choice(len(X), samples, replace=False))
    return X[torch.from_numpy(rows)]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=1000, help="features (default 1000)")
    parser.add_argument("--n", type=int, default=950, help="samples (default 950)")
    parser.add_argument("--steps", type=int, default=32, help="integration steps (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the AE")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the timed matmul")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="d=200, n=256, 10 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.d, args.n, args.epochs = 200, 256, 10
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print the tables, return median seconds by row label."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    d, n, steps = args.d, args.n, args.steps
    print(f"d={d} n={n} steps={steps} rounds={args.rounds} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}",
          flush=True)  # fmt: skip
    model, X = build_problem(d, n, args.epochs)
    model.eval()
    rates = matmul_gflops(args.matmul_size)
    print(f"float32 matmul rate: {describe_rates(rates)}", flush=True)

    # 1. Defaults against captum.
    engine = aefi.GradientImportance(model, X, steps=steps)
    baseline = engine.baseline_row
    medians, results = interleaved(
        {
            "aefi": lambda: aefi.gradient_importance(model, X, steps=steps),
            "captum": lambda: captum_integrated_gradients(model, X, baseline, steps),
        },
        args.rounds,
    )
    full, reference = results["aefi"], results["captum"]
    difference = np.abs(full.extras["per_sample"] - reference).max() / np.abs(reference).max()
    print(f"\nIntegrated gradients, defaults ({steps} Gauss-Legendre steps, mean baseline, mse), "
          f"n={n}, d={d}; forward path {engine.session.path.kind}")  # fmt: skip
    print(f"{'method':<34}{'median s':>10}{'us/sample-step':>16}{'vs aefi':>9}")
    for name, label in (("aefi", "aefi.gradient_importance"),
                        ("captum", "captum IntegratedGradients")):  # fmt: skip
        per_step = medians[name] / (n * steps) * 1e6
        print(f"{label:<34}{medians[name]:>10.2f}{per_step:>16.1f}"
              f"{medians[name] / medians['aefi']:>9.2f}")  # fmt: skip
    print(f"agreement: max |aefi - captum| / max |captum| = {difference:.1e}; completeness gap "
          f"{full.settings['completeness_gap']:.2%}")  # fmt: skip
    print(f"target: aefi no slower than captum -> captum / aefi = "
          f"{medians['captum'] / medians['aefi']:.2f} (>= 1)")  # fmt: skip

    # 2. First looks, end to end, against the full answer's top-20.
    looks = {
        look.label: (lambda look=look: aefi.gradient_importance(
            model, subset(X, look.samples), **look.keywords))
        for look in FIRST_LOOKS
    }  # fmt: skip
    look_medians, look_results = interleaved(looks, args.rounds)
    reference_top = top_names(full)
    print(f"\nFirst looks (end to end, set-up included) vs the full answer's top-{TOP}")
    print(f"{'configuration':<34}{'median s':>10}{f'top-{TOP} overlap':>16}")
    overlaps = {}
    for label, seconds in look_medians.items():
        overlaps[label] = len(top_names(look_results[label]) & reference_top)
        print(f"{label:<34}{seconds:>10.2f}{overlaps[label]:>13}/{TOP}")
    fast = [label for label, seconds in look_medians.items() if seconds <= FIRST_LOOK_SECONDS]
    if fast:
        best = max(fast, key=lambda label: (overlaps[label], -look_medians[label]))
        print(f"recommended first look: {best} ({look_medians[best]:.2f} s, "
              f"{overlaps[best]}/{TOP} of the full top-{TOP})")  # fmt: skip
    else:
        print(f"no configuration finished within {FIRST_LOOK_SECONDS:.0f} s on this machine")
    rates_after = matmul_gflops(args.matmul_size)
    print(f"\nmatmul rate before: {describe_rates(rates)}; after: {describe_rates(rates_after)}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if not 0.8 < max(rates_after.values()) / max(rates.values()) < 1.25:
        print("WARNING: the matmul rate changed by more than 20 %: timings are noisy, rerun")
    return {**medians, **look_medians}


if __name__ == "__main__":
    main()
