"""How the engine runs the model: the plain path, or the rank-1 first-Linear path.

When the model's first operation on X is a ``torch.nn.Linear`` (an ``nn.Sequential``, or a module
whose ``encoder`` Sequential starts with one and whose forward is ``decoder(encoder(x))``),
shuffling column j changes that layer's pre-activation by the rank-1 term
``(x_perm[:, j] - x[:, j]) outer W[:, j]``. The engine then never materialises the permuted input:
it adds the term to the precomputed pre-activation and runs the rest of the network, saving the
first layer's matrix product (a third of the work in a symmetric autoencoder).

Detection is conservative: the split model must reproduce the model's own output bit for bit on
probe rows, otherwise the plain path is used. When the rest is a chain of known layers it then
runs as fused oneDNN kernels (:mod:`aefi_widget.engine.fused`), checked against the modules on
the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from aefi_widget.engine.fused import fuse_chain, has_hooks
from aefi_widget.engine.inputs import reconstruction_of

__all__ = [
    "ForwardPath",
    "activation_floats_per_row",
    "detect_forward_path",
    "linear_flops_per_row",
]


# Fused oneDNN kernels cost ~90 us more per call than the modules (primitive set-up) and only
# pay off on wide layers. Measured per call on the seed-like chain (the engine's calls have
# thousands of rows): at 4,096 rows the modules took 0.94-1.0x the fused time for widths 24-96
# and 1.27x at 192 (1.23x at d = 1000, benchmarks/bench_calls.py); at 256 rows, 0.4-0.7x below
# width 64. Whole runs at d = 200 (widths 100-200): 1.2x faster fused. So they are used only when
# every Linear of the rest has at least this many inputs and outputs: a rule on shapes, not a
# timing, so the kernels chosen (and the last bits of the numbers) never depend on the machine.
FUSED_MIN_WIDTH = 64


@dataclass(frozen=True)
class ForwardPath:
    """The model as the engine calls it.

    ``model(x)`` maps (rows, d) inputs to (rows, d) reconstructions. On the rank-1 path, ``first``
    is the leading Linear (weight (h, d)) and ``rest(pre)`` maps its (rows, h) output onward;
    ``fused`` says whether ``rest`` runs as fused kernels rather than through the modules.
    """

    model: Callable[[torch.Tensor], Any]
    first: torch.nn.Linear | None = None
    rest: Callable[[torch.Tensor], torch.Tensor] | None = None
    fused: bool = False

    @property
    def kind(self) -> str:
        return "rank1" if self.first is not None else "plain"

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(rows, d) -> (rows, d) reconstruction through the user's model."""
        return reconstruction_of(self.model(x))


def _leading_linear(
    seq: torch.nn.Sequential,
) -> tuple[torch.nn.Linear, list[torch.nn.Module]] | None:
    """The first Linear of a Sequential (into nested leading Sequentials) and the rest."""
    if len(seq) == 0:
        return None
    head = seq[0]
    tail = list(seq)[1:]
    if isinstance(head, torch.nn.Linear):
        return head, tail
    if isinstance(head, torch.nn.Sequential):
        inner = _leading_linear(head)
        if inner is not None:
            return inner[0], inner[1] + tail
    return None


def _leading_containers(model: Any) -> list[torch.nn.Module]:
    """The Sequentials passed through on the way to the first Linear."""
    containers = []
    seq = model if isinstance(model, torch.nn.Sequential) else getattr(model, "encoder", None)
    while isinstance(seq, torch.nn.Sequential) and len(seq) > 0:
        containers.append(seq)
        seq = seq[0]
    return containers


