"""The dtype and device an engine computes in: the model's, or a device the user names, checked
to exist on this machine before any data moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["model_dtype_device", "resolve_device"]


def model_dtype_device(model: Callable[..., Any]) -> tuple[torch.dtype, torch.device]:
    """The floating dtype and device of the model's first floating parameter or buffer.

    Plain callables (no parameters) compute in float32 on the CPU. A model whose tensors are on
    the meta device (shapes without values) is refused.
    """
    if isinstance(model, torch.nn.Module):
        tensors = list(model.parameters()) + list(model.buffers())
        if any(t.is_meta for t in tensors):
            raise ValueError(
                "the model's parameters are on the meta device: they have shapes but no values "
                "(the model was made under torch.device('meta') or with empty weights). Load its "
                "weights first, e.g. model.to_empty(device='cpu') then "
                "model.load_state_dict(torch.load(path))"
            )
        for tensor in tensors:
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device
    return torch.float32, torch.device("cpu")


_DEVICE_HINT = "use 'cpu', 'cuda', 'cuda:1' (a GPU by index) or 'mps' (Apple silicon)"


def resolve_device(device: Any, model_device: torch.device) -> torch.device:
    """The device to compute on (``model_device`` when ``device`` is None), checked to exist.

    Raises ``TypeError`` for something that is not a device, ``ValueError`` for a device name
    torch does not know, or one this machine does not have, before any data is moved.
    """
    if device is None:
        device = model_device
    if isinstance(device, bool) or not isinstance(device, str | torch.device | int):
        raise TypeError(f"device must be a string like 'cuda' or a torch.device, got {device!r}")
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a device torch knows ({error}); "
                         f"{_DEVICE_HINT}") from None  # fmt: skip
    kind = device.type
    if kind == "meta":
        raise ValueError(
            "device='meta' holds shapes without values; nothing can be computed there. "
            f"{_DEVICE_HINT[0].upper()}{_DEVICE_HINT[1:]}"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={str(device)!r} needs a CUDA GPU, but torch sees none "
                "(torch.cuda.is_available() is False: no GPU or driver, or a CPU-only build of "
                "torch); use device='cpu'"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device={str(device)!r} does not exist: this machine has {count} CUDA GPU(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
        return device
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                "device='mps' needs Apple silicon and a torch build with MPS "
                "(torch.backends.mps.is_available() is False); use device='cpu'"
            )
        return device
    if kind != "cpu":
        backend = getattr(torch, kind, None)
        available = getattr(backend, "is_available", None)
        if not callable(available) or not available():
            raise ValueError(
                f"device={str(device)!r} is not available on this machine; {_DEVICE_HINT}"
            )
    return device
