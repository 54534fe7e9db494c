"""The permutation method's accumulators, its resume position, and the checks a resume must pass.

A resume state comes from a snapshot, a job or a checkpoint file that may have been edited: it is
checked against the new run (identity, plan position, shapes, finiteness, and that the numbers
present are exactly those the position says are finished) before any work, so a continuation can
only ever be the same run, carried on.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from aefi_widget.engine.permutation_race import (
    RaceSettings,
    Slots,
    finished_mask,
    replay,
    unsettled,
)
from aefi_widget.engine.permutation_rows import CallSums
from aefi_widget.engine.plan import Plan
from aefi_widget.engine.racing import RaceDecision
from aefi_widget.engine.resume_checks import check_same_run
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["RunState"]

_WHAT = {
    "model": "the model's parameters",
    "outputs": "the model's outputs on the first rows of X",
    "data": "the data X",
    "settings": "the settings that fix the numbers (seed, metric, target, groups, max_samples, "
    "per_output, dtype or forward path)",
}


class RunState:
    """Mutable accumulators of one run; snapshots copy out of it.

    ``importances`` (F, R) float64, ``delta_sum`` (F, d) float64 or None, the partial sums of the
    unit straddling the last chunk boundary, the plan and the position (round, chunk) of the next
    chunk to compute.
    """

    def __init__(self, plan: Plan, d: int, per_output: bool) -> None:
        F = plan.n_units
        self.plan = plan
        self.importances = np.full((F, plan.n_repeats), np.nan)
        self.delta_sum = np.zeros((F, d)) if per_output else None
        self.partial_error = 0.0
        self.partial_delta = np.zeros(d) if per_output else None
        self.round = 0
        self.chunk = 0
        self.elapsed_s = 0.0
        # An adaptive (top_k) run: the unsettled units, the current round's (unit, repeat)
        # slots and the last race decision.
        self.active: tuple[int, ...] = tuple(range(F))
        self.slots: Slots = tuple((j, 0) for j in range(F))
        self.decision: RaceDecision | None = None
        self.round_plan = plan

    @classmethod
    def fresh(cls, plan: Plan, d: int, per_output: bool) -> RunState:
        return cls(plan, d, per_output)

    @classmethod
    def resumed(
        cls,
        result: ImportanceResult,
        plan: Plan,
        identity: dict[str, str],
        d: int,
        per_output: bool,
        feature_names: tuple[str, ...],
        race_settings: RaceSettings | None = None,
    ) -> RunState:
        """Continue ``result``: the same run (``n_repeats`` may have grown), checked first.

        An adaptive run (``race_settings``) replays its decisions from the finished numbers to
        know which (unit, repeat) slots each round evaluated."""
        resume = check_same_run(result, "permutation", identity, feature_names, _WHAT)
        done = result.importances.shape[1]
        if done > plan.n_repeats:
            raise ValueError(
                f"the result holds {done} repeats, more than n_repeats={plan.n_repeats}"
            )
        position = _position(resume)
        plan = Plan(plan.n_units, plan.m, plan.n_repeats, position["batch_rows"],
                    position["call_rows"])  # fmt: skip
        round_, chunk = position["round"], position["chunk"]
        if round_ > done:
            raise ValueError(f"the resume position's round {round_} is past its {done} repeats")
        state = cls(plan, d, per_output)
        if race_settings is not None:
            replayed = replay(np.asarray(result.importances), round_, race_settings)
            state.decision = replayed.decision
            state.active = unsettled(replayed.decision, plan.n_units)
            state.slots = replayed.slots[min(round_, len(replayed.slots) - 1)]
            state.round_plan = plan.over(state.slots)
            if state.decision is not None and state.decision.certified and chunk:
                raise ValueError("the resume position lies past the run's certified end")
        round_plan = state.round_plan
        if not round_plan.is_position(round_, chunk) or (round_ == done and chunk):
            raise ValueError(
                f"the resume position (round {round_}, chunk {chunk}) is not a position of this "
                f"run's plan ({done} repeats, {round_plan.chunks_per_round} chunk(s) per round)"
            )
        done_in_round = min(chunk * plan.rows, round_plan.round_size) // plan.m
        if race_settings is None:
            finished = _finished(result.importances.shape, round_, done_in_round)
        else:
            finished = finished_mask(
                result.importances.shape, replayed.slots, round_, done_in_round
            )
        state.round, state.chunk = round_, chunk
        expected = state.evaluations_done_with(int(finished.sum()))
        if result.evaluations_done != expected:
            raise ValueError(
                f"the result's evaluations_done ({result.evaluations_done}) does not match its "
                f"resume position (round {round_}, chunk {chunk}: {expected} evaluations)"
            )
        if (result.delta_sum is None) == per_output:
            raise ValueError("the result's per_output setting differs from this engine's")
        _check_filled(result.importances, finished)
        state.importances[:, :done] = result.importances
        boundary = min(chunk * plan.rows, round_plan.round_size) % plan.m
        state.partial_error = position["partial_error_sum"]
        partial_delta = resume.arrays.get("partial_delta_sum")
        if state.delta_sum is not None:
            if not np.isfinite(result.delta_sum).all():
                raise ValueError("the result's delta_sum holds NaN or inf")
            state.delta_sum[:] = result.delta_sum
            if partial_delta is None or partial_delta.shape != (d,):
                raise ValueError(f"the resume state lacks a ({d},) partial_delta_sum")
            state.partial_delta[:] = partial_delta
        has_partial = state.partial_error != 0.0 or (
            partial_delta is not None and partial_delta.any()
        )
        if boundary == 0 and has_partial:
            raise ValueError("the resume state holds partial sums at a unit boundary")
        state.elapsed_s = result.elapsed_s
        return state

    def absorb(self, sums: CallSums, m: int) -> Iterator[int]:
        """Add a chunk's per-segment sums, committing units whose repeat is finished; yields
        each repeat right after its last unit is committed."""
        last_unit = self.active[-1] if self.active else -1
        for i, segment in enumerate(sums.segments):
            self.partial_error += sums.error_sums[i]
            if self.partial_delta is not None:
                self.partial_delta += sums.delta_sums[i]
            if segment.stop == m:
                self.importances[segment.unit, segment.repeat] = self.partial_error / m
                if self.delta_sum is not None:
                    self.delta_sum[segment.unit] += self.partial_delta / m
                    self.partial_delta[:] = 0.0
                self.partial_error = 0.0
                if segment.unit == last_unit:
                    yield segment.repeat

    def move_to(self, round_: int, chunk: int) -> None:
        self.round, self.chunk = round_, chunk

    @property
    def evaluations_done(self) -> int:
        """Evaluations finished: every finished (unit, repeat) estimate, plus the samples this
        round's chunks gave a unit they split (the same as the plan's count when no unit is
        ever settled)."""
        return self.evaluations_done_with(int(np.isfinite(self.importances).sum()))

    def race_total(self) -> int:
        """Evaluations of an adaptive run if every unsettled unit ran to ``n_repeats``: the
        finished ones plus the work actually left (none once certified)."""
        finished = np.isfinite(self.importances)
        left = 0
        if not (self.decision is not None and self.decision.certified) and self.active:
            n_done = finished[list(self.active)].sum(axis=1)
            left = int((self.plan.n_repeats - n_done).sum())
        return (int(finished.sum()) + left) * self.plan.m

    def evaluations_done_with(self, finished: int) -> int:
        """Evaluations at this position with ``finished`` estimates in all (m samples each):
        the round's chunks so far hold whole estimates, and part of one unit's when a chunk
        boundary splits it."""
        in_round = min(self.chunk * self.plan.rows, self.round_plan.round_size)
        return finished * self.plan.m + in_round % self.plan.m

    def export(
        self, identity: dict[str, str] | None
    ) -> tuple[np.ndarray, np.ndarray | None, ResumeState | None]:
        """Copies of the accumulators and the resume state (None without an identity)."""
        delta = None if self.delta_sum is None else self.delta_sum.copy()
        if identity is None:
            return self.importances.copy(), delta, None
        position = {
            "round": self.round,
            "chunk": self.chunk,
            "batch_rows": self.plan.rows,
            "call_rows": self.plan.call_rows,
            "partial_error_sum": self.partial_error,
        }
        arrays = (
            {} if self.partial_delta is None else {"partial_delta_sum": self.partial_delta.copy()}
        )
        resume = ResumeState("permutation", position, arrays, identity)
        return self.importances.copy(), delta, resume


def _position(resume: ResumeState) -> dict[str, int | float]:
    """The position's fields, type- and range-checked."""
    position = dict(resume.position)
    checked: dict[str, int | float] = {}
    for key, low in (("round", 0), ("chunk", 0), ("batch_rows", 1), ("call_rows", 1)):
        value = position.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 2**40:
            raise ValueError(f"the resume position's {key} is {value!r}, not an integer >= {low}")
        checked[key] = value
    partial = position.get("partial_error_sum", 0.0)
    if (
        isinstance(partial, bool)
        or not isinstance(partial, int | float)
        or not np.isfinite(partial)
    ):
        raise ValueError(f"the resume position's partial_error_sum is {partial!r}, not finite")
    checked["partial_error_sum"] = float(partial)
    return checked


def _finished(shape: tuple[int, int], round_: int, done_in_round: int) -> np.ndarray:
    """(F, R) bool: the estimates a full (non-adaptive) run at this position has finished."""
    finished = np.zeros(shape, dtype=bool)
    finished[:, :round_] = True
    if round_ < shape[1]:
        finished[:done_in_round, round_] = True
    return finished


def _check_filled(importances: np.ndarray, finished: np.ndarray) -> None:
    """Exactly the ``finished`` estimates are present, and they are finite."""
    present = ~np.isnan(importances)
    if not np.array_equal(present, finished):
        raise ValueError(
            "the result's importances do not match its resume position (estimates missing "
            "where finished, or present where not yet computed)"
        )
    if not np.isfinite(importances[finished]).all():
        raise ValueError("the result's importances hold inf")
