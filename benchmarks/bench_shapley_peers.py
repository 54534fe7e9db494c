"""aefi's Shapley values of the loss against shapiq's approximators on exact games, and the time
to the first values on screen.

Usage::

    python benchmarks/bench_shapley_peers.py                    # d = 10 and 12, 20 seeds
    python benchmarks/bench_shapley_peers.py --d 14 --columns 107   # the issue's d = 14 budget
    python benchmarks/bench_shapley_peers.py --first-values 200     # time to the first values

The game is SAGE's loss game of the seed-like autoencoder briefly trained on correlated data:
v(S) = mean over n samples of the MSE of the mean over B background rows of
``model(x_S, b_{-S})``; exact Shapley values by enumerating all 2^d coalitions in float64.
Budgets are equal in model work (rows through the model): aefi's ``n_permutations=R``
(antithetic) walks 2 R d sample-coalitions of B rows per sample, n R 2 d B rows; a peer's
coalition costs n B rows, so a peer gets 2 R d coalitions (``--columns`` sets R). Printed: mean
RMSE over seeds against the exact values, and for aefi the RMS z and coverage of its 95 %
intervals (extras["se"]).

``--first-values D``: seconds from a run's start to its first snapshot with values and an
interval (the interim estimate of the first column) and to its first finished column, at d = D.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from bench_permutation import build_problem

import aefi_widget as aefi

PEERS = ("KernelSHAP", "PermutationSamplingSV", "SVARM", "StratifiedSamplingSV",
         "UnbiasedKernelSHAP", "OwenSamplingSV", "LeverageSHAP", "RegressionMSR")  # fmt: skip


def exact_game(model: Any, X: torch.Tensor, background: torch.Tensor) -> tuple[np.ndarray, dict]:
    """(d,) exact Shapley values of the loss game and {coalition mask tuple: v(S)}."""
    n, d = X.shape
    B = background.shape[0]
    masks = np.array(list(itertools.product([False, True], repeat=d)), dtype=bool)
    values = {}
    with torch.no_grad():
        for mask in masks:
            rows = background[None].repeat(n, 1, 1)
            keep = torch.as_tensor(mask)
            rows[:, :, keep] = X[:, None, keep]
            prediction = model(rows.reshape(-1, d)).reshape(n, B, d).mean(1)
            values[tuple(mask)] = float(((prediction - X) ** 2).mean(1).mean())
    phi = np.zeros(d)
    for mask in masks:
        size = int(mask.sum())
        for j in np.flatnonzero(~mask):
            weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            joined = mask.copy()
            joined[j] = True
            phi[j] += weight * (values[tuple(mask)] - values[tuple(joined)])
    return phi, values


def aefi_estimates(model: Any, X: torch.Tensor, background: torch.Tensor, columns: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """aefi's (d,) values and SEs with ``n_permutations=columns``."""
    result = aefi.ShapleyImportance(model, X, background=background, n_permutations=columns,
                                    seed=seed, tol=1e-12).run()  # fmt: skip
    return result.importances_mean.to_numpy(), result.extras["se"]


def peer_estimates(name: str, values: dict, d: int, budget: int, seed: int) -> np.ndarray | None:
    """shapiq approximator ``name``'s (d,) values of the game (worth = -loss), or None when the
    installed shapiq lacks it."""
    import shapiq

    cls = getattr(shapiq, name, None)
    if cls is None:
        return None
    options = {"pairing_trick": True} if "Kernel" in name or "Leverage" in name else {}

    def game(coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.atleast_2d(coalitions)
        return np.array([-values[tuple(bool(x) for x in c)] for c in coalitions])

    estimate = cls(n=d, random_state=seed, **options).approximate(budget, game)
    return np.array([estimate[(j,)] for j in range(d)])


def compare(model: Any, X: torch.Tensor, background: torch.Tensor, columns: int, seeds: int,
            peers: Sequence[str] = PEERS) -> dict[str, dict[str, float]]:  # fmt: skip
    """Mean RMSE over ``seeds`` of aefi and every installed peer at equal model rows."""
    d = X.shape[1]
    exact, values = exact_game(model, X, background)
    errors: dict[str, list[float]] = {}
    z = []
    for seed in range(seeds):
        mean, se = aefi_estimates(model, X, background, columns, seed)
        errors.setdefault("aefi", []).append(float(np.sqrt(np.mean((mean - exact) ** 2))))
        z.append((mean - exact) / se)
        for name in peers:
            estimate = peer_estimates(name, values, d, 2 * columns * d, seed)
            if estimate is not None:
                rmse = float(np.sqrt(np.mean((estimate - exact) ** 2)))
                errors.setdefault(name, []).append(rmse)
    z_all = np.concatenate(z)
    out = {name: {"rmse": float(np.mean(e))} for name, e in errors.items()}
    out["aefi"].update(rms_z=float(np.sqrt(np.mean(z_all**2))),
                       coverage=float(np.mean(np.abs(z_all) <= 1.96)))  # fmt: skip
    return out


def first_values(d: int, n: int, epochs: int) -> dict[str, float]:
    """Seconds to the first snapshot with an interim estimate and to the first finished column."""
    model, X = build_problem(d, n, epochs)
    engine = aefi.ShapleyImportance(model, X, n_permutations=3, seed=0)
    start = time.perf_counter()
    times: dict[str, float] = {}
    for snapshot in engine.increments():
        now = time.perf_counter() - start
        if "interim" in snapshot.extras and "interim" not in times:
            times["interim"] = now
            times["interim_samples"] = snapshot.settings["samples_walked"]
        if snapshot.settings["permutations_done"] >= 1:
            times["column"] = now
            break
    return times


def main(argv: Sequence[str] | None = None) -> dict[Any, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, nargs="+", default=[10, 12])
    parser.add_argument("--n", type=int, default=64, help="samples of the game")
    parser.add_argument("--background", type=int, default=16, help="background rows")
    parser.add_argument("--columns", type=int, nargs="+", default=[10, 20], help="aefi's R")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--first-values", type=int, default=0, metavar="D")
    parser.add_argument("--first-n", type=int, default=512, help="samples for --first-values")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # steadier on a shared machine; the errors do not depend on it
    results: dict[Any, Any] = {}
    for d in args.d:
        model, X = build_problem(d, 512, args.epochs)
        model, X = model.double(), X[: args.n].double()
        background = X[: args.background].clone()
        for columns in args.columns:
            table = compare(model, X, background, columns, args.seeds)
            results[d, columns] = table
            print(f"\nd={d}, n={args.n}, B={args.background}: aefi R={columns} vs peers with "
                  f"{2 * columns * d} coalitions of {2**d} ({args.seeds} seeds)")  # fmt: skip
            best = min(v["rmse"] for k, v in table.items() if k != "aefi")
            for name, row in sorted(table.items(), key=lambda item: item[1]["rmse"]):
                extra = ""
                if name == "aefi":
                    extra = f"  RMS z {row['rms_z']:.3f}, 95 % coverage {row['coverage']:.1%}"
                print(f"  {name:<24} mean RMSE {row['rmse']:.3e}  ({row['rmse'] / best:.2f}x "
                      f"the best peer){extra}")  # fmt: skip
    if args.first_values:
        times = first_values(args.first_values, args.first_n, args.epochs)
        results["first_values"] = times
        print(f"\nd={args.first_values}, n={args.first_n}: first values with an interval "
              f"{times['interim']:.2f} s ({times['interim_samples']} samples walked); first "
              f"finished column {times['column']:.2f} s")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
