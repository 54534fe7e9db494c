"""Time aefi_widget's permutation importance against what users write instead, in one process.

Usage::

    python benchmarks/bench_permutation.py --quick        # d=200, 3 repeats: about a minute
    python benchmarks/bench_permutation.py --d 200        # the d=200 reference run
    python benchmarks/bench_permutation.py                # d=1000, n=950, 10 repeats: minutes

It builds the seed-like autoencoder of :mod:`aefi_widget.demo`, trains it briefly on synthetic
correlated data, measures this machine's float32 matmul rate, then times
``aefi_widget.permutation_importance`` against (1) the forum recipe: a DataLoader of batch size 4
over the permuted data, looping over features and repeats, (2) the same loop with the whole
batch in one forward call and (3) ``sklearn.inspection.permutation_importance`` with a thin
estimator wrapper. Slow methods are timed on a subset of features and extrapolated linearly (every
feature costs the same). See ``benchmarks/README.md`` for the targets.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import aefi_widget
from aefi_widget import ImportanceResult
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder, train_autoencoder
from aefi_widget.engine.fused import kernels_available


@dataclass(frozen=True)
class Timing:
    """One method's cost for the whole problem; ``extrapolated`` when timed on a subset."""

    method: str
    seconds: float
    extrapolated: bool = False
    note: str = ""


def build_problem(
    d: int, n: int, epochs: int, seed: int = 0
) -> tuple[torch.nn.Module, torch.Tensor]:
    """The seed-like autoencoder, briefly trained on (n, d) correlated data; (model, X float32)."""
    frame = make_correlated_data(n_samples=n, n_features=d, seed=seed)
    model = train_autoencoder(seed_like_autoencoder(d, seed=seed), frame, epochs=epochs, seed=seed)
    return model, torch.tensor(frame.to_numpy())


def _onednn_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T through oneDNN, the library of aefi's fused kernels."""
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")


def matmul_gflops(size: int = 2048, samples: int = 5) -> dict[str, float]:
    """Median float32 GFLOP/s of ``size`` x ``size`` products, per library (after a warm-up).

    ``torch.mm`` (MKL on x86 CPUs) and oneDNN can differ by 20 % on the same machine; the table's
    share is of the faster one, so that a faster library never counts as less overhead, and the
    targets line prints the share of each.
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    products = {"torch.mm": torch.mm}
    if kernels_available():
        products["oneDNN"] = _onednn_mm
    rates = {}
    with torch.inference_mode():
        for name, product in products.items():
            product(a, b)
            seconds = []
            for _ in range(samples):
                start = time.perf_counter()
                product(a, b)
                seconds.append(time.perf_counter() - start)
            rates[name] = 2 * size**3 / statistics.median(seconds) / 1e9
    return rates


def describe_rates(rates: dict[str, float]) -> str:
    return ", ".join(f"{name} {rate:.1f}" for name, rate in rates.items()) + " GFLOP/s"


def linear_flops_per_sample(model: torch.nn.Module, skip_first: bool) -> int:
    """2 * sum(in * out) over the model's Linear layers, without the first one if ``skip_first``.

    On the rank-1 path the first Linear costs nothing per permuted sample: its pre-activation is
    the unpermuted one plus a rank-1 update, so only the other layers are work aefi must do.
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if skip_first:
        layers = layers[1:]
    return sum(2 * m.in_features * m.out_features for m in layers)


def spread_features(d: int, count: int) -> np.ndarray:
    """``count`` feature indices spread evenly over [0, d) (all of them when count >= d)."""
    return np.unique(np.linspace(0, d - 1, min(count, d)).round().astype(np.int64))


def _permuted(X: torch.Tensor, feature: int, generator: torch.Generator) -> torch.Tensor:
    """A copy of X with one column's rows shuffled, as the recipes do it."""
    permuted = X.clone()
    permuted[:, feature] = X[torch.randperm(X.shape[0], generator=generator), feature]
    return permuted


