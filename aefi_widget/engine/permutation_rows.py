"""The permutation method's rows and reductions: shuffled inputs in, per-segment sums out.

One forward call evaluates a list of :class:`~aefi_widget.engine.plan.Segment` s (consecutive
samples of one unit in one repeat). The shuffled input is built segment by segment into one
buffer (or, on the rank-1 path, the first layer's output updated by a rank-1 term), the session
runs it through the model, and per-segment float64 sums come back.

Importances sum ``error_perm_i - error_orig_i`` per sample in float64, so a feature the model
ignores gets exactly 0, not a difference of two rounded means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aefi_widget.engine.calls import Scratch, place_segments
from aefi_widget.engine.permutation_packed import evaluate_packed_call
from aefi_widget.engine.permutations import permutations, row_subset
from aefi_widget.engine.plan import Segment
from aefi_widget.engine.session import ModelSession
from aefi_widget.engine.units import Unit

__all__ = ["CallSums", "RoundData", "Shuffles", "build_inputs", "evaluate_calls", "round_data",
           "segment_target"]  # fmt: skip

# Groups up to this many columns update the first layer column by column (exact, batch-size
# independent); larger groups use one matrix product (faster, equal to ~1 ulp).
_ELEMENTWISE_GROUP_COLUMNS = 64


@dataclass(frozen=True)
class Shuffles:
    """What the permutation method shuffles and compares: its units (features and groups), the
    seed of every permutation, samples per repeat, the target and whether to sum per output."""

    units: tuple[Unit, ...]
    seed: int
    samples_per_repeat: int
    target: str
    per_output: bool
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class RoundData:
    """The samples one repeat evaluates: ``rows`` (m,) into X, and X, pre, recon, errors and the
    transposed X (d, m) there."""

    repeat: int
    rows: np.ndarray
    X: torch.Tensor
    pre: torch.Tensor | None
    recon: torch.Tensor
    errors: torch.Tensor
    columns: torch.Tensor


@dataclass(frozen=True)
class CallSums:
    """Per evaluated segment (cut at forward-call boundaries): the sum over its samples of
    error_perm - error_orig (float64), and (with per_output) the (d,) float64 sum of
    abs(recon_perm - recon)."""

    segments: list[Segment]
    error_sums: list[float]
    delta_sums: list[np.ndarray] | None


def round_data(session: ModelSession, shuffles: Shuffles, repeat: int, call_rows: int) -> RoundData:
    """The repeat's sample subset (all samples without ``max_samples``) and its baselines."""
    rows = row_subset(shuffles.seed, repeat, session.n_samples, shuffles.samples_per_repeat)
    b = session.rows_baseline(rows, call_rows)
    X = session.X
    if len(rows) < session.n_samples:
        X = X[torch.as_tensor(rows, device=session.device)]
    return RoundData(repeat, rows, X, b.pre, b.recon, b.errors, b.columns)


