"""Latent-code importance: how strongly each input drives each dimension of the encoder's code.

Three lenses, one result type (:class:`~aefi_widget.result.ImportanceResult` with
``settings["method"] == "latent"`` and ``settings["latent_method"]``); every one also returns the
(F, L) input x latent-dimension matrix as a named extra:

- ``"permutation"``: shuffle each input, measure how far the code moves
  (:mod:`aefi_widget.engine.latent_permutation`; extra ``latent_shift``);
- ``"gradient"``: ``|d code_l / d x_j * x_j|`` from batched Jacobians
  (:mod:`aefi_widget.engine.latent_gradient`; extra ``latent_map``);
- ``"mutual_information"``: the Gaussian-copula estimate between each input and each latent
  dimension over X's samples (:mod:`aefi_widget.engine.latent_mi`; extra ``latent_map``).

How the encoder is found is described in :mod:`aefi_widget.engine.latent_encoder`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aefi_widget.engine.distributed import check_client
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.latent_encoder import EncoderSession
from aefi_widget.engine.latent_gradient import gradient_times_input
from aefi_widget.engine.latent_mi import gaussian_copula_mi
from aefi_widget.engine.latent_permutation import MAX_ESTIMATES, LatentPermutation, latent_labels
from aefi_widget.result import ImportanceResult

__all__ = ["LATENT_METHODS", "latent_importance"]

LATENT_METHODS = ("permutation", "gradient", "mutual_information")


def latent_importance(
    model: Any,
    X: Any,
    *,
    encoder: Any = None,
    method: str = "permutation",
    feature_names: Sequence[str] | None = None,
    layer: str | None = None,
    n_repeats: int = 10,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    client: Any = None,
) -> ImportanceResult:
    """How each input drives each latent dimension of ``model``'s encoder, on the samples X.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The autoencoder. Never modified; evaluated in eval mode, training flags restored.
    X : torch.Tensor, numpy.ndarray, pandas.DataFrame or anndata.AnnData, shape (n, d)
        Samples; copied (never written).
    encoder : torch.nn.Module or callable, optional
        Maps (n, d) inputs to (n, L) codes. A tuple output (a VAE's ``(mu, logvar)``) uses its
        first element; codes with more axes are flattened. Default: ``model.encoder``; else, for
        an ``nn.Sequential``, the layers before the Linear that follows the bottleneck (the
        Linear with the fewest outputs, the last Linear excluded; the first on a tie); else a
        ``ValueError`` asking for ``encoder=``.
    method : {"permutation", "gradient", "mutual_information"}, default "permutation"
        ``"permutation"``: shuffle input j (the permutation method's shuffles for ``seed``) and
        measure ``mean_i |code_perm[i, l] - code[i, l]|`` per latent dimension l, in the code's
        units. ``"gradient"``: ``mean_i |d code_l / d x_j (x_i) * x_ij|`` (gradient x input).
        ``"mutual_information"``: Gaussian-copula mutual information (Ince et al. 2017) between
        ``X[:, j]`` and ``code[:, l]`` over the n samples, in nats, bias-corrected; exact for
        jointly Gaussian pairs after the rank transform, a lower bound otherwise (dependence that
        is not monotone is missed); independent columns give about 0 (±1/n).
    feature_names : sequence of str, optional
        Column names (default: the DataFrame's columns or AnnData's ``var_names``, else
        "x0".."x{d-1}").
    layer : str, optional
        With an AnnData X: use ``adata.layers[layer]`` instead of ``adata.X``.
    n_repeats : int, default 10
        Shuffles per feature (``"permutation"`` only).
    seed : int or None, default 0
        Seed of the shuffles (``"permutation"`` only); None draws one.
    device : str or torch.device, optional
        Where to compute; default the encoder's device (another device works on a copy).
    batch_size : int, optional
        Samples per encoder call (``"permutation"``: shuffled samples; ``"gradient"``: samples
        per forward/backward batch). Permutation numbers never depend on it; gradient numbers
        agree across batch sizes to rounding.
    client : dask.distributed.Client, optional
        ``"permutation"``: compute the chunks on this Dask cluster, with the same numbers.
        ``"gradient"`` and ``"mutual_information"`` are one pass over X and always run in this
        process (the client is checked, not used).

    Returns
    -------
    ImportanceResult
        ``feature_names`` the F inputs, ``output_names`` the latent dimensions "z0".."z{L-1}";
        ``importances`` per feature the mean over latent dimensions of the method's value:
        (F, n_repeats) for ``"permutation"`` (a confidence interval over repeats in
        ``summary()``), (F, n) per sample for ``"gradient"``, (F, 1) for
        ``"mutual_information"``. The (F, L) matrix is ``extras["latent_shift"]``
        (permutation) or ``extras["latent_map"]`` (gradient, mutual information).

    Examples
    --------
    >>> res = latent_importance(model, X, method="mutual_information")  # doctest: +SKIP
    >>> res.summary().head()  # doctest: +SKIP
    """
    if method not in LATENT_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, LATENT_METHODS))}; got "
                         f"{method!r}")  # fmt: skip
    if method == "permutation":
        return LatentPermutation(
            model, X, encoder=encoder, feature_names=feature_names, n_repeats=n_repeats,
            seed=seed, device=device, batch_size=batch_size, client=client, layer=layer,
        ).run()  # fmt: skip
    check_client(client)
    check_int(n_repeats, "n_repeats", 1)
    if batch_size is not None:
        check_int(batch_size, "batch_size", 1)

    def check_size(names: tuple[str, ...], data: torch.Tensor) -> None:
        if method == "gradient" and len(names) * data.shape[0] > MAX_ESTIMATES:
            raise ValueError(
                f"per-sample gradients of {len(names):,} features x {data.shape[0]:,} samples "
                f"need {len(names) * data.shape[0] * 8 / 2**30:,.1f} GiB; pass fewer samples"
            )
        if method == "mutual_information" and data.shape[0] < 3:
            raise ValueError("mutual information needs at least 3 samples in X")

    started = time.perf_counter()
    session = EncoderSession(
        model, X, encoder=encoder, feature_names=feature_names, device=device,
        check_first=check_size, rank1=False, layer=layer,
    )  # fmt: skip
    settings: dict[str, Any] = {
        "method": "latent",
        "latent_method": method,
        "encoder": session.encoder_source,
        "n_latent": session.n_latent,
        "n_samples": session.n_samples,
        "device": str(session.device),
        "dtype": str(session.X.dtype).replace("torch.", ""),
    }
    if method == "gradient":
        per_sample, latent_map = gradient_times_input(session, batch_size)
        importances = per_sample
        labels = latent_labels(method, "mean |∂code/∂x · x|", "sample")
        settings["attribution"] = "gradient_x_input"
        settings["batch_rows"] = batch_size
    else:
        codes = session.codes(session.rows_per_call(session.n_samples)).code
        latent_map = gaussian_copula_mi(
            session.X.to("cpu", torch.float64).numpy(), codes.to("cpu", torch.float64).numpy()
        )
        importances = latent_map.mean(axis=1, keepdims=True)
        labels = latent_labels(method, "MI (nats)", "estimate")
        settings["estimator"] = "gaussian_copula_bias_corrected"
    n = session.n_samples
    return ImportanceResult(
        feature_names=session.feature_names,
        output_names=session.latent_names,
        importances=np.asarray(importances, dtype=np.float64),
        baseline_error=float("nan"),
        settings=settings,
        evaluations_done=n,
        evaluations_total=n,
        elapsed_s=time.perf_counter() - started,
        extras={"latent_map": latent_map},
        labels=labels,
    )
