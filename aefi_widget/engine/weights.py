"""The size of the weight learnt for each input: the L2 norm of its column in the first Linear.

A cheap structural lens (no data, no model call): an input whose column of the first layer's
weight is zero cannot influence anything downstream; a large column *can* matter, but does not
have to (it ignores the input's scale and what later layers do with it), so read it next to the
data-based lenses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from aefi_widget.result import ImportanceResult

__all__ = ["first_linear", "weight_importance"]

LABELS = {"title": "First-layer weight norm", "value": "‖W[:, j]‖₂", "axis": "estimate"}


def first_linear(model: Any) -> torch.nn.Linear:
    """The Linear that is the model's first operation on its input, found from the structure:
    the model itself, the first layer of an ``nn.Sequential`` (into nested Sequentials), or that
    of ``model.encoder``. Raises ``ValueError`` saying what to pass instead otherwise."""
    candidate = model
    path = "the model"
    if not isinstance(model, torch.nn.Sequential | torch.nn.Linear):
        encoder = getattr(model, "encoder", None)
        if isinstance(encoder, torch.nn.Module):
            candidate, path = encoder, "model.encoder"
    while type(candidate) is torch.nn.Sequential and len(candidate) > 0:
        candidate, path = candidate[0], f"{path}[0]"
    if isinstance(candidate, torch.nn.Linear):
        return candidate
    found = type(candidate).__name__
    raise ValueError(
        f"weight_importance needs a Linear as the model's first operation, but {path} is a "
        f"{found}; the weights of a first layer that is not a Linear (convolution, embedding, "
        "normalisation) do not belong to single inputs. For a model with a custom forward, pass "
        "its first nn.Linear itself, e.g. weight_importance(model.fc1)."
    )


def weight_importance(model: Any, feature_names: Sequence[str] | None = None) -> ImportanceResult:
    """The L2 norm of each input's column of the first Linear layer's weight.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Sequential`` whose first layer (into nested Sequentials) is an ``nn.Linear``, a
        model whose ``encoder`` is one, or an ``nn.Linear`` itself (the first layer). Not called
        and not modified.
    feature_names : sequence of str, optional
        One name per input (the Linear's ``in_features``); default "x0".."x{d-1}".

    Returns
    -------
    ImportanceResult
        ``importances`` (F, 1) float64: ``||W[:, j]||_2`` for the first layer's weight W (h, d),
        in the weight's units; ``settings["method"] == "weights"``. ``output_names`` are the
        feature names (an autoencoder's outputs reconstruct its inputs).

    Examples
    --------
    >>> weight_importance(torch.nn.Sequential(torch.nn.Linear(3, 2))).n_features
    3
    """
    layer = first_linear(model)
    weight = layer.weight.detach().to("cpu", torch.float64)  # a copy: theirs is untouched
    d = weight.shape[1]
    if feature_names is None:
        names = tuple(f"x{j}" for j in range(d))
    else:
        if isinstance(feature_names, str) or not isinstance(
            feature_names, Sequence | np.ndarray | pd.Index
        ):
            raise TypeError("feature_names must be a sequence of strings, one per input")
        names = tuple(str(f) for f in feature_names)
        if len(names) != d:
            raise ValueError(
                f"feature_names has {len(names)} names but the first Linear has {d} inputs"
            )
        if len(set(names)) != d:
            raise ValueError("feature names must be unique")
    norms = torch.linalg.vector_norm(weight, dim=0).numpy()[:, None]
    return ImportanceResult(
        feature_names=names,
        output_names=names,
        importances=norms,
        baseline_error=float("nan"),
        settings={
            "method": "weights",
            "norm": "l2",
            "layer": type(layer).__name__,
            "in_features": d,
            "out_features": int(weight.shape[0]),
        },
        evaluations_done=1,
        evaluations_total=1,
        labels=LABELS,
    )
