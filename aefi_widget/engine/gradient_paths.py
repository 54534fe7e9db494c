"""Straight-line paths for gradient attributions: quadrature rules, baselines, one block of samples.

Integrated gradients of the per-sample loss ``L_i(z) = error(model(z), x_i)``, whose *target* is
the unperturbed sample ``x_i`` while the input ``z`` moves from the baseline ``b`` to ``x_i``:

    a_ij = (x_ij - b_j) * integral_0^1 dL_i/dz_j (b + t (x_i - b)) dt
         ~ (x_ij - b_j) * sum_k w_k dL_i/dz_j (b + t_k (x_i - b))

so that ``sum_j a_ij = L_i(x_i) - L_i(b)`` up to the quadrature error (completeness). Gradient x
input, ``x_ij * dL_i/dz_j (x_i)``, is the one-node rule ``t = 1, w = 1`` with ``b = 0``.

Exactness: a block of samples is laid out as :mod:`aefi_widget.engine.calls` requires (at least
16 rows, sample i at a row congruent to i modulo 16, steps stacked in whole blocks), and the
weighted gradients are summed step by step in float64, so the numbers do not depend on how many
samples or steps share a call.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aefi_widget.engine.calls import MIN_FORWARD_ROWS, ROW_ALIGNMENT, aligned
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.model_mode import NotDifferentiableError
from aefi_widget.engine.session import ModelSession

__all__ = [
    "BASELINES",
    "MAX_STEPS",
    "QUADRATURES",
    "Block",
    "LossFn",
    "NotDifferentiableError",
    "attribute_block",
    "baseline_row",
    "check_baseline_row",
    "check_differentiable",
    "check_steps",
    "differentiable_errors",
    "path_gradients",
    "quadrature_rule",
]

# captum's names (captum.attr._utils.approximation_methods), default first. Not its
# "riemann_trapezoid": captum halves the end weights of n equal steps, which sum to 1 - 1/n.
QUADRATURES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle")
BASELINES = ("mean", "zeros")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# Path steps accepted: integrated gradients converge in tens of steps (captum's default is 50);
# numpy's Gauss-Legendre nodes come from a steps x steps eigenproblem (8 MB at 1,000).
MAX_STEPS = {"gausslegendre": 1_000, "riemann_left": 100_000, "riemann_middle": 100_000,
             "riemann_right": 100_000}  # fmt: skip


def check_steps(steps: Any, quadrature: str) -> int:
    """``steps`` as an int in [1, MAX_STEPS[quadrature]]; a clear error otherwise, before any
    work (10**9 steps used to fail in numpy with ``MemoryError``)."""
    steps = check_int(steps, "steps", 1)
    limit = MAX_STEPS[quadrature]
    if steps > limit:
        raise ValueError(
            f"steps must be <= {limit:,} for quadrature={quadrature!r}, got {steps:,}: "
            "integrated gradients converge in tens of steps (captum's default is 50; "
            "result.settings['completeness_gap'] tells how close the sum is)"
        )
    return steps


def quadrature_rule(quadrature: str, steps: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nodes ``t_k`` in [0, 1] and weights ``w_k`` (summing to 1) of ``steps``-point rule.

    The same rules as captum's ``method=`` of that name, in float64 (numpy's Gauss-Legendre
    nodes, rescaled from [-1, 1]).
    """
    if quadrature == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return tuple(0.5 * (1.0 + nodes)), tuple(0.5 * weights)
    first = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[quadrature]
    return tuple((k + first) / steps for k in range(steps)), (1.0 / steps,) * steps


def check_baseline_row(baseline: Any, names: Sequence[str]) -> np.ndarray:
    """A user's baseline row as a finite (d,) float64 array; ``TypeError``/``ValueError`` else."""
    d = len(names)
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.detach().cpu().numpy()
    try:
        row = np.asarray(baseline, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"baseline must be 'mean', 'zeros' or a row of {d} numbers, got "
            f"{type(baseline).__name__}"
        ) from None
    if row.shape not in ((d,), (1, d)):
        raise ValueError(
            f"baseline must be 'mean', 'zeros' or one row of shape ({d},) (one value per feature "
            f"of X); got shape {row.shape}"
        )
    row = row.reshape(d)
    bad = np.flatnonzero(~np.isfinite(row))
    if bad.size:
        shown = ", ".join(repr(names[j]) for j in bad[:10])
        raise ValueError(
            f"the baseline row has NaN or inf at {bad.size} feature(s) ({shown}"
            f"{', ...' if bad.size > 10 else ''}); give finite values"
        )
    return row


