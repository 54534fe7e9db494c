"""Digests that tie saved results and checkpoints to the model and data they were made from."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["tensor_digest"]

_BLOCK_BYTES = 64 * 2**20


def tensor_digest(tensors: list[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (in the given order)."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        data = tensor.detach().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        # Bytes through a uint8 view (every dtype, bfloat16 included), hashed block by block
        # from the tensor's own memory: no copy of X's size (a GPU tensor moves one block at a
        # time).
        flat = data.reshape(-1).view(torch.uint8)
        for start in range(0, flat.numel(), _BLOCK_BYTES):
            digest.update(flat[start : start + _BLOCK_BYTES].to("cpu").numpy())
    return digest.hexdigest()
