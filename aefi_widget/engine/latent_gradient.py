"""Gradient x input of every latent dimension, as batched Jacobians.

For a batch of B samples, one forward pass gives the (B, L) codes; the gradients of c latent
dimensions at once come from one vectorised backward pass (``torch.autograd.grad`` with
``is_grads_batched=True``), so the full (L, d) Jacobian of every sample costs ceil(L / c) backward
calls per batch: fewer than one per latent dimension, never one per sample. Samples are
independent (eval mode), so the gradient of ``code[:, l].sum()`` holds each sample's own row of the
Jacobian.

When the encoder is an ``nn.Sequential`` ending in a Linear (code = h W^T + b), the backward pass
starts at h with W's rows as output gradients instead of pushing one-hot vectors through W: the
same numbers for a third less work in the usual d -> 0.75 d -> 0.5 d encoder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from aefi_widget.engine.calls import MIN_FORWARD_ROWS, aligned
from aefi_widget.engine.fused import has_hooks
from aefi_widget.engine.latent_encoder import EncoderSession, code_of
from aefi_widget.engine.model_mode import NotDifferentiableError

__all__ = ["gradient_times_input"]

# Floats of one backward call's (c, B, d) gradient at the default batch rows: about 128 MB in
# float32 (proportionally more for a larger batch_size).
_GRADIENT_FLOATS = 32 * 2**20
_DEFAULT_BATCH_ROWS = 1024


def gradient_times_input(
    session: EncoderSession, batch_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over latent dimensions, per sample, and mean over samples, per latent dimension, of
    ``|d code_l / d x_j * x_j|``.

    Parameters
    ----------
    session : EncoderSession
    batch_rows : int, optional
        Samples per forward/backward batch (default 1024).

    Returns
    -------
    per_sample : (d, n) float64
        ``mean_l |J_lj(x_i) x_ij|`` for every input j and sample i.
    latent_map : (d, L) float64
        ``mean_i |J_lj(x_i) x_ij|`` for every input j and latent dimension l.
    """
    X, n, d, L = session.X, session.n_samples, session.n_inputs, session.n_latent
    # The calls' exactness rules (engine/calls.py): rows a multiple of ROW_ALIGNMENT (so sample
    # i sits at row i mod 16 in every call), the last call padded to at least MIN_FORWARD_ROWS
    # with copies of a real row; and latent blocks sized by d alone. Together: the same numbers
    # whatever batch_rows is.
    rows = aligned(min(n, batch_rows or _DEFAULT_BATCH_ROWS))
    dims = max(1, min(L, _GRADIENT_FLOATS // (_DEFAULT_BATCH_ROWS * d)))
    per_sample = np.zeros((d, n))
    latent_sum = np.zeros((L, d))
    split = _last_linear(session.encoder, L)
    for start in range(0, n, rows):
        real = X[start : start + rows]
        B = real.shape[0]
        padding = aligned(max(B, MIN_FORWARD_ROWS)) - B
        x = torch.cat([real, real[:1].expand(padding, d)]).requires_grad_(True)
        with session.differentiating():
            output = None
            if split is not None:
                output, rows_of = split[0](x), _weight_rows(split[1])
                if not isinstance(output, torch.Tensor) or output.dim() != 2:
                    output = None  # not the plain chain it looked like: differentiate the code
            if output is None:
                output, rows_of = _code(session.encoder, x, L), _one_hot
            if not output.requires_grad:
                raise NotDifferentiableError(_NOT_DIFFERENTIABLE.format("no gradient graph"))
            magnitude = x.detach()[:B].abs()
            sample_sum = torch.zeros((B, d), dtype=torch.float64, device=x.device)
            for first in range(0, L, dims):
                stop = min(L, first + dims)
                grads = _backward(output, x, rows_of(output, first, stop))  # (c, B + pad, d)
                terms = grads[:, :B].abs_().mul_(magnitude)
                # Sums over one block in the model's dtype (float32: ~2e-7 relative, and 14x
                # faster than widening the block on the fly), accumulated across blocks in
                # float64.
                sample_sum += terms.sum(dim=0)
                latent_sum[first:stop] = _add_in_sample_order(latent_sum[first:stop], terms)
                del grads, terms
        per_sample[:, start : start + B] = (sample_sum / L).t().cpu().numpy()
    return per_sample, latent_sum.T / n


def _add_in_sample_order(total: np.ndarray, terms: torch.Tensor) -> np.ndarray:
    """``total`` (c, d) plus every sample's terms (c, B, d), added one sample at a time in
    float64: the same sums whatever the batch size (a sum over each batch, in float32 or not,
    rounds differently for every split of the samples into batches; 2e-8 in latent_map)."""
    running = np.concatenate([total[:, None, :], terms.to("cpu", torch.float64).numpy()], axis=1)
    return np.add.accumulate(running, axis=1)[:, -1]  # accumulate adds in order, never pairwise


_NOT_DIFFERENTIABLE = (
    "the encoder's code cannot be differentiated with respect to its input (its output carries "
    "{}); the gradient lens needs an encoder autograd can follow (no .detach(), "
    "torch.no_grad(), numpy or other non-torch steps inside). Use method='permutation', which "
    "only runs the encoder forward."
)


def _code(encoder: Callable[..., object], x: torch.Tensor, L: int) -> torch.Tensor:
    code = code_of(encoder(x))
    if code.shape != (x.shape[0], L):
        raise ValueError(
            f"the encoder returned shape {tuple(code.shape)} for {x.shape[0]} samples; "
            f"expected ({x.shape[0]}, {L})"
        )
    return code


def _last_linear(encoder: object, L: int) -> tuple[torch.nn.Sequential, torch.nn.Linear] | None:
    """The encoder as (everything before, final Linear) when it is plainly a Sequential ending in
    a Linear with L outputs and no hooks; else None."""
    if type(encoder) is not torch.nn.Sequential or len(encoder) < 2 or has_hooks(encoder):
        return None
    last = encoder[-1]
    if type(last) is not torch.nn.Linear or has_hooks(last) or last.out_features != L:
        return None
    return encoder[:-1], last


def _one_hot(code: torch.Tensor, first: int, stop: int) -> torch.Tensor:
    """(c, B, L) output gradients selecting latent dimensions [first, stop) of every sample."""
    count = stop - first
    rows = torch.zeros((count, *code.shape), dtype=code.dtype, device=code.device)
    rows[torch.arange(count), :, torch.arange(first, stop)] = 1.0
    return rows


def _weight_rows(
    last: torch.nn.Linear,
) -> Callable[[torch.Tensor, int, int], torch.Tensor]:
    """Output gradients at the final Linear's input: row l of its weight, for every sample."""

    def rows(hidden: torch.Tensor, first: int, stop: int) -> torch.Tensor:
        weight = last.weight.detach()[first:stop].to(hidden.dtype)  # (c, h)
        return weight[:, None, :].expand(stop - first, *hidden.shape)

    return rows


def _backward(output: torch.Tensor, x: torch.Tensor, grad_rows: torch.Tensor) -> torch.Tensor:
    """(c, B, d): the vector-Jacobian products of ``grad_rows`` (c, B, width) with
    d output / d x, in one vectorised backward pass."""
    try:
        (grads,) = torch.autograd.grad(
            output, x, grad_outputs=grad_rows, retain_graph=True, is_grads_batched=True,
            allow_unused=True,
        )  # fmt: skip
    except RuntimeError:
        # An operation without a batching rule: one backward per latent dimension instead.
        rows = [
            torch.autograd.grad(output, x, grad_outputs=row, retain_graph=True, allow_unused=True)
            for row in grad_rows
        ]
        grads = None if rows[0][0] is None else torch.stack([row[0] for row in rows])
    if grads is None:
        raise NotDifferentiableError(
            _NOT_DIFFERENTIABLE.format("no gradient graph leading back to the input")
        )
    return grads
