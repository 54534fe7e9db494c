"""The work loops of permutation importance: chunks absorbed in plan order, a snapshot after each.

:func:`full_rounds` walks the whole plan (every unit, every repeat); :func:`race_rounds` runs one
round over the units not yet settled (the leaders take two repeats), then asks the race which
units are decided (certified top-k). Both resume from the position held by the
:class:`RunState` and leave the chunks' source (local or a Dask cluster) and the snapshot to the
engine, so they hold no model and no data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from aefi_widget.engine.permutation_race import RaceSettings, allocate, unsettled
from aefi_widget.engine.permutation_rows import CallSums
from aefi_widget.engine.permutation_state import RunState
from aefi_widget.engine.plan import Plan
from aefi_widget.result import ImportanceResult

__all__ = ["ChunkSource", "full_rounds", "race_rounds"]

# (plan, positions) -> ((round, chunk), per-segment sums, seconds spent) per position, in order.
ChunkSource = Callable[
    [Plan, Iterator[tuple[int, int]]], Iterator[tuple[tuple[int, int], CallSums, float]]
]


def full_rounds(
    state: RunState,
    samples_per_repeat: int,
    chunks: ChunkSource,
    snapshot: Callable[[RunState], ImportanceResult],
    every_round: bool = True,
) -> Iterator[ImportanceResult]:
    """Every remaining chunk of ``state.plan`` absorbed into ``state``; yields ``snapshot(state)``
    after each chunk and (``every_round``) at each round's end inside a chunk."""
    plan, m = state.plan, samples_per_repeat
    positions = plan.positions(state.round, state.chunk)
    for (round_, chunk), sums, seconds in chunks(plan, positions):
        next_round, next_chunk = plan.advance(round_, chunk)
        state.elapsed_s += seconds
        # A packed chunk finishes several rounds: a snapshot at each round's end, so
        # rounds() and consumers see every round.
        for finished in state.absorb(sums, m):
            if every_round and finished + 1 < next_round:
                state.move_to(finished + 1, 0)
                yield snapshot(state)
        state.move_to(next_round, next_chunk)
        yield snapshot(state)


def race_rounds(
    state: RunState,
    samples_per_repeat: int,
    race_settings: RaceSettings,
    chunks: ChunkSource,
    snapshot: Callable[[RunState], ImportanceResult],
) -> Iterator[ImportanceResult]:
    """The adaptive loop: one round over the unsettled units, then a race decision, until the
    top k is certified or ``race_settings.n_repeats`` rounds are done; yields ``snapshot(state)``
    after each chunk."""
    plan, m = state.plan, samples_per_repeat
    n_units = plan.n_units
    while state.slots and not (state.decision is not None and state.decision.certified):
        round_plan = state.round_plan = plan.over(state.slots)
        positions = ((state.round, c) for c in range(state.chunk, round_plan.chunks_per_round))
        for (round_, chunk), sums, seconds in chunks(round_plan, positions):
            state.elapsed_s += seconds
            for _ in state.absorb(sums, m):
                pass
            if chunk + 1 < round_plan.chunks_per_round:
                state.move_to(round_, chunk + 1)
            else:
                # Every estimate present is finished: decide, then lay out the next round.
                state.decision = race_settings.decide(state.importances, state.decision)
                state.active = unsettled(state.decision, n_units)
                state.slots = allocate(state.importances, state.decision, race_settings)
                state.move_to(round_ + 1, 0)
                state.round_plan = plan.over(state.slots)
            yield snapshot(state)
