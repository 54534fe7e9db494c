"""Fingerprints that tie saved results and checkpoints to the model, data and settings."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

__all__ = ["fingerprint_of", "tensor_digest"]


def tensor_digest(tensors: list[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (in the given order)."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        # Bytes through a uint8 view: works for every dtype, bfloat16 included, without numpy.
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def fingerprint_of(model: Any, X: torch.Tensor, settings: dict[str, Any]) -> dict[str, str]:
    """Digests of the model's parameters and buffers, of X, and of ``settings`` (JSON-able).

    A plain callable without parameters is identified by its qualified name only.
    """
    if isinstance(model, torch.nn.Module):
        named = sorted(model.state_dict().items())
        model_digest = tensor_digest(named)
    else:
        name = f"{type(model).__module__}.{getattr(model, '__qualname__', type(model).__name__)}"
        model_digest = hashlib.sha256(name.encode()).hexdigest()
    return {
        "model": model_digest,
        "data": tensor_digest([("X", X)]),
        "settings": hashlib.sha256(
            json.dumps(settings, sort_keys=True, default=str).encode()
        ).hexdigest(),
    }
