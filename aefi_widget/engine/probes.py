"""What a model does on a few probe rows, checked once when a session is made, before any work.

Three calls on the same 16 rows of X, each on a private copy, tell us:

1. the model reconstructs (shape, dtype, finiteness), and whether it writes into its input
   (``x.sub_(1)``, ``lambda x: x.mul_(2.0)``): such a model would overwrite the engine's working
   data, so the session then hands it a copy on every call (:class:`CopyingInputs`);
2. a second, identical call gives the same outputs: a model that samples in ``forward`` even in
   eval mode (a VAE drawing ``z``), or changes its own weights when called, is refused, because
   permutation importance compares reconstructions and would measure noise;
3. a third call with the first rows among other rows (and more of them) gives those rows the same
   outputs: a model whose output for a row depends on the other rows (``x - x.mean(0)``) makes
   every number depend on ``batch_size``, which a :class:`RowCouplingWarning` says.

Differences at rounding level (a different kernel for a different call size) are not coupling;
the tolerance is ``sqrt(eps)`` of the dtype relative to the outputs' scale.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from aefi_widget.engine.fingerprint import tensor_digest
from aefi_widget.engine.inputs import reconstruction_of

__all__ = ["PROBE_CALLS", "CopyingInputs", "ProbeReport", "RowCouplingWarning",
           "joined_reconstructions", "probe_model"]  # fmt: skip

# Model calls probe_model makes (tests that count a model's calls use it).
PROBE_CALLS = 3
_SHOWN_MAX = 3


class RowCouplingWarning(UserWarning):
    """The model's output for a sample depends on the other samples in the same call."""


@dataclass(frozen=True)
class ProbeReport:
    """What the probe calls found.

    ``recon`` (rows, d): the model's reconstruction of the probe rows; ``writes_input``: whether
    the model wrote into its input; ``digest``: SHA-256 of the outputs (and of a custom metric's
    errors on them), part of a run's identity, so ``lambda x: 0.5 * x`` and ``lambda x: 0.9 * x``
    (or two lambda metrics) are different runs.
    """

    recon: torch.Tensor
    writes_input: bool
    digest: str


class CopyingInputs:
    """Calls ``model`` on a copy of its input, for models that write into their input.

    Protecting rather than refusing: writing into the input is legitimate in a model of one's
    own. The copy costs one pass over each call's input (rows x d values); with
    ``benchmarks/bench_copying_inputs.py`` the engine ran at 0.87-0.91 of the out-of-place
    model's rate at d=200 and within noise of it at d=1000 (seed-like autoencoder, CPU). Only
    models that do write into their input pay it.
    """

    def __init__(self, model: Callable[[torch.Tensor], Any]) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor) -> Any:
        return self.model(x.clone())


def probe_model(
    model: Callable[[torch.Tensor], Any],
    probe: torch.Tensor,
    metric: Callable[..., Any],
    custom_metric: bool,
) -> ProbeReport:
    """Run the probe checks (the caller holds eval and inference mode); see the module doc.

    ``probe`` (rows >= 16, d) are real rows of X; it is never written. Raises ``ValueError`` or
    ``TypeError`` with what to do; warns :class:`RowCouplingWarning` for row coupling.
    """
    given = probe.clone()
    recon = _checked(_call(model, given, probe, "the first rows of X"), probe.shape)
    writes_input = not torch.equal(given, probe)
    again = _call(model, probe.clone(), probe, "the first rows of X a second time")
    _check_repeatable(recon, _checked(again, probe.shape))
    _check_rows_independent(model, probe, recon)
    digests = [("probe", recon)]
    if custom_metric:
        digests += _check_custom_metric(metric, recon, probe)
    else:
        _check_errors_finite(metric(recon.clone(), probe.clone()))
    return ProbeReport(recon, writes_input, tensor_digest(digests))


def joined_reconstructions(pieces: list[torch.Tensor], d: int) -> torch.Tensor:
    """The per-call reconstructions of consecutive row blocks as one (rows, d) tensor, after
    checking each has d columns (a model that changes its output shape after the probe)."""
    for piece in pieces:
        if piece.dim() != 2 or piece.shape[1] != d:
            raise ValueError(
                f"the model returned shape {tuple(piece.shape)} on a later call although it "
                f"returned (rows, {d}) on the first rows of X; it must always return its input's "
                "shape (rows, d)"
            )
    return torch.cat(pieces)


# ---------------------------------------------------------------------------- the three checks
def _call(model: Callable[[torch.Tensor], Any], x: torch.Tensor, probe: torch.Tensor,
          rows: str) -> torch.Tensor:  # fmt: skip
    """``model(x)``'s reconstruction; a failure inside the model becomes a clear ValueError."""
    try:
        output = model(x)
    except Exception as error:
        raise _call_failed(probe, rows, error) from error
    return reconstruction_of(output)


def _call_failed(probe: torch.Tensor, rows: str, error: BaseException) -> ValueError:
    return ValueError(
        f"calling the model on {rows} (shape {tuple(probe.shape)}, {probe.dtype}) failed: "
        f"{type(error).__name__}: {error}. Check that X has the columns, order and dtype the "
        "model was trained on."
    )


