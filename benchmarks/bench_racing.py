"""Evaluations a certified top-k race spends vs the full run, on a simulated planted problem.

No model: per-repeat importances are drawn from known distributions (k planted units of importance
about 1, the rest near 0), so this measures the statistics of :mod:`aefi_widget.engine.racing`
alone. The engine's loop is played (:func:`aefi_widget.engine.permutation_race.replay`): each
round every unsettled unit gets one more repeat (the top_k + 10 with the largest means two), and
:func:`race` looks after each round.

    python benchmarks/bench_racing.py [--units 1000] [--top-k 20] [--repeats 50] [--seeds 5]

Target (issue 10): the certified top-20 of 1,000 units with a 50-repeat budget costs <= 25 % of the
full run's evaluations.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aefi_widget.engine.permutation_race import RaceSettings, finished_mask, replay


def planted(seed: int, units: int, k: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """(units, repeats) draws: k units ~ N(1 +- 0.2, 0.1^2), the rest ~ N(U(0, 0.05), 0.05^2)."""
    rng = np.random.default_rng(seed)
    top = rng.choice(units, size=k, replace=False)
    means = rng.uniform(0.0, 0.05, units)
    spreads = np.full(units, 0.05)
    means[top], spreads[top] = rng.uniform(0.8, 1.2, k), 0.1
    return means[:, None] + spreads[:, None] * rng.standard_normal((units, repeats)), np.sort(top)


def race_once(draws: np.ndarray, k: int) -> tuple[np.ndarray, int, int, bool]:
    """Play the engine's racing loop; returns the certified set, evaluations spent, rounds,
    certified."""
    repeats = draws.shape[1]
    replayed = replay(draws, repeats, RaceSettings(k, 0.95, 3, repeats))
    rounds = sum(1 for slots in replayed.slots if slots)
    spent = finished_mask(draws.shape, replayed.slots, len(replayed.slots), 0)
    decision = replayed.decision
    assert decision is not None
    return np.flatnonzero(decision.settled_in), int(spent.sum()), rounds, decision.certified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    full = args.units * args.repeats
    print(f"{args.units} units, top {args.top_k}, budget {args.repeats} repeats ({full} evals)")
    print(
        f"{'seed':>4} {'certified':>9} {'exact':>5} {'rounds':>6} {'evals':>7} {'fraction':>8} "
        f"{'race s':>7}"
    )
    fractions = []
    for seed in range(args.seeds):
        draws, top = planted(seed, args.units, args.top_k, args.repeats)
        start = time.perf_counter()
        found, spent, rounds, certified = race_once(draws, args.top_k)
        seconds = time.perf_counter() - start
        exact = np.array_equal(found, top)
        fractions.append(spent / full)
        print(
            f"{seed:>4} {certified!s:>9} {exact!s:>5} {rounds:>6} {spent:>7} "
            f"{spent / full:>8.1%} {seconds:>7.3f}"
        )
    print(f"mean fraction of the full run's evaluations: {np.mean(fractions):.1%} (target <= 25 %)")


if __name__ == "__main__":
    main()