def baseline_row(baseline: str | np.ndarray, X: torch.Tensor) -> torch.Tensor:
    """The (d,) path start in X's dtype and device: X's mean over samples (summed in float64),
    the zero row, or a row checked by :func:`check_baseline_row`."""
    if isinstance(baseline, str):
        if baseline == "mean":
            return X.to(torch.float64).mean(dim=0).to(X.dtype)
        return torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    return torch.as_tensor(baseline).to(device=X.device, dtype=X.dtype)


# The built-in metrics of engine/metrics.py compute in place (fast for forward-only work), which
# autograd cannot differentiate: these are the same formulas out of place.
def _mse(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (recon - target).square().mean(dim=1)


def _mae(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (recon - target).abs().mean(dim=1)


def _rmse_pct(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    error = torch.linalg.vector_norm(recon - target, dim=1)
    return 100.0 * error / torch.linalg.vector_norm(target, dim=1)


_DIFFERENTIABLE = {"mse": _mse, "mae": _mae, "rmse_pct": _rmse_pct}


def differentiable_errors(session: ModelSession) -> LossFn:
    """Per-sample errors (rows,) that autograd can differentiate: the session's metric."""
    if session.custom_metric:
        return session.errors  # the user's callable, given a copy of the target
    return _DIFFERENTIABLE[session.metric_name]


_NOT_DIFFERENTIABLE = (
    "the model's reconstruction error cannot be differentiated with respect to its input ({}); "
    "gradient methods need a model that autograd can follow from input to output (no "
    ".detach(), torch.no_grad(), numpy or other non-torch steps inside). Use "
    "aefi.permutation_importance, which only runs the model forward."
)


class Block:
    """Samples ``[start, stop)`` of X laid out for exact calls, and their path inputs.

    ``rows`` (a multiple of 16, at least 16) holds sample ``i`` at row ``i - start + offset``
    with ``offset = start % 16``; the other rows are copies of the first sample, so they run
    through the model harmlessly and are dropped.
    """

    def __init__(self, X: torch.Tensor, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self.offset = start % ROW_ALIGNMENT
        rows = max(MIN_FORWARD_ROWS, aligned(self.offset + stop - start))
        self.samples = X[start].expand(rows, -1).clone()
        self.samples[self.offset : self.offset + stop - start] = X[start:stop]

    @property
    def rows(self) -> int:
        return self.samples.shape[0]

    def real(self, values: torch.Tensor) -> torch.Tensor:
        """The rows of ``values`` (rows, ...) that hold real samples, in sample order."""
        return values[self.offset : self.offset + self.stop - self.start]


def path_gradients(
    session: ModelSession,
    loss: LossFn,
    block: Block,
    baseline: torch.Tensor,
    rule: tuple[Sequence[float], Sequence[float]],
    steps_per_call: int,
    accumulate: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``sum_k w_k dL_i/dz (b + t_k (x_i - b))`` for every row of ``block``: (rows, d).

    One forward and one backward call per ``steps_per_call`` steps of the block; the gradient of
    the summed per-row losses is each row's own gradient, as rows do not interact (eval mode).
    ``torch.autograd.grad(..., inputs)`` leaves the parameters' ``.grad`` untouched. Run inside
    ``session.differentiating()``.

    On the rank-1 path (the model starts with a Linear ``W``) the first layer's output is affine
    along the path, ``W b + c + t W (x - b)``, and ``dL/dz = (dL/dpre) W``: the path runs from
    the first layer's output, and ``W`` is applied once per sample in each direction instead of
    once per step (a third of the work of the seed-like autoencoder).
    """
    nodes, weights = rule
    x, rows = block.samples, block.rows
    first = session.path.first
    with torch.no_grad():
        difference = x - baseline
        if first is None:
            start, direction, run = baseline, difference, session.path.model
        else:
            start = session.caller(first, baseline[None, :])
            direction = session.caller(functools.partial(F.linear, weight=first.weight), difference)
            run = session.path.rest
    total = torch.zeros(direction.shape, dtype=accumulate, device=x.device)
    for begin in range(0, len(nodes), steps_per_call):
        group = range(begin, min(begin + steps_per_call, len(nodes)))
        # captum's expression (baseline + alpha * (input - baseline)), so on the plain path the
        # path points are the same numbers.
        inputs = torch.cat([start + nodes[k] * direction for k in group])
        inputs.requires_grad_(True)
        recon = session.caller(run, inputs)
        if recon.shape != (inputs.shape[0], session.n_inputs):
            raise ValueError(
                f"the model returned shape {tuple(recon.shape)} for {inputs.shape[0]} samples; "
                f"it must return ({inputs.shape[0]}, {session.n_inputs})"
            )
        errors = torch.as_tensor(loss(recon, x.repeat(len(group), 1)))
        if errors.shape != (inputs.shape[0],):
            raise ValueError(
                f"the metric returned shape {tuple(errors.shape)}, not ({inputs.shape[0]},)"
            )
        if not errors.requires_grad:
            raise NotDifferentiableError(
                _NOT_DIFFERENTIABLE.format("its output carries no gradient graph")
            )
        (gradient,) = torch.autograd.grad(errors.sum(), inputs, allow_unused=True)
        if gradient is None:
            raise NotDifferentiableError(
                _NOT_DIFFERENTIABLE.format("the output does not depend on the input in autograd")
            )
        # Step by step in a fixed order: the sum never depends on how steps share a call.
        for position, k in enumerate(group):
            total.add_(gradient[position * rows : (position + 1) * rows], alpha=weights[k])
    if first is not None:
        with torch.no_grad():
            total = total @ first.weight.to(accumulate)
    return total


def attribute_block(
    session: ModelSession,
    loss: LossFn,
    block: Block,
    baseline: torch.Tensor,
    rule: tuple[Sequence[float], Sequence[float]],
    steps_per_call: int,
    accumulate: torch.dtype = torch.float64,
) -> np.ndarray:
    """(samples, d) float64 attributions ``(x_i - b) * sum_k w_k dL_i/dz`` of the block's real
    samples; ``ValueError`` naming the samples where they are NaN or inf."""
    gradients = path_gradients(session, loss, block, baseline, rule, steps_per_call, accumulate)
    difference = block.real(block.samples).to(accumulate) - baseline.to(accumulate)
    attributions = (difference * block.real(gradients)).to("cpu", torch.float64).numpy()
    if not np.isfinite(attributions).all():
        bad = np.flatnonzero(~np.isfinite(attributions).all(axis=1)) + block.start
        raise ValueError(
            f"the gradient is NaN or inf for sample(s) {bad[:10].tolist()}; check the model and "
            "metric there (e.g. 'rmse_pct' needs samples with a non-zero norm)"
        )
    return attributions


def check_differentiable(
    session: ModelSession, loss: LossFn, baseline: torch.Tensor, accumulate: torch.dtype
) -> None:
    """One forward and backward call on the first rows of X: a model autograd cannot follow
    fails here, before any work, with :class:`NotDifferentiableError`."""
    block = Block(session.X, 0, min(MIN_FORWARD_ROWS, session.n_samples))
    with session.differentiating():
        gradient = path_gradients(session, loss, block, baseline, ((1.0,), (1.0,)), 1, accumulate)
    if not bool(torch.isfinite(gradient).all()):
        raise ValueError(
            "the gradient of the reconstruction error is NaN or inf on the first rows of X; "
            "check the model and metric (e.g. 'rmse_pct' needs samples with a non-zero norm)"
        )
    if not bool(gradient.any()):
        # A step inside the model (torch.round, argmax, a comparison, quantisation) has a zero
        # derivative almost everywhere: autograd follows it and every attribution is exactly 0.
        warnings.warn(
            f"the gradient of the reconstruction error is exactly zero on the first {block.rows} "
            "rows of X: the model may contain a step (torch.round, argmax, a comparison, "
            "quantisation) that gradients see as flat, so every attribution will be 0; use "
            "permutation_importance or shapley_importance for this model",
            UserWarning, stacklevel=4,
        )  # fmt: skip
