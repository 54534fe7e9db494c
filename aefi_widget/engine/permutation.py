"""Permutation importance of an autoencoder's reconstruction error, computed incrementally.

For each unit g (a feature or a group) and repeat r, the rows of g's column(s) are shuffled by a
permutation that depends only on (seed, r, g); the model reconstructs the shuffled data and

    importances[g, r] = mean_i error_i(permuted) - mean_i error_i(original)

over the repeat's samples i. Work follows a deterministic :class:`~aefi_widget.engine.plan.Plan`;
the generator yields an :class:`ImportanceResult` after each chunk and at every round's end.
Option checks and sizing live in :mod:`~aefi_widget.engine.permutation_options`, the work loops
(full plan, certified top-k) in :mod:`~aefi_widget.engine.permutation_loop`.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from aefi_widget.engine.allocator import settle_heap
from aefi_widget.engine.distributed import WorkerSpec, check_client, chunks_on_cluster
from aefi_widget.engine.drilldown import Drilldown, compute_drilldown
from aefi_widget.engine.metrics import MetricFn
from aefi_widget.engine.permutation_loop import full_rounds, race_rounds
from aefi_widget.engine.permutation_options import (
    auto_batch_rows,
    check_run_options,
    resolve_per_output,
    size_units,
)
from aefi_widget.engine.permutation_race import RaceSettings, settled_codes
from aefi_widget.engine.permutation_rows import CallSums, Shuffles, evaluate_calls, round_data
from aefi_widget.engine.permutation_rows_race import (
    check_rows_race_options,
    rows_race_compute,
    rows_race_empty,
    rows_race_finished,
    rows_race_settings,
)
from aefi_widget.engine.permutation_state import RunState
from aefi_widget.engine.plan import Plan
from aefi_widget.engine.resume_checks import run_identity
from aefi_widget.engine.runner import IncrementalMethod
from aefi_widget.engine.session import ModelSession
from aefi_widget.result import ImportanceResult

__all__ = ["PermutationImportance", "permutation_importance"]

LABELS = {"title": "Permutation importance", "value": "Δ error", "axis": "repeat"}


class PermutationImportance(IncrementalMethod):
    """Streaming permutation importance of an autoencoder's reconstruction.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps an (n, d) float tensor to its (n, d) reconstruction (or a tuple whose first element
        is). Evaluated in eval mode; the training flags are restored after every forward call.
    X : torch.Tensor, numpy.ndarray, pandas.DataFrame or anndata.AnnData, shape (n, d)
        Held-out samples. Copied; integer and bool inputs are cast to the model's dtype. An
        AnnData gives ``adata.X`` (densified when sparse) with genes from ``var_names``.
    n_repeats : int, default 10
        Shuffles per feature.
    metric : {"mse", "mae", "rmse_pct"} or callable, default "mse"
        Per-sample error; a callable maps (recon, target), both (n, d), to (n,) errors.
    target : {"original", "permuted"}, default "original"
        Compare the reconstruction of permuted data with the unpermuted X (standard permutation
        importance) or with the permuted X (what the common DataLoader recipe measures).
    feature_names : sequence of str, optional
        Column names (default: the DataFrame's columns, else "x0".."x{d-1}").
    layer : str, optional
        With an AnnData X: use ``adata.layers[layer]`` instead of ``adata.X``.
    groups : dict of str -> list of names or indices, or "auto", optional
        Columns shuffled together with one row permutation; other features stay single.
        ``"auto"`` groups correlated features with :func:`correlated_groups` (its defaults:
        Spearman ``|rho| >= 0.8``, average linkage).
    max_samples : int or float, optional
        Samples per repeat (int in [2, n], or a fraction); the subset depends on (seed, repeat).
    seed : int or None, default 0
        Seed of every permutation; None draws one (recorded in ``settings``).
    device : str or torch.device, optional
        Where to compute; default the model's device. Another device works on a copy of the model.
    batch_size : int, optional
        Permuted samples per forward call (and per snapshot). By default a snapshot covers about
        0.25 s of work, in forward calls of a few thousand samples; small problems pack several
        rounds into one call. The numbers never depend on it.
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
    client : dask.distributed.Client, optional
        Compute the plan's chunks on this Dask cluster (the model and X are sent to each worker
        once); snapshots, checkpoints and the final numbers are the same as a local run's.
    top_k : int, optional
        Certify the k most important units and stop spending repeats on units already decided:
        a round gives every unsettled unit one more repeat (the k + 10 with the largest means
        two, see :mod:`aefi_widget.engine.permutation_race`); after each round, a unit whose
        interval (valid simultaneously over all units and rounds at ``confidence``, see
        :mod:`aefi_widget.engine.racing`) places it surely inside or outside the top k is
        settled; the run ends when the set is certified or no unsettled unit has a repeat left
        of ``n_repeats``. ``result.certified_top_k`` and ``result.settled`` say what was decided.
    confidence : float, optional
        Probability that every settled unit is settled correctly (default 0.95); only with
        ``top_k`` (refused without it).
    min_repeats : int, optional
        Repeats a unit has before it can be settled (default 3); only with ``top_k`` and the
        exact race (``tolerance`` 0).
    tolerance : float or str, optional
        With ``top_k``: certify the top k within this tolerance instead of exactly, by the rows
        race (:mod:`aefi_widget.engine.rows_race`): blocks of rows under each shuffle, growing
        for undecided units. With probability >= ``confidence`` every unit settled inside has
        an importance >= the true k-th minus the tolerance, every unit settled outside <= the
        true (k+1)-th plus it; units a separation would cost more than ``n_repeats`` shuffles of
        rows are reported tied (``result.extras``: ``race_tied``). A fraction of the k-th
        importance (``0.1`` or ``"10%"``) by default: importances have no natural unit, and a
        relative tolerance reads the same whatever the metric's scale. None or 0: the exact
        race over whole repeats (the numbers of earlier releases). 0.1 is what the benchmarks
        use (``benchmarks/bench_race_rows.py``). Runs locally only (no ``client``), without
        ``max_samples``.
    tolerance_scale : {"relative", "absolute"}, default "relative"
        ``"absolute"``: ``tolerance`` is in the units of the importances.
    """

    description = "permutation importance"

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        n_repeats: int = 10,
        metric: str | MetricFn = "mse",
        target: str = "original",
        feature_names: Sequence[str] | None = None,
        layer: str | None = None,
        groups: Mapping[str, Sequence[str | int]] | str | None = None,
        max_samples: int | float | None = None,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        per_output: bool | str = True,
        progress: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: float = 5.0,
        client: Any = None,
        top_k: int | None = None,
        confidence: float | None = None,
        min_repeats: int | None = None,
        tolerance: float | str | None = None,
        tolerance_scale: str = "relative",
        _forward_path: str = "auto",
    ) -> None:
        self.client = check_client(client)
        options = check_run_options(
            n_repeats, target, seed, batch_size, per_output, top_k, confidence, min_repeats,
            tolerance, tolerance_scale,
        )  # fmt: skip
        self.tolerance, self.tolerance_scale = options.tolerance, options.tolerance_scale
        if self.tolerance > 0:
            check_rows_race_options(self.client, max_samples, min_repeats)
        self.n_repeats, self.target, self.seed = options.n_repeats, options.target, options.seed
        batch_size, top_k = options.batch_size, options.top_k
        self.progress = bool(progress)
        self.top_k, self.confidence = top_k, options.confidence
        self.min_repeats = options.min_repeats
        self.set_checkpoint(checkpoint, checkpoint_every)

        def check_options(names: tuple[str, ...], data: torch.Tensor) -> None:
            # Before the model is first called: bad options cost no model call.
            sizing = size_units(groups, data, names, self.n_repeats, max_samples, top_k)
            self.units, self.groups = sizing.units, sizing.groups
            self.samples_per_repeat = sizing.samples_per_repeat

        self.session = ModelSession(
            model, X, feature_names=feature_names, metric=metric, device=device,
            forward_path=_forward_path, check_first=check_options, layer=layer,
        )  # fmt: skip
        session = self.session
        self.metric_name, self.device = session.metric_name, session.device
        self.n_samples, self.n_inputs = session.n_samples, session.n_inputs
        self.output_names = session.output_names
        self.feature_names = tuple(u.name for u in self.units)
        self.max_samples = None if max_samples is None else float(max_samples)
        if isinstance(max_samples, numbers.Integral):
            self.max_samples = int(max_samples)  # settings stay plain JSON numbers
        self.per_output = resolve_per_output(per_output, len(self.units), self.n_inputs)
        self.shuffles = Shuffles(
            tuple(self.units), self.seed, self.samples_per_repeat, self.target, self.per_output,
            self.feature_names,
        )  # fmt: skip
        # A chunk (batch_rows samples) is the unit of the plan and of snapshots; it runs in
        # forward calls of call_rows samples, small enough that activations stay in cache.
        self.batch_rows = (
            batch_size if batch_size is not None
            else auto_batch_rows(session, self.samples_per_repeat)
        )  # fmt: skip
        self.call_rows = batch_size if batch_size is not None else session.rows_per_call(
            self.batch_rows
        )  # fmt: skip
        # What a Dask worker needs to rebuild this engine (the model and X travel apart, once).
        self.worker_keywords = {
            "n_repeats": n_repeats, "metric": metric, "target": target,
            "feature_names": list(self.output_names), "max_samples": max_samples,
            "groups": {name: list(members) for name, members in self.groups.items()} or None,
            "seed": self.seed, "device": device, "batch_size": batch_size,
            "per_output": "always" if self.per_output else False, "_forward_path": _forward_path,
        }  # fmt: skip
        self._identity: dict[str, str] | None = None

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
    def evaluations_total(self) -> int:
        """Permuted samples the whole run evaluates: F * n_repeats * samples_per_repeat."""
        return self.n_features * self.n_repeats * self.samples_per_repeat

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description of the run, stored in every result."""
        racing = {}
        if self.top_k is not None:
            racing = {"top_k": self.top_k, "confidence": self.confidence,
                      "min_repeats": self.min_repeats}  # fmt: skip
            if self.tolerance > 0:
                racing.update(rows_race_settings(self))
        return {
            "method": "permutation",
            "metric": self.metric_name,
            "target": self.target,
            "seed": self.seed,
            "n_repeats": self.n_repeats,
            "max_samples": self.max_samples,
            "samples_per_repeat": self.samples_per_repeat,
            "n_samples": self.n_samples,
            "batch_rows": self.batch_rows,
            "forward_path": self.forward_path,
            "fused_kernels": self.session.path.fused,
            "per_output": self.per_output,
            "device": str(self.device),
            "dtype": str(self.session.X.dtype).replace("torch.", ""),
            **racing,
        }

    def plan(self, batch_rows: int | None = None, call_rows: int | None = None) -> Plan:
        """The run's plan (or the one a resumed run was made with)."""
        return Plan(
            self.n_features, self.samples_per_repeat, self.n_repeats,
            batch_rows or self.batch_rows, call_rows or self.call_rows,
        )  # fmt: skip

    def identity(self) -> dict[str, str]:
        """Digests of the model, its outputs on probe rows, X and the settings that fix numbers
        (hashed once per engine: like the cached baseline, it assumes the model does not change
        while the engine uses it)."""
        if self._identity is None:
            keep = ("method", "metric", "target", "seed", "max_samples", "samples_per_repeat",
                    "per_output", "forward_path", "fused_kernels", "dtype", "top_k",
                    "confidence", "min_repeats", "tolerance", "tolerance_scale", "bound",
                    "first_rows")  # fmt: skip
            self._identity = run_identity(self.session.identity(), self.settings, keep, self.units)
        return dict(self._identity)

    def fingerprint(self) -> dict[str, str]:
        """Alias of :meth:`identity` (the name of the first release)."""
        return self.identity()

    def empty_result(self) -> ImportanceResult:
        """A result with nothing computed yet (all-NaN importances)."""
        if self.tolerance > 0:
            return rows_race_empty(self)
        return self.snapshot(RunState.fresh(self.plan(), self.n_inputs, self.per_output), None)

    def compute(self, resume: ImportanceResult | None) -> Iterator[ImportanceResult]:
        """The work loop: a chunk of forward calls, then a snapshot per finished round or chunk."""
        return self.compute_on(resume, self.client)

    def compute_on(
        self, resume: ImportanceResult | None, client: Any
    ) -> Iterator[ImportanceResult]:
        """:meth:`compute`, with the chunks on Dask ``client`` when it is not None."""
        client = check_client(client)
        if self.tolerance > 0:
            if client is not None:
                check_rows_race_options(client, None, None)
            yield from rows_race_compute(self, resume)
            return
        if resume is None or (resume.resume is None and resume.evaluations_done == 0):
            state = RunState.fresh(self.plan(), self.n_inputs, self.per_output)
        else:
            state = RunState.resumed(resume, self.plan(), self.identity(), self.n_inputs,
                                     self.per_output, self.feature_names,
                                     self.race_settings())  # fmt: skip
        identity = self.identity()
        # The baseline error every snapshot shows.
        self.session.baseline_error(self.call_rows, self.samples_per_repeat)

        def chunks(
            plan: Plan, positions: Iterator[tuple[int, int]]
        ) -> Iterator[tuple[tuple[int, int], CallSums, float]]:
            if client is None:
                return self._local_chunks(plan, positions)
            return chunks_on_cluster(client, self._worker_spec(), plan, positions)

        def snapshot(state: RunState) -> ImportanceResult:
            return self.snapshot(state, identity)

        race_settings, m = self.race_settings(), self.samples_per_repeat
        if race_settings is not None:
            yield from race_rounds(state, m, race_settings, chunks, snapshot)
        else:
            yield from full_rounds(state, m, chunks, snapshot, self.round_snapshots)

    def race_settings(self) -> RaceSettings | None:
        """The certified top-k settings (None for a full run)."""
        if self.top_k is None:
            return None
        return RaceSettings(self.top_k, self.confidence, self.min_repeats, self.n_repeats)

    def _worker_spec(self) -> WorkerSpec:
        return WorkerSpec(PermutationImportance, self.session.model, self.session.X.cpu(),
                          self.worker_keywords)  # fmt: skip

    def _local_chunks(
        self, plan: Plan, positions: Iterator[tuple[int, int]]
    ) -> Iterator[tuple[tuple[int, int], CallSums, float]]:
        if self.device.type == "cpu":
            settle_heap()
        for round_, chunk in positions:
            started = time.perf_counter()
            sums = self.chunk_sums(plan, round_, chunk)
            yield (round_, chunk), sums, time.perf_counter() - started

    def chunk_sums(self, plan: Plan, round_: int, chunk: int) -> CallSums:
        """Per-segment sums of the chunk at (round, chunk): the unit of work, local or on a
        Dask worker. A pure function of the plan position (and the model and data)."""
        calls = plan.calls(round_, chunk)
        repeats = sorted({segment.repeat for call in calls for segment in call})
        with self.session.computing():
            datas = {r: round_data(self.session, self.shuffles, r, self.call_rows) for r in repeats}
            return evaluate_calls(self.session, self.shuffles, datas, calls)

    def finished(self, resume: ImportanceResult) -> ImportanceResult:
        if self.tolerance > 0:
            return rows_race_finished(self, resume)
        state = RunState.resumed(resume, self.plan(), self.identity(), self.n_inputs,
                                 self.per_output, self.feature_names,
                                 self.race_settings())  # fmt: skip
        return self.snapshot(state, self.identity())

    def drilldown(self, feature: str, repeat: int = 0, top_outputs: int = 20) -> Drilldown:
        """Per-sample view of one feature under one repeat's shuffle: see :class:`Drilldown`."""
        return compute_drilldown(
            self.session, self.shuffles, self.n_repeats, self.call_rows, feature, repeat,
            top_outputs,
        )  # fmt: skip

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, state: RunState, identity: dict[str, str] | None) -> ImportanceResult:
        """An immutable result of ``state`` (with a resume state when ``identity`` is given)."""
        baseline_error = self.session.cached_error()
        importances, delta, resume = state.export(identity)
        done, total, extras = state.evaluations_done, self.evaluations_total, {}
        if self.top_k is not None:
            extras["settled"] = settled_codes(state.decision, self.n_features)
            # The work actually left: the unsettled units' remaining repeats (none once certified).
            total = state.race_total()
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.output_names,
            importances=importances,
            baseline_error=math.nan if baseline_error is None else baseline_error,
            delta_sum=delta,
            settings={**self.settings, "batch_rows": state.plan.rows},
            groups=self.groups,
            evaluations_done=done,
            evaluations_total=total,
            elapsed_s=state.elapsed_s,
            resume=resume,
            extras=extras,
            labels=LABELS,
        )


def permutation_importance(model: Any, X: Any, **keywords: Any) -> ImportanceResult:
    """Permutation importance of ``model``'s reconstruction error on ``X``, computed in full.

    Takes the keywords of :class:`PermutationImportance` and returns the final
    :class:`~aefi_widget.result.ImportanceResult`. Example::

        res = permutation_importance(model, X, n_repeats=10, seed=0)
        res.summary().head(20)
    """
    return PermutationImportance(model, X, **keywords).run()
