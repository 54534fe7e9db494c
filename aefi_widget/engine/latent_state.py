"""The latent permutation lens's accumulators, its resume position, and the checks a resume must
pass (identity, plan position, shapes, finiteness, and that exactly the finished estimates are
present) before any work: a continuation can only ever be the same run, carried on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from aefi_widget.engine.plan import Plan, Segment
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["LatentRunState"]

_WHAT = {
    "model": "the encoder's parameters",
    "outputs": "the encoder's codes of the first rows of X",
    "data": "the data X",
    "settings": "the settings that fix the numbers (seed, encoder, dtype or forward path)",
}


class LatentRunState:
    """Mutable accumulators of one run; snapshots copy out of it.

    ``importances`` (F, R) float64: per repeat, the mean over samples and latent dimensions of
    ``|code_perm - code|``; ``shift_sum`` (F, L): the sum over finished repeats of the per-repeat
    mean over samples of ``|code_perm - code|``; ``partial`` (L,): the sums of the unit straddling
    the last chunk boundary; the plan and the position (round, chunk) of the next chunk.
    """

    def __init__(self, plan: Plan, n_latent: int) -> None:
        self.plan = plan
        self.importances = np.full((plan.n_units, plan.n_repeats), np.nan)
        self.shift_sum = np.zeros((plan.n_units, n_latent))
        self.partial = np.zeros(n_latent)
        self.round = 0
        self.chunk = 0
        self.elapsed_s = 0.0

    @classmethod
    def resumed(
        cls,
        result: ImportanceResult,
        plan: Plan,
        identity: dict[str, str],
        n_latent: int,
        feature_names: tuple[str, ...],
    ) -> LatentRunState:
        """Continue ``result``: the same run (``n_repeats`` may have grown), checked first."""
        resume = result.resume
        if resume is None:
            raise ValueError("this result has no resume state; it cannot be continued")
        if resume.method != "latent" or result.settings.get("latent_method") != "permutation":
            raise ValueError(
                f"this result was made by the {result.method!r} method "
                f"({result.settings.get('latent_method', '-')}); a latent permutation run cannot "
                "continue it"
            )
        if tuple(result.feature_names) != feature_names:
            raise ValueError("the result was computed for other features; it cannot be continued")
        done = result.importances.shape[1]
        if done > plan.n_repeats:
            raise ValueError(
                f"the result holds {done} repeats, more than n_repeats={plan.n_repeats}"
            )
        differs = [_WHAT.get(k, k) for k in identity if resume.identity.get(k) != identity[k]]
        if differs:
            raise ValueError(
                f"the result to resume belongs to another run: {' and '.join(differs)} differ. "
                "Nothing was mixed in; start a fresh run (resume=None)."
            )
        position = _position(resume)
        plan = Plan(plan.n_units, plan.m, plan.n_repeats, position["batch_rows"],
                    position["call_rows"])  # fmt: skip
        round_, chunk = position["round"], position["chunk"]
        if round_ > done or not plan.is_position(round_, chunk) or (round_ == done and chunk):
            raise ValueError(
                f"the resume position (round {round_}, chunk {chunk}) is not a position of this "
                f"run's plan ({done} repeats, {plan.chunks_per_round} chunk(s) per round)"
            )
        _check_filled(result.importances, plan, round_, chunk)
        state = cls(plan, n_latent)
        state.round, state.chunk = round_, chunk
        state.importances[:, :done] = result.importances
        state.shift_sum[:] = _array(resume, "shift_sum", state.shift_sum.shape)
        state.partial[:] = _array(resume, "partial_shift", state.partial.shape)
        boundary = min(chunk * plan.rows, plan.round_size) % plan.m
        if boundary == 0 and state.partial.any():
            raise ValueError("the resume state holds partial sums at a unit boundary")
        state.elapsed_s = result.elapsed_s
        return state

    def absorb(self, segments: Sequence[Segment], sums: Sequence[np.ndarray]) -> Iterator[int]:
        """Add a chunk's per-segment (L,) sums of ``|code_perm - code|``, committing units whose
        repeat is finished; yields each repeat right after its last unit is committed."""
        m, last_unit = self.plan.m, self.plan.n_units - 1
        for segment, total in zip(segments, sums, strict=True):
            self.partial += total
            if segment.stop == m:
                shift = self.partial / m  # (L,) mean over samples
                self.importances[segment.unit, segment.repeat] = shift.mean()
                self.shift_sum[segment.unit] += shift
                self.partial[:] = 0.0
                if segment.unit == last_unit:
                    yield segment.repeat

    def move_to(self, round_: int, chunk: int) -> None:
        self.round, self.chunk = round_, chunk

    @property
    def evaluations_done(self) -> int:
        return self.plan.done_before(self.round, self.chunk)

    def latent_shift(self) -> np.ndarray:
        """(F, L) mean over samples and finished repeats of ``|code_perm - code|`` (NaN rows for
        units without a finished repeat)."""
        n_done = np.sum(~np.isnan(self.importances), axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.shift_sum / np.where(n_done > 0, n_done, np.nan)[:, None]

    def resume_state(self, identity: dict[str, str]) -> ResumeState:
        position = {
            "round": self.round,
            "chunk": self.chunk,
            "batch_rows": self.plan.rows,
            "call_rows": self.plan.call_rows,
        }
        arrays = {"shift_sum": self.shift_sum.copy(), "partial_shift": self.partial.copy()}
        return ResumeState("latent", position, arrays, identity)


def _array(resume: ResumeState, name: str, shape: tuple[int, ...]) -> np.ndarray:
    value = resume.arrays.get(name)
    if value is None or value.shape != shape:
        raise ValueError(f"the resume state lacks a {shape} {name} array")
    if not np.isfinite(value).all():
        raise ValueError(f"the resume state's {name} holds NaN or inf")
    return value


def _position(resume: ResumeState) -> dict[str, int]:
    """The position's fields, type- and range-checked."""
    checked: dict[str, int] = {}
    for key, low in (("round", 0), ("chunk", 0), ("batch_rows", 1), ("call_rows", 1)):
        value = resume.position.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 2**40:
            raise ValueError(f"the resume position's {key} is {value!r}, not an integer >= {low}")
        checked[key] = value
    return checked


def _check_filled(importances: np.ndarray, plan: Plan, round_: int, chunk: int) -> None:
    """Exactly the estimates before (round, chunk) are finished, and they are finite."""
    F, done = importances.shape
    finished = np.zeros((F, done), dtype=bool)
    finished[:, :round_] = True
    if round_ < done:
        finished[: min(chunk * plan.rows, plan.round_size) // plan.m, round_] = True
    if not np.array_equal(~np.isnan(importances), finished):
        raise ValueError(
            "the result's importances do not match its resume position (estimates missing "
            "where finished, or present where not yet computed)"
        )
    if not np.isfinite(importances[finished]).all():
        raise ValueError("the result's importances hold inf")
