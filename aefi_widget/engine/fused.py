"""A chain of ``nn.Linear`` layers and activations run as fused oneDNN kernels (CPU, float32).

After the rank-1 first layer, the work per permuted sample is the rest of the network. Run module
by module, each ``nn.Linear`` is an MKL ``addmm`` that first copies the bias into its output and
each ``nn.ReLU`` another pass over memory; on the CPUs we measured MKL's float32 GEMM also runs
about 20 % below oneDNN's (``benchmarks/bench_permutation.py`` prints both rates). This module
runs the same chain through ``torch.ops.mkldnn._linear_pointwise``: one oneDNN matrix product per
Linear with the bias and the following activation applied in the product's epilogue.

Only exact module types whose function is known are fused (no subclasses, no hooks); anything
else leaves the chain unfused. The kernels agree with the modules to float32 rounding (the engine
checks this on probe rows before using them), and each row's result depends only on that row:
not on how many rows a call has, nor on the thread count (tested in ``tests/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["FusedChain", "fuse_chain", "has_hooks", "kernels_available"]

# oneDNN epilogue name and scalars for each activation module we know the function of.
_ACTIVATIONS: dict[type[torch.nn.Module], Callable[[torch.nn.Module], tuple[str, list, str]]] = {
    torch.nn.ReLU: lambda m: ("relu", [], ""),
    torch.nn.Sigmoid: lambda m: ("sigmoid", [], ""),
    torch.nn.Tanh: lambda m: ("tanh", [], ""),
    torch.nn.LeakyReLU: lambda m: ("leaky_relu", [float(m.negative_slope)], ""),
    torch.nn.GELU: lambda m: ("gelu", [], m.approximate),
}
# Modules that are the identity in eval mode (the engine always runs the model in eval mode).
_IDENTITIES = (torch.nn.Identity, torch.nn.Dropout)
# Packed (oneDNN-layout) weight copies up to this size in all; larger layers use the weights as
# they are (the same numbers, about 3 % slower), so a big model is not duplicated in memory.
_PACKED_BYTES_BUDGET = 256 * 2**20
# Row count the packed layout is tuned for: the engine's CPU forward calls are about this size.
_PACK_ROWS_HINT = 2048


@dataclass
class _Layer:
    """One fused step: ``epilogue(h @ weight.T + bias)``; ``linear`` is None for an activation
    that follows no Linear (applied as its own module)."""

    linear: torch.nn.Linear | None
    activation: torch.nn.Module | None = None
    epilogue: tuple[str, list, str] = ("none", [], "")
    pack: bool = False
    packed: torch.Tensor | None = None
    version: tuple[int, int, int] | None = None


def _weights_version(linear: torch.nn.Linear) -> tuple[int, int, int]:
    """Changes whenever the layer's weight is modified in place or replaced."""
    weight = linear.weight
    # torch has no public in-place version counter; _version is what autograd itself checks.
    return weight._version, weight.data_ptr(), weight.shape.numel()  # noqa: SLF001


class FusedChain:
    """Callable ``(rows, in) -> (rows, out)`` running fused Linear+activation kernels.

    Reads the model's current weights: a packed copy is re-made when a layer's weight changes.
    """

    def __init__(self, layers: list[_Layer]) -> None:
        self._layers = layers
        budget = _PACKED_BYTES_BUDGET
        for layer in layers:
            if layer.linear is not None:
                size = layer.linear.weight.numel() * layer.linear.weight.element_size()
                layer.pack = size <= budget
                budget -= size if layer.pack else 0

    def _weight(self, layer: _Layer) -> torch.Tensor:
        linear = layer.linear
        assert linear is not None
        weight = linear.weight.detach()
        if not layer.pack:
            return weight
        version = _weights_version(linear)
        if layer.packed is None or layer.version != version:
            with torch.inference_mode():
                # oneDNN's fused linear ops are only reachable as torch.ops.mkldnn._* (the ops
                # torch.compile's CPU backend emits); kernels_available() guards their presence.
                pack = torch.ops.mkldnn._reorder_linear_weight  # noqa: SLF001
                layer.packed = pack(weight, _PACK_ROWS_HINT)
            layer.version = version
        return layer.packed

    def __call__(self, h: torch.Tensor, overwrite: bool = False) -> torch.Tensor:
        """(rows, in) -> (rows, out). ``overwrite=True`` lets a leading ReLU work in place on
        ``h`` (the caller's scratch buffer): no new buffer, and ReLU is idempotent, so a call
        retried after running out of memory gives the same result."""
        for index, layer in enumerate(self._layers):
            if layer.linear is None:
                assert layer.activation is not None
                if overwrite and index == 0 and type(layer.activation) is torch.nn.ReLU:
                    h = h.relu_()
                else:
                    h = layer.activation(h)
                continue
            bias = None if layer.linear.bias is None else layer.linear.bias.detach()
            attr, scalars, algorithm = layer.epilogue
            h = torch.ops.mkldnn._linear_pointwise(  # noqa: SLF001 (see _weight)
                h, self._weight(layer), bias, attr, scalars, algorithm
            )
        return h


def has_hooks(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` runs forward (pre-)hooks of its own."""
    # torch offers no public query for registered hooks; these dicts are where it keeps them.
    return bool(
        getattr(module, "_forward_hooks", None)
        or getattr(module, "_forward_pre_hooks", None)
        or getattr(module, "_forward_hooks_with_kwargs", None)
    )


def _global_hooks() -> bool:
    hooks = torch.nn.modules.module
    return bool(
        getattr(hooks, "_global_forward_hooks", None)
        or getattr(hooks, "_global_forward_pre_hooks", None)
    )


def kernels_available() -> bool:
    """Whether this torch build has the oneDNN fused linear kernels."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def fuse_chain(
    modules: Sequence[torch.nn.Module], dtype: torch.dtype, device: torch.device
) -> FusedChain | None:
    """A :class:`FusedChain` computing ``modules`` applied in order, or None when any module is
    not a known exact type, has hooks, or the data is not float32 on the CPU."""
    if dtype != torch.float32 or device.type != "cpu" or not kernels_available():
        return None
    if _global_hooks():
        return None  # hooks registered for every module would be skipped
    layers: list[_Layer] = []
    for module in modules:
        if has_hooks(module):
            return None
        kind = type(module)
        if kind in _IDENTITIES:
            continue
        if kind is torch.nn.Linear:
            if module.weight.dtype != dtype or module.weight.device.type != "cpu":
                return None
            layers.append(_Layer(linear=module))
        elif kind in _ACTIVATIONS:
            last = layers[-1] if layers else None
            if last is not None and last.linear is not None and last.activation is None:
                last.activation, last.epilogue = module, _ACTIVATIONS[kind](module)
            else:
                layers.append(_Layer(linear=None, activation=module))
        else:
            return None
    if not any(layer.linear is not None for layer in layers):
        return None
    return FusedChain(layers)