def _permuted_columns(
    data: RoundData, segment: Segment, columns: np.ndarray, order: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled and original values of ``columns`` for the segment's samples: (len, |columns|).

    Read from the transposed X, where a feature's values are contiguous: gathering whole rows of
    X first would move d times more memory.
    """
    device = data.X.device
    source = torch.as_tensor(order[segment.start : segment.stop], device=device)
    values = data.columns[torch.as_tensor(columns, device=device)]  # (|columns|, m)
    return values.index_select(1, source).t(), values[:, segment.start : segment.stop].t()


def _orders(shuffles: Shuffles, segments: list[Segment]) -> list[np.ndarray]:
    """Each segment's permutation: one vectorised call per repeat present in the call."""
    m = shuffles.samples_per_repeat
    orders: list[np.ndarray | None] = [None] * len(segments)
    for repeat in sorted({s.repeat for s in segments}):
        where = [i for i, s in enumerate(segments) if s.repeat == repeat]
        units = np.array([segments[i].unit for i in where], dtype=np.int64)
        for i, order in zip(where, permutations(shuffles.seed, repeat, units, m), strict=True):
            orders[i] = order
    return orders  # type: ignore[return-value]


def build_inputs(
    session: ModelSession,
    shuffles: Shuffles,
    datas: dict[int, RoundData],
    segments: list[Segment],
) -> tuple[torch.Tensor, list[np.ndarray], list[Segment]]:
    """The forward call's input: shuffled X rows (plain path) or first-layer outputs (rank-1).

    Returns the (rows, width) buffer, each segment's permutation, and the segments as placed in
    the buffer (gap rows between them hold copies of a real row and are ignored).
    """
    segments, rows = place_segments(segments)
    first = session.path.first
    any_data = datas[segments[0].repeat]
    source = any_data.X if first is None else any_data.pre
    buffer = torch.empty((rows, source.shape[1]), dtype=source.dtype, device=source.device)
    row = 0
    for segment in segments:
        if segment.offset > row:
            buffer[row : segment.offset] = source[:1]  # finite values in the gaps
        row = segment.offset + segment.size
    weight_t = None if first is None else first.weight.detach().t()  # (d, h)
    orders = _orders(shuffles, segments)
    for segment, order in zip(segments, orders, strict=True):
        data = datas[segment.repeat]
        columns = shuffles.units[segment.unit].columns
        shuffled, original = _permuted_columns(data, segment, columns, order)
        out = buffer[segment.offset : segment.offset + segment.size]
        if first is None:
            out.copy_(data.X[segment.start : segment.stop])
            out[:, torch.as_tensor(columns, device=out.device)] = shuffled
        elif len(columns) == 1:
            # pre + (x_perm_j - x_j) * W[:, j]: the rank-1 update of the first layer.
            step = weight_t[int(columns[0])].contiguous().unsqueeze(0)
            torch.addcmul(
                data.pre[segment.start : segment.stop], shuffled - original, step, out=out
            )
        elif len(columns) <= _ELEMENTWISE_GROUP_COLUMNS:
            # One exact elementwise rank-1 step per column: unlike a small matrix product, the
            # result of a row does not depend on how many rows the call has.
            delta = shuffled - original
            out.copy_(data.pre[segment.start : segment.stop])
            for k, column in enumerate(columns):
                out.addcmul_(delta[:, k : k + 1], weight_t[int(column)].contiguous().unsqueeze(0))
        else:
            step = weight_t[torch.as_tensor(columns, device=out.device)]
            torch.addmm(data.pre[segment.start : segment.stop], shuffled - original, step, out=out)
    return buffer, orders, segments


def segment_target(
    session: ModelSession,
    shuffles: Shuffles,
    data: RoundData,
    segment: Segment,
    order: np.ndarray,
    inputs: torch.Tensor,
) -> torch.Tensor:
    """What the reconstruction is compared with: original X rows, or the shuffled rows."""
    original = data.X[segment.start : segment.stop]
    if shuffles.target == "original":
        return original
    if session.path.first is None:
        return inputs[segment.offset : segment.offset + segment.size]
    columns = shuffles.units[segment.unit].columns
    shuffled, _ = _permuted_columns(data, segment, columns, order)
    permuted = original.clone()
    permuted[:, torch.as_tensor(columns, device=permuted.device)] = shuffled
    return permuted


def evaluate_calls(
    session: ModelSession,
    shuffles: Shuffles,
    datas: dict[int, RoundData],
    calls: list[list[Segment]],
) -> CallSums:
    """Evaluate a chunk's forward calls; per-segment sums in order.

    A call's whole single-feature units go through one packed evaluation
    (:func:`~aefi_widget.engine.permutation_packed.evaluate_packed_call`); the pieces of units
    cut at the call's ends (and groups) segment by segment, in a forward call of their own.
    Rows stay aligned in both, so every sample's numbers are those of one call.
    """
    evaluated: list[Segment] = []
    error_sums: list[float] = []
    delta_sums: list[np.ndarray] | None = [] if shuffles.per_output else None
    scratch = Scratch(session.n_inputs, session.device)
    m = shuffles.samples_per_repeat
    for call in calls:
        whole = [i for i, s in enumerate(call) if s.start == 0 and s.stop == m]
        packed = None
        if len(whole) > 1:
            packed = evaluate_packed_call(session, shuffles, datas, [call[i] for i in whole],
                                          scratch)  # fmt: skip
        if packed is None:
            whole, packed = [], CallSums([], [], [] if shuffles.per_output else None)
        taken = set(whole)
        rest = [s for i, s in enumerate(call) if i not in taken]
        pieces = _segment_sums(session, shuffles, datas, rest, scratch) if rest else packed
        # Back into the call's order: the absorbing loop adds a split unit's pieces in order.
        from_packed, from_rest = iter(range(len(whole))), iter(range(len(rest)))
        for i in range(len(call)):
            source, j = (packed, next(from_packed)) if i in taken else (pieces, next(from_rest))
            evaluated.append(source.segments[j])
            error_sums.append(source.error_sums[j])
            if delta_sums is not None:
                delta_sums.append(source.delta_sums[j])
    return CallSums(evaluated, error_sums, delta_sums)


def _segment_sums(
    session: ModelSession,
    shuffles: Shuffles,
    datas: dict[int, RoundData],
    call: list[Segment],
    scratch: Scratch,
) -> CallSums:
    """One forward call of ``call``'s segments, built and reduced segment by segment."""
    error_sums: list[float] = []
    delta_sums: list[np.ndarray] | None = [] if shuffles.per_output else None
    inputs, orders, placed = build_inputs(session, shuffles, datas, call)
    # Targets first: on the plain path a "permuted" target is a view of the input rows.
    targets = [
        segment_target(session, shuffles, datas[s.repeat], s, order, inputs)
        for s, order in zip(placed, orders, strict=True)
    ]
    recon = session.reconstruct(inputs)
    for segment, target in zip(placed, targets, strict=True):
        data = datas[segment.repeat]
        piece = recon[segment.offset : segment.offset + segment.size]
        scratch_rows = scratch.rows("diff", segment.size, piece.dtype)
        errors = session.errors(piece, target, out=scratch_rows)
        diff = errors.to(torch.float64) - data.errors[segment.start : segment.stop]
        total = float(diff.sum())
        if not np.isfinite(total):
            raise ValueError(
                f"the reconstruction error became NaN or inf when shuffling "
                f"{shuffles.feature_names[segment.unit]!r} (repeat {segment.repeat}); the "
                f"model or metric {session.metric_name!r} is not finite on shuffled data"
            )
        error_sums.append(total)
        if delta_sums is not None:
            # The float32 difference, copied to float64 (exact), so that the sum over
            # samples is exact for practical ranges and does not depend on how calls were
            # cut. (Sub and abs in float32 then one widening copy: 1.6x faster than float64.)
            moved = scratch.rows("diff", segment.size, piece.dtype)  # the error's is done
            torch.sub(piece, data.recon[segment.start : segment.stop], out=moved).abs_()
            wide = moved
            if moved.dtype != torch.float64:
                wide = scratch.rows("wide", segment.size, torch.float64).copy_(moved)
            delta_sums.append(wide.sum(dim=0).cpu().numpy())
    return CallSums(placed, error_sums, delta_sums)
