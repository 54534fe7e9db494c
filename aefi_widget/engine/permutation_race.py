"""Certified top-k for permutation importance: which units get another repeat, round by round.

After every complete round the finished repeats go to :func:`~aefi_widget.engine.racing.race`;
settled units get no more repeats and the run ends when the top-k set is certified or
``n_repeats`` is reached. Every decision is a pure function of the finished numbers, so a resumed
run replays the decisions from its snapshot (:func:`replay`) instead of storing them, and a
snapshot whose numbers do not fit its own decisions is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aefi_widget.engine.racing import RaceDecision, race

__all__ = ["RaceSettings", "Replayed", "replay", "settled_codes"]


@dataclass(frozen=True)
class RaceSettings:
    """``top_k`` units wanted, at ``confidence`` (simultaneous over units and rounds), deciding
    only for units with at least ``min_repeats`` finished repeats, within ``n_repeats``."""

    top_k: int
    confidence: float
    min_repeats: int
    n_repeats: int

    def decide(self, finished: np.ndarray, previous: RaceDecision | None) -> RaceDecision:
        """The decision after a round, from the finished (F, r) repeats (NaN: not computed)."""
        return race(
            finished, self.top_k, confidence=self.confidence, min_repeats=self.min_repeats,
            n_repeats_max=self.n_repeats, previous=previous,
        )  # fmt: skip


@dataclass(frozen=True)
class Replayed:
    """Decisions replayed up to a round: the last decision (None before any) and the units
    active in each round ``0..round`` (global indices)."""

    decision: RaceDecision | None
    active: list[tuple[int, ...]]


def _active(decision: RaceDecision | None, n_units: int) -> tuple[int, ...]:
    if decision is None:
        return tuple(range(n_units))
    return tuple(int(j) for j in np.flatnonzero(~(decision.settled_in | decision.settled_out)))


def replay(importances: np.ndarray, round_: int, race_settings: RaceSettings) -> Replayed:
    """The decisions a run made through round ``round_`` (exclusive), from its numbers."""
    n_units = importances.shape[0]
    decision: RaceDecision | None = None
    active = [_active(None, n_units)]
    for r in range(round_):
        decision = race_settings.decide(importances[:, : r + 1], decision)
        active.append(_active(decision, n_units))
        if decision.certified:
            break
    return Replayed(decision, active)


def finished_mask(
    shape: tuple[int, int], active: list[tuple[int, ...]], round_: int, done_in_round: int
) -> np.ndarray:
    """(F, R) bool: the (unit, repeat) estimates a run at ``round_`` has finished, given the
    active units of each round and ``done_in_round`` units finished in the current round."""
    finished = np.zeros(shape, dtype=bool)
    for r in range(min(round_, shape[1])):
        finished[list(active[r]), r] = True
    if round_ < shape[1] and round_ < len(active):
        finished[list(active[round_][:done_in_round]), round_] = True
    return finished


def settled_codes(decision: RaceDecision | None, n_units: int) -> np.ndarray:
    """(F,) float64: +1 settled inside the top k, -1 settled outside, 0 undecided."""
    codes = np.zeros(n_units)
    if decision is not None:
        codes[decision.settled_in] = 1.0
        codes[decision.settled_out] = -1.0
    return codes
