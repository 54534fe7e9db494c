"""Synthetic correlated data and a seed-like autoencoder, for the notebook and the benchmarks.

The data imitate an expression matrix: features come in strongly correlated blocks (a low-rank
latent factor model plus noise), so each block member can be reconstructed from the others, and a
few *informative* features carry signal no other column has. An autoencoder trained on it relies
on the informative features, which permutation importance shows clearly; the correlated members
share their information and rank low, the classic caveat of permutation importance.

Pure torch/numpy/pandas: this module never imports Jupyter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = [
    "SeedLikeAutoencoder",
    "make_correlated_data",
    "seed_like_autoencoder",
    "train_autoencoder",
]

# Features per correlated block: each block is one latent factor measured by this many columns.
_BLOCK_SIZE = 25
# Loadings of block members on their factor: within-block correlations of about 0.7 to 0.9, so
# any member is well predicted by the others and unimportant on its own.
_LOADING = (0.85, 0.95)
# Share of an informative feature's variance it shares with a block; the rest is its own signal.
_INFORMATIVE_SHARED = 0.15
# One weak background factor per this many features: mild correlation between blocks.
_FEATURES_PER_BACKGROUND_FACTOR = 100
_BACKGROUND_SD = 0.15


def make_correlated_data(
    n_samples: int = 950,
    n_features: int = 200,
    n_informative: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Standardized data in correlated blocks, plus a few clearly important features.

    Latent factor model: ``ceil(d / 25)`` block factors ``z_b`` and ``d // 100`` (at least 1)
    weak background factors ``u``, all standard normal. A block member is
    ``a z_b + u @ c + noise`` with loading ``a`` in [0.85, 0.95], so members of a block are
    strongly correlated and each is predictable from the others: an autoencoder does not need any
    single one of them. An informative feature shares 15 % of its variance with a block and
    carries its own signal otherwise: no other column can stand in for it, so the autoencoder
    relies on it and permuting it costs the most. Columns are then centred and scaled to unit
    variance.

    Parameters
    ----------
    n_samples : int, default 950
        Rows n (samples), >= 2.
    n_features : int, default 200
        Columns d (features), >= 2.
    n_informative : int, optional
        Informative features; default ``clip(d // 40, 2, 10)``, at most d.
    seed : int, default 0
        Seed of every random draw: the same arguments give the same frame.

    Returns
    -------
    pandas.DataFrame, shape (n_samples, n_features), float32
        Columns named ``"g0000"``, ``"g0001"``, ... (zero-padded to at least 4 digits), in random
        block order. ``frame.attrs["informative"]`` lists the informative columns and
        ``frame.attrs["block"]`` maps every column to its block number.
    """
    if n_samples < 2 or n_features < 2:
        raise ValueError(f"need n_samples >= 2 and n_features >= 2, got {n_samples}, {n_features}")
    if n_informative is None:
        n_informative = int(np.clip(n_features // 40, 2, 10))
    if not 1 <= n_informative <= n_features:
        raise ValueError(f"n_informative must be in [1, {n_features}], got {n_informative}")
    rng = np.random.default_rng(seed)
    n_blocks = -(-n_features // _BLOCK_SIZE)
    n_background = max(1, n_features // _FEATURES_PER_BACKGROUND_FACTOR)
    factors = rng.standard_normal((n_samples, n_blocks))
    background = rng.standard_normal((n_samples, n_background))

    # Columns are assigned to blocks at random so that blocks are not contiguous ranges.
    block = rng.permutation(np.arange(n_features) % n_blocks)
    loading = rng.uniform(*_LOADING, n_features)
    values = factors[:, block] * loading
    values += background @ rng.normal(0.0, _BACKGROUND_SD, (n_background, n_features))
    values += np.sqrt(1.0 - loading**2) * rng.standard_normal((n_samples, n_features))

    informative = np.sort(rng.choice(n_features, size=n_informative, replace=False))
    own = rng.standard_normal((n_samples, n_informative))
    shared = np.sqrt(_INFORMATIVE_SHARED)
    values[:, informative] = shared * factors[:, block[informative]] + np.sqrt(1 - shared**2) * own

    values = (values - values.mean(axis=0)) / values.std(axis=0)
    width = max(4, len(str(n_features - 1)))
    names = [f"g{i:0{width}d}" for i in range(n_features)]
    frame = pd.DataFrame(values.astype(np.float32), columns=names)
    frame.attrs["informative"] = [names[i] for i in informative]
    frame.attrs["block"] = dict(zip(names, block.tolist(), strict=True))
    return frame


class SeedLikeAutoencoder(torch.nn.Module):
    """The common tabular autoencoder: d -> 0.75 d -> 0.5 d -> 0.75 d -> d, ReLU between.

    ``encoder = Sequential(Linear(d, h), ReLU(), Linear(h, l))`` and
    ``decoder = Sequential(Linear(l, h), ReLU(), Linear(h, d))`` with ``h = int(0.75 d)`` and
    ``l = int(0.5 d)`` (at least 1 each); ``forward(x) = decoder(encoder(x))`` maps (n, d) to
    (n, d).
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        hidden, latent = max(1, int(0.75 * d)), max(1, int(0.5 * d))
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, latent)
        )
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(latent, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d) inputs -> (n, d) reconstruction."""
        return self.decoder(self.encoder(x))


def seed_like_autoencoder(d: int, seed: int = 0) -> SeedLikeAutoencoder:
    """A freshly initialised :class:`SeedLikeAutoencoder` for ``d`` features.

    The weights depend only on ``(d, seed)``; the caller's global torch RNG is left untouched.
    """
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    # fork_rng: seeding here must not change the random stream of the caller's own code.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SeedLikeAutoencoder(d)


def _as_float_tensor(X: Any, dtype: torch.dtype) -> torch.Tensor:
    """(n, d) DataFrame, array or tensor -> a new tensor of the model's dtype."""
    if isinstance(X, torch.Tensor):
        tensor = X.detach().to(dtype=dtype, copy=True)
    else:
        # np.array copies: a DataFrame's values may be read-only, which torch warns about.
        tensor = torch.from_numpy(np.array(X, dtype=np.float64)).to(dtype)
    if tensor.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {tuple(tensor.shape)}")
    return tensor


def train_autoencoder(
    model: torch.nn.Module,
    X: Any,
    epochs: int = 40,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-3,
) -> torch.nn.Module:
    """Briefly train ``model`` to reconstruct ``X`` (Adam on the mean squared error).

    Parameters
    ----------
    model : torch.nn.Module
        Maps (batch, d) to (batch, d); trained in place on its own device and dtype.
    X : pandas.DataFrame, numpy.ndarray or torch.Tensor, shape (n, d)
        Training samples (not modified).
    epochs : int, default 40
        Passes over X. On :func:`make_correlated_data` the informative features stand out from
        about 20 epochs on (the blocks are learned first, each feature's own signal later).
    seed : int, default 0
        Seeds the batch order and any randomness in the model (dropout); the same seed, model
        and data give the same weights. The caller's global torch RNG is left untouched.
    batch_size : int, default 64
        Samples per optimiser step.
    lr : float, default 1e-3
        Adam learning rate.

    Returns
    -------
    torch.nn.Module
        The same ``model``, in eval mode.
    """
    parameter = next(model.parameters())
    data = _as_float_tensor(X, parameter.dtype).to(parameter.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order_rng = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(data.shape[0], generator=order_rng).to(data.device)
            for batch in data[order].split(batch_size):
                optimiser.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(model(batch), batch)
                loss.backward()
                optimiser.step()
    return model.eval()
