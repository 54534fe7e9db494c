"""Per-sample reconstruction errors: (recon, target) of shape (n, d) -> (n,).

The built-in metrics reduce the last axis, so (k, n, d) inputs give (k, n) errors with the same
bits row by row (the packed calls of :mod:`aefi_widget.engine.permutation_packed`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["METRICS", "MetricFn", "resolve_metric"]

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# The built-in metrics take ``out``, an (n, d) scratch buffer for recon - target: the engine
# reuses one per chunk, so the difference is written to cached memory instead of fresh pages.


def mse(recon: torch.Tensor, target: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per sample, in squared input units."""
    diff = torch.sub(recon, target, out=out)
    return diff.mul_(diff).mean(dim=-1)


def mae(recon: torch.Tensor, target: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per sample, in input units."""
    return torch.sub(recon, target, out=out).abs_().mean(dim=-1)


def rmse_pct(
    recon: torch.Tensor, target: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Relative error per sample in percent: ``100 * ||recon - target|| / ||target||``."""
    error = torch.linalg.vector_norm(torch.sub(recon, target, out=out), dim=-1)
    return error.div_(torch.linalg.vector_norm(target, dim=-1)).mul_(100.0)


METRICS: dict[str, MetricFn] = {"mse": mse, "mae": mae, "rmse_pct": rmse_pct}


def resolve_metric(metric: str | MetricFn) -> tuple[str, MetricFn]:
    """The metric's name (for settings) and its function; ``ValueError`` for unknown names."""
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(
                f"unknown metric {metric!r}; use one of {sorted(METRICS)} or a callable "
                "(recon, target) -> per-sample errors of shape (n,)"
            )
        return metric, METRICS[metric]
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    raise TypeError(f"metric must be a name or a callable, got {type(metric).__name__}")
