"""Shapley values of an autoencoder's reconstruction loss (SAGE), estimated incrementally.

For a coalition S of units, each sample x is predicted by the mean over the background rows b of
``model(x_S, b_{-S})``, and ``v(S)`` is the mean over samples of the loss of that prediction
against x (Covert, Lundberg and Lee, "Understanding global feature contributions with additive
importance measures", NeurIPS 2020; the definition of ``sage-importance``'s ``MarginalImputer``).
The Shapley value of unit j is the mean over orderings of ``v(S) - v(S + j)``, S the units before
j: positive when knowing j lowers the loss. They sum to ``v(empty) - v(all units)``.

Estimator: column r of the (F, R) estimates lets every sample i walk its own ordering, a pure
function of (seed, r, i) (with ``antithetic=True`` also its reverse, and the column holds the
pair's mean), and averages the contributions over all n samples. Every sample in every column:
differences between samples are most of the variance of one sample's contributions, and a column
over all of them has none; an ordering of its own per sample: the orderings' noise then averages
over n independent walks. Measured (``benchmarks/bench_shapley.py``, seed-like AE, d = 50,
n = 512, 64 background rows), the variance of a column per ordering walked is 9x lower than with
one ordering shared by all samples (both paired) and 15x lower than SAGE's draws of one sample
with one ordering; reversed pairs cut it 6.4x (a pair costs two walks: near-quadratic games are
almost exact under pairing), so ``antithetic`` defaults to True.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from aefi_widget.engine.calls import aligned
from aefi_widget.engine.distributed import WorkerSpec, check_client
from aefi_widget.engine.fingerprint import tensor_digest
from aefi_widget.engine.forward import activation_floats_per_row
from aefi_widget.engine.groups import resolve_groups
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.metrics import MetricFn
from aefi_widget.engine.resume_checks import run_identity
from aefi_widget.engine.runner import IncrementalMethod
from aefi_widget.engine.session import ModelSession
from aefi_widget.engine.shapley_inputs import (
    all_orders,
    background_rows,
    check_estimates_fit,
    stopping_rule,
)
from aefi_widget.engine.shapley_loop import walks_here, walks_on_cluster
from aefi_widget.engine.shapley_schedule import Schedule
from aefi_widget.engine.shapley_state import ShapleyState
from aefi_widget.engine.shapley_walk import Background, BatchWalk, UnitTable, empty_losses
from aefi_widget.engine.units import resolve_units
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["ShapleyImportance", "shapley_importance"]

# n_permutations=None: until converged, but at most this many columns (each one ordering, or
# pair, per sample), so a problem whose values are all equal still ends.
MAX_PERMUTATIONS = 1000
# Enumerating every ordering ("all") is meant for small exact checks: 8! = 40,320 orderings.
MAX_UNITS_ALL = 8
# A stretch of work between yields, so pause and cancel answer well within a second.
_TARGET_CHUNK_SECONDS = 0.25
# CPU calls of one walk step: activations of about this size stay in cache through the state
# update, the network and the mean. Measured per row on the seed-like AE (d = 50 and 100, one
# column, 1 and 2 threads): 65,536-row calls were 2-3x slower than 4,096 to 16,384 rows.
_CPU_CALL_BYTES = 16 * 2**20
_MIN_CPU_CALL_ROWS = 4096


class ShapleyImportance(IncrementalMethod):
    """Streaming Shapley values of the reconstruction loss (SAGE) of an autoencoder.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps an (n, d) float tensor to its (n, d) reconstruction (or a tuple whose first element
        is). Evaluated in eval mode; never modified.
    X : torch.Tensor, numpy.ndarray, pandas.DataFrame or anndata.AnnData, shape (n, d)
        The samples whose loss is explained; all n of them enter every column of estimates
        (cost per column: n orderings, each F forward passes of B rows; pass fewer rows for a
        cheaper run).
    background : None, int, array or DataFrame, optional
        Rows that stand in for the units outside a coalition. None: up to 128 rows of X drawn
        with ``seed``; an int: that many rows of X; an (B, d) array/tensor or a DataFrame with
        X's columns: those rows (finite values).
    groups : dict of str -> list of names or indices, or "auto", optional
        Units of several columns that join a coalition together; ``"auto"`` uses
        :func:`~aefi_widget.correlated_groups` with its defaults.
    n_permutations : int, "all" or None
        Most columns to compute (each: one ordering per sample, or an antithetic pair). None:
        until converged (at most 1,000). ``"all"``: every ordering of the F <= 8 units, assigned
        to the samples in rotation, so the mean is the exact Shapley value (tests).
    tol : float, default 0.025
        Stop when max SE / (max value - min value) < tol (SAGE's rule), judged after each column
        from the second on.
    antithetic : bool, default True
        Walk every ordering also reversed; a column stores the pair's mean.
    metric : {"mse", "mae", "rmse_pct"} or callable, default "mse"
        The loss of a prediction: per sample, over outputs. A callable gets (rows, d) float64
        predictions and targets. "mse" averages over outputs: multiply by d to compare with
        ``sage``'s "mse", which sums.
    feature_names, seed, device, progress, checkpoint, checkpoint_every, client
        As for :class:`~aefi_widget.PermutationImportance` (seed None draws one). With a
        ``client``, a Dask task walks about 0.25 s of samples; the numbers are the same.
    layer : str, optional
        With an AnnData X: explain ``adata.layers[layer]`` instead of ``adata.X``.
    batch_size : int, optional
        Model rows per forward call (whole samples: each takes B rows per walk). The numbers
        never depend on it.

    Notes
    -----
    ``importances`` is (F, R), R counting columns (axis "permutation"); ``extras["se"]`` (F,)
    is each mean's standard error (NaN before two columns), from every sample's spread over the
    columns: n (R - 1) degrees of freedom, so it is tighter than ``summary()``'s t interval over
    R columns when R is small. ``settings`` records ``converged``, ``convergence_ratio`` and
    ``loss_empty`` (v(empty)); ``baseline_error`` is v(all). A snapshot's resume state is the
    last finished batch of samples: resuming recomputes at most one batch.
    """

    description = "Shapley values"

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        background: Any = None,
        groups: Mapping[str, Sequence[str | int]] | str | None = None,
        n_permutations: int | str | None = None,
        tol: float = 0.025,
        antithetic: bool = True,
        metric: str | MetricFn = "mse",
        feature_names: Sequence[str] | None = None,
        layer: str | None = None,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: float = 5.0,
        client: Any = None,
        _forward_path: str = "auto",
    ) -> None:
        self.client = check_client(client)
        n_permutations, tol = stopping_rule(n_permutations, tol)
        self.n_permutations, self.tol = n_permutations, tol
        if not isinstance(antithetic, bool):
            raise TypeError(f"antithetic must be True or False, got {antithetic!r}")
        self.antithetic = antithetic
        self.seed = check_int(secrets.randbits(63) if seed is None else seed, "seed",
                              -(2**63), 2**64 - 1)  # fmt: skip
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
        self.progress = bool(progress)
        self.set_checkpoint(checkpoint, checkpoint_every)

        def check_options(names: tuple[str, ...], data: torch.Tensor) -> None:
            # Before the model is first called: bad options cost no model call.
            resolved = resolve_groups(groups, data, names)
            self.units = resolve_units(names, resolved)
            self.groups = {u.name: u.members for u in self.units if resolved and u.name in resolved}
            if n_permutations == "all" and len(self.units) > MAX_UNITS_ALL:
                raise ValueError(
                    f"n_permutations='all' enumerates F! orderings: only for up to "
                    f"{MAX_UNITS_ALL} units, here {len(self.units)}; give a number instead"
                )
            if isinstance(n_permutations, int):
                check_estimates_fit(n_permutations, len(self.units))
            self.background_rows, self.background_kind = background_rows(
                background, data, names, self.seed
            )

        self.session = ModelSession(
            model, X, feature_names=feature_names, metric=metric, device=device,
            forward_path=_forward_path, check_first=check_options, layer=layer,
        )  # fmt: skip
        session = self.session
        self.metric_name, self.device = session.metric_name, session.device
        self.n_samples, self.n_inputs = session.n_samples, session.n_inputs
        self.output_names = session.output_names
        self.feature_names = tuple(u.name for u in self.units)
        self.all_orders = None
        if n_permutations == "all":
            self.all_orders = all_orders(len(self.units), antithetic)
            self.max_columns = len(self.all_orders)
        else:
            self.max_columns = MAX_PERMUTATIONS if n_permutations is None else int(n_permutations)
        self.walks_per_sample = 2 if antithetic else 1
        # Rows one sample takes in a forward call: aligned(B) per walk.
        self.sample_rows = aligned(self.background_rows.shape[0]) * self.walks_per_sample
        self.call_rows = batch_size or self._auto_call_rows()
        self.samples_per_batch = max(1, self.call_rows // self.sample_rows)
        self.schedule = Schedule(
            self.n_samples, len(self.units), self.seed, self.all_orders, self.antithetic,
            self.max_columns, self.tol, self.samples_per_batch,
        )  # fmt: skip
        self._identity: dict[str, str] | None = None
        self._prepared: tuple[Background, UnitTable, torch.Tensor, torch.Tensor] | None = None
        # What a Dask worker needs to rebuild this engine (the model and X travel apart, once):
        # the resolved background rows and groups, so a worker draws and clusters nothing.
        self.worker_keywords = {
            "background": self.background_rows.cpu(), "n_permutations": n_permutations,
            "groups": {name: list(members) for name, members in self.groups.items()} or None,
            "tol": tol, "antithetic": antithetic, "metric": metric, "seed": self.seed,
            "feature_names": list(self.output_names), "device": device,
            "batch_size": batch_size, "_forward_path": _forward_path,
        }  # fmt: skip

    # ------------------------------------------------------------------ public API
    @property
    def n_features(self) -> int:
        """Number of attributed units F (features and groups)."""
        return len(self.units)

    @property
    def forward_path(self) -> str:
        """``"rank1"`` when the first-Linear shortcut is used, else ``"plain"``."""
        return self.session.path.kind

    @property
    def evaluations_per_column(self) -> int:
        """Sample-coalitions one column evaluates (each B model rows): walks x F."""
        return self.n_samples * self.walks_per_sample * self.n_features

    @property
    def evaluations_total(self) -> int:
        """Evaluations of the run: to the cap, or (n_permutations=None) to the columns the
        convergence rate predicts so far."""
        known = self.n_permutations is not None
        return (
            self.max_columns if known else self.schedule.expected_columns
        ) * self.evaluations_per_column

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description of the run (progress fields are added per snapshot)."""
        return {
            "method": "shapley",
            "metric": self.metric_name,
            "seed": self.seed,
            "n_permutations": self.n_permutations,
            "tol": self.tol,
            "antithetic": self.antithetic,
            "orderings": "all" if self.all_orders is not None else "random",
            "sample_order": "shuffled",
            "background": self.background_kind,
            "background_rows": int(self.background_rows.shape[0]),
            "samples_per_permutation": self.n_samples,
            "batch_rows": self.samples_per_batch * self.sample_rows,
            "forward_path": self.forward_path,
            "fused_kernels": self.session.path.fused,
            "device": str(self.device),
            "dtype": str(self.session.X.dtype).replace("torch.", ""),
        }

    def identity(self) -> dict[str, str]:
        """Digests of the model, its outputs on probe rows, X and the settings that fix the
        numbers (the cap and ``tol`` may change between runs)."""
        if self._identity is None:
            keep = ("method", "metric", "seed", "antithetic", "orderings", "sample_order",
                    "forward_path", "fused_kernels", "dtype")  # fmt: skip
            self._identity = run_identity(
                self.session.identity(), self.settings, keep, self.units,
                background=tensor_digest([("background", self.background_rows)]),
            )  # fmt: skip
        return dict(self._identity)

    def empty_result(self) -> ImportanceResult:
        """A result with nothing computed yet (all-NaN estimates)."""
        return self._snapshot(self._new_state(), None, 0, False)

    def compute(self, resume: ImportanceResult | None) -> Iterator[ImportanceResult]:
        """Batches of samples walked through all F steps; a snapshot about every 0.25 s."""
        return self.compute_on(resume, self.client)

    def compute_on(
        self, resume: ImportanceResult | None, client: Any
    ) -> Iterator[ImportanceResult]:
        """:meth:`compute`, with the batches walked on Dask ``client`` when it is not None."""
        client = check_client(client)
        identity = self.identity()
        if resume is None or (resume.resume is None and resume.evaluations_done == 0):
            state = self._new_state()
        else:
            state = ShapleyState.resumed(resume, identity, self.feature_names, self.n_samples,
                                         self.max_columns, self.schedule.sample_order)  # fmt: skip
        self.schedule.update_expected(state)
        if self.schedule.finished(state):
            return
        self._prepare()  # here too: v(empty) and v(all) for the snapshots
        if client is None:
            yield from walks_here(
                state, self.schedule, identity, self._walk, self.session.computing,
                self._snapshot, _TARGET_CHUNK_SECONDS,
            )  # fmt: skip
        else:
            yield from walks_on_cluster(
                client, self._worker_spec(), state, self.schedule, identity,
                self._task_samples(), self._snapshot,
            )  # fmt: skip

    def chunk_sums(self, plan: Any, start: int, stop: int) -> np.ndarray:
        """(K, F) float64 contributions of the walks of flat positions ``[start, stop)``
        (position = column * n + sample; antithetic pairs averaged): the unit of work on a Dask
        worker. A pure function of the positions (and the model and data): every walk's numbers
        are independent of the walks that share its calls (:mod:`.shapley_walk`)."""
        walk = self._walk(*self.schedule.walks(start, stop))
        with self.session.computing():
            while not walk.done:
                walk.step()
        return walk.sample_contributions()

    def _walk(self, columns: np.ndarray, samples: np.ndarray) -> BatchWalk:
        """The walks of ``samples`` (K,) in ``columns`` (K,), each reversed too (antithetic)."""
        background, units, targets, empty = self._prepare()
        orders = self.schedule.orders(columns, samples)
        return BatchWalk(self.session, background, units, samples, orders, targets, empty,
                         self.antithetic)  # fmt: skip

    def _task_samples(self) -> int:
        """Samples per cluster task: about ``_TARGET_CHUNK_SECONDS`` of walking (F steps of
        ``sample_rows`` rows each per sample), so cancel answers quickly; 1 to a local batch."""
        rows = self.session.rows_per_chunk(_TARGET_CHUNK_SECONDS)
        return max(1, min(self.samples_per_batch, rows // (self.sample_rows * self.n_features)))

    def _worker_spec(self) -> WorkerSpec:
        return WorkerSpec(ShapleyImportance, self.session.model, self.session.X.cpu(),
                          self.worker_keywords)  # fmt: skip

    def finished(self, resume: ImportanceResult) -> ImportanceResult:
        state = ShapleyState.resumed(resume, self.identity(), self.feature_names, self.n_samples,
                                     self.max_columns, self.schedule.sample_order)  # fmt: skip
        self.schedule.update_expected(state)
        stop = self.schedule.finished(state)
        self._prepare()  # v(empty) and v(all) for the result, as a computing run reports them
        return self._snapshot(state, state.resume_state(self.identity()),
                              self.schedule.evaluations_done(state), stop)  # fmt: skip

    # ------------------------------------------------------------------ internals
    def _new_state(self) -> ShapleyState:
        return ShapleyState(self.n_features, self.n_samples, self.schedule.sample_order)

    def _auto_call_rows(self) -> int:
        """Model rows per forward call: the session's size, on the CPU at most ~16 MiB of
        activations (but >= 4,096 rows, where wide layers multiply efficiently)."""
        session = self.session
        rows = session.rows_per_call(session.rows_per_chunk(_TARGET_CHUNK_SECONDS))
        if self.device.type == "cpu":
            row_bytes = activation_floats_per_row(session.model, self.n_inputs) * session.itemsize
            rows = min(rows, max(_MIN_CPU_CALL_ROWS, _CPU_CALL_BYTES // max(1, row_bytes)))
        return rows

    def _prepare(self) -> tuple[Background, UnitTable, torch.Tensor, torch.Tensor]:
        """Background rows (and their first-layer outputs), unit table, float64 targets and
        the empty coalition's losses: computed once per engine."""
        if self._prepared is None:
            session = self.session
            background = Background.prepare(session, self.background_rows)
            units = UnitTable.of(self.units, self.device)
            targets = session.X.to(torch.float64)
            empty = empty_losses(session, background, targets)
            self._prepared = (background, units, targets, empty)
        return self._prepared

    def _snapshot(
        self, state: ShapleyState, resume: ResumeState | None, evaluations_done: int, final: bool
    ) -> ImportanceResult:
        """An immutable result of ``state``: finished columns, then NaN up to the cap (or one
        column while the cap is open); the last snapshot of a run holds just the finished ones."""
        if final:
            width = state.column
        elif self.n_permutations is not None:
            width = self.max_columns
        else:
            width = state.column + 1
        se = state.se.copy()
        if self.all_orders is not None and state.column == len(self.all_orders):
            se[:] = 0.0  # every ordering enumerated: the values are exact
        baseline = self.session.cached_baseline()
        if baseline is None and self._prepared is not None:
            baseline = self.session.baseline(self.call_rows)
        empty = math.nan if self._prepared is None else float(self._prepared[3].mean())
        progress = {**state.progress(self.tol, exact=self.all_orders is not None),
                    "loss_empty": None if math.isnan(empty) else empty}  # fmt: skip
        extras = {"se": se}
        interim = None if final else state.interim()
        if interim is not None:
            extras["interim"] = interim
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.output_names,
            importances=state.importances(width),
            baseline_error=baseline.error if baseline is not None else math.nan,
            settings={**self.settings, **progress},
            groups=self.groups,
            evaluations_done=evaluations_done,
            evaluations_total=max(self.evaluations_total, evaluations_done),
            elapsed_s=state.elapsed_s,
            resume=resume,
            extras=extras,
            labels={
                "title": "Shapley values of the loss (SAGE)",
                "value": f"Δ loss ({self.metric_name})",
                "axis": "permutation",
            },
        )


def shapley_importance(model: Any, X: Any, **keywords: Any) -> ImportanceResult:
    """Shapley values of ``model``'s reconstruction loss on ``X`` (SAGE), computed in full.

    Takes the keywords of :class:`ShapleyImportance` and returns the final
    :class:`~aefi_widget.result.ImportanceResult` (values in ``summary()``, standard errors in
    ``extras["se"]``). Example::

        res = shapley_importance(model, X, background=64, groups="auto")
        res.summary().head(20)
    """
    return ShapleyImportance(model, X, **keywords).run()
