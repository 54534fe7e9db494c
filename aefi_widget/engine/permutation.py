"""Permutation importance of an autoencoder's reconstruction error, computed incrementally.

For each unit g (a feature or a group) and repeat r, the rows of g's column(s) are shuffled by a
permutation that depends only on (seed, r, g); the model reconstructs the shuffled data and

    importances[g, r] = mean_i error_i(permuted) - mean_i error_i(original)

over the repeat's samples i. Work is laid out as a deterministic plan of large forward calls
(:mod:`aefi_widget.engine.plan`); the generator yields an :class:`ImportanceResult` after each one.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import secrets
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aefi_widget.engine import evaluation
from aefi_widget.engine.allocator import settle_heap
from aefi_widget.engine.checkpoint import load_checkpoint, save_checkpoint
from aefi_widget.engine.evaluation import Baseline, RoundData
from aefi_widget.engine.fingerprint import fingerprint_of
from aefi_widget.engine.forward import (
    ForwardPath,
    activation_floats_per_row,
    detect_forward_path,
    linear_flops_per_row,
)
from aefi_widget.engine.inputs import (
    as_feature_matrix,
    check_int,
    model_dtype_device,
    resolve_max_samples,
    resolve_units,
)
from aefi_widget.engine.metrics import MetricFn, resolve_metric
from aefi_widget.engine.plan import chunk_count, chunk_segments
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["PermutationImportance", "permutation_importance"]

# Per-output accumulation costs F x d float64; past this many entries it is off unless forced.
PER_OUTPUT_MAX_ENTRIES = 25_000_000
# A forward call should take about this long, so pause and cancel answer well within a second.
_TARGET_CHUNK_SECONDS = 0.25
# Assumed matrix-product rates for sizing forward calls. Fixed numbers, not measurements, so the
# work plan (and with it every floating-point sum) is the same on every run with the same settings.
_ASSUMED_FLOPS = {"cpu": 150e9, "cuda": 20e12, "mps": 2e12}
_MEMORY_BUDGET_BYTES = {"cpu": 512 * 2**20, "cuda": 2 * 2**30, "mps": 1 * 2**30}
# CPU forward calls: activations of about this size (4096 rows at d=1000) balance matrix-product
# efficiency (better with more rows) against reductions reading cache-cold outputs (worse); it
# also stays below the 64 MB glibc keeps for reuse (engine/allocator.py). Measured with
# benchmarks/bench_calls.py.
_CALL_BUDGET_BYTES = {"cpu": 128 * 2**20}
_MIN_CALL_ROWS = 256


class PermutationImportance:
    """Streaming permutation importance of an autoencoder's reconstruction.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps an (n, d) float tensor to its (n, d) reconstruction (or a tuple whose first element
        is). Evaluated in eval mode; the training flags are restored after every forward call.
    X : torch.Tensor, numpy.ndarray or pandas.DataFrame, shape (n, d)
        Held-out samples. Copied; integer and bool inputs are cast to the model's dtype.
    n_repeats : int, default 10
        Shuffles per feature.
    metric : {"mse", "mae", "rmse_pct"} or callable, default "mse"
        Per-sample error; a callable maps (recon, target), both (n, d), to (n,) errors.
    target : {"original", "permuted"}, default "original"
        Compare the reconstruction of permuted data with the unpermuted X (standard permutation
        importance) or with the permuted X (what the common DataLoader recipe measures).
    feature_names : sequence of str, optional
        Column names (default: the DataFrame's columns, else "x0".."x{d-1}").
    groups : dict of str -> list of names or indices, optional
        Columns shuffled together with one row permutation; other features stay single.
    max_samples : int or float, optional
        Samples per repeat (int in [2, n], or a fraction); the subset depends on (seed, repeat).
    seed : int or None, default 0
        Seed of every permutation; None draws one (recorded in ``settings``).
    device : str or torch.device, optional
        Where to compute; default the model's device. Another device works on a copy of the model.
    batch_size : int, optional
        Permuted samples per forward call (and per snapshot). By default a snapshot covers about
        0.25 s of work, run in forward calls of a few thousand samples. The numbers never depend
        on it.
    per_output : bool or "always", default True
        Accumulate ``delta_recon`` (F x d); turned off with a warning past 25 million entries
        unless "always".
    progress : bool, default False
        Show a tqdm bar in :meth:`run` (headless use).
    checkpoint : path, optional
        Save the run's state there (``.npz``, atomically) every ``checkpoint_every`` seconds and
        when it stops; a later run with the same path, model, data and settings resumes from it
        with identical numbers (a larger ``n_repeats`` computes only the new rounds). A
        checkpoint of another model, data set or settings is refused with ``ValueError``.
    checkpoint_every : float, default 5.0
        Seconds between checkpoint writes.
    """

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        n_repeats: int = 10,
        metric: str | MetricFn = "mse",
        target: str = "original",
        feature_names: Sequence[str] | None = None,
        groups: Mapping[str, Sequence[str | int]] | None = None,
        max_samples: int | float | None = None,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        per_output: bool | str = True,
        progress: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: float = 5.0,
        _forward_path: str = "auto",
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be a torch.nn.Module or callable, got {type(model)!r}")
        self.n_repeats = check_int(n_repeats, "n_repeats", 1)
        if target not in ("original", "permuted"):
            raise ValueError(f"target must be 'original' or 'permuted', got {target!r}")
        self.target = target
        self.metric_name, self._metric = resolve_metric(metric)
        self._custom_metric = not isinstance(metric, str)
        if seed is None:
            seed = secrets.randbits(63)
        self.seed = check_int(seed, "seed", -(2**63), 2**64 - 1)
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
        if per_output not in (True, False, "always"):
            raise ValueError(f"per_output must be True, False or 'always', got {per_output!r}")
        # "rank1" keeps the rank-1 path but runs the rest through the model's modules.
        if _forward_path not in ("auto", "rank1", "plain"):
            raise ValueError(f"unknown forward path {_forward_path!r}")
        self.progress = bool(progress)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        if not isinstance(checkpoint_every, int | float) or not checkpoint_every >= 0:
            raise ValueError(f"checkpoint_every must be >= 0 seconds, got {checkpoint_every!r}")
        self.checkpoint_every = float(checkpoint_every)

        dtype, model_device = model_dtype_device(model)
        self.device = torch.device(device) if device is not None else model_device
        self._model = self._model_on_device(model, model_device)
        self._X, names = as_feature_matrix(X, feature_names, dtype, self.device)
        self.n_samples, self.n_inputs = self._X.shape
        self.units = resolve_units(names, groups)
        self.output_names = names
        self.feature_names = tuple(u.name for u in self.units)
        self.groups = {u.name: u.members for u in self.units if groups and u.name in groups}
        self.samples_per_repeat = resolve_max_samples(max_samples, self.n_samples)
        self._max_samples = None if max_samples is None else float(max_samples)
        if isinstance(max_samples, numbers.Integral):
            self._max_samples = int(max_samples)  # settings stay plain JSON numbers

        probe = evaluation.probe_rows(self._X)
        evaluation.check_reconstruction(self._model, probe, self._metric, self._custom_metric)
        with evaluation.computing(self._model):  # eval mode: no BatchNorm updates, no dropout
            self._path: ForwardPath = detect_forward_path(
                self._model,
                probe,
                allow_rank1=_forward_path != "plain",
                allow_fused=_forward_path == "auto",
            )
        self.per_output = self._resolve_per_output(per_output)
        # A chunk (batch_rows samples) is the unit of the plan and of snapshots; it runs in
        # forward calls of call_rows samples, small enough that activations stay in cache.
        self.batch_rows = batch_size if batch_size is not None else self._auto_batch_rows()
        self.call_rows = batch_size if batch_size is not None else self._auto_call_rows()
        self._baseline: Baseline | None = None
        self._baseline_lock = threading.Lock()
        # Row cap for forward calls after an out-of-memory error (see evaluation._forward).
        self._oom_rows_cap: int | None = None
        self._fingerprint: dict[str, str] | None = None

    # ------------------------------------------------------------------ set-up helpers
    def _model_on_device(self, model: Any, model_device: torch.device) -> Any:
        same = self.device.type == model_device.type and (
            self.device.index is None or self.device.index == (model_device.index or 0)
        )
        if same or not isinstance(model, torch.nn.Module):
            return model
        # The user asked for another device: work on a copy, never move their model.
        return copy.deepcopy(model).to(self.device)

    def _resolve_per_output(self, per_output: bool | str) -> bool:
        entries = len(self.units) * self.n_inputs
        if per_output is True and entries > PER_OUTPUT_MAX_ENTRIES:
            warnings.warn(
                f"per_output is off: delta_recon would hold {len(self.units)} x {self.n_inputs} "
                f"= {entries:,} values ({entries * 8 / 2**30:.1f} GiB while accumulating). "
                "Pass per_output='always' to compute it anyway, or per_output=False to silence "
                "this warning.",
                stacklevel=3,
            )
            return False
        return bool(per_output)

    def _auto_batch_rows(self) -> int:
        """Rows per forward call from a memory budget and a time budget, both deterministic."""
        kind = self.device.type
        itemsize = self._X.element_size()
        floats = activation_floats_per_row(self._model, self.n_inputs)
        rows = _MEMORY_BUDGET_BYTES.get(kind, 512 * 2**20) // max(1, floats * itemsize)
        flops = linear_flops_per_row(self._model, skip=self._path.first)
        if flops > 0:
            rate = _ASSUMED_FLOPS.get(kind, 150e9)
            rows = min(rows, int(_TARGET_CHUNK_SECONDS * rate / flops))
        rows = max(evaluation.MIN_FORWARD_ROWS, rows)
        m = self.samples_per_repeat
        # Whole units per call when they fit: fewer, contiguous pieces to reduce.
        return (rows // m) * m if rows >= m else rows

    def _auto_call_rows(self) -> int:
        """Samples per forward call: activations within the call budget (CPU only)."""
        budget = _CALL_BUDGET_BYTES.get(self.device.type)
        if budget is None:
            return self.batch_rows  # accelerators want the largest calls
        floats = activation_floats_per_row(self._model, self.n_inputs)
        rows = budget // max(1, floats * self._X.element_size())
        rows = rows // evaluation.ROW_ALIGNMENT * evaluation.ROW_ALIGNMENT
        return max(_MIN_CALL_ROWS, min(self.batch_rows, rows))

    # ------------------------------------------------------------------ public API
    @property
    def n_features(self) -> int:
        """Number of attributed units F (features and groups)."""
        return len(self.units)

    @property
    def forward_path(self) -> str:
        """``"rank1"`` when the first-Linear shortcut is used, else ``"plain"``."""
        return self._path.kind

    @property
    def evaluations_total(self) -> int:
        """Permuted samples the whole run evaluates: F * n_repeats * samples_per_repeat."""
        return self.n_features * self.n_repeats * self.samples_per_repeat

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description of the run, stored in every result."""
        return {
            "method": "permutation",
            "metric": self.metric_name,
            "target": self.target,
            "seed": self.seed,
            "n_repeats": self.n_repeats,
            "max_samples": self._max_samples,
            "samples_per_repeat": self.samples_per_repeat,
            "n_samples": self.n_samples,
            "batch_rows": self.batch_rows,
            "forward_path": self.forward_path,
            "fused_kernels": self._path.fused,
            "per_output": self.per_output,
            "device": str(self.device),
            "dtype": str(self._X.dtype).replace("torch.", ""),
        }

    def fingerprint(self) -> dict[str, str]:
        """SHA-256 digests of the model's parameters, of X, and of the settings that fix results.

        Hashed once per engine (seconds for a large model): like the cached baseline, it assumes
        the model does not change while the engine uses it.
        """
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self._model, self._X, self._result_settings())
        return self._fingerprint

    def _result_settings(self) -> dict[str, Any]:
        keep = ("method", "metric", "target", "seed", "max_samples", "samples_per_repeat",
                "per_output")  # fmt: skip
        settings = {k: v for k, v in self.settings.items() if k in keep}
        settings["units"] = [[u.name, u.columns.tolist()] for u in self.units]
        return settings

    def empty_result(self) -> ImportanceResult:
        """A result with nothing computed yet (all-NaN importances)."""
        return self._snapshot(_RunState.fresh(self), elapsed_s=0.0)

    def increments(
        self,
        resume: ImportanceResult | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> Iterator[ImportanceResult]:
        """Yield a snapshot after every chunk of work, continuing from ``resume`` when given.

        Each snapshot is immutable; partial rounds show as NaN. Stop iterating at any time: the
        last snapshot's ``resume`` field lets a later call continue with identical numbers.
        ``checkpoint`` (a path) overrides the engine's own ``checkpoint`` for this run.
        """
        path = self.checkpoint if checkpoint is None else Path(checkpoint)
        fingerprint = self.fingerprint() if path is not None else None
        if resume is None and fingerprint is not None and path.exists():
            resume = load_checkpoint(path, fingerprint)
        state = _RunState.fresh(self) if resume is None else _RunState.resumed(self, resume)
        baseline = self._get_baseline()
        if fingerprint is None:
            yield from self._compute(state, baseline)
            return
        last_saved = time.monotonic()
        snapshot = None
        try:
            for snapshot in self._compute(state, baseline):
                if time.monotonic() - last_saved >= self.checkpoint_every:
                    save_checkpoint(path, snapshot, fingerprint)
                    last_saved = time.monotonic()
                yield snapshot
        finally:
            # Also on errors and on close() (cancel): keep every finished chunk.
            if snapshot is not None:
                save_checkpoint(path, snapshot, fingerprint)

    def _compute(self, state: _RunState, baseline: Baseline) -> Iterator[ImportanceResult]:
        """The work loop: one forward call, then one snapshot, until every round is done."""
        F, m, rows = self.n_features, self.samples_per_repeat, state.batch_rows
        chunks = chunk_count(F, m, rows)
        data: RoundData | None = None
        if self.device.type == "cpu":
            settle_heap()
        while state.round < self.n_repeats:
            started = time.perf_counter()
            segments = chunk_segments(state.chunk, F, m, rows)
            with evaluation.computing(self._model):
                if data is None or data.round != state.round:
                    data = evaluation.round_data(self, baseline, state.round)
                result = evaluation.run_segments(self, baseline, data, segments)
            state.absorb(result, m)
            state.evaluations_done += sum(s.size for s in segments)
            state.advance(chunks)
            state.elapsed_s += time.perf_counter() - started
            yield self._snapshot(state, state.elapsed_s)

    def rounds(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
        """Yield a snapshot after each complete round (one repeat of every feature)."""
        for snapshot in self.increments(resume):
            if snapshot.resume is not None and snapshot.resume.chunk == 0:
                yield snapshot

    def run(self, resume: ImportanceResult | None = None) -> ImportanceResult:
        """Compute everything and return the final result (resuming a checkpoint if present)."""
        if resume is None and self.checkpoint is not None and self.checkpoint.exists():
            resume = load_checkpoint(self.checkpoint, self.fingerprint())
        last = resume if resume is not None else self.empty_result()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.evaluations_total, unit="eval", desc="permutation importance")
            bar.update(last.evaluations_done)
        try:
            for snapshot in self.increments(resume):
                if bar is not None:
                    bar.update(snapshot.evaluations_done - last.evaluations_done)
                last = snapshot
        finally:
            if bar is not None:
                bar.close()
        if resume is not None and last is resume:
            last = self._snapshot(_RunState.resumed(self, resume), resume.elapsed_s)
        return last

    def drilldown(self, feature: str, repeat: int = 0, top_outputs: int = 20) -> Any:
        """Per-sample view of one feature under one repeat's shuffle: see :class:`Drilldown`."""
        from aefi_widget.engine.drilldown import compute_drilldown

        return compute_drilldown(self, feature, repeat, top_outputs)

    # ------------------------------------------------------------------ internals
    def _get_baseline(self) -> Baseline:
        with self._baseline_lock:
            if self._baseline is None:
                with evaluation.computing(self._model):
                    self._baseline = evaluation.compute_baseline(self)
            return self._baseline

    def _snapshot(self, state: _RunState, elapsed_s: float) -> ImportanceResult:
        baseline = self._baseline
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.output_names,
            importances=state.importances.copy(),
            baseline_error=baseline.error if baseline is not None else math.nan,
            delta_sum=None if state.delta_sum is None else state.delta_sum.copy(),
            settings={**self.settings, "batch_rows": state.batch_rows},
            groups=self.groups,
            evaluations_done=state.evaluations_done,
            evaluations_total=self.evaluations_total,
            elapsed_s=elapsed_s,
            resume=state.resume_state(),
        )