def _run_modules(modules: list[torch.nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(h: torch.Tensor) -> torch.Tensor:
        for module in modules:
            h = module(h)
        return h

    return run


def _flat(modules: list[torch.nn.Module]) -> list[torch.nn.Module] | None:
    """Plain ``nn.Sequential`` s expanded into their layers; None if a container has hooks."""
    flat: list[torch.nn.Module] = []
    for module in modules:
        if type(module) is torch.nn.Sequential:
            if has_hooks(module):
                return None
            inner = _flat(list(module))
            if inner is None:
                return None
            flat += inner
        else:
            flat.append(module)
    return flat


@dataclass(frozen=True)
class _Split:
    """The first Linear, the rest as a callable, and the rest as a flat list of layers when it
    is plainly their composition (else None: the rest cannot be fused)."""

    first: torch.nn.Linear
    rest: Callable[[torch.Tensor], torch.Tensor]
    layers: list[torch.nn.Module] | None


def _candidate_split(model: Any) -> _Split | None:
    if isinstance(model, torch.nn.Sequential):
        found = _leading_linear(model)
        if found is not None:
            return _Split(found[0], _run_modules(found[1]), _flat(found[1]))
    encoder = getattr(model, "encoder", None)
    decoder = getattr(model, "decoder", None)
    if isinstance(model, torch.nn.Module) and isinstance(encoder, torch.nn.Sequential):
        found = _leading_linear(encoder)
        if found is not None and callable(decoder):
            encoder_rest = _run_modules(found[1])

            def rest(pre: torch.Tensor) -> torch.Tensor:
                return reconstruction_of(decoder(encoder_rest(pre)))

            layers = None
            if type(decoder) is torch.nn.Sequential:
                layers = _flat([*found[1], decoder])
            return _Split(found[0], rest, layers)
    return None


def _fused_rest(
    split: _Split, pre: torch.Tensor, expected: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The rest as fused kernels, if they exist here and agree with the modules on ``pre``.

    Agreement is to float32 rounding (different kernels sum in a different order), not bitwise;
    the bitwise check that the split is the model has already passed.
    """
    if split.layers is None:
        return None
    chain = fuse_chain(split.layers, pre.dtype, pre.device)
    if chain is None:
        return None
    try:
        got = chain(pre)
    except Exception:  # kernels unavailable for this build or shape: stay with the modules
        return None
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    tolerance = 1e-4 * max(1.0, scale)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=tolerance):
        return None
    return chain


def _min_width(layers: list[torch.nn.Module] | None) -> int:
    """The narrowest input or output of the Linear layers in ``layers`` (0 when none)."""
    widths = [
        min(m.in_features, m.out_features) for m in layers or [] if isinstance(m, torch.nn.Linear)
    ]
    return min(widths, default=0)


def detect_forward_path(
    model: Any,
    probe: torch.Tensor,
    allow_rank1: bool = True,
    allow_fused: bool = True,
    force_fused: bool = False,
) -> ForwardPath:
    """Choose the rank-1 path when it provably computes the model's function on ``probe`` rows.

    ``probe`` (rows >= 16, d) must be real data rows; the check runs the model, then the split
    model, under ``torch.inference_mode`` and requires identical outputs. With ``allow_fused``
    the rest then runs as fused kernels where :func:`_fused_rest` accepts them and its layers are
    at least ``FUSED_MIN_WIDTH`` wide (``force_fused`` drops the width rule: tests).
    """
    plain = ForwardPath(model=model)
    if not allow_rank1:
        return plain
    split = _candidate_split(model)
    if split is None:
        return plain
    first, rest = split.first, split.rest
    d = probe.shape[1]
    if first.in_features != d or first.weight is None or first.weight.dim() != 2:
        return plain
    # Hooks on the model, its encoder, nested leading Sequentials or the first layer would be
    # skipped (or see the wrong input) on the split path: stay plain.
    skipped = [model, getattr(model, "encoder", None), first]
    skipped += [m for m in _leading_containers(model) if isinstance(m, torch.nn.Module)]
    if any(has_hooks(m) for m in skipped if isinstance(m, torch.nn.Module)):
        return plain
    with torch.inference_mode():
        expected = plain.reconstruct(probe)
        try:
            pre = first(probe)
            got = rest(pre)
        except Exception:  # a model whose pieces do not compose is simply not splittable
            return plain
        if got.shape != expected.shape or not torch.equal(got, expected):
            return plain
        wide = force_fused or _min_width(split.layers) >= FUSED_MIN_WIDTH
        fused = _fused_rest(split, pre, got) if allow_fused and wide else None
    if fused is not None:
        return ForwardPath(model=model, first=first, rest=fused, fused=True)
    return ForwardPath(model=model, first=first, rest=rest)


def linear_flops_per_row(model: Any, skip: torch.nn.Module | None = None) -> int:
    """Matrix-product FLOPs (2 * in * out per Linear) one sample costs, ``skip`` excluded.

    Zero when the model has no Linear layers the engine can see (then batches are sized by time).
    """
    if not isinstance(model, torch.nn.Module):
        return 0
    return sum(
        2 * m.in_features * m.out_features
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not skip
    )


def activation_floats_per_row(model: Any, d: int) -> int:
    """Floats of intermediate tensors one sample needs in a forward call (memory sizing).

    Estimated from the structure, never with hooks (the user's model is not touched): input and
    output, plus two tensors (pre- and post-activation) per Linear layer's output width.
    """
    widths = 0
    if isinstance(model, torch.nn.Module):
        widths = sum(m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 2 * d + 2 * widths
