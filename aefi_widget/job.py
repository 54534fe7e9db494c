"""Run an engine's ``increments()`` generator in a worker process or on a thread: pause, resume,
cancel.

A :class:`Job` keeps the kernel free while permutation importance is computed. The engine does
the work in chunks (one forward call each, well under a second) and yields an immutable
:class:`~aefi_widget.result.ImportanceResult` after every chunk; the job's worker thread stores the
latest one and tells subscribers. With ``backend="process"`` the generator runs in a spawned
worker process (:mod:`aefi_widget.job_worker`) and the job's thread receives its snapshots; with
``backend="thread"`` (the default outside a Jupyter kernel) the job's thread runs the generator
itself. Between two chunks the generator is suspended at its ``yield``, which is where the worker
honours pause (it parks and the generator simply stays suspended). Cancel closes the generator
after the chunk in flight on a thread, and kills a worker process at once (the last snapshot is
kept and checkpointed), so a long forward call is never waited for.

Locking rule: the job's lock only guards its own fields for a few bytecodes. It is never held
while the engine computes or while a subscriber runs, so a widget callback that asks for the
status or pauses the job can never wait behind a forward call, and a subscriber that calls back
into the job cannot deadlock.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from aefi_widget.job_worker import Backend, WorkerLink
from aefi_widget.result import ImportanceResult
from aefi_widget.rich_display import job_html
from aefi_widget.worker_process import Unshippable, WorkerCancelled, close_idle_workers

__all__ = ["Job", "JobProgress", "JobStatus", "live_jobs"]

logger = logging.getLogger(__name__)

JobStatus = Literal["idle", "running", "paused", "done", "cancelled", "error"]
_ENDED: frozenset[str] = frozenset({"done", "cancelled", "error"})
_job_numbers = itertools.count(1)
# Jobs started in this process and not yet collected: cancelled at interpreter exit (below).
_live_jobs: weakref.WeakSet[Job] = weakref.WeakSet()
# The most an exiting interpreter waits for the chunks in flight (a chunk is ~0.25-0.5 s).
_EXIT_WAIT_S = 5.0


def _cancel_live_jobs() -> None:
    """At interpreter exit, cancel every running job and wait (at most ``_EXIT_WAIT_S`` in all)
    for its chunk in flight. A daemon thread still inside torch while the interpreter tears down
    aborts the process ("terminate called without an active exception", exit status 134: a script
    that returned while a Job ran did that); cancelling also writes the job's final checkpoint."""
    jobs = list(_live_jobs)
    for job in jobs:
        job.cancel()
    deadline = time.monotonic() + _EXIT_WAIT_S
    for job in jobs:
        job.wait(max(0.0, deadline - time.monotonic()))
    close_idle_workers()


atexit.register(_cancel_live_jobs)


def live_jobs() -> list[Job]:
    """The jobs started in this process that something still refers to (running, paused or
    ended), for a front end that lists them (:mod:`aefi_widget.job_feed`)."""
    return list(_live_jobs)


@dataclass(frozen=True)
class JobProgress:
    """How far a job has come, in permuted-sample evaluations and seconds.

    Attributes
    ----------
    done, total : int
        Evaluations finished (including any a resumed result already held) and in the whole run.
    fraction : float
        ``done / total`` in [0, 1].
    elapsed_s : float
        Wall-clock seconds this job has been computing, paused time excluded.
    eta_s : float or None
        Estimated seconds left at the current rate; None until a rate is known or once the job
        stopped early (cancelled, error); 0.0 when done.
    evals_per_s : float or None
        Evaluations per second computed by this job (None before the first chunk).
    rounds_done, n_repeats : int
        Complete rounds (every feature has that many repeats) and repeats asked for.
    """

    done: int
    total: int
    fraction: float
    elapsed_s: float
    eta_s: float | None
    evals_per_s: float | None
    rounds_done: int
    n_repeats: int


def _check_engine(engine: Any) -> None:
    """Refuse, at construction, anything that is not an engine (``TypeError`` naming what lacks)."""
    missing = [
        name
        for name, wanted in (("increments", callable), ("empty_result", callable),
                             ("evaluations_total", lambda value: value is not None))
        if not wanted(getattr(engine, name, None))
    ]  # fmt: skip
    if missing:
        raise TypeError(
            f"Job needs an engine such as aefi_widget.PermutationImportance(model, X), got "
            f"{type(engine).__name__} {engine!r:.60} (it lacks {', '.join(missing)})"
        )


