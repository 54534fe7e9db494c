"""Batched evaluation of permuted samples: the hot path of the permutation engine.

One forward call evaluates a list of :class:`~aefi_widget.engine.plan.Segment` s (consecutive
samples of one unit each). The permuted input is built segment by segment into one buffer, the
model runs once, and per-segment sums come back as float64 numbers.

Exactness notes (they are why the code looks the way it does):
- Forward calls get at least ``MIN_FORWARD_ROWS`` rows (padding with a copy of a real row): BLAS
  takes a different code path for very few rows, which would make results depend on batch size.
- Sample i always sits at a row congruent to i modulo ``ROW_ALIGNMENT`` in every forward call
  (baseline and permuted alike): MKL's small-matrix kernels round a row differently depending on
  its memory alignment. Segments are placed with a few gap rows to keep that true.
- Importances sum ``error_perm_i - error_orig_i`` per sample in float64, so a feature the model
  ignores gets exactly 0, not a difference of two rounded means.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aefi_widget.engine.inputs import reconstruction_of
from aefi_widget.engine.metrics import MetricFn
from aefi_widget.engine.permutations import permutations, row_subset
from aefi_widget.engine.plan import Segment, split_calls

if TYPE_CHECKING:
    from aefi_widget.engine.permutation import PermutationImportance

__all__ = ["MIN_FORWARD_ROWS", "Baseline", "RoundData", "SegmentResults", "check_reconstruction",
           "compute_baseline", "computing", "probe_rows", "round_data", "run_segments"]  # fmt: skip

MIN_FORWARD_ROWS = 16
ROW_ALIGNMENT = 16
# Groups up to this many columns update the first layer column by column (exact, batch-size
# independent); larger groups use one matrix product (faster, equal to ~1 ulp).
_ELEMENTWISE_GROUP_COLUMNS = 64
_PROBE_ROWS = 16
_OOM_ERRORS: tuple[type[BaseException], ...] = (MemoryError, torch.OutOfMemoryError)


@contextlib.contextmanager
def computing(model: Any) -> Iterator[None]:
    """Inference mode plus eval mode for one piece of work; every training flag is restored.

    Entered per forward call, never across a generator's ``yield``, so neither inference mode nor
    eval mode leaks into the caller's code between increments. A lock per model serialises
    engines sharing one model (two explorers, a drilldown during a job): otherwise one could
    restore train mode in the middle of another's forward call.
    """
    if not isinstance(model, torch.nn.Module):
        with torch.inference_mode():
            yield
        return
    with _model_lock(model):
        flags = [(m, m.training) for m in model.modules() if m.training]
        try:
            for module, _ in flags:
                module.training = False
            with torch.inference_mode():
                yield
        finally:
            for module, was_training in flags:
                module.training = was_training


_MODEL_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = (
    weakref.WeakKeyDictionary()
)
_MODEL_LOCKS_GUARD = threading.Lock()


def _model_lock(model: torch.nn.Module) -> threading.RLock:
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock


def probe_rows(X: torch.Tensor) -> torch.Tensor:
    """The first 16 rows of X (cycled when X has fewer) for checking the model before any work."""
    index = torch.arange(_PROBE_ROWS, device=X.device) % X.shape[0]
    return X[index]


def check_reconstruction(model: Any, probe: torch.Tensor, metric: MetricFn, custom: bool) -> None:
    """Refuse a model that does not map (rows, d) to a finite (rows, d) reconstruction."""
    with computing(model):
        try:
            output = model(probe)
        except Exception as error:
            raise ValueError(
                f"calling the model on the first rows of X (shape {tuple(probe.shape)}, "
                f"{probe.dtype}) failed: {type(error).__name__}: {error}. Check that X has the "
                "columns, order and dtype the model was trained on."
            ) from error
        recon = reconstruction_of(output)
        if recon.shape != probe.shape:
            raise ValueError(
                f"the model does not reconstruct its input: for input of shape "
                f"{tuple(probe.shape)} it returned shape {tuple(recon.shape)}. aefi_widget needs "
                "an autoencoder whose output has the input's shape (n, d); wrap an encoder-only "
                "model so that it returns the reconstruction."
            )
        if not recon.is_floating_point():
            raise TypeError(
                f"the model returned {recon.dtype}; a floating reconstruction is needed"
            )
        if not bool(torch.isfinite(recon).all()):
            raise ValueError("the model's reconstruction of the first rows of X has NaN or inf")
        if custom:
            errors = torch.as_tensor(metric(recon.clone(), probe.clone()))
            if errors.shape != (probe.shape[0],):
                raise ValueError(
                    f"a custom metric must return one error per sample, shape ({probe.shape[0]},); "
                    f"got {tuple(errors.shape)}"
                )


@dataclass(frozen=True)
class Baseline:
    """Unpermuted quantities over all n samples, computed once.

    ``pre`` (n, h) is the first Linear's output on the rank-1 path (else None); ``recon`` (n, d)
    the reconstruction; ``errors`` (n,) float64 per-sample errors against X; ``error`` their mean;
    ``columns`` (d, n) X transposed, so one feature's values are contiguous to gather from.
    """

    pre: torch.Tensor | None
    recon: torch.Tensor
    errors: torch.Tensor
    error: float
    columns: torch.Tensor


@dataclass(frozen=True)
class RoundData:
    """The samples one repeat evaluates: ``rows`` (m,) into X, and X, pre, recon, errors and the
    transposed X (d, m) there."""

    round: int
    rows: np.ndarray
    X: torch.Tensor
    pre: torch.Tensor | None
    recon: torch.Tensor
    errors: torch.Tensor
    columns: torch.Tensor


@dataclass(frozen=True)
class SegmentResults:
    """Per evaluated segment (a chunk's segments, cut at forward-call boundaries): the sum over
    its samples of error_perm - error_orig (float64), and (with per_output) the (d,) float64
    sum of abs(recon_perm - recon)."""

    segments: list[Segment]
    error_sums: list[float]
    delta_sums: list[np.ndarray] | None


def _forward(fn: Any, inputs: torch.Tensor, engine: PermutationImportance) -> torch.Tensor:
    """Run ``fn`` on ``inputs`` (rows >= 16), splitting the call after out-of-memory errors.

    After an OOM the engine remembers a row cap (half the failed call) and splits larger calls
    into parts of a multiple of 16 rows, so every sample's output stays the same as in one call.
    Fails clearly at 16 rows.
    """
    rows = inputs.shape[0]
    cap = engine._oom_rows_cap
    if cap is not None and rows > cap:
        # Parts of a multiple of ROW_ALIGNMENT rows keep every row's alignment.
        parts = torch.split(inputs, max(ROW_ALIGNMENT, cap // ROW_ALIGNMENT * ROW_ALIGNMENT))
        return torch.cat([_padded_call(fn, part, engine) for part in parts])
    try:
        return reconstruction_of(fn(inputs))
    except _OOM_ERRORS:
        if rows <= MIN_FORWARD_ROWS:
            raise MemoryError(
                f"out of memory even for {rows} samples in one forward call; free memory, use "
                "a smaller model or data type, or compute on another device"
            ) from None
        engine._oom_rows_cap = max(MIN_FORWARD_ROWS, rows // 2)
        if engine.device.type == "cuda":
            torch.cuda.empty_cache()
        return _forward(fn, inputs, engine)


def _padded_call(fn: Any, inputs: torch.Tensor, engine: PermutationImportance) -> torch.Tensor:
    rows = inputs.shape[0]
    if rows >= MIN_FORWARD_ROWS:
        return _forward(fn, inputs, engine)
    pad = inputs[:1].expand(MIN_FORWARD_ROWS - rows, -1)
    return _forward(fn, torch.cat([inputs, pad]), engine)[:rows]


def compute_baseline(engine: PermutationImportance) -> Baseline:
    """Reconstruction and per-sample errors of the unpermuted data, in forward calls of the
    engine's batch size (the same code path as permuted samples)."""
    X, path = engine._X, engine._path
    step = _aligned(max(MIN_FORWARD_ROWS, engine.call_rows))
    pieces = torch.split(X, step)
    pre = None
    if path.first is not None:
        pre = torch.cat([_padded_call(path.first, p, engine) for p in pieces])
        pieces_pre = torch.split(pre, step)
        recon = torch.cat([_padded_call(path.rest, p, engine) for p in pieces_pre])
    else:
        recon = torch.cat([_padded_call(path.model, p, engine) for p in pieces])
    errors = engine._metric(recon, X.clone() if engine._custom_metric else X)
    errors = torch.as_tensor(errors).to(torch.float64)
    if errors.shape != (X.shape[0],):
        raise ValueError(f"the metric returned shape {tuple(errors.shape)}, not ({X.shape[0]},)")
    if not bool(torch.isfinite(errors).all()) or not bool(torch.isfinite(recon).all()):
        bad = int((~torch.isfinite(errors)).sum())
        raise ValueError(
            f"the unpermuted reconstruction error is NaN or inf for {bad} sample(s) (metric "
            f"{engine.metric_name!r}); 'rmse_pct' needs samples with a non-zero norm"
        )
    return Baseline(pre, recon, errors, float(errors.mean()), X.t().contiguous())


def round_data(engine: PermutationImportance, baseline: Baseline, repeat: int) -> RoundData:
    """The repeat's sample subset (all samples without ``max_samples``) and its baselines."""
    rows = row_subset(engine.seed, repeat, engine.n_samples, engine.samples_per_repeat)
    b = baseline
    if len(rows) == engine.n_samples:
        return RoundData(repeat, rows, engine._X, b.pre, b.recon, b.errors, b.columns)
    index = torch.as_tensor(rows, device=engine._X.device)
    pre = None if b.pre is None else b.pre[index]
    X = engine._X[index]
    return RoundData(
        repeat, rows, X, pre, b.recon[index], b.errors[index], b.columns.index_select(1, index)
    )


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


def _aligned(rows: int) -> int:
    return -(-rows // ROW_ALIGNMENT) * ROW_ALIGNMENT


def place_segments(segments: list[Segment]) -> tuple[list[Segment], int]:
    """Segments moved so sample ``start + j`` sits at a row congruent to it modulo 16, and the
    rows the call needs (gaps included)."""
    placed, row = [], 0
    for segment in segments:
        row += (segment.start - row) % ROW_ALIGNMENT
        placed.append(dataclasses.replace(segment, offset=row))
        row += segment.size
    return placed, row


def build_inputs(
    engine: PermutationImportance, data: RoundData, segments: list[Segment]
) -> tuple[torch.Tensor, list[np.ndarray], list[Segment]]:
    """The forward call's input: permuted X rows (plain path) or first-layer outputs (rank-1).

    Returns the (rows, width) buffer, each segment's permutation, and the segments as placed in
    the buffer (gap rows between them hold copies of a real row and are ignored).
    """
    segments, rows = place_segments(segments)
    first = engine._path.first
    width = data.X.shape[1] if first is None else data.pre.shape[1]
    filler = data.X[:1] if first is None else data.pre[:1]
    buffer = torch.empty((rows, width), dtype=data.X.dtype, device=data.X.device)
    row = 0
    for segment in segments:
        if segment.offset > row:
            buffer[row : segment.offset] = filler  # finite values in the gaps
        row = segment.offset + segment.size
    weight_t = None if first is None else first.weight.detach().t()  # (d, h)
    units = np.array([segment.unit for segment in segments], dtype=np.int64)
    orders = list(permutations(engine.seed, data.round, units, len(data.rows)))
    for segment, order in zip(segments, orders, strict=True):
        unit = engine.units[segment.unit]
        shuffled, original = _permuted_columns(data, segment, unit.columns, order)
        out = buffer[segment.offset : segment.offset + segment.size]
        if first is None:
            out.copy_(data.X[segment.start : segment.stop])
            out[:, torch.as_tensor(unit.columns, device=out.device)] = shuffled
        elif len(unit.columns) == 1:
            # pre + (x_perm_j - x_j) * W[:, j]: the rank-1 update of the first layer.
            step = weight_t[int(unit.columns[0])].contiguous().unsqueeze(0)
            torch.addcmul(
                data.pre[segment.start : segment.stop], shuffled - original, step, out=out
            )
        elif len(unit.columns) <= _ELEMENTWISE_GROUP_COLUMNS:
            # One exact elementwise rank-1 step per column: unlike a small matrix product, the
            # result of a row does not depend on how many rows the call has.
            delta = shuffled - original
            out.copy_(data.pre[segment.start : segment.stop])
            for k, column in enumerate(unit.columns):
                out.addcmul_(delta[:, k : k + 1], weight_t[int(column)].contiguous().unsqueeze(0))
        else:
            step = weight_t[torch.as_tensor(unit.columns, device=out.device)]
            torch.addmm(data.pre[segment.start : segment.stop], shuffled - original, step, out=out)
    return buffer, orders, segments


class _Scratch:
    """Reusable buffers for one chunk's reductions, by use: (rows, d) each, grown as needed.

    Writing each segment's differences to fresh memory costs a read from DRAM per cache line
    first; reused buffers stay in cache.
    """

    def __init__(self, width: int, device: torch.device) -> None:
        self._width, self._device = width, device
        self._buffers: dict[str, torch.Tensor] = {}

    def rows(self, use: str, rows: int, dtype: torch.dtype) -> torch.Tensor:
        buffer = self._buffers.get(use)
        if buffer is None or buffer.shape[0] < rows:
            buffer = torch.empty((rows, self._width), dtype=dtype, device=self._device)
            self._buffers[use] = buffer
        return buffer[:rows]


def run_segments(
    engine: PermutationImportance, baseline: Baseline, data: RoundData, segments: list[Segment]
) -> SegmentResults:
    """Evaluate a chunk's ``segments`` in forward calls of ``call_rows`` samples each; reduce
    per segment."""
    evaluated: list[Segment] = []
    error_sums: list[float] = []
    delta_sums: list[np.ndarray] | None = [] if engine.per_output else None
    scratch = _Scratch(engine.n_inputs, data.X.device)
    for call in split_calls(segments, engine.call_rows):
        placed = _evaluate_call(engine, data, call, error_sums, delta_sums, scratch)
        evaluated.extend(placed)
    return SegmentResults(evaluated, error_sums, delta_sums)


def _evaluate_call(
    engine: PermutationImportance,
    data: RoundData,
    segments: list[Segment],
    error_sums: list[float],
    delta_sums: list[np.ndarray] | None,
    scratch: _Scratch,
) -> list[Segment]:
    """One forward call: append each segment's sums; return the segments as placed."""
    inputs, orders, segments = build_inputs(engine, data, segments)
    recon = reconstruct(engine, inputs)
    for segment, order in zip(segments, orders, strict=True):
        piece = recon[segment.offset : segment.offset + segment.size]
        target = segment_target(engine, data, segment, order, inputs)
        if engine._custom_metric:
            errors = torch.as_tensor(engine._metric(piece, target))
        else:
            errors = engine._metric(
                piece, target, out=scratch.rows("diff", segment.size, piece.dtype)
            )
        diff = errors.to(torch.float64) - data.errors[segment.start : segment.stop]
        total = float(diff.sum())
        if not np.isfinite(total):
            raise ValueError(
                f"the reconstruction error became NaN or inf when shuffling "
                f"{engine.feature_names[segment.unit]!r} (repeat {data.round}); the model or "
                f"metric {engine.metric_name!r} is not finite on shuffled data"
            )
        error_sums.append(total)
        if delta_sums is not None:
            # The float32 difference, copied to float64 (exact), so that the sum over samples
            # is exact for practical ranges and does not depend on how calls were cut. (Sub and
            # abs in float32 then one widening copy: 1.6x faster than a float64 sub and abs.)
            moved = scratch.rows("diff", segment.size, piece.dtype)  # the error's is done
            torch.sub(piece, data.recon[segment.start : segment.stop], out=moved).abs_()
            wide = moved
            if moved.dtype != torch.float64:
                wide = scratch.rows("wide", segment.size, torch.float64).copy_(moved)
            delta_sums.append(wide.sum(dim=0).cpu().numpy())
    return segments


def reconstruct(engine: PermutationImportance, inputs: torch.Tensor) -> torch.Tensor:
    """(rows, width) buffer from :func:`build_inputs` -> (rows, d) reconstruction, through the
    chosen path. Fused kernels may overwrite the buffer (it is not read afterwards)."""
    path = engine._path
    if path.fused:
        fn = functools.partial(path.rest, overwrite=True)
    else:
        fn = path.rest if path.first is not None else path.model
    recon = _padded_call(fn, inputs, engine)
    if recon.shape != (inputs.shape[0], engine.n_inputs):
        raise ValueError(
            f"the model returned shape {tuple(recon.shape)} for {inputs.shape[0]} samples; it "
            f"must return ({inputs.shape[0]}, {engine.n_inputs})"
        )
    return recon


def segment_target(
    engine: PermutationImportance,
    data: RoundData,
    segment: Segment,
    order: np.ndarray,
    inputs: torch.Tensor,
) -> torch.Tensor:
    """What the reconstruction is compared with: original X rows, or the permuted rows."""
    original = data.X[segment.start : segment.stop]
    if engine.target == "original":
        return original.clone() if engine._custom_metric else original
    if engine._path.first is None:
        permuted = inputs[segment.offset : segment.offset + segment.size]
        return permuted.clone() if engine._custom_metric else permuted
    columns = engine.units[segment.unit].columns
    shuffled, _ = _permuted_columns(data, segment, columns, order)
    permuted = original.clone()
    permuted[:, torch.as_tensor(columns, device=permuted.device)] = shuffled
    return permuted
