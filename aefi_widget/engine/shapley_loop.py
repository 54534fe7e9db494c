"""The Shapley method's work loops: batches of walks here, or ranges of walks on a Dask cluster.

Both merge walks in their flat order (:mod:`~aefi_widget.engine.shapley_schedule`) into the
:class:`~aefi_widget.engine.shapley_state.ShapleyState` and yield a snapshot after every merge;
they hold no model and no data (the engine passes how to walk and how to snapshot).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from aefi_widget.engine.distributed import WorkerSpec, chunks_on_cluster
from aefi_widget.engine.shapley_schedule import Schedule
from aefi_widget.engine.shapley_state import ShapleyState
from aefi_widget.engine.shapley_walk import BatchWalk
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["Snapshot", "walks_here", "walks_on_cluster"]

# (state, resume state, evaluations done, final) -> the snapshot a consumer sees.
Snapshot = Callable[[ShapleyState, ResumeState, int, bool], ImportanceResult]


def walks_here(
    state: ShapleyState,
    schedule: Schedule,
    identity: dict[str, str],
    walk_of: Callable[[np.ndarray, np.ndarray], BatchWalk],
    computing: Callable[[], contextlib.AbstractContextManager[Any]],
    snapshot: Snapshot,
    seconds: float,
) -> Iterator[ImportanceResult]:
    """Batches walked in this process, stepped in stretches of about ``seconds``: a progress
    snapshot after each stretch (its resume state stays at the batch start), a full one after
    each batch."""
    boundary = state.resume_state(identity)
    while True:
        columns, samples = schedule.next_batch(state)
        walk = walk_of(columns, samples)
        done_before = schedule.evaluations_done(state)
        while not walk.done:
            started = time.perf_counter()
            with computing():
                walk.step()  # at least one step per stretch
                while not walk.done and time.perf_counter() - started < seconds:
                    walk.step()
            state.elapsed_s += time.perf_counter() - started
            if not walk.done:
                yield snapshot(state, boundary, done_before + walk.steps_done * walk.walks, False)
        stop = schedule.absorb(state, columns, samples, walk.sample_contributions())
        boundary = state.resume_state(identity)
        yield snapshot(state, boundary, schedule.evaluations_done(state), stop)
        if stop:
            return


def walks_on_cluster(
    client: Any,
    spec: WorkerSpec,
    state: ShapleyState,
    schedule: Schedule,
    identity: dict[str, str],
    span: int,
    snapshot: Snapshot,
) -> Iterator[ImportanceResult]:
    """Ranges of ``span`` walks computed by Dask tasks (the engine's ``chunk_sums(None, start,
    stop)``), merged in order. Past the column where the run stops, the tasks in flight are
    cancelled: their walks never reach the estimates, as locally."""
    tasks = schedule.tasks(state, span)
    with contextlib.closing(chunks_on_cluster(client, spec, None, tasks)) as source:
        for (start, stop), contributions, seconds in source:
            state.elapsed_s += seconds
            done = schedule.absorb(state, *schedule.walks(start, stop), contributions)
            yield snapshot(state, state.resume_state(identity), schedule.evaluations_done(state),
                           done)  # fmt: skip
            if done:
                return
