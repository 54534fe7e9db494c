"""A :class:`~aefi_widget.job.Job`'s link to its worker process: which backend, the engine shipped
once, the worker spawned early, and the worker's snapshots as an ``increments()``-like iterator.

The default is ``"process"`` in a Jupyter kernel and ``"thread"`` elsewhere (see
:func:`check_backend`). On ``backend="thread"`` (or with a Dask client, where the cluster
computes) the link holds nothing and the job runs ``engine.increments()`` on its own thread.
On ``backend="process"`` the engine is pickled by value when the job is made (so a model that
cannot travel is named at once and the job falls back to a thread with
:attr:`WorkerLink.notice`), a worker is taken or spawned by :meth:`WorkerLink.prepare`, and
:meth:`WorkerLink.open` streams its snapshots.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from aefi_widget.engine.checkpoint import check_checkpoint_path, save_checkpoint
from aefi_widget.result import ImportanceResult, ResumeState
from aefi_widget.snapshot_patches import SnapshotReceiver, with_extras
from aefi_widget.worker_process import Unshippable, WorkerProcess, ship

__all__ = ["Backend", "RemoteIncrements", "WorkerLink", "check_backend"]

Backend = Literal["process", "thread"]
# Where no backend is asked for: "process" in a Jupyter kernel (where results are watched while
# the kernel stays free, and a crashing model must not take the notebook down), "thread"
# elsewhere (a script or a test suite computes headless; spawning would make every script
# guard its top level). AEFI_WIDGET_BACKEND=process|thread overrides it.
BACKEND_VARIABLE = "AEFI_WIDGET_BACKEND"
# Chunks asked for ahead: the worker computes the next while the kernel handles one.
_AHEAD = 2
# A default (not asked for) process backend falls back to the thread above this much data: the
# worker receives its own copy of X (pickled), so the kernel would briefly hold X three times.
SHIP_LIMIT_BYTES = 2**30


def in_kernel() -> bool:
    """Whether this interpreter is a Jupyter kernel (an IPython shell with a kernel)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def check_backend(backend: str | None, client: Any) -> Backend:
    """The backend asked for (or the default), checked; "thread" with a Dask client."""
    where = ""
    if backend is None:
        backend = os.environ.get(BACKEND_VARIABLE, "") or ("process" if in_kernel() else "thread")
        where = f" (from ${BACKEND_VARIABLE})"
    if backend not in ("process", "thread"):
        raise ValueError(f"backend must be 'process' or 'thread', got {backend!r}{where}")
    if client is not None:
        return "thread"  # the cluster computes; the job's thread only gathers
    return backend  # type: ignore[return-value]


def _data_bytes(engine: Any) -> int:
    """Bytes of the engine's private X (0 when it has no model session to say)."""
    X = getattr(getattr(engine, "session", None), "X", None)
    return int(X.numel() * X.element_size()) if hasattr(X, "numel") else 0


class WorkerLink:
    """Where one job computes: a worker process, or (``worker is None``) the job's thread.

    Parameters
    ----------
    engine : object
        The job's engine (pickled now for a worker).
    backend : {"process", "thread"} or None
        As asked (None: the default, see :func:`check_backend`).
    client : dask.distributed.Client or None
        A Dask client makes it "thread".
    threads : int or None
        torch threads in the worker (default: ``torch.get_num_threads()`` in the kernel).
    """

    def __init__(self, engine: Any, backend: str | None, client: Any, threads: int | None):
        self.backend: Backend = check_backend(backend, client)
        # Why the job computes on a thread although a process was asked for ("" otherwise).
        self.notice = ""
        self.worker: WorkerProcess | None = None
        self._threads = threads
        self._payload: bytes | None = None
        self._unstarted: weakref.finalize | None = None
        defaulted = backend is None and not os.environ.get(BACKEND_VARIABLE)
        if self.backend == "process" and defaulted and _data_bytes(engine) > SHIP_LIMIT_BYTES:
            self.fall_back(
                f"X takes {_data_bytes(engine) / 2**30:.1f} GiB and a worker process would hold "
                "a second copy (pass backend='process' to use one anyway)"
            )
        elif self.backend == "process":
            try:
                self._payload = ship(engine)
            except Unshippable as error:
                self.fall_back(str(error))

    def fall_back(self, why: str) -> None:
        """Compute on the job's thread instead of a worker process, saying why (a warning)."""
        self.backend, self.worker = "thread", None
        self.notice = f"{why}; computing on a thread in this kernel instead"
        warnings.warn(self.notice, RuntimeWarning, stacklevel=4)

    def prepare(self, job: Any) -> None:
        """Take an idle worker or spawn one now (torch's import takes seconds), once."""
        if self.backend != "process" or self._payload is None:
            return
        import torch

        threads = self._threads if self._threads is not None else torch.get_num_threads()
        self.worker = WorkerProcess.acquire(self._payload, threads)
        self._payload = None  # the worker has it
        # A job prepared and then dropped must not leave its worker behind (detached once
        # started: the worker then outlives the job, idle, for the next one).
        self._unstarted = weakref.finalize(job, self.worker.kill)

    def started(self) -> None:
        """The job started: its worker is no longer killed with the job object."""
        if self._unstarted is not None:
            self._unstarted.detach()

    def kill(self, never_started: bool) -> None:
        """End the worker now (cancel); one that never computed is also reaped."""
        worker = self.worker
        if worker is not None:
            worker.kill()
            if never_started:
                worker.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id (None on a thread or before :meth:`prepare`)."""
        return None if self.worker is None else self.worker.pid

    def open(
        self,
        engine: Any,
        resume: ImportanceResult | None,
        keywords: dict[str, Any],
        may_ask_ahead: Callable[[], bool],
    ) -> Iterator[ImportanceResult]:
        """The snapshots: ``engine.increments()`` here, or the worker's stream."""
        if self.worker is None:
            return engine.increments(resume=resume, **keywords)
        path = keywords.get("checkpoint", getattr(engine, "checkpoint", None))
        path = None if path is None else check_checkpoint_path(path)
        return RemoteIncrements(self.worker, resume, keywords, path, may_ask_ahead)


