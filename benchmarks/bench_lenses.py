"""Time aefi_widget's latent-code lenses and weight norms against what users write instead.

Usage::

    python benchmarks/bench_lenses.py --quick     # d=200: about a minute
    python benchmarks/bench_lenses.py             # d=1000, n=950: several minutes

The problem is ``bench_permutation.build_problem``: the seed-like autoencoder (encoder
Linear(d, 0.75 d) - ReLU - Linear(0.5 d), so L = d / 2 latent dimensions) trained briefly on
correlated data. In one process, interleaved round by round (``--rounds``, median reported):

- aefi ``latent_importance`` with ``method="permutation"`` (seconds per repeat; the FLOP floor of
  the encoder after its rank-1 first layer alongside), ``"gradient"`` (all L x d Jacobian entries
  of every sample) and ``"mutual_information"`` (all d x L pairs, the encoder's forward pass
  included), and ``weight_importance``;
- ``sklearn.feature_selection.mutual_info_regression(X, code[:, l])`` for every latent dimension l
  (k-nearest-neighbour estimator), timed on ``--sklearn-dims`` dimensions and extrapolated to L;
- captum's ``NeuronGradient`` (times the input: the same quantity as aefi's gradient lens) and
  ``NeuronIntegratedGradients`` (``--ig-steps`` steps) looped over latent dimensions, timed on
  ``--captum-dims`` dimensions and extrapolated.

Extrapolated seconds are marked ``~``. The script also checks that aefi's gradient lens equals
captum's gradient x input on the timed dimensions, and prints the rank agreement (Spearman) of the
two mutual-information estimators there. Target (issue 11): mutual information for all d x L pairs
at least 100x faster than the sklearn loop.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from bench_permutation import build_problem, describe_rates, matmul_gflops, timed
from scipy.stats import spearmanr

import aefi_widget
from aefi_widget.engine.forward import linear_flops_per_row


@dataclass(frozen=True)
class Row:
    """One timed line: seconds for the whole problem (``extrapolated`` from a subset)."""

    name: str
    seconds: float
    extrapolated: bool = False
    note: str = ""


def spread(count: int, total: int) -> list[int]:
    """``count`` indices spread evenly over [0, total)."""
    return sorted({round(float(v)) for v in np.linspace(0, total - 1, min(count, total))})


def sklearn_mi(X: np.ndarray, code: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    """(d, len(dims)): mutual_info_regression of every input against each latent dimension."""
    from sklearn.feature_selection import mutual_info_regression

    return np.column_stack(
        [mutual_info_regression(X, code[:, dim], random_state=0) for dim in dims]
    )


def captum_loop(
    kind: str, encoder: torch.nn.Module, X: torch.Tensor, dims: Sequence[int], steps: int
) -> np.ndarray:
    """(d, len(dims)): mean over samples of |attribution| for each latent dimension, one captum
    call per dimension (gradient x input, or integrated gradients from a zero baseline)."""
    from captum.attr import NeuronGradient, NeuronIntegratedGradients

    columns = []
    for dim in dims:
        if kind == "gradient":
            inputs = X.clone().requires_grad_(True)  # as captum expects (else it warns)
            gradient = NeuronGradient(encoder, encoder).attribute(inputs, neuron_selector=dim)
            attribution = gradient * X
        else:
            method = NeuronIntegratedGradients(encoder, encoder)
            attribution = method.attribute(X, neuron_selector=dim, n_steps=steps)
        columns.append(attribution.detach().abs().mean(dim=0).to(torch.float64).numpy())
    return np.column_stack(columns)


def median_row(
    name: str, runs: list[float], scale: float = 1.0, note: str = "", extrapolated: bool = False
) -> Row:
    """The median of ``runs`` times ``scale`` (a per-repeat share, or a subset's extrapolation)."""
    return Row(name, statistics.median(runs) * scale, extrapolated, note)


def format_rows(rows: Sequence[Row], reference: dict[str, float] | None = None) -> str:
    """A table: name, seconds (``~`` extrapolated), and the ratio to the row's aefi lens."""
    lines = [f"{'method':<58} {'seconds':>10} {'/ aefi':>8}  note", "-" * 110]
    for row in rows:
        seconds = f"{'~' if row.extrapolated else ''}{row.seconds:,.3f}"
        ratio = ""
        if reference is not None and row.name in reference:
            ratio = f"{row.seconds / reference[row.name]:,.0f}x"
        lines.append(f"{row.name:<58} {seconds:>10} {ratio:>8}  {row.note}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=1000, help="features (default 1000)")
    parser.add_argument("--n", type=int, default=950, help="samples (default 950)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the AE")
    parser.add_argument("--repeats", type=int, default=2, help="latent permutation repeats")
    parser.add_argument("--sklearn-dims", type=int, default=3, help="latent dims sklearn runs on")
    parser.add_argument("--captum-dims", type=int, default=3, help="latent dims captum runs on")
    parser.add_argument("--ig-steps", type=int, default=50, help="integrated-gradient steps")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="d=200, 5 epochs, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.d, args.epochs, args.repeats = 200, 5, 1
    return args


def run_round(
    model: torch.nn.Module, X: torch.Tensor, args: argparse.Namespace, dims: dict[str, list[int]]
) -> tuple[dict[str, float], dict[str, Any]]:
    """One interleaved round: every aefi lens right before its baselines."""
    seconds: dict[str, float] = {}
    values: dict[str, Any] = {}
    lenses: list[tuple[str, Callable[[], Any]]] = [
        ("weights", lambda: aefi_widget.weight_importance(model)),
        ("mi", lambda: aefi_widget.latent_importance(model, X, method="mutual_information")),
        ("sklearn_mi", lambda: sklearn_mi(X.numpy(), values["code"], dims["sklearn"])),
        ("gradient", lambda: aefi_widget.latent_importance(model, X, method="gradient")),
        ("captum_grad", lambda: captum_loop("gradient", model.encoder, X, dims["captum"], 0)),
        ("captum_ig", lambda: captum_loop("ig", model.encoder, X, dims["captum"], args.ig_steps)),
        ("permutation", lambda: aefi_widget.latent_importance(model, X, n_repeats=args.repeats)),
    ]
    with torch.no_grad():
        values["code"] = model.encoder(X).to(torch.float64).numpy()
    for key, run in lenses:
        seconds[key], values[key] = timed(run)
        print(f"  {key}: {seconds[key]:.3f} s", flush=True)
    return seconds, values


def main(argv: Sequence[str] | None = None) -> dict[str, Row]:
    """Run the benchmark, print the tables, return the rows by key."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    d, n = args.d, args.n
    print(f"d={d} n={n} torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    build_seconds, (model, X) = timed(lambda: build_problem(d, n, args.epochs))
    model.eval()
    L = model.encoder[-1].out_features
    print(f"trained the seed-like AE ({L} latent dims) in {build_seconds:.1f} s", flush=True)
    rates = matmul_gflops(args.matmul_size)
    print(f"float32 matmul rate: {describe_rates(rates)}", flush=True)
    dims = {"sklearn": spread(args.sklearn_dims, L), "captum": spread(args.captum_dims, L)}
    runs: dict[str, list[float]] = {}
    values: dict[str, Any] = {}
    for number in range(args.rounds):
        print(f"round {number + 1}/{args.rounds}", flush=True)
        seconds, values = run_round(model, X, args, dims)
        for key, value in seconds.items():
            runs.setdefault(key, []).append(value)
    rates_after = matmul_gflops(args.matmul_size)

    permutation = values["permutation"]
    rest_flops = n * d * linear_flops_per_row(model.encoder, skip=model.encoder[0])
    floor = rest_flops / max(rates.values()) / 1e9
    path = f"{permutation.settings['forward_path']}, fused {permutation.settings['fused_kernels']}"
    k_sk, k_ca = len(dims["sklearn"]), len(dims["captum"])
    rows = {
        "permutation": median_row(
            "aefi latent permutation, per repeat", runs["permutation"], 1 / args.repeats,
            f"{args.repeats} repeats, setup included; {path}; FLOP floor {floor:.2f} s "
            f"({rest_flops / 1e12:.2f} TFLOP/repeat at the faster rate)",
        ),
        "gradient": median_row("aefi latent gradient (x input), all dims", runs["gradient"],
                               note=f"{L} x {d} Jacobian of {n} samples"),
        "mi": median_row("aefi mutual information, all d x L pairs", runs["mi"],
                         note=f"{d} x {L} pairs, Gaussian copula, encoder pass included"),
        "weights": median_row("aefi weight norms", runs["weights"]),
        "sklearn_mi": median_row(
            "sklearn mutual_info_regression loop over L dims", runs["sklearn_mi"], L / k_sk,
            f"timed on {k_sk} of {L} dims, x{L / k_sk:.0f}", extrapolated=True,
        ),
        "captum_grad": median_row(
            "captum NeuronGradient x input loop over L dims", runs["captum_grad"], L / k_ca,
            f"timed on {k_ca} of {L} dims, x{L / k_ca:.0f}", extrapolated=True,
        ),
        "captum_ig": median_row(
            "captum NeuronIntegratedGradients loop over L dims", runs["captum_ig"], L / k_ca,
            f"{args.ig_steps} steps; timed on {k_ca} of {L} dims, x{L / k_ca:.0f}",
            extrapolated=True,
        ),
    }  # fmt: skip
    print()
    print(format_rows([rows[k] for k in ("permutation", "gradient", "mi", "weights")]))
    print()
    versus = {
        rows["sklearn_mi"].name: rows["mi"].seconds,
        rows["captum_grad"].name: rows["gradient"].seconds,
        rows["captum_ig"].name: rows["gradient"].seconds,
    }
    print(format_rows([rows[k] for k in ("sklearn_mi", "captum_grad", "captum_ig")], versus))

    gradient_map = values["gradient"].extras["latent_map"][:, dims["captum"]]
    relative = np.abs(gradient_map - values["captum_grad"]).max() / np.abs(gradient_map).max()
    mi_map = values["mi"].extras["latent_map"][:, dims["sklearn"]]
    agreement = [spearmanr(mi_map[:, k], values["sklearn_mi"][:, k]).statistic for k in range(k_sk)]
    print(
        f"\nagreement: gradient lens vs captum gradient x input, max relative difference "
        f"{relative:.1e}; Spearman of MI vs sklearn per latent dim "
        + ", ".join(f"{a:.2f}" for a in agreement)
    )
    print(f"matmul rate before: {describe_rates(rates)}; after: {describe_rates(rates_after)}")
    if not 0.8 < max(rates_after.values()) / max(rates.values()) < 1.25:
        print("WARNING: the matmul rate changed by more than 20 %: timings are noisy, rerun")
    ratio = rows["sklearn_mi"].seconds / rows["mi"].seconds
    print(f"target: sklearn MI loop / aefi MI = {ratio:,.0f}x (>= 100x)")
    assert relative < 1e-3, f"gradient lens differs from captum by {relative:.1e}"
    return rows


if __name__ == "__main__":
    main()
