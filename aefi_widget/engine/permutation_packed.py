"""One forward call of whole units, built and reduced in a few large tensor operations.

Small problems pack whole rounds into one call (:mod:`aefi_widget.engine.plan`): hundreds of
segments of one unit and all m samples each. Building and reducing them one by one costs a dozen
small torch operations per segment, which dominates when the model is tiny (the forum recipe's
iris case: 250 segments of 27 rows). Here the shuffled inputs, the targets, the per-sample errors
and the per-output differences of the whole call are computed at once, by the same elementwise
kernels (so every sample's numbers have the same bits), and only the per-segment sums stay a
loop, each a 1-D ``sum`` of the same length as in the segment-by-segment path, so the sums keep
their bits too.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from aefi_widget.engine.calls import Scratch, aligned
from aefi_widget.engine.permutations import permutations_of_pairs
from aefi_widget.engine.plan import Segment
from aefi_widget.engine.session import ModelSession

__all__ = ["PackedSums", "evaluate_packed_call"]

# at::internal::GRAIN_SIZE: torch's CPU reductions of fewer values run on one thread.
_GRAIN_SIZE = 32768


@dataclasses.dataclass(frozen=True)
class PackedSums:
    """The call's segments as placed, and their error sums and (d,) per-output sums."""

    segments: list[Segment]
    error_sums: list[float]
    delta_sums: list[np.ndarray] | None


def _eligible(session: ModelSession, shuffles: object, datas: dict, call: list[Segment]) -> bool:
    m = shuffles.samples_per_repeat  # type: ignore[attr-defined]
    units = shuffles.units  # type: ignore[attr-defined]
    return (
        len(call) > 1
        and not session.custom_metric
        and all(s.start == 0 and s.stop == m for s in call)
        and all(len(units[s.unit].columns) == 1 for s in call)
        # Every repeat evaluates all n samples (no max_samples): one X, pre and recon for all.
        and all(len(datas[s.repeat].rows) == session.n_samples for s in call)
    )


def _row_sums(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``values`` (segments, ...) summed over ``dim``: each segment's sums, with the bits of
    reducing ``values[i]`` alone, as segment by segment.

    A reduction with several outputs sums each one serially in torch's CPU kernels (threads
    split the outputs), the same order as a segment's own reduction, which is serial too unless
    it has one output of at least ``GRAIN_SIZE`` values and several threads: torch then splits
    that output across the threads. Only then is each segment reduced alone, as before.
    """
    length = values.shape[dim]
    single_output = values[0].numel() == length
    if single_output and length >= _GRAIN_SIZE and torch.get_num_threads() > 1:
        return torch.stack([values[i].sum(dim=dim - 1) for i in range(values.shape[0])])
    return values.sum(dim=dim)


def evaluate_packed_call(
    session: ModelSession,
    shuffles: object,
    datas: dict,
    call: list[Segment],
    scratch: Scratch | None = None,
) -> PackedSums | None:
    """Evaluate ``call`` (whole single-feature units, all samples) at once; None when the call
    is not of that kind (the caller then takes the segment-by-segment path). ``scratch`` holds
    buffers reused from call to call (fresh pages cost a fault each: the float64 copy of the
    differences took 4x as long in new memory)."""
    if not _eligible(session, shuffles, datas, call):
        return None
    m, k = shuffles.samples_per_repeat, len(call)  # type: ignore[attr-defined]
    stride = aligned(m)  # place_segments puts segment i at row i * stride (start 0, aligned)
    # Built directly: dataclasses.replace cost ~4 us a segment (250 a call on iris).
    placed = [Segment(s.unit, s.start, s.stop, i * stride, s.repeat) for i, s in enumerate(call)]
    data = datas[call[0].repeat]
    device = session.device
    columns = torch.as_tensor(
        [int(shuffles.units[s.unit].columns[0]) for s in call],
        device=device,  # type: ignore[attr-defined]
    )
    repeats = np.array([s.repeat for s in call], dtype=np.int64)
    all_units = np.array([s.unit for s in call], dtype=np.int64)
    orders = permutations_of_pairs(shuffles.seed, repeats, all_units, m)  # type: ignore[attr-defined]
    original = data.columns[columns]  # (k, m)
    shuffled = original.gather(1, torch.as_tensor(orders, device=device))
    first = session.path.first
    rows = torch.arange(k, device=device)[:, None]
    samples = torch.arange(m, device=device)[None, :]
    if first is None:
        block = torch.empty((k, stride, session.n_inputs), dtype=data.X.dtype, device=device)
        block[:, :m] = data.X
        block[:, m:] = data.X[:1]
        block[rows, samples, columns[:, None]] = shuffled
    else:
        # pre + (x_perm_j - x_j) * W[:, j], the same elementwise addcmul as segment by segment.
        steps = first.weight.detach().t()[columns]  # (k, h)
        block = torch.empty((k, stride, data.pre.shape[1]), dtype=data.pre.dtype, device=device)
        torch.addcmul(data.pre, (shuffled - original)[:, :, None], steps[:, None, :],
                      out=block[:, :m])  # fmt: skip
        block[:, m:] = data.pre[:1]
    recon = session.reconstruct(block.view(k * stride, -1)).view(k, stride, -1)[:, :m]
    # Rows of the same length as segment by segment, so every sample's error has the same bits.
    if scratch is None:
        scratch = Scratch(session.n_inputs, device)
    d = session.n_inputs
    differences = scratch.rows("diff", k * m, recon.dtype).view(k, m, d)
    if shuffles.target == "permuted":  # type: ignore[attr-defined]
        target = data.X.expand(k, m, -1).clone()
        target[rows, samples, columns[:, None]] = shuffled
    else:
        target = data.X.expand(k, m, -1)  # a view: the original rows are never copied
    errors = session.errors(recon, target, out=differences).to(torch.float64)
    diff = errors - data.errors[None, :]
    error_sums = _row_sums(diff, dim=1).tolist()
    if not np.isfinite(error_sums).all():
        bad = placed[int(np.flatnonzero(~np.isfinite(error_sums))[0])]
        raise ValueError(
            f"the reconstruction error became NaN or inf when shuffling "
            f"{shuffles.feature_names[bad.unit]!r} (repeat {bad.repeat}); the model or metric "  # type: ignore[attr-defined]
            f"{session.metric_name!r} is not finite on shuffled data"
        )
    delta_sums = None
    if shuffles.per_output:  # type: ignore[attr-defined]
        # float32 difference, widened once (exact), summed per segment over its samples.
        moved = torch.sub(recon, data.recon[None], out=differences).abs_()
        wide = scratch.rows("wide", k * m, torch.float64).view(k, m, d).copy_(moved)
        delta_sums = list(_row_sums(wide, dim=1).cpu().numpy())
    return PackedSums(placed, error_sums, delta_sums)