class RemoteIncrements:
    """An iterator over the snapshots a :class:`WorkerProcess` computes, like ``increments()``.

    Parameters
    ----------
    worker : WorkerProcess
    resume : ImportanceResult or None
        Where to continue from (sent with the start command).
    keywords : dict
        ``increments`` keywords (``checkpoint=``).
    checkpoint : Path or None
        Written by the kernel with the last snapshot when the worker is killed or dies (the
        worker writes it itself on a normal end and on an exception).
    may_ask_ahead : callable returning bool
        False while a pause is requested: no more chunks are asked for.
    """

    def __init__(
        self,
        worker: WorkerProcess,
        resume: ImportanceResult | None,
        keywords: dict[str, Any],
        checkpoint: Path | None,
        may_ask_ahead: Callable[[], bool],
    ) -> None:
        self._worker, self._checkpoint, self._may_ask_ahead = worker, checkpoint, may_ask_ahead
        self._asked = 0  # chunks asked for and not yet received
        self._ended_cleanly = False
        self.last: ImportanceResult | None = None
        self._receiver = SnapshotReceiver()
        worker.send(("start", resume, keywords))

    def __iter__(self) -> RemoteIncrements:
        return self

    def __next__(self) -> ImportanceResult:
        self._ask(_AHEAD if self._may_ask_ahead() else 1)
        kind, *rest = self._worker.receive()
        self._asked -= 1
        if kind == "snapshot":
            if self._may_ask_ahead():
                self._ask(_AHEAD)
            snapshot, patches = rest
            self.last = _refrozen(snapshot, self._receiver.unpack(snapshot.extras, patches))
            return self.last
        self._ended_cleanly = True
        if kind == "done":
            raise StopIteration
        if kind == "unloadable":
            raise Unshippable(rest[0])
        raise _rebuilt_error(*rest)

    def _ask(self, ahead: int) -> None:
        while self._asked < ahead:
            self._worker.send(("next",))
            self._asked += 1

    def close(self) -> None:
        """Release the worker for the next job if it finished, else kill it and keep the last
        snapshot's checkpoint."""
        if self._ended_cleanly:
            self._worker.release()
            return
        self._worker.kill()
        self._worker.close()
        if self._checkpoint is not None and self.last is not None:
            if self.last.resume is not None:
                save_checkpoint(self._checkpoint, self.last)


def _refrozen(snapshot: ImportanceResult, extras: dict[str, Any]) -> ImportanceResult:
    """``snapshot`` rebuilt with its full ``extras``, its arrays read-only again (unpickled
    arrays are writable)."""
    state = snapshot.resume
    if state is not None:
        state = ResumeState(state.method, state.position, state.arrays, state.identity)
    return with_extras(snapshot, extras, state)


class WorkerTraceback(Exception):
    """The traceback of an exception raised in the worker, as text (its ``__cause__``)."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0])


def _rebuilt_error(error: bytes | None, text: str) -> BaseException:
    """The worker's exception (or a RuntimeError with its text), its traceback as the cause."""
    rebuilt: BaseException | None = None
    if error is not None:
        with contextlib.suppress(Exception):
            rebuilt = pickle.loads(error)
    if not isinstance(rebuilt, BaseException):
        rebuilt = RuntimeError(text.strip().splitlines()[-1] if text.strip() else "worker failed")
    rebuilt.__cause__ = WorkerTraceback(text)
    return rebuilt