class Job:
    """Computes ``engine.increments(resume)`` on a daemon thread, one snapshot per chunk.

    Parameters
    ----------
    engine : object
        Anything with ``increments(resume=None)`` (a generator of ImportanceResult),
        ``empty_result()`` and ``evaluations_total``, e.g. a ``PermutationImportance``.
    resume : ImportanceResult or callable, optional
        A snapshot (with its ``resume`` state) to continue from instead of starting afresh; or
        a function called once when the job starts that returns such a snapshot, or None to
        start afresh (the explorer's race continues from its first look, which ends later).
    checkpoint : path, optional
        Checkpoint file for this run: resumed from when it exists (and matches the model, data
        and settings), written atomically every few seconds and when the job ends, is cancelled
        or fails. Needs an engine whose ``increments`` takes ``checkpoint=``.
    client : dask.distributed.Client, optional
        Run the engine's chunks on this Dask cluster (``increments(client=...)``); the numbers
        are the same as locally. By default the engine's own setting (local unless it has one).
        With a client the job coordinates on a thread (the cluster computes).
    backend : {"thread", "process"}, optional
        Where the engine computes: a spawned worker process, which computes at full speed, is
        cancelled at once and survives a model that crashes (the default in a Jupyter kernel,
        unless the engine's X takes more than 1 GiB, which a worker would hold a second copy
        of); or a thread of this process (the default elsewhere: scripts and tests compute
        headless). The environment variable ``AEFI_WIDGET_BACKEND`` sets the default. The
        numbers are the same bit for bit. An engine that cannot be pickled runs on a thread, with
        a warning and :attr:`notice` naming the object.
    threads : int, optional
        torch threads in the worker process (default: ``torch.get_num_threads()`` here).

    Notes
    -----
    ``pause()``, ``resume()`` and ``cancel()`` only record a request and return at once; the
    worker acts on it at the next chunk boundary, and :attr:`status` reports what the worker is
    actually doing: ``"paused"`` means it is parked and progress is frozen. Subscribers are called
    ``callback(job)`` on the worker thread after every snapshot and once per status change (only
    cancelling a job that never started notifies on the caller's thread).
    """

    def __init__(
        self,
        engine: Any,
        resume: ImportanceResult | Callable[[], ImportanceResult | None] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        client: Any = None,
        backend: Backend | None = None,
        threads: int | None = None,
    ) -> None:
        _check_engine(engine)
        self.engine = engine
        self._link = WorkerLink(engine, backend, client, threads)
        self._resume_later = resume if callable(resume) else None
        resume = None if callable(resume) else resume
        self._resume_from = resume
        # Passed to engine.increments(client=...): the chunks run on that Dask cluster.
        self._client = client
        # Passed to engine.increments(checkpoint=...): resume from it, save to it (atomically).
        self._checkpoint = checkpoint
        self._total = int(engine.evaluations_total)
        self._snapshot: ImportanceResult = resume if resume is not None else engine.empty_result()
        # Evaluations a resumed snapshot already held do not count towards this job's rate.
        self._done_at_start = self._snapshot.evaluations_done
        self._lock = threading.Lock()
        self._status: JobStatus = "idle"
        self._error: BaseException | None = None
        self._subscribers: list[Callable[[Job], Any]] = []
        self._thread: threading.Thread | None = None
        self._run_allowed = threading.Event()  # cleared while a pause is requested
        self._run_allowed.set()
        self._cancel_requested = threading.Event()
        self._ended = threading.Event()
        self._active_s = 0.0  # computing time banked before the current active stretch
        self._active_since: float | None = None  # monotonic start of the current stretch

    # ------------------------------------------------------------------ control
    def prepare(self) -> Job:
        """Spawn the worker process now (it loads torch and the engine, ~1-2 s) so that
        :meth:`start` computes at once; a no-op on a thread or when done already."""
        with self._lock:
            if self._status == "idle":
                self._link.prepare(self)
        return self

    @property
    def backend(self) -> Backend:
        """Where the engine computes: ``"process"`` or ``"thread"`` (also after a fall-back)."""
        return self._link.backend

    @property
    def notice(self) -> str:
        """Why a job asked to compute in a process computes on a thread ("" otherwise)."""
        return self._link.notice

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id (None on a thread or before :meth:`start`)."""
        return self._link.pid

    def start(self) -> Job:
        """Start the computation and return the job; a job runs once (RuntimeError after)."""
        self.prepare()
        with self._lock:
            if self._status != "idle":
                raise RuntimeError(
                    f"a Job runs only once and this one is {self._status!r}; "
                    "create a new Job (optionally with resume=job.snapshot()) to run again"
                )
            if self._resume_later is not None:
                self._resume_now(self._resume_later())
            self._status = "running"
            self._link.started()
            self._active_since = time.monotonic()
            # Daemon: a kernel or interpreter shutting down never waits for a computation,
            # only (at exit, bounded) for the chunk in flight: see _cancel_live_jobs.
            self._thread = threading.Thread(
                target=self._work, name=f"aefi-job-{next(_job_numbers)}", daemon=True
            )
            self._thread.start()
            _live_jobs.add(self)
        return self

    def _resume_now(self, resume: ImportanceResult | None) -> None:
        """Take the snapshot a resume function gave at start (under the lock)."""
        self._resume_later = None
        if resume is None:
            return
        if not isinstance(resume, ImportanceResult):
            raise TypeError(f"a Job's resume function must return an ImportanceResult or None, "
                            f"got {type(resume).__name__}")  # fmt: skip
        self._resume_from = self._snapshot = resume
        self._done_at_start = resume.evaluations_done

    def pause(self) -> None:
        """Ask the worker to park after the chunk in flight (status becomes ``"paused"``)."""
        self._run_allowed.clear()

    def resume(self) -> None:
        """Let a paused (or pause-requested) job continue."""
        self._run_allowed.set()

    def cancel(self) -> None:
        """Stop: a worker process at once, a thread after the chunk in flight; the partial
        snapshot is kept (and checkpointed). No-op once ended."""
        with self._lock:
            never_started = self._status == "idle"
            if never_started:
                self._status = "cancelled"
        self._cancel_requested.set()
        self._run_allowed.set()  # wake a parked worker so it can see the cancel
        self._link.kill(never_started)
        if never_started:
            self._notify()
            self._ended.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (done, cancelled or error); False on timeout."""
        if not self._ended.wait(timeout):
            return False
        thread = self._thread
        # The worker sets ``_ended`` as its last act, so this join is immediate; it makes "ended"
        # also mean "its thread is gone", which callers counting threads rely on.
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        return True

    def result(self, timeout: float | None = None) -> ImportanceResult:
        """Wait for the end and return the last snapshot; re-raise the engine's exception.

        A cancelled job returns its partial snapshot. Raises ``TimeoutError`` when the job has
        not ended within ``timeout`` seconds, ``RuntimeError`` when it was never started.
        """
        if self.status == "idle":
            raise RuntimeError("the Job was never started; call job.start() first")
        if not self.wait(timeout):
            raise TimeoutError(f"the Job did not end within {timeout} s (status {self.status!r})")
        if self._error is not None:
            # Raising the stored object keeps its original traceback (the engine's frames).
            raise self._error
        return self.snapshot()

    def subscribe(self, callback: Callable[[Job], Any]) -> Callable[[], None]:
        """Call ``callback(job)`` after every snapshot and status change; returns unsubscribe.

        The callback runs on the worker thread and delays the next chunk while it runs: keep it
        cheap (set an Event, note the snapshot). Its exceptions are logged, never propagated.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ state
    @property
    def status(self) -> JobStatus:
        """``"idle" | "running" | "paused" | "done" | "cancelled" | "error"``."""
        return self._status

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the job, or None."""
        return self._error

    def snapshot(self) -> ImportanceResult:
        """The latest result (the engine's empty result, or ``resume``, before the first chunk)."""
        return self._snapshot

    @property
    def progress(self) -> JobProgress:
        """Evaluations done and total, elapsed time without pauses, rate and ETA."""
        with self._lock:
            snapshot, status, elapsed = self._snapshot, self._status, self._elapsed_locked()
        # The snapshot's total: a certified top-k run (top_k=) shrinks it to the work actually
        # left as units settle, so the fraction and the ETA count only that.
        done = int(snapshot.evaluations_done)
        total = int(snapshot.evaluations_total) if snapshot.evaluations_total > 0 else self._total
        computed = done - self._done_at_start
        rate = computed / elapsed if computed > 0 and elapsed > 0 else None
        if status == "done":
            eta: float | None = 0.0
        elif rate is None or status in _ENDED:
            eta = None
        else:
            eta = max(0, total - done) / rate
        if total > 0:
            fraction = min(1.0, done / total)
        else:
            fraction = 1.0 if status == "done" else 0.0
        return JobProgress(
            done=done,
            total=total,
            fraction=fraction,
            elapsed_s=elapsed,
            eta_s=eta,
            evals_per_s=rate,
            rounds_done=snapshot.rounds_done,
            n_repeats=snapshot.n_repeats,
        )

    def _elapsed_locked(self) -> float:
        running = 0.0 if self._active_since is None else time.monotonic() - self._active_since
        return self._active_s + running

    # ------------------------------------------------------------------ worker
    def _pull(self, generator: Iterator[ImportanceResult]) -> JobStatus:
        """Take snapshots until the generator ends ("done") or a cancel ("cancelled")."""
        while self._hold_while_paused():
            snapshot = next(generator, None)
            if snapshot is None:
                return "done"
            # Keep the chunk even when a cancel arrived while it was computed: work done
            # is never thrown away ("cancelling loses at most the chunk in flight").
            with self._lock:
                self._snapshot = snapshot
            self._notify()
        return "cancelled"

    def _work(self) -> None:
        """Worker thread body: pull chunks until the generator ends, fails or is cancelled."""
        self._notify()  # the "running" status set by start()
        generator: Iterator[ImportanceResult] | None = None
        final: JobStatus = "cancelled"
        try:
            # Inside the try: an engine that validates eagerly raises here, not in next().
            keywords: dict[str, Any] = {}
            if self._checkpoint is not None:
                keywords["checkpoint"] = self._checkpoint
            if self._client is not None:
                keywords["client"] = self._client
            generator = self._link.open(
                self.engine, self._resume_from, keywords, self._run_allowed.is_set
            )
            try:
                final = self._pull(generator)
            except Unshippable as error:  # the worker could not load it: before any snapshot
                self._close(generator)
                self._link.fall_back(str(error))
                generator = self.engine.increments(resume=self._resume_from, **keywords)
                final = self._pull(generator)
        except WorkerCancelled:
            final = "cancelled"
        except BaseException as error:  # whatever happens, the job must end and say why
            final = "error"
            self._error = error
        if generator is not None:
            # Needed after a cancel (the generator is suspended at a yield); a no-op for one
            # that finished or raised.
            self._close(generator)
        with self._lock:
            self._stop_clock_locked()
            self._status = final
        self._notify()
        self._ended.set()  # last act: wait() joins the thread right after this

    def _hold_while_paused(self) -> bool:
        """At a chunk boundary: park while a pause is requested. False when cancelled."""
        if not self._run_allowed.is_set() and not self._cancel_requested.is_set():
            with self._lock:
                self._stop_clock_locked()
                self._status = "paused"
            self._notify()
            # The generator stays suspended at its yield, so nothing is lost while parked.
            self._run_allowed.wait()
            if not self._cancel_requested.is_set():
                with self._lock:
                    self._active_since = time.monotonic()
                    self._status = "running"
                self._notify()
        return not self._cancel_requested.is_set()

    def _stop_clock_locked(self) -> None:
        self._active_s = self._elapsed_locked()
        self._active_since = None

    def _close(self, generator: Iterator[ImportanceResult]) -> None:
        """Close a cancelled generator so the engine runs its clean-up (its final checkpoint)."""
        close = getattr(generator, "close", None)
        if close is None:
            return
        try:
            close()
        except Exception:
            logger.exception("closing the engine's generator of %r failed", self)

    def _notify(self) -> None:
        """Call every subscriber without holding the lock; log and survive their exceptions."""
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(self)
            except Exception:
                logger.exception("Job subscriber %r raised; the job goes on", callback)

    def _repr_html_(self) -> str:
        """Rich display in notebooks: method, state, a progress bar, evaluations and ETA."""
        return job_html(self.status, self.progress, self.snapshot().method, self.error)

    def __repr__(self) -> str:
        progress = self.progress
        eta = "" if progress.eta_s is None else f", eta {progress.eta_s:.1f} s"
        error = "" if self._error is None else f", error={self._error!r}"
        return (
            f"Job(status={self.status!r}, {progress.done:,}/{progress.total:,} evaluations "
            f"({progress.fraction:.0%}), rounds {progress.rounds_done}/{progress.n_repeats}, "
            f"elapsed {progress.elapsed_s:.1f} s{eta}{error})"
        )
