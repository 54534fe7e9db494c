"""Chunks of a method's plan computed on a Dask cluster, merged in plan order.

The plan is a pure function of the settings and every permutation a pure function of
(seed, repeat, unit), so a chunk computes the same bits on any worker as locally. The model and
X travel to each worker once (``client.scatter(..., broadcast=True)``); a task carries only its
plan position, and returns the chunk's per-segment sums (a few floats per unit, plus (d,) per-output
sums): the data per task does not grow with the model. Results are consumed in plan order, so
snapshots, checkpoints and resume behave exactly as in a local run. Dask's futures do the
scheduling: a worker that dies loses only its tasks in flight, which the scheduler reruns.

A method takes part by providing ``chunk_sums(plan, a, b)`` (a pure function of the position:
(round, chunk) of a plan for permutation and the latent lens, (first sample, 0) for gradients,
a range [a, b) of walks for Shapley) and a :class:`WorkerSpec` that rebuilds it on a worker.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "WorkerSpec",
    "check_client",
    "check_open",
    "chunk_source",
    "chunks_here",
    "chunks_on_cluster",
]

# (position, the chunk's result, seconds spent on it): what a chunk source yields, in order.
Chunk = tuple[tuple[int, int], Any, float]

# Tasks in flight per worker thread: enough to keep every worker busy while results travel,
# few enough to bound memory and make cancel cheap.
_TASKS_PER_THREAD = 2
# Times a run sends its spec again after a dying worker took the only replica; seconds it waits
# for a worker to be back before doing so.
_RESCATTERS = 3
_WORKER_WAIT = 120.0
_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def check_client(client: Any) -> Any:
    """``client`` if it is a ``distributed.Client``; a clear error otherwise (or without Dask)."""
    if client is None:
        return None
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "client= needs Dask's distributed scheduler: pip install 'aefi_widget[dask]' "
            "(or pip install 'dask[distributed]')"
        ) from None
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"client must be a dask.distributed.Client, got {type(client).__name__}; e.g. "
            "client = distributed.Client() for a local cluster"
        )
    check_open(client)
    return client


def check_open(client: Any) -> None:
    """A clear ``ValueError`` for a closed client (distributed itself fails with an
    ``AttributeError`` from deep inside when a closed client is used)."""
    if client.status in ("closing", "closed"):
        raise ValueError(
            f"the Dask client is {client.status} (client.close() was called, or its cluster "
            "shut down); pass a running one, e.g. client = distributed.Client()"
        )


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to rebuild the engine: ``build(model, X, **keywords)``; sent once."""

    build: Callable[..., Any]
    model: Any
    X: Any
    keywords: dict[str, Any]
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def _engine_for(spec: WorkerSpec) -> Any:
    """The worker's engine for ``spec``, built on first use (checks, path, baseline: once)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(spec.token)
        if engine is None:
            # One run's engine per worker at a time: an old run's model and data are let go.
            _ENGINES.clear()
            engine = _ENGINES[spec.token] = spec.build(spec.model, spec.X, **spec.keywords)
        return engine


def chunks_here(
    chunk_sums: Callable[[Any, int, int], Any], plan: Any, positions: Iterator[tuple[int, int]]
) -> Iterator[Chunk]:
    """Yield ``(position, chunk_sums(plan, *position), seconds)`` computed in this process."""
    for position in positions:
        started = time.perf_counter()
        sums = chunk_sums(plan, *position)
        yield position, sums, time.perf_counter() - started


def chunk_source(
    client: Any,
    worker_spec: Callable[[], WorkerSpec],
    chunk_sums: Callable[[Any, int, int], Any],
    plan: Any,
    positions: Iterator[tuple[int, int]],
) -> Iterator[Chunk]:
    """The chunks at ``positions``, in order: here (``client`` None) or on the Dask cluster,
    where ``worker_spec()`` (called only then) tells each worker how to rebuild the engine."""
    if client is None:
        return chunks_here(chunk_sums, plan, positions)
    return chunks_on_cluster(client, worker_spec(), plan, positions)


def _run_chunk(spec: WorkerSpec, plan: Any, round_: int, chunk: int) -> tuple[Any, float]:
    """Task body: the chunk's sums and the seconds the worker spent on it."""
    started = time.perf_counter()
    sums = _engine_for(spec).chunk_sums(plan, round_, chunk)
    return sums, time.perf_counter() - started