def _per_sample_mse(model: torch.nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over samples of the per-sample mean squared reconstruction error, one forward call."""
    return float(torch.nn.functional.mse_loss(model(inputs), target))


def recipe_batch4(
    model: torch.nn.Module,
    X: torch.Tensor,
    features: Sequence[int],
    repeats: int,
    seed: int = 0,
) -> np.ndarray:
    """The forum recipe: DataLoader(batch 4) over the permuted data, permuted batch as target.

    Returns (len(features), repeats) importances: error(permuted) - error(original).
    """
    from torch.utils.data import DataLoader, TensorDataset

    def loader_error(data: torch.Tensor) -> float:
        # The recipe's loader yields (input, target) pairs: both the (permuted) batch.
        loader = DataLoader(TensorDataset(data, data), batch_size=4, shuffle=False)
        total = sum(_per_sample_mse(model, xb, yb) * len(xb) for xb, yb in loader)
        return total / len(data)

    generator = torch.Generator().manual_seed(seed)
    importances = np.empty((len(features), repeats))
    with torch.no_grad():
        baseline = loader_error(X)
        for i, feature in enumerate(features):
            for r in range(repeats):
                importances[i, r] = loader_error(_permuted(X, int(feature), generator)) - baseline
    return importances


def loop_whole_batch(
    model: torch.nn.Module,
    X: torch.Tensor,
    features: Sequence[int],
    repeats: int,
    seed: int = 0,
    target: str = "original",
) -> np.ndarray:
    """The same loop with all n samples in one forward call per (feature, repeat).

    ``target="original"`` measures what aefi does by default (so the two can be compared),
    ``"permuted"`` what the recipe measures; both cost the same. Returns (len(features), repeats).
    """
    generator = torch.Generator().manual_seed(seed)
    importances = np.empty((len(features), repeats))
    with torch.no_grad():
        baseline = _per_sample_mse(model, X, X)
        for i, feature in enumerate(features):
            for r in range(repeats):
                permuted = _permuted(X, int(feature), generator)
                reference = X if target == "original" else permuted
                importances[i, r] = _per_sample_mse(model, permuted, reference) - baseline
    return importances


class ReconstructionEstimator:
    """Thin scikit-learn wrapper: ``fit`` does nothing, ``score`` is minus the reconstruction MSE.

    ``X`` given to ``score`` holds the ``columns`` being permuted; the other columns come from
    ``background`` (the unpermuted data), so sklearn can be timed on a column subset while every
    call still runs a full (n, d) forward pass. ``y`` is the unpermuted data (target "original").
    """

    def __init__(self, model: torch.nn.Module, background: np.ndarray, columns: np.ndarray) -> None:
        self.model = model
        self.background = background
        self.columns = columns

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ReconstructionEstimator:
        return self

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        full = self.background.copy()
        full[:, self.columns] = X
        with torch.no_grad():
            recon = self.model(torch.from_numpy(full))
        return -float(torch.nn.functional.mse_loss(recon, torch.from_numpy(y)))


def sklearn_importances(
    model: torch.nn.Module, X: torch.Tensor, features: Sequence[int], repeats: int, seed: int = 0
) -> np.ndarray:
    """``sklearn.inspection.permutation_importance`` on ``features``: (len(features), repeats)."""
    from sklearn.inspection import permutation_importance as sklearn_permutation_importance

    data = X.numpy()
    columns = np.asarray(features)
    estimator = ReconstructionEstimator(model, data, columns)
    result = sklearn_permutation_importance(
        estimator, data[:, columns], data, n_repeats=repeats, random_state=seed
    )
    return np.asarray(result.importances)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, return value) of ``function()``."""
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> int:
    """How many of the k largest entries of ``a`` are among the k largest of ``b``."""
    return len(set(np.argsort(-a)[:k].tolist()) & set(np.argsort(-b)[:k].tolist()))


def subset_timing(
    name: str,
    run: Callable[[np.ndarray], Any],
    d: int,
    count: int,
) -> tuple[Timing, Any]:
    """Time ``run(features)`` on ``count`` spread features, scaled linearly to all ``d``."""
    features = spread_features(d, count)
    seconds, value = timed(lambda: run(features))
    scaled = len(features) < d
    note = f"timed on {len(features)} of {d} features, x{d / len(features):.1f}" if scaled else ""
    return Timing(name, seconds * d / len(features), scaled, note), value


def format_table(rows: Sequence[Timing], reference: float) -> str:
    """The printed table: method, seconds (``~`` marks extrapolated), ratio to aefi, note."""
    lines = [f"{'method':<44} {'seconds':>11} {'x aefi':>8}  note", "-" * 100]
    for row in rows:
        seconds = f"{'~' if row.extrapolated else ''}{row.seconds:,.2f}"
        lines.append(f"{row.method:<44} {seconds:>11} {row.seconds / reference:>8.2f}  {row.note}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=1000, help="features (default 1000)")
    parser.add_argument("--n", type=int, default=950, help="samples (default 950)")
    parser.add_argument("--repeats", type=int, default=10, help="repeats per feature")
    parser.add_argument(
        "--recipe-features",
        type=int,
        default=8,
        help="features the batch-4 recipe is timed on before extrapolating",
    )
    parser.add_argument(
        "--sklearn-features",
        type=int,
        default=None,
        help="columns sklearn is timed on (default: all up to d=200, else 100)",
    )
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the AE")
    parser.add_argument(
        "--min-overlap",
        type=int,
        default=7,
        help="required overlap of aefi's and the loop's top-10 features",
    )
    parser.add_argument(
        "--matmul-size", type=int, default=2048, help="side of the matmul timed for the rate"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice); 1 is steadier on a busy machine",
    )
    parser.add_argument(
        "--quick", action="store_true", help="d=200, 3 repeats, 3 recipe features: for development"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.d, args.repeats, args.recipe_features = 200, 3, 3
    if args.sklearn_features is None:
        args.sklearn_features = args.d if args.d <= 200 else 100
    return args


def time_methods(
    model: torch.nn.Module, X: torch.Tensor, args: argparse.Namespace
) -> tuple[dict[str, Timing], ImportanceResult, np.ndarray]:
    """Time aefi, the recipe, the whole-batch loop and sklearn on the problem.

    Returns the timings by key, aefi's result and the loop's (d, repeats) importances.
    """
    d, repeats = X.shape[1], args.repeats
    aefi_seconds, result = timed(
        lambda: aefi_widget.permutation_importance(model, X, n_repeats=repeats, seed=0)
    )
    print(
        f"aefi: {aefi_seconds:.2f} s, path {result.settings.get('forward_path')}, "
        f"batch_rows {result.settings.get('batch_rows')}",
        flush=True,
    )
    recipe, _ = subset_timing(
        "recipe: DataLoader batch 4, features x repeats",
        lambda f: recipe_batch4(model, X, f, repeats),
        d,
        args.recipe_features,
    )
    print(f"recipe: {recipe.seconds:.1f} s {recipe.note}", flush=True)
    loop_seconds, loop = timed(lambda: loop_whole_batch(model, X, range(d), repeats))
    print(f"whole-batch loop: {loop_seconds:.1f} s", flush=True)
    sklearn, _ = subset_timing(
        "sklearn.inspection.permutation_importance",
        lambda f: sklearn_importances(model, X, f, repeats),
        d,
        args.sklearn_features,
    )
    print(f"sklearn: {sklearn.seconds:.1f} s {sklearn.note}", flush=True)
    timings = {
        "aefi": Timing("aefi_widget.permutation_importance", aefi_seconds),
        "recipe": recipe,
        "loop": Timing("same loop, whole batch per forward", loop_seconds),
        "sklearn": sklearn,
    }
    return timings, result, loop


def flop_rows(
    model: torch.nn.Module, n: int, d: int, repeats: int, rates: dict[str, float], aefi: Timing
) -> tuple[dict[str, Timing], float]:
    """FLOP floors at the faster of the matmul ``rates`` (GFLOP/s per library), aefi's row with
    its share of each rate, and the share of the faster (rank-1 FLOPs / aefi seconds / rate)."""
    fastest = max(rates, key=rates.__getitem__)
    rate = rates[fastest]
    flops_full = n * d * repeats * linear_flops_per_sample(model, skip_first=False)
    flops_rank1 = n * d * repeats * linear_flops_per_sample(model, skip_first=True)
    achieved = flops_rank1 / aefi.seconds / 1e9
    rows = {
        "floor_full": Timing(
            "FLOP floor, full forward passes",
            flops_full / rate / 1e9,
            note=f"{flops_full / 1e12:.2f} TFLOP at the {fastest} rate",
        ),
        "floor_rank1": Timing(
            "FLOP floor, rank-1 first layer",
            flops_rank1 / rate / 1e9,
            note=f"{flops_rank1 / 1e12:.2f} TFLOP: what aefi must do",
        ),
        "aefi": Timing(
            aefi.method,
            aefi.seconds,
            note=f"{achieved:.1f} GFLOP/s = "
            + " / ".join(f"{achieved / r:.0%} of {name}" for name, r in rates.items()),
        ),
    }
    return rows, achieved / rate


def main(argv: Sequence[str] | None = None) -> dict[str, Timing]:
    """Run the benchmark, print the table, return the timings by method key."""
    args = parse_args(argv)
    d, n, repeats = args.d, args.n, args.repeats
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(
        f"d={d} n={n} repeats={repeats} torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    seconds, (model, X) = timed(lambda: build_problem(d, n, args.epochs))
    print(f"trained the seed-like AE for {args.epochs} epochs in {seconds:.1f} s", flush=True)
    rates = matmul_gflops(args.matmul_size)
    rate = max(rates.values())
    print(
        f"float32 matmul rate (median of 5, {args.matmul_size}^2): {describe_rates(rates)}; "
        f"aefi's share is of the faster, {rate:.1f}",
        flush=True,
    )
    measured, result, loop = time_methods(model, X, args)
    rates_after = matmul_gflops(args.matmul_size)
    rate_after = max(rates_after.values())
    floors, share = flop_rows(model, n, d, repeats, rates, measured["aefi"])
    # Floors first, then aefi (with its FLOP-rate note), then the alternatives.
    timings = {**floors, **measured, "aefi": floors["aefi"]}

    aefi_seconds = timings["aefi"].seconds
    print()
    print(format_table(list(timings.values()), aefi_seconds))
    print(
        f"\nmatmul rate before: {describe_rates(rates)}; after: {describe_rates(rates_after)} "
        "(a large drop means other load on the machine)"
    )
    # Both shares: torch.mm is the plain "matmul rate" (the reference numbers match it),
    # oneDNN's packed kernel the fastest product on the machine (the stricter measure).
    shares = " / ".join(f"{share * rate / r:.0%} of {name}" for name, r in rates.items())
    if not 0.8 < rate_after / rate < 1.25:
        print("WARNING: the matmul rate changed by more than 20 %: timings are noisy, rerun")
    print(
        f"targets (d=1000): share of matmul rate {shares} (>= 85 %), "
        f"sklearn / aefi {timings['sklearn'].seconds / aefi_seconds:.2f} (>= 1.4), "
        f"recipe / aefi {timings['recipe'].seconds / aefi_seconds:.1f} (>= 9)"
    )

    aefi_mean = result.importances_mean.to_numpy()
    overlap = top_overlap(aefi_mean, loop.mean(axis=1))
    correlation = float(np.corrcoef(aefi_mean, loop.mean(axis=1))[0, 1])
    print(
        f"agreement with the whole-batch loop (other permutations): top-10 overlap "
        f"{overlap}/10, correlation of mean importances {correlation:.3f}"
    )
    assert overlap >= args.min_overlap, f"top-10 overlap {overlap} < {args.min_overlap}"
    return timings


if __name__ == "__main__":
    main()
