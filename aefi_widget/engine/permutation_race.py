"""Certified top-k for permutation importance: which units get more repeats, round by round.

A round gives every unsettled unit its next repeat, and the ``top_k + LEADERS_EXTRA`` unsettled
units with the largest means so far (from ``min_repeats`` finished repeats on) ``LEADER_REPEATS``
of them (never past ``n_repeats``). After every complete round the finished repeats go to
:func:`~aefi_widget.engine.racing.race`; settled units get no more repeats and the run ends when
the top-k set is certified or no unsettled unit has a repeat left. Why the leaders: a unit far
below the boundary is settled outside once its upper bound falls below the k-th largest lower
bound, and the leaders' lower bounds tighten sooner with more repeats (LUCB's idea of sampling the
boundary, Kalyanakrishnan et al. 2012). Replayed on the benchmark's full 50-repeat run
(``benchmarks/bench_anytime.py``, d = 1,000, top_k = 20) the certified top-20 run then spends
24.6 % of the full run's evaluations instead of 27.8 % (one repeat a round), certifying the same
units. The guarantee is unchanged: each unit's values are still a prefix of its own sequence and
the bounds hold simultaneously over units and sample sizes up to ``n_repeats``.

Every allocation and decision is a pure function of the finished numbers, so a resumed run
replays them from its snapshot (:func:`replay`) instead of storing them, and a snapshot whose
numbers do not fit its own decisions is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aefi_widget.engine.racing import RaceDecision, race

__all__ = ["LEADERS_EXTRA", "LEADER_REPEATS", "RaceSettings", "Replayed", "Slots", "allocate",
           "replay", "settled_codes"]  # fmt: skip

# Repeats a round gives each of the top_k + LEADERS_EXTRA unsettled units with the largest means.
# Replayed on the benchmark's full run (module notes): 2 a round 24.6 %, 3 a round 23.6 % of the
# evaluations; 2 keeps a round's work (and so the time between looks) within ~2x of a plain one.
LEADER_REPEATS = 2
LEADERS_EXTRA = 10

# One round's work: (unit, repeat) pairs, unit-major, repeats increasing within a unit.
Slots = tuple[tuple[int, int], ...]


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
    """Decisions replayed up to a round: the last decision (None before any) and the slots of
    each round ``0..round`` (the last: the round at the position, empty once the race is over)."""

    decision: RaceDecision | None
    slots: list[Slots]


def unsettled(decision: RaceDecision | None, n_units: int) -> tuple[int, ...]:
    """Units not settled either way (all before the first decision)."""
    if decision is None:
        return tuple(range(n_units))
    return tuple(int(j) for j in np.flatnonzero(~(decision.settled_in | decision.settled_out)))


def allocate(
    finished: np.ndarray, decision: RaceDecision | None, race_settings: RaceSettings
) -> Slots:
    """The next round's (unit, repeat) slots, from the finished (F, R) values (NaN elsewhere;
    each unit's finished repeats are a prefix): every unsettled unit its next repeat, the leaders
    (module notes) ``LEADER_REPEATS``, none past ``n_repeats``; empty once certified."""
    if decision is not None and decision.certified:
        return ()
    n_done = np.isfinite(finished).sum(axis=1)
    active = np.asarray(unsettled(decision, finished.shape[0]), dtype=np.int64)
    count = np.ones(active.size, dtype=np.int64)
    if active.size and n_done[active].min() >= race_settings.min_repeats:
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(finished[active], axis=1)
        # Largest means first, ties by unit index (a stable sort of the negated means).
        leaders = np.argsort(-mean, kind="stable")[: race_settings.top_k + LEADERS_EXTRA]
        count[leaders] = LEADER_REPEATS
    count = np.clip(race_settings.n_repeats - n_done[active], 0, count)
    return tuple(
        (int(j), int(n_done[j]) + i) for j, c in zip(active, count, strict=True) for i in range(c)
    )


def replay(importances: np.ndarray, round_: int, race_settings: RaceSettings) -> Replayed:
    """The slots and decisions a run made through round ``round_`` (exclusive), and the slots
    of round ``round_``, from its numbers (rounds before ``round_`` must be finished)."""
    finished = np.full(importances.shape, np.nan)
    decision: RaceDecision | None = None
    slots = [allocate(finished, decision, race_settings)]
    for _ in range(round_):
        if not slots[-1]:
            break
        units, repeats = np.array(slots[-1]).T
        finished[units, repeats] = importances[units, repeats]
        decision = race_settings.decide(finished, decision)
        slots.append(allocate(finished, decision, race_settings))
    return Replayed(decision, slots)


def finished_mask(
    shape: tuple[int, int], slots: list[Slots], round_: int, done_in_round: int
) -> np.ndarray:
    """(F, R) bool: the (unit, repeat) estimates a run at ``round_`` has finished, given the
    slots of each round and ``done_in_round`` slots finished in the current round."""
    finished = np.zeros(shape, dtype=bool)
    for r in range(min(round_, len(slots))):
        for unit, repeat in slots[r]:
            finished[unit, repeat] = True
    if round_ < len(slots):
        for unit, repeat in slots[round_][:done_in_round]:
            finished[unit, repeat] = True
    return finished


def settled_codes(decision: RaceDecision | None, n_units: int) -> np.ndarray:
    """(F,) float64: +1 settled inside the top k, -1 settled outside, 0 undecided."""
    codes = np.zeros(n_units)
    if decision is not None:
        codes[decision.settled_in] = 1.0
        codes[decision.settled_out] = -1.0
    return codes
