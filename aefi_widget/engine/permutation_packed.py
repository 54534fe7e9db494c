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

from aefi_widget.engine.calls import aligned
from aefi_widget.engine.permutations import permutations_of_pairs
from aefi_widget.engine.plan import Segment
from aefi_widget.engine.session import ModelSession

__all__ = ["PackedSums", "evaluate_packed_call"]


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


def evaluate_packed_call(
    session: ModelSession, shuffles: object, datas: dict, call: list[Segment]
) -> PackedSums | None:
    """Evaluate ``call`` (whole single-feature units, all samples) at once; None when the call
    is not of that kind (the caller then takes the segment-by-segment path)."""
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
    target = torch.empty((k, stride, session.n_inputs), dtype=data.X.dtype, device=device)
    target[:, :m] = data.X
    target[:, m:] = data.X[:1]
    if shuffles.target == "permuted":  # type: ignore[attr-defined]
        target[rows, samples, columns[:, None]] = shuffled
    recon = session.reconstruct(block.view(k * stride, -1))
    errors = session.errors(recon, target.view(k * stride, -1)).to(torch.float64)
    diff = errors.view(k, stride)[:, :m] - data.errors[None, :]
    error_sums = [float(diff[i].contiguous().sum()) for i in range(k)]
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
        moved = (recon.view(k, stride, -1)[:, :m] - data.recon[None]).abs_()
        wide = moved.to(torch.float64)
        delta_sums = [wide[i].sum(dim=0).cpu().numpy() for i in range(k)]
    return PackedSums(placed, error_sums, delta_sums)
