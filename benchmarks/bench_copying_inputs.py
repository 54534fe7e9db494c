"""What protecting the engine from a model that writes into its input costs, interleaved.

Usage::

    python benchmarks/bench_copying_inputs.py               # d=200 and d=1000
    python benchmarks/bench_copying_inputs.py --d 1000 --seconds 3

Two models compute the same function: one shifts its input in place (``x.sub_(c)``, so the engine
hands it a copy on every call), the other out of place (``x - c``, called as it is). Both run
the permutation engine on the plain path for ``--seconds`` after the first chunk, in
``--rounds`` interleaved rounds; the script prints the median rate in evaluations per second and
the in-place model's ratio to the other.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

import aefi_widget
from aefi_widget.demo import seed_like_autoencoder


class Shifted(torch.nn.Module):
    """``inner(x - 0.5) + 0.5``, with the shift in place or not."""

    def __init__(self, inner: torch.nn.Module, in_place: bool) -> None:
        super().__init__()
        self.inner, self.in_place = inner, in_place

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = x.sub_(0.5) if self.in_place else x - 0.5
        return self.inner(shifted) + 0.5


def rate(model: torch.nn.Module, X: torch.Tensor, seconds: float) -> float:
    """Evaluations per second over ``seconds`` after the first chunk."""
    increments = aefi_widget.PermutationImportance(model, X, n_repeats=1000).increments()
    first = next(increments)
    start, last = time.perf_counter(), first
    while time.perf_counter() - start < seconds:
        last = next(increments)
    increments.close()
    return (last.evaluations_done - first.evaluations_done) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for d in args.d:
        inner = seed_like_autoencoder(d)
        X = torch.randn(args.n, d, generator=torch.Generator().manual_seed(0))
        models = {"out of place": Shifted(inner, False), "in place (copied)": Shifted(inner, True)}
        rates: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                rates[name].append(rate(model, X, args.seconds))
        base = statistics.median(rates["out of place"])
        for name, values in rates.items():
            median = statistics.median(values)
            print(f"d={d:5d}  {name:18s} {median:12,.0f} evals/s  ratio {median / base:.3f}")


if __name__ == "__main__":
    main()