def chunks_on_cluster(
    client: Any, spec: WorkerSpec, plan: Any, positions: Iterator[tuple[int, int]]
) -> Iterator[Chunk]:
    """Yield ``(position, sums, seconds)`` for each plan position, in order, computed by Dask.

    Keeps a bounded number of tasks in flight; closing the generator (pause, cancel, error)
    cancels every task not yet consumed.
    """
    check_open(client)  # closed since the engine was built
    threads = sum(client.nthreads().values()) or 1
    in_flight = max(2, _TASKS_PER_THREAD * threads)
    tasks = _Tasks(client, spec, plan)
    try:
        for position in positions:
            tasks.submit(position)
            if len(tasks.queue) >= in_flight:
                yield tasks.take()
        while tasks.queue:
            yield tasks.take()
    finally:
        tasks.cancel()


class _Tasks:
    """The run's tasks in flight, in plan order, and the scattered spec they all read.

    A worker that dies takes its tasks (the scheduler reruns them) and, when it held the only
    replica of the scattered spec, the spec too: Dask then cancels every task that reads it.
    Broadcasting does not keep a replica on each worker: Dask's active memory manager drops
    replicas no waiting task needs (its ReduceReplicas policy, on by default). The spec is sent
    again and those tasks resubmitted, at most ``_RESCATTERS`` times a run, since each costs a
    copy of the model and X per worker.
    """

    def __init__(self, client: Any, spec: WorkerSpec, plan: Any) -> None:
        self.client, self.spec, self.plan = client, spec, plan
        self.shared = client.scatter(spec, broadcast=True, hash=False)
        self.queue: deque[tuple[tuple[int, int], Any]] = deque()
        self.rescatters = 0

    def submit(self, position: tuple[int, int]) -> None:
        future = self.client.submit(_run_chunk, self.shared, self.plan, *position, pure=False,
                                    retries=0)  # fmt: skip
        self.queue.append((position, future))

    def take(self) -> Chunk:
        """The oldest task's result, waiting for it."""
        while True:
            position, future = self.queue[0]
            try:
                sums, seconds = future.result()
            except Exception as error:
                future.release()  # the error's traceback must not hold the task
                if not self._spec_lost(error):
                    self.queue.popleft()
                    wrapped = _cluster_error(error, position)
                    if wrapped is error:
                        raise
                    raise wrapped from error
                self._send_spec_again()
                continue
            self.queue.popleft()
            return position, sums, seconds

    def _spec_lost(self, error: Exception) -> bool:
        lost = type(error).__name__ == "FutureCancelledError" and self.shared.status != "finished"
        return lost and self.rescatters < _RESCATTERS and self.client.status == "running"

    def _send_spec_again(self) -> None:
        self.rescatters += 1
        positions = [position for position, _ in self.queue]
        self.cancel()
        self.client.wait_for_workers(1, timeout=_WORKER_WAIT)
        self.shared = self.client.scatter(self.spec, broadcast=True, hash=False)
        for position in positions:
            self.submit(position)

    def cancel(self) -> None:
        """Cancel what was not consumed and let go of every future now: the frames of an
        error's traceback (which a Job keeps to show) must not hold tasks or data on the cluster."""
        leftovers = [future for _, future in self.queue] + [self.shared]
        self.queue.clear()
        self.client.cancel(leftovers, force=True)
        for future in leftovers:
            future.release()


def _cluster_error(error: Exception, position: tuple[int, int]) -> Exception:
    """``error``, or for a lost cluster a ``RuntimeError`` that says what is kept."""
    if type(error).__name__ in ("CancelledError", "FutureCancelledError", "CommClosedError",
                                "TimeoutError"):  # fmt: skip
        return RuntimeError(
            f"lost the Dask cluster while computing chunk {position} "
            f"({type(error).__name__}: {error}); every merged chunk is kept (and in the "
            "checkpoint, if any): resume when the cluster is back"
        )
    return error
