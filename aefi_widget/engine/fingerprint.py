"""Digests that tie saved results and checkpoints to the model and data they were made from."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["tensor_digest"]


def tensor_digest(tensors: list[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (in the given order)."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        # Bytes through a uint8 view: works for every dtype, bfloat16 included, without numpy.
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