class _RunState:
    """Mutable accumulators of one run; snapshots copy out of it."""

    def __init__(self, engine: PermutationImportance, batch_rows: int) -> None:
        F, d = engine.n_features, engine.n_inputs
        self.importances = np.full((F, engine.n_repeats), np.nan)
        self.delta_sum = np.zeros((F, d)) if engine.per_output else None
        self.partial_error = 0.0
        self.partial_delta = np.zeros(d) if engine.per_output else None
        self.round = 0
        self.chunk = 0
        self.batch_rows = batch_rows
        self.evaluations_done = 0
        self.elapsed_s = 0.0

    @classmethod
    def fresh(cls, engine: PermutationImportance) -> _RunState:
        return cls(engine, engine.batch_rows)

    @classmethod
    def resumed(cls, engine: PermutationImportance, result: ImportanceResult) -> _RunState:
        """Continue ``result`` (same settings; ``n_repeats`` may have grown)."""
        if result.resume is None:
            raise ValueError("this result has no resume state; it cannot be continued")
        if tuple(result.feature_names) != engine.feature_names:
            raise ValueError("the result was computed for other features; it cannot be continued")
        done = result.importances.shape[1]
        if done > engine.n_repeats or result.resume.round > engine.n_repeats:
            raise ValueError(
                f"the result holds {done} repeats, more than n_repeats={engine.n_repeats}"
            )
        if (result.delta_sum is None) == engine.per_output:
            raise ValueError("the result's per_output setting differs from this engine's")
        state = cls(engine, result.resume.batch_rows)
        state.importances[:, :done] = result.importances
        if state.delta_sum is not None:
            state.delta_sum[:] = result.delta_sum
            if result.resume.partial_delta_sum is not None:
                state.partial_delta[:] = result.resume.partial_delta_sum
        state.partial_error = result.resume.partial_error_sum
        state.round, state.chunk = result.resume.round, result.resume.chunk
        m, F = engine.samples_per_repeat, engine.n_features
        state.evaluations_done = state.round * F * m + min(state.chunk * state.batch_rows, F * m)
        state.elapsed_s = result.elapsed_s
        return state

    def absorb(self, result: evaluation.SegmentResults, m: int) -> None:
        """Add one chunk's per-segment sums; commit units whose repeat is finished."""
        for i, segment in enumerate(result.segments):
            self.partial_error += result.error_sums[i]
            if self.partial_delta is not None:
                self.partial_delta += result.delta_sums[i]
            if segment.stop == m:
                self.importances[segment.unit, self.round] = self.partial_error / m
                if self.delta_sum is not None:
                    self.delta_sum[segment.unit] += self.partial_delta / m
                    self.partial_delta[:] = 0.0
                self.partial_error = 0.0

    def advance(self, chunks_per_round: int) -> None:
        self.chunk += 1
        if self.chunk == chunks_per_round:
            self.round, self.chunk = self.round + 1, 0

    def resume_state(self) -> ResumeState:
        partial = None if self.partial_delta is None else self.partial_delta.copy()
        return ResumeState(self.round, self.chunk, self.batch_rows, self.partial_error, partial)


def permutation_importance(model: Any, X: Any, **keywords: Any) -> ImportanceResult:
    """Permutation importance of ``model``'s reconstruction error on ``X``, computed in full.

    Takes the keywords of :class:`PermutationImportance` and returns the final
    :class:`~aefi_widget.result.ImportanceResult`. Example::

        res = permutation_importance(model, X, n_repeats=10, seed=0)
        res.summary().head(20)
    """
    return PermutationImportance(model, X, **keywords).run()
