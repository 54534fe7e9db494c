"""Latent-code permutation importance: how far the code moves when one input is shuffled.

For each feature j and repeat r, column j is shuffled with the permutation method's own shuffle,
``permutation(seed, r, j, n)`` (:mod:`aefi_widget.engine.permutations`), the encoder codes the
shuffled data, and per latent dimension l

    shift[j, r, l] = mean_i |code_perm[i, l] - code[i, l]|

``importances[j, r]`` is its mean over l; the extra ``latent_shift`` (F, L) its mean over
finished repeats. When the encoder starts with a Linear, the shuffled input is never built: the
first layer's stored output gets the rank-1 update ``(x_perm_j - x_j) outer W[:, j]`` (as in
:mod:`aefi_widget.engine.permutation_rows`), so an input the first layer ignores gives exactly 0.
Work follows the runtime's deterministic :class:`~aefi_widget.engine.plan.Plan`, so the numbers
do not depend on ``batch_size``, pausing or resuming.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from aefi_widget.engine.allocator import settle_heap
from aefi_widget.engine.calls import Scratch, place_segments
from aefi_widget.engine.distributed import WorkerSpec, check_client, chunk_source
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.latent_encoder import EncoderCodes, EncoderSession
from aefi_widget.engine.latent_state import LatentRunState
from aefi_widget.engine.permutations import permutations
from aefi_widget.engine.plan import Plan, Segment
from aefi_widget.engine.resume_checks import run_identity
from aefi_widget.engine.runner import IncrementalMethod
from aefi_widget.result import ImportanceResult

__all__ = ["LatentPermutation", "latent_labels"]

# Estimates held in memory (F x n_repeats float64): past this, refuse at construction.
MAX_ESTIMATES = 200_000_000
# A chunk should take about this long, so pause and cancel answer well within a second.
_TARGET_CHUNK_SECONDS = 0.25


def latent_labels(latent_method: str, value: str, axis: str) -> dict[str, str]:
    """Labels of a latent-code result (title names the method, e.g. "(permutation)")."""
    name = latent_method.replace("_", " ")
    return {"title": f"Latent-code importance ({name})", "value": value, "axis": axis}


LABELS = latent_labels("permutation", "mean |Δ code|", "repeat")


class LatentPermutation(IncrementalMethod):
    """Streaming latent-code permutation importance (an :class:`~aefi_widget.engine.runner.Engine`
    that ``Job`` can run).

    Parameters
    ----------
    model : torch.nn.Module or callable
        The autoencoder (used to find the encoder; never modified).
    X : torch.Tensor, numpy.ndarray, pandas.DataFrame or anndata.AnnData, shape (n, d)
        Samples; copied.
    encoder : module or callable, optional
        Maps (n, d) inputs to (n, L) codes (or a tuple whose first element is the code). Default:
        ``model.encoder``, else an ``nn.Sequential`` split at its bottleneck (see
        :mod:`aefi_widget.engine.latent_encoder`).
    feature_names : sequence of str, optional
    layer : str, optional
        With an AnnData X: use ``adata.layers[layer]`` instead of ``adata.X``.
    n_repeats : int, default 10
        Shuffles per feature.
    seed : int or None, default 0
        Seed of every permutation (the permutation method's shuffles for the same seed); None
        draws one (recorded in ``settings``).
    device : str or torch.device, optional
    batch_size : int, optional
        Shuffled samples per encoder call and per snapshot (default: ~0.25 s of work). The numbers
        never depend on it.
    progress : bool, default False
        A tqdm bar in :meth:`run`.
    checkpoint : path, optional
        Save the run's state there every ``checkpoint_every`` seconds; a later run with the same
        path, encoder, data and settings continues from it.
    checkpoint_every : float, default 5.0
    client : dask.distributed.Client, optional
        Compute the chunks on this Dask cluster (the model, encoder and X are sent to each
        worker once); the numbers are the same as here.
    """

    description = "latent permutation importance"

    def __init__(
        self,
        model: Any,
        X: Any,
        *,
        encoder: Any = None,
        feature_names: Sequence[str] | None = None,
        layer: str | None = None,
        n_repeats: int = 10,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: float = 5.0,
        client: Any = None,
    ) -> None:
        self.client = check_client(client)
        self.n_repeats = check_int(n_repeats, "n_repeats", 1)
        if seed is None:
            seed = secrets.randbits(63)
        self.seed = check_int(seed, "seed", -(2**63), 2**64 - 1)
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1)
        self.progress = bool(progress)
        self.set_checkpoint(checkpoint, checkpoint_every)

        def check_options(names: tuple[str, ...], data: torch.Tensor) -> None:
            if len(names) * self.n_repeats > MAX_ESTIMATES:
                raise ValueError(
                    f"n_repeats={self.n_repeats:,} for {len(names):,} features needs "
                    f"{len(names) * self.n_repeats * 8 / 2**30:,.1f} GiB for the estimates; use "
                    "fewer repeats"
                )

        self.session = EncoderSession(
            model, X, encoder=encoder, feature_names=feature_names, device=device,
            check_first=check_options, layer=layer,
        )  # fmt: skip
        session = self.session
        self.feature_names = session.feature_names
        self.n_samples, self.n_inputs = session.n_samples, session.n_inputs
        self.n_latent = session.n_latent
        if batch_size is None:
            rows = session.rows_per_chunk(_TARGET_CHUNK_SECONDS)
            n = self.n_samples
            self.batch_rows = (rows // n) * n if rows >= n else rows  # whole units when they fit
            self.call_rows = session.rows_per_call(self.batch_rows)
        else:
            self.batch_rows = self.call_rows = batch_size
        self._identity: dict[str, str] | None = None
        # What a Dask worker needs to rebuild this engine (sent once, with the model and the
        # prepared X): the encoder found here (and the model it may be part of, pickled
        # together), and the same batch_size, so the unshuffled codes use the same calls.
        self.worker_keywords = {
            "encoder": session.encoder, "feature_names": list(self.feature_names),
            "n_repeats": self.n_repeats, "seed": self.seed, "device": device,
            "batch_size": batch_size,
        }  # fmt: skip

    # ------------------------------------------------------------------ public API
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def evaluations_total(self) -> int:
        """Shuffled samples the whole run encodes: F * n_repeats * n."""
        return self.n_features * self.n_repeats * self.n_samples

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description of the run, stored in every result."""
        path = self.session.path
        return {
            "method": "latent",
            "latent_method": "permutation",
            "encoder": self.session.encoder_source,
            "n_latent": self.n_latent,
            "seed": self.seed,
            "n_repeats": self.n_repeats,
            "n_samples": self.n_samples,
            "batch_rows": self.batch_rows,
            "forward_path": path.kind,
            "fused_kernels": path.fused,
            "device": str(self.session.device),
            "dtype": str(self.session.X.dtype).replace("torch.", ""),
        }

    def plan(self) -> Plan:
        return Plan(self.n_features, self.n_samples, self.n_repeats, self.batch_rows,
                    self.call_rows)  # fmt: skip

    def identity(self) -> dict[str, str]:
        """Digests of the encoder, its probe codes, X and the settings that fix the numbers."""
        if self._identity is None:
            keep = ("latent_method", "encoder", "n_latent", "seed", "forward_path",
                    "fused_kernels", "dtype")  # fmt: skip
            self._identity = run_identity(self.session.identity(), self.settings, keep)
        return dict(self._identity)

    def empty_result(self) -> ImportanceResult:
        """A result with nothing computed yet (all-NaN importances)."""
        return self.snapshot(LatentRunState(self.plan(), self.n_latent), None)

    def compute(self, resume: ImportanceResult | None) -> Iterator[ImportanceResult]:
        """The work loop: a chunk of encoder calls, then a snapshot per finished round or chunk."""
        return self.compute_on(resume, self.client)

    def compute_on(
        self, resume: ImportanceResult | None, client: Any
    ) -> Iterator[ImportanceResult]:
        """:meth:`compute`, with the chunks on Dask ``client`` when it is not None."""
        client = check_client(client)
        state = self._state(resume)
        identity = self.identity()
        plan = state.plan
        if client is None:
            self.session.codes(self.call_rows)
            if self.session.device.type == "cpu":
                settle_heap()
        positions = plan.positions(state.round, state.chunk)
        source = chunk_source(client, self._worker_spec, self.chunk_sums, plan, positions)
        for (round_, chunk), (segments, sums), seconds in source:
            next_round, next_chunk = plan.advance(round_, chunk)
            state.elapsed_s += seconds
            for finished in state.absorb(segments, sums):
                if finished + 1 < next_round:  # a packed chunk: a snapshot per round
                    state.move_to(finished + 1, 0)
                    yield self.snapshot(state, identity)
            state.move_to(next_round, next_chunk)
            yield self.snapshot(state, identity)

    def chunk_sums(
        self, plan: Plan, round_: int, chunk: int
    ) -> tuple[list[Segment], list[np.ndarray]]:
        """The chunk at (round, chunk): its segments as placed and their (L,) float64 sums of
        ``|code_perm - code|``; the unit of work, local or on a Dask worker (a pure function of
        the plan position, the encoder and the data)."""
        codes = self.session.codes(self.call_rows)
        segments: list[Segment] = []
        sums: list[np.ndarray] = []
        with self.session.computing():
            scratch = Scratch(self.n_latent, self.session.device)
            for call in plan.calls(round_, chunk):
                placed, call_sums = self._evaluate_call(codes, call, scratch)
                segments += placed
                sums += call_sums
        return segments, sums

    def _worker_spec(self) -> WorkerSpec:
        return WorkerSpec(LatentPermutation, self.session.owner, self.session.X.cpu(),
                          self.worker_keywords)  # fmt: skip

    def finished(self, resume: ImportanceResult) -> ImportanceResult:
        return self.snapshot(self._state(resume), self.identity())

    # ------------------------------------------------------------------ internals
    def _state(self, resume: ImportanceResult | None) -> LatentRunState:
        if resume is None or (resume.resume is None and resume.evaluations_done == 0):
            return LatentRunState(self.plan(), self.n_latent)
        return LatentRunState.resumed(
            resume, self.plan(), self.identity(), self.n_latent, self.feature_names
        )

    def _evaluate_call(
        self, codes: EncoderCodes, call: list[Segment], scratch: Scratch
    ) -> tuple[list[Segment], list[np.ndarray]]:
        """One encoder call: per segment, the (L,) float64 sums over its samples of
        ``|code_perm - code|``."""
        inputs, placed = self._shuffled_inputs(codes, call)
        moved = self.session.encode(inputs)
        sums = []
        for segment in placed:
            piece = moved[segment.offset : segment.offset + segment.size]
            diff = scratch.rows("diff", segment.size, piece.dtype)
            torch.sub(piece, codes.code[segment.start : segment.stop], out=diff).abs_()
            # The difference in the model's dtype, copied to float64 (exact) and summed there,
            # so a unit's sum does not depend on where chunks cut it (as in permutation_rows).
            # Reused scratch rows stay in cache (fresh ones page-fault); the widening copy
            # then a float64 sum is 4x faster than torch.sum(..., dtype=torch.float64).
            wide = diff
            if diff.dtype != torch.float64:
                wide = scratch.rows("wide", segment.size, torch.float64).copy_(diff)
            sums.append(wide.sum(dim=0).cpu().numpy())
        return placed, sums

    def _shuffled_inputs(
        self, codes: EncoderCodes, call: list[Segment]
    ) -> tuple[torch.Tensor, list[Segment]]:
        """The call's input: X rows with one column shuffled (plain path), or the first layer's
        output plus the rank-1 term (rank-1 path); gap rows hold copies of a real row."""
        session = self.session
        placed, rows = place_segments(call)
        first = session.path.first
        source = session.X if first is None else codes.pre
        buffer = torch.empty((rows, source.shape[1]), dtype=source.dtype, device=source.device)
        row = 0
        for segment in placed:
            if segment.offset > row:
                buffer[row : segment.offset] = source[:1]  # finite values in the gaps
            row = segment.offset + segment.size
        weight_t = None if first is None else first.weight.detach().t()  # (d, h)
        for segment, order in zip(placed, self._orders(placed), strict=True):
            j, start, stop = segment.unit, segment.start, segment.stop
            index = torch.as_tensor(order[start:stop], device=source.device)
            shuffled = codes.columns[j].index_select(0, index).unsqueeze(1)  # (size, 1)
            original = codes.columns[j, start:stop].unsqueeze(1)
            out = buffer[segment.offset : segment.offset + segment.size]
            if weight_t is None:
                out.copy_(session.X[start:stop])
                out[:, j : j + 1] = shuffled
            else:
                step = weight_t[j].contiguous().unsqueeze(0)  # (1, h)
                torch.addcmul(codes.pre[start:stop], shuffled - original, step, out=out)
        return buffer, placed

    def _orders(self, segments: list[Segment]) -> list[np.ndarray]:
        """Each segment's permutation of the n samples: one vectorised call per repeat."""
        orders: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(segments)
        for repeat in sorted({s.repeat for s in segments}):
            where = [i for i, s in enumerate(segments) if s.repeat == repeat]
            units = np.array([segments[i].unit for i in where], dtype=np.int64)
            for i, order in zip(
                where, permutations(self.seed, repeat, units, self.n_samples), strict=True
            ):
                orders[i] = order
        return orders

    def snapshot(self, state: LatentRunState, identity: dict[str, str] | None) -> ImportanceResult:
        """An immutable result of ``state`` (with a resume state when ``identity`` is given)."""
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.session.latent_names,
            importances=state.importances.copy(),
            baseline_error=float("nan"),
            settings={**self.settings, "batch_rows": state.plan.rows},
            evaluations_done=state.evaluations_done,
            evaluations_total=self.evaluations_total,
            elapsed_s=state.elapsed_s,
            resume=None if identity is None else state.resume_state(identity),
            extras={"latent_shift": state.latent_shift()},
            labels=LABELS,
        )
