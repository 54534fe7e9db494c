"""Gradient attributions of an autoencoder's per-sample reconstruction error, streamed by chunk.

Each sample's error against itself, ``L_i(z) = error(model(z), x_i)``, is attributed to its inputs
by integrated gradients along the straight path from a baseline (Sundararajan, Taly & Yan 2017,
"Axiomatic attribution for deep networks") or by gradient x input (one backward pass); see
:mod:`aefi_widget.engine.gradient_paths`. Samples are processed in chunks; after each chunk the
generator yields an :class:`ImportanceResult` whose (F, n) array holds ``|a_ij|`` (NaN for samples
not done), so ``summary()`` gives the mean over samples of ``|attribution|`` with a CI over
samples, and whose extra ``per_sample`` (n, F) holds the signed attributions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from aefi_widget.engine.calls import ROW_ALIGNMENT, aligned
from aefi_widget.engine.distributed import WorkerSpec, check_client, chunks_on_cluster
from aefi_widget.engine.fingerprint import tensor_digest
from aefi_widget.engine.gradient_paths import (
    BASELINES,
    QUADRATURES,
    Block,
    attribute_block,
    baseline_row,
    check_baseline_row,
    check_differentiable,
    check_steps,
    differentiable_errors,
    quadrature_rule,
)
from aefi_widget.engine.gradient_state import GradientState, UnitFold
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.metrics import MetricFn
from aefi_widget.engine.resume_checks import run_identity
from aefi_widget.engine.runner import IncrementalMethod
from aefi_widget.engine.session import ModelSession
from aefi_widget.engine.units import resolve_units
from aefi_widget.result import ImportanceResult

__all__ = ["GradientImportance", "gradient_importance"]

METHODS = {"integrated_gradients": "Integrated gradients", "gradient_x_input": "Gradient × input"}
# Attributions held in memory: n x F float64, signed and absolute, copied into every snapshot
# (200 MB each at the limit).
MAX_ATTRIBUTIONS = 25_000_000
# A chunk should take about this long, so pause and cancel answer well within a second.
_TARGET_CHUNK_SECONDS = 0.25


class GradientImportance(IncrementalMethod):
    """Streaming gradient attributions of each sample's reconstruction error.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps an (n, d) float tensor to its (n, d) reconstruction (or a tuple whose first element
        is); autograd must be able to differentiate it. Evaluated in eval mode; never modified,
        parameters' ``.grad`` never written.
    X : torch.Tensor, numpy.ndarray, pandas.DataFrame or anndata.AnnData, shape (n, d)
        Samples to attribute. Copied; a DataFrame's index (AnnData's ``obs_names``) labels the
        samples of ``per_sample``.
    method : {"integrated_gradients", "gradient_x_input"}, default "integrated_gradients"
        Integrated gradients along the straight path from ``baseline`` (``steps`` forward and
        backward passes per sample), or ``x * dL/dx`` at the sample (one of each; ``baseline``,
        ``steps`` and ``quadrature`` are then checked but not used). On a trained autoencoder
        the two answer different questions: ``dL/dx`` at the sample is the sensitivity of a
        small residual, not how much the reconstruction relies on a feature; prefer
        integrated gradients (a few steps are enough for a ranking).
    baseline : "mean", "zeros" or array-like of shape (d,), default "mean"
        Where the path starts: the mean of X over samples, the zero row, or a given finite row.
    steps : int, default 32
        Quadrature nodes along the path (>= 1).
    quadrature : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle"}
        The rule, by captum's name; default "gausslegendre" (captum's default).
    metric : {"mse", "mae", "rmse_pct"} or callable, default "mse"
        Per-sample error; a callable maps (recon, target), both (n, d), to (n,) errors and must be
        differentiable in ``recon``.
    feature_names : sequence of str, optional
        Column names (default: the DataFrame's columns or AnnData's ``var_names``, else
        "x0".."x{d-1}").
    layer : str, optional
        With an AnnData X: attribute ``adata.layers[layer]`` instead of ``adata.X``.
    groups : dict of str -> list of names or indices, optional
        A group's attribution is the sum of its members' signed attributions, per sample.
    device : str or torch.device, optional
        Where to compute; default the model's device. Another device works on a copy.
    batch_size : int, optional
        Samples per chunk (snapshot) and per forward/backward call, one step per call. By
        default a chunk is about 0.25 s of work and a call holds several steps. The numbers
        never depend on it.
    progress : bool, default False
        Show a tqdm bar in :meth:`run`.
    checkpoint : path, optional
        Save the run's state there every ``checkpoint_every`` seconds and when it stops; a later
        run with the same path, model, data and settings resumes from it.
    checkpoint_every : float, default 5.0
        Seconds between checkpoint writes.
    """

    description = "gradient importance"

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        method: str = "integrated_gradients",
        baseline: str | Any = "mean",
        steps: int = 32,
        quadrature: str = "gausslegendre",
        metric: str | MetricFn = "mse",
        feature_names: Sequence[str] | None = None,
        layer: str | None = None,
        groups: Mapping[str, Sequence[str | int]] | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: float = 5.0,
        client: Any = None,
    ) -> None:
        self.client = check_client(client)
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {sorted(METHODS)}")
        self.method = method
        if quadrature not in QUADRATURES:
            raise ValueError(f"unknown quadrature {quadrature!r}; use one of {list(QUADRATURES)}")
        self.steps = check_steps(steps, quadrature)
        if isinstance(baseline, str) and baseline not in BASELINES:
            raise ValueError(
                f"unknown baseline {baseline!r}; use 'mean', 'zeros' or a row of numbers"
            )
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
        self.progress = bool(progress)
        self.set_checkpoint(checkpoint, checkpoint_every)
        integrated = method == "integrated_gradients"
        given_row: list[np.ndarray] = []

        def check_options(names: tuple[str, ...], X_: torch.Tensor) -> None:
            # Before the model is first called: bad options cost no model call.
            n = X_.shape[0]
            self.units = resolve_units(names, groups)
            if n * len(self.units) > MAX_ATTRIBUTIONS:
                raise ValueError(
                    f"{n:,} samples x {len(self.units):,} features is too many attributions to "
                    "hold; attribute a random subset of the samples (e.g. X[:2000])"
                )
            if not isinstance(baseline, str):  # checked even where unused: no silent no-op
                given_row.append(check_baseline_row(baseline, names))

        self.session = ModelSession(
            model, X, feature_names=feature_names, metric=metric, device=device,
            forward_path="rank1", check_first=check_options, layer=layer,
        )  # fmt: skip
        session = self.session
        self.metric_name, self.device = session.metric_name, session.device
        self.n_samples, self.n_inputs = session.n_samples, session.n_inputs
        self.output_names = session.output_names
        self.feature_names = tuple(u.name for u in self.units)
        self.groups = {u.name: u.members for u in self.units if groups and u.name in groups}
        self.sample_index = session.sample_names
        if integrated:
            self.baseline_kind = baseline if isinstance(baseline, str) else "given"
            self.quadrature: str | None = quadrature
            self.rule = quadrature_rule(quadrature, self.steps)
            given = given_row[0] if given_row else self.baseline_kind
            row = baseline_row(given, session.X)
        else:  # x * dL/dx: the one-node rule from the zero row
            self.baseline_kind, self.quadrature = None, None
            self.rule = ((1.0,), (1.0,))
            row = baseline_row("zeros", session.X)
        self.baseline_row = row
        # float64 sums, except where the device has none (Apple's MPS).
        self.accumulate = torch.float32 if self.device.type == "mps" else torch.float64
        self.loss = differentiable_errors(session)
        check_differentiable(session, self.loss, row, self.accumulate)
        self.batch_rows, self.call_rows = self._chunk_sizes(batch_size)
        self._fold = UnitFold(self.units, self.n_inputs)
        self._identity: dict[str, str] | None = None
        # What a Dask worker needs to rebuild this engine (the model and X travel apart, once).
        self.worker_keywords = {
            "method": method, "baseline": baseline, "steps": steps, "quadrature": quadrature,
            "metric": metric, "feature_names": list(self.output_names), "device": device,
            "groups": {name: list(members) for name, members in self.groups.items()} or None,
            "batch_size": batch_size,
        }  # fmt: skip

    def _chunk_sizes(self, batch_size: int | None) -> tuple[int, int]:
        """Samples per chunk and rows per call: a chunk is one call of all its steps when that
        fits the session's call budget (~0.1 s of work on a CPU), else a few calls."""
        if batch_size is not None:
            return batch_size, aligned(batch_size)
        # The input gradient costs about a forward pass: half a chunk's worth of forward rows.
        forward_rows = self.session.rows_per_chunk(_TARGET_CHUNK_SECONDS / 2)
        call_rows = self.session.rows_per_call(forward_rows)
        samples = call_rows // self.n_steps // ROW_ALIGNMENT * ROW_ALIGNMENT
        return max(ROW_ALIGNMENT, samples), call_rows

    # ------------------------------------------------------------------ public API
    @property
    def n_steps(self) -> int:
        """Forward and backward passes per sample (1 for gradient x input)."""
        return len(self.rule[0])

    @property
    def n_features(self) -> int:
        """Number of attributed units F (features and groups)."""
        return len(self.units)

    @property
    def evaluations_total(self) -> int:
        """Sample-steps of the whole run (a forward and a backward pass of one sample each)."""
        return self.n_samples * self.n_steps

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description of the run, stored in every result."""
        settings: dict[str, Any] = {
            "method": "gradient",
            "gradient_method": self.method,
            "metric": self.metric_name,
            "baseline": self.baseline_kind,
            "steps": self.n_steps,
            "quadrature": self.quadrature,
            "n_samples": self.n_samples,
            "forward_path": self.session.path.kind,
            "device": str(self.device),
            "dtype": str(self.session.X.dtype).replace("torch.", ""),
        }
        if self.sample_index is not None:
            settings["sample_index"] = self.sample_index
        return settings

    @property
    def labels(self) -> dict[str, str]:
        """Title, value and axis names for tables and the dashboard."""
        return {
            "title": METHODS[self.method],
            "value": f"|attribution| ({self.metric_name} units)",
            "axis": "sample",
        }

    def identity(self) -> dict[str, str]:
        """Digests of the model, its outputs on probe rows, X, the baseline row and the settings
        that fix the numbers (hashed once per engine)."""
        if self._identity is None:
            keep = ("method", "gradient_method", "metric", "baseline", "steps", "quadrature",
                    "forward_path", "dtype")  # fmt: skip
            self._identity = run_identity(
                self.session.identity(), self.settings, keep, self.units,
                baseline_row=tensor_digest([("baseline", self.baseline_row)]),
            )  # fmt: skip
        return dict(self._identity)

    def empty_result(self) -> ImportanceResult:
        """A result with nothing computed yet (all-NaN importances)."""
        return self.snapshot(self._fresh(), None)

    def _fresh(self) -> GradientState:
        integrated = self.method == "integrated_gradients"
        return GradientState(self.n_samples, self.n_features, integrated)

    def compute(self, resume: ImportanceResult | None) -> Iterator[ImportanceResult]:
        """The work loop: a chunk of samples through every path step, then a snapshot."""
        return self.compute_on(resume, self.client)

    def compute_on(
        self, resume: ImportanceResult | None, client: Any
    ) -> Iterator[ImportanceResult]:
        """:meth:`compute`, with the chunks of samples on Dask ``client`` when it is not None."""
        client = check_client(client)
        if resume is None or (resume.resume is None and resume.evaluations_done == 0):
            state = self._fresh()
        else:
            state = GradientState.resumed(
                resume, self.identity(), self.feature_names, self.n_samples,
                self.method == "integrated_gradients",
            )  # fmt: skip
        identity = self.identity()
        self.session.baseline(self.call_rows)  # the baseline error every snapshot shows
        # A position is (first sample, 0): chunks start where the resumed run stopped.
        starts = range(state.samples_done, self.n_samples, self.batch_rows)
        positions = ((start, 0) for start in starts)
        if client is None:
            source = self._local_chunks(positions)
        else:
            spec = WorkerSpec(GradientImportance, self.session.model, self.session.X.cpu(),
                              self.worker_keywords)  # fmt: skip
            source = chunks_on_cluster(client, spec, None, positions)
        for (start, _), (attributions, error_delta), seconds in source:
            state.store(start, attributions, error_delta)
            state.elapsed_s += seconds
            yield self.snapshot(state, identity)

    def _local_chunks(
        self, positions: Iterator[tuple[int, int]]
    ) -> Iterator[tuple[tuple[int, int], Any, float]]:
        for position in positions:
            started = time.perf_counter()
            result = self.chunk_sums(None, *position)
            yield position, result, time.perf_counter() - started

    def chunk_sums(
        self, plan: Any, start: int, _unused: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Unit attributions (rows, F) and error changes (rows,) of samples
        ``[start, start + batch_rows)``: the unit of work, local or on a Dask worker."""
        stop = min(self.n_samples, start + self.batch_rows)
        block = Block(self.session.X, start, stop)
        steps_per_call = max(1, self.call_rows // block.rows)
        errors_at_x = self.session.baseline(self.call_rows).errors.cpu().numpy()
        recon_at_baseline = self._baseline_reconstruction()
        with self.session.differentiating():
            attributions = attribute_block(
                self.session, self.loss, block, self.baseline_row, self.rule, steps_per_call,
                self.accumulate,
            )  # fmt: skip
            error_delta = None
            if recon_at_baseline is not None:
                with torch.no_grad():
                    target = block.samples
                    at_baseline = self.loss(recon_at_baseline.expand_as(target), target)
                error_delta = errors_at_x[start:stop] - _numpy(block.real(at_baseline))
        return self._fold(attributions), error_delta

    def _baseline_reconstruction(self) -> torch.Tensor | None:
        """(1, d) reconstruction of the baseline row (integrated gradients only)."""
        if self.method != "integrated_gradients":
            return None
        with self.session.computing():
            recon = self.session.caller(self.session.path.model, self.baseline_row[None, :])
        return recon.clone()  # out of inference mode: usable next to autograd tensors

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, state: GradientState, identity: dict[str, str] | None) -> ImportanceResult:
        """An immutable result of ``state`` (with a resume state when ``identity`` is given)."""
        baseline = self.session.cached_baseline()
        importances, extras, resume = state.export(identity)
        extras["baseline_row"] = _numpy(self.baseline_row.to(torch.float64))
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.output_names,
            importances=importances,
            baseline_error=baseline.error if baseline is not None else float("nan"),
            settings={**self.settings, "completeness_gap": state.completeness_gap()},
            groups=self.groups,
            evaluations_done=state.samples_done * self.n_steps,
            evaluations_total=self.evaluations_total,
            elapsed_s=state.elapsed_s,
            resume=resume,
            extras=extras,
            labels=self.labels,
        )


def gradient_importance(model: Any, X: Any, **keywords: Any) -> ImportanceResult:
    """Gradient attributions of ``model``'s per-sample reconstruction error on ``X``, in full.

    Takes the keywords of :class:`GradientImportance` and returns the final
    :class:`~aefi_widget.result.ImportanceResult` (``settings["method"] == "gradient"``): its
    summary ranks features by the mean over samples of ``|attribution|``, and ``per_sample`` is
    the (n, F) DataFrame of signed attributions. Example::

        res = gradient_importance(model, X, steps=32)
        res.summary().head(20)
        res.per_sample.loc[some_sample].sort_values()
    """
    return GradientImportance(model, X, **keywords).run()


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()
