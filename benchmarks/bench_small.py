"""Small problems, where per-call overhead rather than FLOPs decides: aefi against plain loops.

Usage::

    python benchmarks/bench_small.py --quick         # iris, d=200, breast cancer, short: < 1 min
    python benchmarks/bench_small.py --skip-d1000    # iris + d=200 + sklearn tables: minutes
    python benchmarks/bench_small.py --skip-d1000 --skip-sklearn   # iris + d=200: a minute
    python benchmarks/bench_small.py                 # + d=1000, n=950: several minutes

Three cases, each timed in one process with the methods interleaved (the order rotates every
round, so a drift in the machine's speed hits every method alike), after one warm-up run of each;
the tables print medians over the rounds and each loop's ratio to aefi:

1. the forum recipe's iris example (``/work/shared/notes/forum-recipe.md``), rebuilt: 5 columns
   (4 measurements and the species), 27 validation rows, the 3-layer Tanh autoencoder trained
   with NAdam, metric ``rmse_pct``, 50 repeats, target ``"permuted"``. aefi against the recipe's
   loop (a shuffled ``DataLoader`` of batch size 4 for every feature and repeat) and the same
   loop with the whole batch in one forward call;
2. the seed-like autoencoder of :mod:`aefi_widget.demo` at d = 200 and d = 1000 (n = 950,
   ``bench_permutation.build_problem``): aefi against the whole-batch loop (target
   ``"original"``); at d = 1000 the loop is timed on a subset of features and scaled (``~``).

3. scikit-learn's digits (1,797 x 64) and breast cancer (569 x 30) tables, standardised, with the
   seed-like autoencoder trained on them: aefi against the whole-batch loop (target
   ``"original"``, mse) at 5 and 50 repeats, 5 rounds (``--rounds-sklearn``).

The targets are printed with PASS or MISS; nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from bench_permutation import build_problem, loop_whole_batch, spread_features, top_overlap
from torch.utils.data import DataLoader, TensorDataset

import aefi_widget

IRIS_REPEATS = 50


@dataclass
class Method:
    """A timed method: ``run()`` does the whole job once; ``scale`` extrapolates a subset."""

    name: str
    run: Callable[[], object]
    target: float | None = None  # required (loop seconds / aefi seconds); None for aefi
    scale: float = 1.0
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * self.scale


def _cpu_ticks() -> tuple[int, int, int] | None:
    """(all, busy, this process's) CPU ticks so far, from /proc; None where there is no /proc."""
    try:
        with open("/proc/stat") as stat, open("/proc/self/stat") as own:
            ticks = [int(v) for v in stat.readline().split()[1:9]]
            fields = own.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(ticks), sum(ticks) - ticks[3] - ticks[4], int(fields[11]) + int(fields[12])


def others_share(before: tuple[int, int, int] | None) -> float | None:
    """Share of the machine's CPU time other processes used since ``before`` (None: unknown)."""
    after = _cpu_ticks()
    if before is None or after is None:
        return None
    total, busy, own = (b - a for a, b in zip(before, after, strict=True))
    return max(0.0, (busy - own) / max(1, total))


def time_interleaved(methods: Sequence[Method], rounds: int, threads: int) -> float | None:
    """Warm each method up once, then time ``rounds`` rounds, rotating the order every round.

    Returns the share of CPU time other processes used meanwhile (None where unknown): on a
    2-core machine any share above a few percent distorts the ratios, most of all for aefi's
    multi-threaded kernels, which wait for a descheduled thread at every call.
    """
    for method in methods:
        method.run()
    before = _cpu_ticks()
    for r in range(rounds):
        for i in range(len(methods)):
            method = methods[(i + r) % len(methods)]
            start = time.perf_counter()
            method.run()
            method.seconds.append(time.perf_counter() - start)
            if torch.get_num_threads() != threads:  # every method must run on the same threads
                raise RuntimeError(f"{method.name} changed torch's thread count")
    return others_share(before)


def describe_load(share: float | None) -> str:
    """The load line printed under each table."""
    if share is None:
        return "other processes' CPU share: unknown (no /proc)"
    warning = "  WARNING: a busy machine; rerun when it is quiet" if share > 0.05 else ""
    return f"other processes' CPU share during the timings: {share:.0%}{warning}"


def verdict(ratio: float, target: float) -> str:
    """``">= target  PASS"`` or ``MISS``."""
    return f">= {target:g}  {'PASS' if ratio >= target else 'MISS'}"


def format_table(methods: Sequence[Method]) -> str:
    """Method, median seconds (``~`` when scaled from a subset), spread, ratio to aefi, target."""
    aefi = methods[0].median
    lines = [f"{'method':<46} {'seconds':>10} {'spread':>7} {'/ aefi':>7}  target", "-" * 84]
    for m in methods:
        digits = 4 if m.median < 1 else 2 if m.median < 100 else 1
        seconds = f"{'~' if m.scale != 1 else ''}{m.median:,.{digits}f}"
        spread = f"{max(m.seconds) / min(m.seconds):.2f}"
        ratio = m.median / aefi
        target = "" if m.target is None else verdict(ratio, m.target)
        lines.append(f"{m.name:<46} {seconds:>10} {spread:>7} {ratio:>7.2f}  {target}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- iris


def rmse_pct(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ``100 * ||recon - x|| / ||x||`` in percent: (rows,)."""
    return 100 * torch.linalg.vector_norm(recon - x, dim=1) / torch.linalg.vector_norm(x, dim=1)


def iris_problem() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The recipe's data: (train (108, 5), validation (27, 5)) float32 and the column names.

    The species is appended as a fifth column; quantile-scaled to [0, 1] with the transformer
    fitted on the training rows.
    """
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import QuantileTransformer

    iris = load_iris(as_frame=True)
    frame = iris.data.assign(species=iris.target)
    rest, _test = train_test_split(range(len(frame)), test_size=0.1, random_state=0)
    train, validation = train_test_split(rest, test_size=0.2, random_state=0)
    scaler = QuantileTransformer(output_distribution="uniform", n_quantiles=10, random_state=0)
    scaler.fit(frame.iloc[train])

    def scaled(rows: list[int]) -> torch.Tensor:
        return torch.tensor(scaler.transform(frame.iloc[rows]), dtype=torch.float32)

    return scaled(train), scaled(validation), list(frame.columns)


def iris_autoencoder(n: int) -> torch.nn.Sequential:
    """The recipe's model: a 3-layer Tanh encoder to 3 latents and its mirror image."""
    encoder = torch.nn.Sequential(
        torch.nn.Linear(n, n), torch.nn.Tanh(), torch.nn.Linear(n, 5), torch.nn.Tanh(),
        torch.nn.Linear(5, 3),
    )  # fmt: skip
    decoder = torch.nn.Sequential(
        torch.nn.Tanh(), torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, n),
        torch.nn.Tanh(), torch.nn.Linear(n, n),
    )  # fmt: skip
    return torch.nn.Sequential(encoder, decoder)


def train_iris(train: torch.Tensor, epochs: int) -> torch.nn.Sequential:
    """Seed 0, NAdam, MSE, shuffled batches of 4, ``epochs`` passes; the model in eval mode."""
    torch.manual_seed(0)
    model = iris_autoencoder(train.shape[1])
    optimiser = torch.optim.NAdam(model.parameters())
    loss_fn = torch.nn.MSELoss()
    loader = DataLoader(TensorDataset(train), batch_size=4, shuffle=True)
    for _ in range(epochs):
        for (batch,) in loader:
            optimiser.zero_grad()
            loss_fn(model(batch), batch).backward()
            optimiser.step()
    return model.eval()


def recipe_loop(
    model: torch.nn.Module, X: torch.Tensor, repeats: int, batch_size: int | None, seed: int = 0
) -> np.ndarray:
    """The recipe's permutation test: (features, repeats) changes of the mean ``rmse_pct``.

    Each repeat shuffles one column of a copy of X (numpy ``default_rng(seed)``) and evaluates
    the permuted data against itself through a shuffled DataLoader of ``batch_size`` rows, or in
    one forward call when ``batch_size`` is None.
    """
    rng = np.random.default_rng(seed)
    n, d = X.shape

    def mean_error(data: torch.Tensor) -> float:
        if batch_size is None:
            return float(rmse_pct(model(data), data).mean())
        loader = DataLoader(TensorDataset(data), batch_size=batch_size, shuffle=True)
        return sum(float(rmse_pct(model(b), b).sum()) for (b,) in loader) / n

    changes = np.empty((d, repeats))
    with torch.no_grad():
        baseline = mean_error(X)
        for j in range(d):
            for r in range(repeats):
                permuted = X.clone()
                permuted[:, j] = X[torch.from_numpy(rng.permutation(n)), j]
                changes[j, r] = mean_error(permuted) - baseline
    return changes


def run_iris(args: argparse.Namespace, threads: int) -> list[Method]:
    """Train the recipe's model, time the three methods, print the table and the rankings."""
    train, validation, names = iris_problem()
    seconds = time.perf_counter()
    model = train_iris(train, args.iris_epochs)
    seconds = time.perf_counter() - seconds
    with torch.no_grad():
        error = float(rmse_pct(model(validation), validation).mean())
    print(
        f"\n== iris: {validation.shape[0]} validation rows, {len(names)} features, "
        f"{args.iris_repeats} repeats, target 'permuted', metric rmse_pct ==\n"
        f"trained {args.iris_epochs} epochs in {seconds:.1f} s; validation rmse% {error:.1f} "
        f"(the recipe reports about 13 %)",
        flush=True,
    )
    outputs: dict[str, object] = {}

    def aefi() -> None:
        outputs["aefi"] = aefi_widget.permutation_importance(
            model, validation, n_repeats=args.iris_repeats, metric="rmse_pct",
            target="permuted", feature_names=names, seed=0,
        )  # fmt: skip

    def loop(batch_size: int | None) -> Callable[[], None]:
        def run() -> None:
            outputs[batch_size] = recipe_loop(model, validation, args.iris_repeats, batch_size)

        return run

    methods = [
        Method("aefi_widget.permutation_importance", aefi),
        Method("recipe: DataLoader batch 4 (shuffled) loop", loop(4), target=10),
        Method("same loop, whole batch per forward", loop(None), target=3),
    ]
    load = time_interleaved(methods, args.rounds, threads)
    result = outputs["aefi"]
    print(
        f"forward path {result.settings['forward_path']}, fused kernels "
        f"{result.settings['fused_kernels']}, batch_rows {result.settings['batch_rows']}; "
        f"median of {args.rounds} rounds\n{format_table(methods)}\n{describe_load(load)}"
    )
    aefi_mean = result.importances_mean
    loop_mean = pd.Series(outputs[4].mean(axis=1), index=names)
    aefi_rank = list(aefi_mean.sort_values(ascending=False).index)
    loop_rank = list(loop_mean.sort_values(ascending=False).index)
    print(f"ranking, aefi:         {' > '.join(aefi_rank)}")
    print(f"ranking, batch-4 loop: {' > '.join(loop_rank)}")
    print(f"rankings {'agree' if aefi_rank == loop_rank else 'DIFFER'}")
    return methods


# ----------------------------------------------------------------------------- seed-like AE


def run_seed_like(
    d: int, args: argparse.Namespace, threads: int, rounds: int, target: float, loop_features: int
) -> list[Method]:
    """aefi vs the whole-batch loop on the seed-like AE (n = ``args.n``); the loop runs on
    ``loop_features`` spread features when fewer than d (scaled: every feature costs the same)."""
    seconds = time.perf_counter()
    model, X = build_problem(d, args.n, args.epochs)
    seconds = time.perf_counter() - seconds
    features = spread_features(d, loop_features)
    subset = len(features) < d
    print(
        f"\n== seed-like AE: d={d}, n={args.n}, {args.repeats} repeats, target 'original', "
        f"metric mse ==\ntrained {args.epochs} epochs in {seconds:.1f} s"
        + (f"; the loop runs {len(features)} of {d} features, scaled x{d / len(features):.1f}"
           if subset else ""),
        flush=True,
    )  # fmt: skip
    outputs: dict[str, object] = {}

    def aefi() -> None:
        outputs["aefi"] = aefi_widget.permutation_importance(
            model, X, n_repeats=args.repeats, seed=0
        )

    def loop() -> None:
        outputs["loop"] = loop_whole_batch(model, X, features, args.repeats)

    methods = [
        Method("aefi_widget.permutation_importance", aefi),
        Method("whole-batch loop, features x repeats", loop, target, d / len(features)),
    ]
    load = time_interleaved(methods, rounds, threads)
    result = outputs["aefi"]
    print(
        f"forward path {result.settings['forward_path']}, fused kernels "
        f"{result.settings['fused_kernels']}, batch_rows {result.settings['batch_rows']}; "
        f"median of {rounds} rounds\n{format_table(methods)}\n{describe_load(load)}"
    )
    if not subset:
        overlap = top_overlap(result.importances_mean.to_numpy(), outputs["loop"].mean(axis=1))
        print(f"top-10 overlap with the loop (its own permutations): {overlap}/10")
    return methods


# ----------------------------------------------------------------------------- scikit-learn tables

SKLEARN_TABLES = {"digits": "load_digits", "breast cancer": "load_breast_cancer"}
SKLEARN_REPEATS = (5, 50)


def sklearn_problem(table: str, epochs: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """A scikit-learn table standardised (float32) and the seed-like AE trained on it (seed 0)."""
    import sklearn.datasets
    from sklearn.preprocessing import StandardScaler

    from aefi_widget.demo import seed_like_autoencoder, train_autoencoder

    data = getattr(sklearn.datasets, SKLEARN_TABLES[table])().data
    X = StandardScaler().fit_transform(data).astype(np.float32)  # digits' constant pixels: 0
    model = train_autoencoder(seed_like_autoencoder(X.shape[1]), X, epochs=epochs)
    return model, torch.from_numpy(X)


def run_sklearn(table: str, repeats: int, args: argparse.Namespace, threads: int) -> list[Method]:
    """aefi vs the whole-batch loop on a scikit-learn table (every feature, ``repeats``)."""
    model, X = sklearn_problem(table, args.epochs)
    n, d = X.shape
    print(
        f"\n== {table}: {n} x {d}, seed-like AE ({args.epochs} epochs), {repeats} repeats, "
        f"target 'original', metric mse ==",
        flush=True,
    )
    outputs: dict[str, object] = {}

    def aefi() -> None:
        outputs["aefi"] = aefi_widget.permutation_importance(model, X, n_repeats=repeats, seed=0)

    def loop() -> None:
        outputs["loop"] = loop_whole_batch(model, X, range(d), repeats)

    methods = [
        Method("aefi_widget.permutation_importance", aefi),
        Method("whole-batch loop, features x repeats", loop, target=1.2),
    ]
    load = time_interleaved(methods, args.rounds_sklearn, threads)
    result = outputs["aefi"]
    print(
        f"forward path {result.settings['forward_path']}, fused kernels "
        f"{result.settings['fused_kernels']}; median of {args.rounds_sklearn} rounds\n"
        f"{format_table(methods)}\n{describe_load(load)}"
    )
    return methods


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (iris, d=200)")
    parser.add_argument("--rounds-d1000", type=int, default=3, help="timed rounds at d=1000")
    parser.add_argument("--n", type=int, default=950, help="samples of the seed-like cases")
    parser.add_argument("--repeats", type=int, default=3, help="repeats, seed-like cases")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs, seed-like AE")
    parser.add_argument(
        "--loop-features", type=int, default=100, help="features the loop runs on at d=1000"
    )
    parser.add_argument("--skip-d1000", action="store_true", help="no d=1000 case")
    parser.add_argument(
        "--rounds-sklearn", type=int, default=5, help="timed rounds (digits, breast cancer)"
    )
    parser.add_argument(
        "--skip-sklearn", action="store_true", help="no digits and breast-cancer tables"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="iris (40 epochs, 10 repeats), d=200 (1 repeat) and breast cancer (5 repeats), "
        "3 rounds: < 1 minute",
    )
    args = parser.parse_args(argv)
    args.iris_epochs, args.iris_repeats = 200, IRIS_REPEATS
    args.sklearn_cases = [(t, r) for t in SKLEARN_TABLES for r in SKLEARN_REPEATS]
    if args.quick:
        args.iris_epochs, args.iris_repeats, args.rounds = 40, 10, 3
        args.repeats, args.epochs, args.skip_d1000 = 1, 10, True
        args.sklearn_cases, args.rounds_sklearn = [("breast cancer", 5)], 3
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, list[Method]]:
    """Run the cases, print their tables; returns the timed methods by case."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads", flush=True)
    cases = {"iris": run_iris(args, threads)}
    cases["d200"] = run_seed_like(200, args, threads, args.rounds, target=2, loop_features=200)
    if not args.skip_d1000:
        cases["d1000"] = run_seed_like(
            1000, args, threads, args.rounds_d1000, target=1.5, loop_features=args.loop_features
        )
    if not args.skip_sklearn:
        for table, repeats in args.sklearn_cases:
            cases[f"{table}, {repeats} repeats"] = run_sklearn(table, repeats, args, threads)
    print("\nsummary (loop seconds / aefi seconds, medians):")
    for case, methods in cases.items():
        aefi = methods[0].median
        for m in methods[1:]:
            ratio = m.median / aefi
            print(f"  {case:<25} {m.name:<46} {ratio:7.2f}  {verdict(ratio, m.target)}")
    return cases


if __name__ == "__main__":
    main()
