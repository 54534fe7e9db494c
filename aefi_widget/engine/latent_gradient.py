"""Gradient x input of every latent dimension, as batched Jacobians.

For a batch of B samples, one forward pass gives the (B, L) codes; the gradients of c latent
dimensions at once come from one vectorised backward pass (``torch.autograd.grad`` with
``is_grads_batched=True`` and one-hot output gradients), so the full (L, d) Jacobian of every
sample costs ceil(L / c) backward calls per batch: fewer than one per latent dimension, never one
per sample. Samples are independent (eval mode), so the gradient of ``code[:, l].sum()`` holds each
sample's own row of the Jacobian.
"""

from __future__ import annotations

import numpy as np
import torch

from aefi_widget.engine.latent_encoder import EncoderSession, code_of

__all__ = ["gradient_times_input"]

# Floats of one backward call's (c, B, d) gradient: about 128 MB in float32.
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
    rows = min(n, batch_rows or _DEFAULT_BATCH_ROWS)
    per_sample = np.zeros((d, n))
    latent_sum = np.zeros((d, L))
    for start in range(0, n, rows):
        x = X[start : start + rows].clone().requires_grad_(True)
        dims = max(1, min(L, _GRADIENT_FLOATS // (x.shape[0] * d)))
        with session.differentiating():
            code = code_of(session.encoder(x))
            if code.shape != (x.shape[0], L):
                raise ValueError(
                    f"the encoder returned shape {tuple(code.shape)} for {x.shape[0]} samples; "
                    f"expected ({x.shape[0]}, {L})"
                )
            magnitude = x.detach().abs()
            sample_sum = torch.zeros((x.shape[0], d), dtype=torch.float64, device=x.device)
            for first in range(0, L, dims):
                grads = _jacobian_rows(code, x, first, min(L, first + dims))  # (c, B, d)
                terms = (grads.abs_() * magnitude).to(torch.float64)
                sample_sum += terms.sum(dim=0)
                latent_sum[:, first : first + len(terms)] += terms.sum(dim=1).t().cpu().numpy()
                del grads, terms
        per_sample[:, start : start + x.shape[0]] = (sample_sum / L).t().cpu().numpy()
    return per_sample, latent_sum / n


def _jacobian_rows(code: torch.Tensor, x: torch.Tensor, first: int, stop: int) -> torch.Tensor:
    """(stop - first, B, d): d code[:, l] / d x for l in [first, stop), each sample's own row."""
    count = stop - first
    one_hot = torch.zeros((count, *code.shape), dtype=code.dtype, device=code.device)
    one_hot[torch.arange(count), :, torch.arange(first, stop)] = 1.0
    try:
        (grads,) = torch.autograd.grad(
            code, x, grad_outputs=one_hot, retain_graph=True, is_grads_batched=True
        )
        return grads
    except RuntimeError:
        # An operation without a batching rule: one backward per latent dimension instead.
        return torch.stack([
            torch.autograd.grad(code, x, grad_outputs=one_hot[k], retain_graph=True)[0]
            for k in range(count)
        ])  # fmt: skip
