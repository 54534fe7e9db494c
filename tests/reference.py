"""An independent brute-force reference for permutation importance, and small test models.

The reference shares nothing with the engine but the two public pure functions that *define*
which shuffle is used (:func:`~aefi_widget.engine.permutations.row_subset` and
:func:`~aefi_widget.engine.permutations.permutation`). Everything else (units, sample counts,
metrics, targets, per-output deltas) is recomputed here from the specification with plain Python
loops over units and repeats, in float64, running the whole permuted data set through the model
in one forward call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from aefi_widget.engine.permutations import permutation, row_subset

__all__ = [
    "EncoderDecoderAE",
    "Reference",
    "SkipAE",
    "TinyVAE",
    "correlated_data",
    "cube_metric",
    "reference_importance",
    "sequential_ae",
]


# ---------------------------------------------------------------------------- test data and models
def correlated_data(n: int = 24, d: int = 6, seed: int = 1) -> np.ndarray:
    """(n, d) float64 correlated data, exactly representable in float32."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    return (rng.normal(size=(n, d)) @ mix + 0.3).astype(np.float32).astype(np.float64)


def sequential_ae(d: int, hidden: int = 5, seed: int = 0, dtype: torch.dtype = torch.float64):
    """Linear -> ReLU -> Linear -> Tanh -> Linear: the common AE as one ``nn.Sequential``."""
    torch.manual_seed(seed)
    latent = max(1, hidden - 2)
    model = nn.Sequential(
        nn.Linear(d, hidden),
        nn.ReLU(),
        nn.Linear(hidden, latent),
        nn.Tanh(),
        nn.Linear(latent, d),
    )
    return model.to(dtype).eval()


class EncoderDecoderAE(nn.Module):
    """``decoder(encoder(x))`` with ``encoder``/``decoder`` Sequentials (rank-1 eligible)."""

    def __init__(self, d: int, hidden: int = 5, seed: int = 0, dtype=torch.float64) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, 3))
        self.decoder = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.to(dtype).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class SkipAE(EncoderDecoderAE):
    """Same attributes as :class:`EncoderDecoderAE`, but a skip connection from x: not rank-1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)) + 0.5 * x


class TinyVAE(nn.Module):
    """A VAE-like model returning ``(recon, mu, logvar)``; the decoder reads ``mu`` only."""

    def __init__(self, d: int, latent: int = 2, seed: int = 0, dtype=torch.float64) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(d, 6), nn.ReLU(), nn.Linear(6, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 6), nn.Tanh(), nn.Linear(6, d))
        self.to(dtype).eval()

    def forward(self, x: torch.Tensor):
        stats = self.encoder(x)
        mu, logvar = stats[:, : self.latent], stats[:, self.latent :]
        return self.decoder(mu), mu, logvar


class FailingOnCall(nn.Module):
    """Wraps a model and raises on forward call number ``fail_at`` (counting from 1; -1: never),
    counting its calls. A copy unpickled on a Dask worker counts that worker's calls from zero."""

    def __init__(self, inner: nn.Module, fail_at: int) -> None:
        super().__init__()
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("odd batch")
        return self.inner(x)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.calls = 0


def cube_metric(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A custom per-sample metric: mean of |recon - target| ** 3."""
    return (recon - target).abs().pow(3).mean(dim=1)


# ---------------------------------------------------------------------------- the reference
@dataclass
class Reference:
    feature_names: list[str]
    importances: np.ndarray  # (F, n_repeats)
    baseline_error: float
    delta_recon: np.ndarray  # (F, d)


def _metric_values(metric: str | Callable, recon: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample error by the metric's definition, in float64."""
    diff = recon - target
    if metric == "mse":
        return (diff**2).mean(axis=1)
    if metric == "mae":
        return np.abs(diff).mean(axis=1)
    if metric == "rmse_pct":
        return 100.0 * np.sqrt((diff**2).sum(axis=1)) / np.sqrt((target**2).sum(axis=1))
    if callable(metric):
        out = metric(torch.from_numpy(recon.copy()), torch.from_numpy(target.copy()))
        return np.asarray(torch.as_tensor(out).to(torch.float64))
    raise AssertionError(f"reference does not know metric {metric!r}")


def _float64_forward(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Whole-batch float64 forward of a copy of ``model`` (eval mode), first tuple element."""
    if isinstance(model, nn.Module):
        model = copy.deepcopy(model).to(torch.float64).eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)))
        if isinstance(out, tuple | list):
            out = out[0]
        return out.detach().to(torch.float64).numpy()

    return forward


def _reference_units(
    names: Sequence[str], groups: Mapping[str, Sequence[str | int]] | None
) -> list[tuple[str, list[int]]]:
    """(name, columns) for groups and ungrouped features, sorted by their first column."""
    position = {name: j for j, name in enumerate(names)}
    grouped: dict[int, str] = {}
    units = []
    for group, members in (groups or {}).items():
        columns = sorted(m if isinstance(m, int) else position[m] for m in members)
        grouped.update(dict.fromkeys(columns, group))
        units.append((group, columns))
    units += [(name, [j]) for j, name in enumerate(names) if j not in grouped]
    return sorted(units, key=lambda unit: unit[1][0])


def _samples_per_repeat(max_samples: int | float | None, n: int) -> int:
    if max_samples is None:
        return n
    if isinstance(max_samples, int):
        return max_samples
    return round(max_samples * n)


def reference_importance(
    model: Any,
    X: Any,
    *,
    n_repeats: int = 3,
    metric: str | Callable = "mse",
    target: str = "original",
    feature_names: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str | int]] | None = None,
    max_samples: int | float | None = None,
    seed: int = 0,
) -> Reference:
    """Permutation importance by brute force: one full permuted copy of the data per (unit, r)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    units = _reference_units(names, groups)
    m = _samples_per_repeat(max_samples, n)
    forward = _float64_forward(model)

    recon = forward(X)
    errors = _metric_values(metric, recon, X)
    importances = np.zeros((len(units), n_repeats))
    delta = np.zeros((len(units), d))
    for r in range(n_repeats):
        rows = row_subset(seed, r, n, m)
        X_r, recon_r, errors_r = X[rows], recon[rows], errors[rows]
        for g, (_, columns) in enumerate(units):
            order = permutation(seed, r, g, m)
            permuted = X_r.copy()
            for j in columns:
                permuted[:, j] = X_r[order, j]
            recon_p = forward(permuted)
            compared = X_r if target == "original" else permuted
            importances[g, r] = np.mean(_metric_values(metric, recon_p, compared) - errors_r)
            delta[g] += np.abs(recon_p - recon_r).mean(axis=0)
    return Reference(
        feature_names=[name for name, _ in units],
        importances=importances,
        baseline_error=float(errors.mean()),
        delta_recon=delta / n_repeats,
    )