def _checked(recon: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if recon.shape != shape:
        raise ValueError(
            f"the model does not reconstruct its input: for input of shape {tuple(shape)} it "
            f"returned shape {tuple(recon.shape)}. aefi_widget needs an autoencoder whose output "
            "has the input's shape (n, d); wrap an encoder-only model so that it returns the "
            "reconstruction."
        )
    if not recon.is_floating_point():
        raise TypeError(f"the model returned {recon.dtype}; a floating reconstruction is needed")
    if not bool(torch.isfinite(recon).all()):
        raise ValueError("the model's reconstruction of the first rows of X has NaN or inf")
    # A copy: the model may keep writing into a tensor it returned (a reused output buffer).
    return recon.detach().clone()


def _tolerance(reference: torch.Tensor) -> float:
    """Rounding-level difference for outputs like ``reference``: sqrt(eps) of their scale."""
    scale = max(1.0, float(reference.abs().max())) if reference.numel() else 1.0
    return math.sqrt(torch.finfo(reference.dtype).eps) * scale


def _check_repeatable(first: torch.Tensor, second: torch.Tensor) -> None:
    """Two identical calls must give the same outputs."""
    if torch.equal(first, second):
        return
    largest = float((first - second).abs().max())
    if largest <= _tolerance(first):
        warnings.warn(
            f"the model's outputs for the same rows differ by up to {largest:.2g} between two "
            "identical calls (rounding: nondeterministic kernels, e.g. on a GPU). Results will "
            "vary at that level between runs; torch.use_deterministic_algorithms(True) makes "
            "them repeatable.",
            stacklevel=6,
        )
        return
    raise ValueError(
        f"the model gives different reconstructions for two identical calls on the same rows "
        f"(outputs differ by up to {largest:.3g}) in eval mode: it is random (e.g. a VAE that "
        "samples z = mu + sigma * eps in forward) or changes its own state when called. "
        "Permutation importance compares reconstructions, so it needs a deterministic one: "
        "reconstruct from the mean, e.g. model=lambda x: vae.decode(vae.encode(x)[0]) (or make "
        "forward return decode(mu) when not self.training). To keep the sampling, fix its noise "
        "per call: def seeded(x): with torch.random.fork_rng(): torch.manual_seed(0); return "
        "vae(x) (the numbers then depend on batch_size)."
    )


def _check_rows_independent(
    model: Callable[[torch.Tensor], Any], probe: torch.Tensor, recon: torch.Tensor
) -> None:
    """The first half of the probe among other rows, in a larger call, must keep its outputs."""
    half = probe.shape[0] // 2
    others = probe[:1].expand(probe.shape[0] + half, -1)  # different rows and a different count
    mixed = torch.cat([probe[:half], others])
    got = _checked(_call(model, mixed, probe, "the first rows of X among other rows"),
                   mixed.shape)[:half]  # fmt: skip
    if torch.equal(got, recon[:half]):
        return
    difference = (got - recon[:half]).abs()
    largest = float(difference.max())
    if largest <= _tolerance(recon):
        return
    row = int(difference.amax(dim=1).argmax())
    warnings.warn(
        f"the model's output for a sample depends on the other samples in the same call (row "
        f"{row} of X changed by up to {largest:.3g} when the rows around it changed): it uses "
        "statistics of the batch (e.g. x - x.mean(0), or BatchNorm without running statistics). "
        "Permutation importances will then depend on batch_size and on which samples share a "
        "forward call. Make each sample's reconstruction depend on that sample only (e.g. use "
        "statistics of the training set).",
        RowCouplingWarning,
        stacklevel=6,
    )


def _check_errors_finite(errors: torch.Tensor, custom: bool = False) -> None:
    finite = torch.isfinite(errors)
    if custom and not bool(finite.all()):
        # The user's own function: overflow is one cause among many (a 0/0, a log of 0).
        bad = torch.nonzero(~finite).flatten()[:10].tolist()
        raise ValueError(
            f"the custom metric returned NaN or inf for row(s) {bad} of the first rows of X, "
            "where the reconstruction is finite; it must return one finite error per sample "
            "(check it for 0/0, log(0) or sqrt of a negative number)"
        )
    if not bool(finite.all()):
        raise ValueError(
            "the reconstruction error of the first rows of X is NaN or inf although the "
            "reconstruction is finite: the squared differences overflow the model's dtype "
            "(rescale X, or use model.double()), or, with metric 'rmse_pct', a row has norm 0"
        )


def _check_custom_metric(
    metric: Callable[..., Any], recon: torch.Tensor, probe: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """A custom metric returns one finite error per sample and leaves its arguments alone;
    its errors on two fixed pairs become part of the identity."""
    rows = probe.shape[0]
    pairs = {"metric": (recon, probe), "metric_shifted": (probe.roll(1, dims=0), probe)}
    out = []
    for name, (reconstruction, target) in pairs.items():
        given = reconstruction.clone()
        try:
            errors = torch.as_tensor(metric(given, target.clone()))
        except Exception as error:
            if name != "metric":
                continue  # the shifted pair only sharpens the identity; the metric may not take it
            raise ValueError(
                f"the custom metric failed on the model's reconstruction of the first rows of X: "
                f"{type(error).__name__}: {error}"
            ) from error
        if errors.shape != (rows,):
            raise ValueError(
                f"a custom metric must return one error per sample, shape ({rows},); got "
                f"{tuple(errors.shape)}"
            )
        if not torch.equal(given, reconstruction):
            raise ValueError(
                "the custom metric writes into its first argument (the reconstruction), which "
                "the engine still needs; compute on a copy, e.g. "
                "metric=lambda recon, target: my_metric(recon.clone(), target)"
            )
        if name == "metric":
            _check_errors_finite(errors, custom=True)
        out.append((name, errors.detach().to(torch.float64)))
    return out
