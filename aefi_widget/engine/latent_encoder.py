"""Finding an autoencoder's encoder, and running it on a private copy of X for the latent lenses.

Which callable maps inputs to the code, in this order:

1. ``encoder`` as given (a module or any callable of an (n, d) tensor);
2. ``model.encoder`` when the model has one;
3. for an ``nn.Sequential`` (nested plain Sequentials are flattened): the layers before the Linear
   that follows the *bottleneck*, the Linear with the fewest outputs (the first of them on a tie;
   the last Linear, which makes the reconstruction, is not a candidate). The code is therefore
   what the decoder's first Linear receives: an activation right after the bottleneck belongs to
   the encoder;
4. otherwise a ``ValueError`` asking for ``encoder=``.

An encoder may return a tuple (a VAE's ``(mu, logvar)``): its first element is the code. A code
with more than one axis per sample is flattened to (n, L).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from aefi_widget.engine.calls import MIN_FORWARD_ROWS, Caller, aligned
from aefi_widget.engine.devices import model_dtype_device
from aefi_widget.engine.fingerprint import tensor_digest
from aefi_widget.engine.forward import (
    ForwardPath,
    activation_floats_per_row,
    detect_forward_path,
    linear_flops_per_row,
)
from aefi_widget.engine.fused import has_hooks
from aefi_widget.engine.inputs import as_feature_matrix
from aefi_widget.engine.model_mode import computing, differentiating

__all__ = ["EncoderCodes", "EncoderSession", "code_of", "find_encoder"]

_PROBE_ROWS = 16
# Sizing assumptions, as in engine/session.py: fixed numbers (never measured at run time), so the
# plan and with it every sum is the same on every run with the same settings.
_ASSUMED_FLOPS = {"cpu": 150e9, "cuda": 20e12, "mps": 2e12}
_MEMORY_BUDGET_BYTES = {"cpu": 512 * 2**20, "cuda": 2 * 2**30, "mps": 1 * 2**30}
_CALL_BUDGET_BYTES = {"cpu": 128 * 2**20}
_MIN_FLOPS_PER_ROW = 20_000
_MIN_CALL_ROWS = 256
_ASK_FOR_ENCODER = (
    "pass encoder= (a module or callable mapping (n, d) inputs to (n, L) codes), e.g. "
    "latent_importance(model, X, encoder=model.encode)"
)


def code_of(output: Any) -> torch.Tensor:
    """The code in an encoder's output: the tensor, or a tuple's first element (a VAE's mu)."""
    if isinstance(output, tuple | list):
        if not output:
            raise ValueError("the encoder returned an empty tuple; it must return the code")
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"the encoder must return a tensor (or a tuple whose first element is the code), "
            f"got {type(output).__name__}"
        )
    return output.reshape(output.shape[0], -1) if output.dim() > 2 else output


def _flat_layers(seq: torch.nn.Sequential) -> list[torch.nn.Module] | None:
    """The layers of a Sequential with plain nested Sequentials expanded; None when a container
    has hooks (a split would skip them)."""
    layers: list[torch.nn.Module] = []
    for module in seq:
        if type(module) is torch.nn.Sequential:
            if has_hooks(module):
                return None
            inner = _flat_layers(module)
            if inner is None:
                return None
            layers += inner
        else:
            layers.append(module)
    return layers


def _bottleneck_split(model: torch.nn.Sequential) -> tuple[torch.nn.Sequential | None, str]:
    """The encoder part of a Sequential autoencoder (see the module docstring), or None and why."""
    layers = None if has_hooks(model) else _flat_layers(model)
    if layers is None:
        return None, "it has forward hooks that a split would skip"
    linears = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Linear)]
    if len(linears) < 2:
        return None, f"it has {len(linears)} Linear layer(s); a bottleneck needs at least 2"
    candidates = linears[:-1]  # the last Linear makes the reconstruction
    narrowest = min(candidates, key=lambda i: layers[i].out_features)  # first one on a tie
    following = linears[linears.index(narrowest) + 1]
    return torch.nn.Sequential(*layers[:following]), (
        f"layers 0-{following - 1} of the flattened Sequential (bottleneck: layer {narrowest}, "
        f"Linear with {layers[narrowest].out_features} outputs)"
    )


def find_encoder(model: Any, encoder: Any = None) -> tuple[Callable[..., Any], str]:
    """The encoder to attribute, and a description of where it came from (structure only: no
    call is made). Raises ``ValueError`` naming ``encoder=`` when none is found."""
    if encoder is not None:
        if not callable(encoder):
            raise TypeError(
                f"encoder must be a torch.nn.Module or callable, got {type(encoder).__name__}"
            )
        return encoder, "given"
    own = getattr(model, "encoder", None)
    if own is not None:
        if not callable(own):
            raise TypeError(
                f"model.encoder is a {type(own).__name__}, not a module or callable; "
                f"{_ASK_FOR_ENCODER}"
            )
        return own, "model.encoder"
    if isinstance(model, torch.nn.Sequential):
        split, where = _bottleneck_split(model)
        if split is None:
            raise ValueError(
                f"cannot split this nn.Sequential at a bottleneck: {where}; {_ASK_FOR_ENCODER}"
            )
        return split, where
    raise ValueError(
        f"cannot find the encoder of this {type(model).__name__}: it has no `encoder` attribute "
        f"and is not an nn.Sequential with a bottleneck Linear; {_ASK_FOR_ENCODER}"
    )


