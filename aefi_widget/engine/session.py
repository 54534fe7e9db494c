"""A model session: a user's model and data made ready, once, for every attribution method.

It holds the model (on the device asked for), a private copy of X, the metric, the detected
forward path (plain / rank-1 / fused), the cached unperturbed baseline, the out-of-memory row cap
and the identity of the model and data. Every check of the model and data runs here, when the
session is made, before any long computation. Methods build rows and reduce outputs; the session
runs them through the model.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from aefi_widget.engine.anndata_input import row_labels
from aefi_widget.engine.baselines import Baseline, all_errors, full_baseline, row_baseline
from aefi_widget.engine.calls import MIN_FORWARD_ROWS, ROW_ALIGNMENT, Caller
from aefi_widget.engine.devices import model_dtype_device, resolve_device
from aefi_widget.engine.fingerprint import tensor_digest
from aefi_widget.engine.forward import (
    ForwardPath,
    activation_floats_per_row,
    detect_forward_path,
    linear_flops_per_row,
)
from aefi_widget.engine.inputs import as_feature_matrix
from aefi_widget.engine.metrics import MetricFn, resolve_metric
from aefi_widget.engine.model_mode import computing, differentiating
from aefi_widget.engine.probes import CopyingInputs, probe_model

__all__ = ["Baseline", "ModelSession"]

_PROBE_ROWS = 16
# Row-subset baselines kept (a run visits its repeats in order: two would do; a drilldown of
# another repeat in between should not evict the run's).
_ROW_BASELINES = 4
# Assumed matrix-product rates for sizing work. Fixed numbers, not measurements, so the plan
# (and with it every floating-point sum) is the same on every run with the same settings.
_ASSUMED_FLOPS = {"cpu": 150e9, "cuda": 20e12, "mps": 2e12}
_MEMORY_BUDGET_BYTES = {"cpu": 512 * 2**20, "cuda": 2 * 2**30, "mps": 1 * 2**30}
# CPU forward calls: activations of about this size (4096 rows at d=1000) balance matrix-product
# efficiency (better with more rows) against reductions reading cache-cold outputs (worse); it
# also stays below the 64 MB glibc keeps for reuse (engine/allocator.py). Measured with
# benchmarks/bench_calls.py.
_CALL_BUDGET_BYTES = {"cpu": 128 * 2**20}
_MIN_CALL_ROWS = 256
# A call costs at least this many FLOPs' worth of time in per-call overhead (Python, dispatch):
# work is sized as if every sample cost at least this much, so tiny models get large calls.
_MIN_FLOPS_PER_ROW = 20_000


class ModelSession:
    """The user's model and data, checked and prepared for any method.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps an (n, d) float tensor to its (n, d) reconstruction (or a tuple whose first element
        is). Never modified; another ``device`` works on a copy.
    X : torch.Tensor, numpy.ndarray, pandas.DataFrame or anndata.AnnData, shape (n, d)
        Copied (the user's array is never written); integer and bool inputs are cast to the
        model's dtype. An AnnData gives ``adata.X`` (or ``layer``), densified when sparse.
    feature_names : sequence of str, optional
        Column names (default: the DataFrame's columns or AnnData's ``var_names``, else
        "x0".."x{d-1}").
    metric : {"mse", "mae", "rmse_pct"} or callable, default "mse"
        Per-sample error; a callable maps (recon, target), both (n, d), to (n,) errors.
    device : str or torch.device, optional
        Where to compute; default the model's device.
    forward_path : {"auto", "rank1", "plain", "fused"}
        ``"rank1"`` keeps the rank-1 path but runs the rest through the modules; ``"fused"`` uses
        fused kernels wherever they apply, however narrow the layers (both for tests).
    layer : str, optional
        With an AnnData X: use ``adata.layers[layer]`` instead of ``adata.X``.
    check_first : callable, optional
        ``check_first(feature_names, X)`` (X the private (n, d) tensor) runs once X is checked
        and before the model is first called: a method validates its own options there, so bad
        options fail without any model call.
    """

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        feature_names: Sequence[str] | None = None,
        metric: str | MetricFn = "mse",
        device: str | torch.device | None = None,
        forward_path: str = "auto",
        check_first: Callable[[tuple[str, ...], torch.Tensor], None] | None = None,
        layer: str | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be a torch.nn.Module or callable, got {type(model)!r}")
        if forward_path not in ("auto", "rank1", "plain", "fused"):
            raise ValueError(f"unknown forward path {forward_path!r}")
        self.metric_name, self.metric = resolve_metric(metric)
        self.custom_metric = not isinstance(metric, str)
        dtype, model_device = model_dtype_device(model)
        self.device = resolve_device(device, model_device)
        self.model = _on_device(model, model_device, self.device)
        self.X, self.output_names = as_feature_matrix(X, feature_names, dtype, self.device, layer)
        # Row labels (DataFrame index, AnnData obs_names) for results indexed by sample; None
        # for arrays and the default 0..n-1 index.
        self.sample_names: list[int] | list[str] | None = row_labels(X)
        self.n_samples, self.n_inputs = self.X.shape
        if check_first is not None:
            check_first(self.output_names, self.X)
        self.probe = self.X[torch.arange(_PROBE_ROWS, device=self.device) % self.n_samples]
        self._check_reconstruction()
        self._forward_path = forward_path
        self.path: ForwardPath = self._detect_path()
        self.caller = Caller(self.device)
        self._forget_baselines()
        self._lock = threading.Lock()
        self._identity: dict[str, str] | None = None

    def _detect_path(self) -> ForwardPath:
        """The forward path for the model (a pure function of its structure and the probe)."""
        # A model that writes into its input gets a copy on every call (engine data stays intact).
        calls = CopyingInputs(self.model) if self._writes_input else self.model
        forward_path = self._forward_path
        with computing(self.model):  # eval mode: no BatchNorm updates, no dropout
            return detect_forward_path(
                calls,
                self.probe,
                allow_rank1=forward_path != "plain",
                allow_fused=forward_path in ("auto", "fused"),
                force_fused=forward_path == "fused",
            )

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """What a worker process needs (``aefi_widget.job``'s process backend): the model, X,
        metric and checks' outcomes. Left out and rebuilt there: the lock, the caller, the
        forward path (fused kernels hold packed weights torch cannot pickle) and the baseline
        (recomputed with the same bits)."""
        state = dict(self.__dict__)
        for name in ("path", "caller", "_baseline", "_errors", "_row_baselines", "_lock"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.path = self._detect_path()
        self.caller = Caller(self.device)
        self._forget_baselines()
        self._lock = threading.Lock()

    def _forget_baselines(self) -> None:
        self._baseline: Baseline | None = None
        # All n per-sample errors (without the rest of the baseline), and the baselines of the
        # last few row subsets (least recently used first).
        self._errors: torch.Tensor | None = None
        self._row_baselines: OrderedDict[bytes, Baseline] = OrderedDict()

    # ------------------------------------------------------------------ checks
    def _check_reconstruction(self) -> None:
        """Refuse a model that does not map (rows, d) to a finite (rows, d) reconstruction, is
        random, or (custom) a metric that misbehaves; note whether it writes into its input and
        warn when its rows are coupled (:func:`~aefi_widget.engine.probes.probe_model`)."""
        with computing(self.model):
            report = probe_model(self.model, self.probe, self.metric, self.custom_metric)
        self._writes_input = report.writes_input
        # Part of the run's identity: catches what parameters cannot (plain callables,
        # module state that is not a parameter or buffer, lambda metrics).
        self._probe_digest = report.digest

    # ------------------------------------------------------------------ sizing
    def rows_per_chunk(self, seconds: float) -> int:
        """Samples whose forward passes take about ``seconds`` (assumed rate) and fit memory.

        Deterministic: a pure function of the model's shapes and the device type.
        """
        kind = self.device.type
        floats = activation_floats_per_row(self.model, self.n_inputs)
        rows = _MEMORY_BUDGET_BYTES.get(kind, 512 * 2**20) // max(1, floats * self.itemsize)
        flops = max(_MIN_FLOPS_PER_ROW, linear_flops_per_row(self.model, skip=self.path.first))
        rows = min(rows, int(seconds * _ASSUMED_FLOPS.get(kind, 150e9) / flops))
        return max(MIN_FORWARD_ROWS, rows)

    def rows_per_call(self, chunk_rows: int) -> int:
        """Samples per forward call inside a chunk: activations within the call budget (CPU)."""
        budget = _CALL_BUDGET_BYTES.get(self.device.type)
        if budget is None:
            return chunk_rows  # accelerators want the largest calls
        floats = activation_floats_per_row(self.model, self.n_inputs)
        rows = budget // max(1, floats * self.itemsize) // ROW_ALIGNMENT * ROW_ALIGNMENT
        return max(_MIN_CALL_ROWS, min(chunk_rows, rows))

    @property
    def itemsize(self) -> int:
        """Bytes per value of X (the model's dtype)."""
        return self.X.element_size()

    # ------------------------------------------------------------------ running the model
    def computing(self) -> contextlib.AbstractContextManager[None]:
        """Eval mode and inference mode around one piece of forward-only work."""
        return computing(self.model)

    def differentiating(self) -> contextlib.AbstractContextManager[None]:
        """Eval mode with autograd on, for gradient methods."""
        return differentiating(self.model)

    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run a (rows, width) buffer through the path: X rows on the plain path, first-layer
        outputs on the rank-1 path; (rows, d). Fused kernels may overwrite ``inputs``."""
        path = self.path
        if path.fused:
            fn = functools.partial(path.rest, overwrite=True)
        else:
            fn = path.rest if path.first is not None else path.model
        recon = self.caller(fn, inputs)
        if recon.shape != (inputs.shape[0], self.n_inputs):
            raise ValueError(
                f"the model returned shape {tuple(recon.shape)} for {inputs.shape[0]} samples; "
                f"it must return ({inputs.shape[0]}, {self.n_inputs})"
            )
        return recon

    def errors(
        self, recon: torch.Tensor, target: torch.Tensor, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-sample errors (rows,) of ``recon`` against ``target``; ``out`` is scratch space
        for the built-in metrics. A custom metric gets copies it may write into."""
        if self.custom_metric:
            return torch.as_tensor(self.metric(recon, target.clone()))
        return self.metric(recon, target, out=out)

    def baseline(self, call_rows: int) -> Baseline:
        """The unperturbed reconstruction and errors over all n samples (computed once, in calls
        of ``call_rows`` rows: every row's output is independent of the call it is in)."""
        found = self._baseline
        if found is not None:
            return found
        # The model's lock first, then the session's: callers already inside computing() hold
        # the model's lock when they get here (the opposite order would deadlock with them).
        with computing(self.model), self._lock:
            if self._baseline is None:
                self._baseline = full_baseline(self, call_rows)
            return self._baseline

    def cached_baseline(self) -> Baseline | None:
        """The baseline if some method computed it already, else None (never computes)."""
        return self._baseline

    def baseline_error(self, call_rows: int, rows_per_repeat: int) -> float:
        """The mean unperturbed error over all n samples for a method that evaluates
        ``rows_per_repeat`` rows at a time: without keeping any (n, d) array when those are at
        most half of X (see :meth:`rows_baseline`), else from the whole baseline it will use."""
        if 2 * rows_per_repeat > self.n_samples:
            return self.baseline(call_rows).error
        return float(self._all_errors(call_rows).mean())

    def cached_error(self) -> float | None:
        """The mean unperturbed error if already known, else None (never computes)."""
        if self._baseline is not None:
            return self._baseline.error
        return None if self._errors is None else float(self._errors.mean())

    def rows_baseline(self, rows: np.ndarray, call_rows: int) -> Baseline:
        """The baseline restricted to the sorted (m,) ``rows``, bit for bit the whole
        baseline's rows. Computed for those rows alone (and kept for the last few subsets)
        when they are at most half of X and the whole baseline is not cached, so a run that
        samples rows needs memory for its rows, not for n."""
        if self._baseline is None and 2 * len(rows) <= self.n_samples:
            key = np.ascontiguousarray(rows, dtype=np.int64).tobytes()
            errors = self._all_errors(call_rows)
            with computing(self.model), self._lock:  # in that order: see baseline()
                found = self._row_baselines.get(key)
                if found is None:
                    found = row_baseline(self, rows, errors, call_rows)
                    self._row_baselines[key] = found
                    while len(self._row_baselines) > _ROW_BASELINES or (
                        sum(len(k) for k in self._row_baselines) // 8 > self.n_samples // 2
                    ):
                        self._row_baselines.popitem(last=False)
                self._row_baselines.move_to_end(key)
                return found
        b = self.baseline(call_rows)
        if len(rows) == self.n_samples:
            return b
        index = torch.as_tensor(rows, device=self.device)
        pre = None if b.pre is None else b.pre[index]
        return Baseline(pre, b.recon[index], b.errors[index], b.error,
                        b.columns.index_select(1, index))  # fmt: skip

    def _all_errors(self, call_rows: int) -> torch.Tensor:
        found = self._baseline.errors if self._baseline is not None else self._errors
        if found is not None:
            return found
        with computing(self.model), self._lock:  # in that order: see baseline()
            if self._baseline is not None:
                return self._baseline.errors
            if self._errors is None:
                self._errors = all_errors(self, call_rows)
            return self._errors

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, str]:
        """Digests of the model's parameters and buffers, of its outputs on the probe rows, and
        of X: what a checkpoint or resume must match (hashed once per session).

        The outputs catch what parameters cannot: plain callables (``lambda x: 0.5 * x``) and
        module state that is not a parameter or buffer.
        """
        with self._lock:
            if self._identity is None:
                self._identity = self._compute_identity()
            return dict(self._identity)

    def _compute_identity(self) -> dict[str, str]:
        model = self.model
        if isinstance(model, torch.nn.Module):
            model_digest = tensor_digest(sorted(model.state_dict().items()))
        else:
            name = (
                f"{type(model).__module__}.{getattr(model, '__qualname__', type(model).__name__)}"
            )
            model_digest = hashlib.sha256(name.encode()).hexdigest()
        return {
            "model": model_digest,
            "outputs": self._probe_digest,
            "data": tensor_digest([("X", self.X)]),
        }


def _on_device(model: Any, model_device: torch.device, device: torch.device) -> Any:
    """The model on ``device``: itself when already there, else a copy (never move theirs)."""
    same = device.type == model_device.type and (
        device.index is None or device.index == (model_device.index or 0)
    )
    if same or not isinstance(model, torch.nn.Module):
        return model
    return copy.deepcopy(model).to(device)