def _mode_owner(model: Any, encoder: Any) -> Any:
    """The module whose training flags to switch: the model when the encoder is (made of) its
    parts or a plain callable (``model.encode``), else the encoder itself."""
    if not isinstance(encoder, torch.nn.Module):
        return model
    if isinstance(model, torch.nn.Module):
        inside = {id(m) for m in model.modules()}
        parts = list(encoder.children()) or [encoder]
        if id(encoder) in inside or all(id(m) in inside for m in parts):
            return model
    return encoder


@dataclass(frozen=True)
class EncoderCodes:
    """Unpermuted quantities over all n samples: ``pre`` (n, h) the first Linear's output on the
    rank-1 path (else None), ``code`` (n, L), ``columns`` (d, n) X transposed."""

    pre: torch.Tensor | None
    code: torch.Tensor
    columns: torch.Tensor


class EncoderSession:
    """An encoder and a private copy of X, checked and prepared for the latent lenses.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The autoencoder; used to find the encoder when ``encoder`` is None, and as the module
        whose training flags are switched while computing (so two engines on one model do not
        toggle each other's flags mid-call). Never modified.
    X : tensor, array, DataFrame or AnnData, shape (n, d)
        Copied; integer and bool inputs are cast to the encoder's dtype.
    encoder : module or callable, optional
        See :func:`find_encoder`.
    feature_names : sequence of str, optional
    device : str or torch.device, optional
        Where to compute; another device than the model's works on a copy.
    check_first : callable, optional
        ``check_first(feature_names, X)`` runs after X is checked, before the encoder is called.
    rank1 : bool, default True
        Look for the rank-1 first-Linear path (only the permutation lens uses it).
    layer : str, optional
        With an AnnData X: use ``adata.layers[layer]`` instead of ``adata.X``.
    """

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        encoder: Any = None,
        feature_names: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        check_first: Callable[[tuple[str, ...], torch.Tensor], None] | None = None,
        rank1: bool = True,
        layer: str | None = None,
    ) -> None:
        encoder, self.encoder_source = find_encoder(model, encoder)
        owner = _mode_owner(model, encoder)
        typed = encoder if isinstance(encoder, torch.nn.Module) else model
        dtype, model_device = model_dtype_device(typed)
        self.device = torch.device(device) if device is not None else model_device
        if not _same_device(model_device, self.device):
            # Copied together, so an encoder that is part of the model stays part of the copy.
            owner, encoder = copy.deepcopy((owner, encoder))
            for module in (owner, encoder):
                if isinstance(module, torch.nn.Module):
                    module.to(self.device)
        self.encoder, self.owner = encoder, owner
        self.X, self.feature_names = as_feature_matrix(X, feature_names, dtype, self.device, layer)
        self.n_samples, self.n_inputs = self.X.shape
        if check_first is not None:
            check_first(self.feature_names, self.X)
        self.probe = self.X[torch.arange(_PROBE_ROWS, device=self.device) % self.n_samples]
        tuple_output = self._check_code()
        # A Sequential encoder starting with a Linear shares the permutation method's rank-1
        # path (and its fused kernels); one returning a tuple stays plain.
        self._allow_rank1 = rank1 and not tuple_output
        self.path: ForwardPath = self._detect_path()
        self.latent_names = tuple(f"z{i}" for i in range(self.n_latent))
        self.caller = Caller(self.device)
        self._codes: EncoderCodes | None = None
        self._lock = threading.Lock()
        self._identity: dict[str, str] | None = None

    def _detect_path(self) -> ForwardPath:
        with computing(self.owner):
            return detect_forward_path(self.encoder, self.probe, allow_rank1=self._allow_rank1)

    def __getstate__(self) -> dict[str, Any]:
        """For a worker process: as :class:`~aefi_widget.engine.session.ModelSession`, without
        the lock, caller, forward path (packed weights) and cached codes, rebuilt there."""
        state = dict(self.__dict__)
        for name in ("path", "caller", "_codes", "_lock"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.path = self._detect_path()
        self.caller = Caller(self.device)
        self._codes = None
        self._lock = threading.Lock()

    def _check_code(self) -> bool:
        """Refuse an encoder that does not map (rows, d) to finite (rows, L) codes; whether it
        returns a tuple."""
        probe = self.probe
        hint = "" if self.encoder_source == "given" else f"; or {_ASK_FOR_ENCODER}"
        with computing(self.owner):
            try:
                output = self.encoder(probe.clone())
            except Exception as error:
                raise ValueError(
                    f"calling the encoder ({self.encoder_source}) on the first rows of X (shape "
                    f"{tuple(probe.shape)}, {probe.dtype}) failed: {type(error).__name__}: "
                    f"{error}. Check that X has the columns, order and dtype the model was "
                    f"trained on{hint}"
                ) from error
            code = code_of(output)
        if code.dim() != 2 or code.shape[0] != probe.shape[0] or code.shape[1] < 1:
            raise ValueError(
                f"the encoder ({self.encoder_source}) returned shape {tuple(code.shape)} for "
                f"{probe.shape[0]} samples; it must return ({probe.shape[0]}, L) codes"
            )
        if not code.is_floating_point():
            raise TypeError(f"the encoder returned {code.dtype}; a floating code is needed")
        if not bool(torch.isfinite(code).all()):
            raise ValueError("the encoder's code of the first rows of X has NaN or inf")
        self.n_latent = int(code.shape[1])
        self._probe_digest = tensor_digest([("probe_code", code)])
        return isinstance(output, tuple | list)

    # ------------------------------------------------------------------ running the encoder
    def computing(self) -> contextlib.AbstractContextManager[None]:
        """Eval mode and inference mode (flags of the whole model, restored after)."""
        return computing(self.owner)

    def differentiating(self) -> contextlib.AbstractContextManager[None]:
        """Eval mode with autograd on, for the gradient lens."""
        return differentiating(self.owner)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """(rows, width) buffer -> (rows, L) codes: X rows on the plain path, first-layer outputs
        on the rank-1 path (fused kernels may overwrite ``inputs``)."""
        path = self.path
        if path.fused:
            fn = functools.partial(path.rest, overwrite=True)
        else:
            fn = path.rest if path.first is not None else self.encoder
        code = code_of(self.caller(fn, inputs))
        if code.shape != (inputs.shape[0], self.n_latent):
            raise ValueError(
                f"the encoder returned shape {tuple(code.shape)} for {inputs.shape[0]} samples; "
                f"it must return ({inputs.shape[0]}, {self.n_latent})"
            )
        return code

    def codes(self, call_rows: int) -> EncoderCodes:
        """The unpermuted codes of all n samples (computed once, in aligned calls of
        ``call_rows`` rows: every row's code is independent of the call it is in)."""
        with self._lock:
            if self._codes is None:
                with computing(self.owner):
                    self._codes = self._compute_codes(call_rows)
            return self._codes

    def _compute_codes(self, call_rows: int) -> EncoderCodes:
        X, first = self.X, self.path.first
        step = aligned(max(MIN_FORWARD_ROWS, call_rows))
        pre = None
        if first is not None:
            pre = torch.cat([self.caller(first, p) for p in torch.split(X, step)])
            code = torch.cat([self.encode(p.clone()) for p in torch.split(pre, step)])
        else:
            code = torch.cat([self.encode(p) for p in torch.split(X, step)])
        if not bool(torch.isfinite(code).all()):
            raise ValueError("the encoder's code of X has NaN or inf for some samples")
        return EncoderCodes(pre, code, X.t().contiguous())

    # ------------------------------------------------------------------ sizing
    def rows_per_chunk(self, seconds: float) -> int:
        """Samples whose encoder calls take about ``seconds`` (assumed rate) and fit memory."""
        kind = self.device.type
        floats = activation_floats_per_row(self.encoder, self.n_inputs)
        rows = _MEMORY_BUDGET_BYTES.get(kind, 512 * 2**20) // max(1, floats * self.itemsize)
        flops = max(_MIN_FLOPS_PER_ROW, linear_flops_per_row(self.encoder, skip=self.path.first))
        rows = min(rows, int(seconds * _ASSUMED_FLOPS.get(kind, 150e9) / flops))
        return max(MIN_FORWARD_ROWS, rows)

    def rows_per_call(self, chunk_rows: int) -> int:
        """Samples per encoder call inside a chunk: activations within the call budget (CPU)."""
        budget = _CALL_BUDGET_BYTES.get(self.device.type)
        if budget is None:
            return chunk_rows
        floats = activation_floats_per_row(self.encoder, self.n_inputs)
        rows = aligned(budget // max(1, floats * self.itemsize))
        return max(_MIN_CALL_ROWS, min(chunk_rows, rows))

    @property
    def itemsize(self) -> int:
        """Bytes per value of X (the encoder's dtype)."""
        return self.X.element_size()

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, str]:
        """Digests of the encoder's parameters and buffers, its codes of the probe rows, and X."""
        with self._lock:
            if self._identity is None:
                # A callable encoder (model.encode) is identified by the model it belongs to.
                holder = self.encoder if isinstance(self.encoder, torch.nn.Module) else self.owner
                if isinstance(holder, torch.nn.Module):
                    model = tensor_digest(sorted(holder.state_dict().items()))
                else:
                    name = getattr(holder, "__qualname__", type(holder).__name__)
                    model = hashlib.sha256(f"{type(holder).__module__}.{name}".encode()).hexdigest()
                self._identity = {
                    "model": model,
                    "outputs": self._probe_digest,
                    "data": tensor_digest([("X", self.X)]),
                }
            return dict(self._identity)


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (b.index is None or b.index == (a.index or 0))
