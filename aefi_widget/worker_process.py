"""An engine's ``increments()`` computed in a spawned worker process, snapshots streamed back.

:class:`~aefi_widget.job.Job` uses this by default (``backend="process"``). Why a process: the
kernel's own OpenMP team and GIL slow a computing thread 1.2-1.8x (``benchmarks/bench_threads.py``),
a kernel cannot change libgomp's settings once torch loaded, and a model that segfaults, calls
``os._exit`` or runs out of memory would take the kernel down. A worker chooses its OpenMP settings
before it imports torch, and its death costs only the chunk in flight.

Mechanism (standard library only, no protocol of our own beyond message tuples):

- ``multiprocessing`` with the *spawn* context (never fork: the kernel's OpenMP or CUDA state does
  not survive a fork), one process per job, two one-way ``Pipe`` connections. The results pipe has
  a single writer (the worker), so the worker's death, even mid-message, reads as ``EOFError``.
- The engine travels once, by value with ``cloudpickle`` (as Dask ships it to its workers), so a
  model class, closure or lambda metric defined in ``__main__`` or a notebook works. What travels:
  the engine's settings, the model (parameters and buffers), the session's private copy of X and
  its 16 probe rows; what does not (rebuilt in the worker with the same bits): locks, the detected
  forward path and its packed kernels, the cached baseline (see ``ModelSession.__getstate__``).
  At d = 1,000, n = 950: ~13 MB, ~0.15 s to pickle in the kernel (``benchmarks/bench_worker.py``).
- Flow control by credits: the kernel asks for at most two chunks ahead, so the worker computes
  while the kernel handles a snapshot, and a pause stops it after the chunk in flight, exactly as
  on a thread (its generator stays suspended at a yield).
- Cancel kills the worker at once (a 30 s forward call is not waited for); the kernel keeps the
  last snapshot it received and writes it to the checkpoint. The worker exits by itself when the
  kernel dies (it watches the parent's sentinel), so no process outlives the kernel.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from aefi_widget.result import ImportanceResult, ResumeState

__all__ = [
    "RemoteIncrements",
    "Unshippable",
    "WorkerDied",
    "WorkerProcess",
    "close_idle_workers",
    "ship",
]

logger = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")
# libgomp's spin-waiting fights any busy neighbour; 1000 spins keep a quiet machine as fast as
# the default and a loaded one ~2x faster (measured in issue 22). The user's own setting wins.
WORKER_ENVIRONMENT = {"GOMP_SPINCOUNT": "1000"}
# Chunks asked for ahead: the worker computes the next while the kernel handles one.
_AHEAD = 2
_ENVIRONMENT_LOCK = threading.Lock()
_JOIN_S = 5.0
# A worker whose job ended cleanly waits this long for the next job (Continue, another method,
# the next test) before it exits: spawning one costs 1-2 s (torch's import).
IDLE_EXIT_S = 60.0
# At most one idle worker is kept (it holds torch, ~150 MB); keyed by its torch thread count.
_idle: list[WorkerProcess] = []
_IDLE_LOCK = threading.Lock()


class Unshippable(TypeError):
    """The engine (a part named in the message) cannot be pickled for a worker process."""


class WorkerDied(RuntimeError):
    """The worker process ended without a word: a crash, ``os._exit`` or the out-of-memory killer."""


class WorkerCancelled(Exception):
    """The worker was killed on purpose (cancel); the job ends as cancelled."""


def ship(engine: Any) -> bytes:
    """``engine`` pickled by value (cloudpickle); :class:`Unshippable` naming the part that is not."""
    import cloudpickle

    try:
        return cloudpickle.dumps(engine)
    except Exception as error:
        part = _unpicklable_part(engine, "engine")
        raise Unshippable(
            f"{part} cannot be sent to a worker process ({type(error).__name__}: {error})"
        ) from None


def _unpicklable_part(value: Any, path: str, depth: int = 0) -> str:
    """The dotted path of the deepest attribute (or item) of ``value`` that fails to pickle."""
    import cloudpickle

    if depth < 8:
        state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
        items: Any = state.items() if isinstance(state, dict) else ()
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        for name, part in items:
            try:
                cloudpickle.dumps(part)
            except Exception:
                key = f"[{name!r}]" if isinstance(value, dict | list | tuple) else f".{name}"
                return _unpicklable_part(part, path + key, depth + 1)
    return f"{path} (a {type(value).__module__}.{type(value).__qualname__})"


@contextlib.contextmanager
def _environment(overrides: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``overrides`` (where unset) while a child is spawned, then restored."""
    with _ENVIRONMENT_LOCK:
        added = [name for name in overrides if name not in os.environ]
        os.environ.update({name: overrides[name] for name in added})
        try:
            yield
        finally:
            for name in added:
                os.environ.pop(name, None)


class WorkerProcess:
    """One spawned worker holding one engine; messages are tuples over two one-way pipes.

    Parameters
    ----------
    payload : bytes
        The engine from :func:`ship`; sent on a helper thread (the worker reads it after it
        has imported torch, ~1 s), so making a worker returns in milliseconds.
    threads : int
        torch threads in the worker (``OMP_NUM_THREADS`` before torch loads).
    """

    @classmethod
    def acquire(cls, payload: bytes, threads: int) -> WorkerProcess:
        """An idle worker with ``threads`` given ``payload``, or a new one."""
        with _IDLE_LOCK:
            for worker in list(_idle):
                _idle.remove(worker)
                if worker.threads == threads and worker.process.is_alive():
                    worker.load(payload)
                    return worker
                worker.close(0)
        return cls(payload, threads)

    def release(self) -> None:
        """Keep this worker (its job ended cleanly) for the next job; one idle worker at most."""
        self.send(("end",))
        with _IDLE_LOCK:
            others, _idle[:] = list(_idle), [self]
        for worker in others:
            worker.close(0)

    def __init__(self, payload: bytes, threads: int) -> None:
        self.threads = threads
        commands_end, self._commands = _SPAWN.Pipe(duplex=False)
        self._results, results_end = _SPAWN.Pipe(duplex=False)
        self.process = _SPAWN.Process(
            target=serve, args=(commands_end, results_end), name="aefi-worker", daemon=True
        )
        with _environment({**WORKER_ENVIRONMENT, "OMP_NUM_THREADS": str(threads)}):
            self.process.start()
        # Only the worker may hold the results pipe's write end: its death then reads as EOF.
        commands_end.close()
        results_end.close()
        self.killed = False
        self._send_lock = threading.Lock()
        self.load(payload)

    def load(self, payload: bytes) -> None:
        """Send the next job's engine on a helper thread; later commands wait for it."""
        self._send_lock.acquire()  # released once the payload is through: commands follow it
        threading.Thread(
            target=self._send_payload, args=(payload,), name="aefi-worker-payload", daemon=True
        ).start()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.pid

    def _send_payload(self, payload: bytes) -> None:
        try:
            self._commands.send_bytes(payload)
        except OSError:
            pass  # the worker is gone; receive() says how
        finally:
            self._send_lock.release()

    def send(self, message: tuple[Any, ...]) -> None:
        """Send a command (after the payload); a dead worker is noticed by :meth:`receive`."""
        with self._send_lock, contextlib.suppress(OSError):
            self._commands.send(message)

    def receive(self) -> tuple[Any, ...]:
        """The worker's next message; ``WorkerCancelled`` or :class:`WorkerDied` once it is gone."""
        try:
            return self._results.recv()
        except (EOFError, OSError):
            pass
        self.process.join(_JOIN_S)
        if self.killed:
            raise WorkerCancelled() from None
        raise WorkerDied(f"the worker process (pid {self.pid}) {_how_it_ended(self.process)}")

    def kill(self) -> None:
        """End the worker now (SIGKILL: also in the middle of a forward call)."""
        self.killed = True
        if self.process.is_alive():
            self.process.kill()

    def close(self, timeout: float = _JOIN_S) -> None:
        """Let the worker go: it exits when its commands pipe closes (killed after ``timeout``)."""
        self._commands.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
            self.process.join()
        self._results.close()


def close_idle_workers() -> None:
    """End the idle worker kept for the next job (an explorer's close, interpreter exit)."""
    with _IDLE_LOCK:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        worker.close(1.0)


def _how_it_ended(process: Any) -> str:
    """E.g. "was killed by SIGSEGV (a crash in the model or a native library)"."""
    code = process.exitcode
    if code is None:
        return "stopped answering"
    if code < 0:
        name = signal.Signals(-code).name
        why = {
            "SIGSEGV": "a crash in the model or a native library",
            "SIGKILL": "often the out-of-memory killer",
            "SIGABRT": "an abort in a native library",
        }.get(name, "a signal")
        return f"was killed by {name} ({why})"
    return f"exited with status {code} (os._exit or sys.exit in the model)"


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
            self.last = _refrozen(rest[0])
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
                from aefi_widget.engine.checkpoint import save_checkpoint

                save_checkpoint(self._checkpoint, self.last)


def _refrozen(snapshot: ImportanceResult) -> ImportanceResult:
    """``snapshot`` rebuilt so its arrays are read-only again (unpickled arrays are writable)."""
    state = snapshot.resume
    if state is not None:
        state = ResumeState(state.method, state.position, state.arrays, state.identity)
    return ImportanceResult(
        snapshot.feature_names, snapshot.output_names, snapshot.importances,
        snapshot.baseline_error, settings=snapshot.settings, groups=snapshot.groups,
        evaluations_done=snapshot.evaluations_done, evaluations_total=snapshot.evaluations_total,
        elapsed_s=snapshot.elapsed_s, resume=state, extras=snapshot.extras, labels=snapshot.labels,
    )  # fmt: skip


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


# ---------------------------------------------------------------------- in the worker
def serve(commands: Connection, results: Connection) -> None:
    """The worker's main: one job after another until the kernel goes or it idles too long."""
    _exit_with_parent()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit():
        import torch

        torch.set_num_threads(int(threads))
    while commands.poll(IDLE_EXIT_S):
        try:
            payload = commands.recv_bytes()
        except EOFError:
            return  # the kernel let this worker go
        _serve_job(payload, commands, results)
        gc.collect()  # the last engine's model and data go before the next arrives


def _serve_job(payload: bytes, commands: Connection, results: Connection) -> None:
    """Load an engine, compute one chunk per credit until the end, then wait for "end"."""
    import cloudpickle

    try:
        engine = pickle.loads(payload)
    except Exception as error:  # e.g. a class whose module this process cannot import
        engine = None
        outcome: tuple[Any, ...] = ("unloadable", f"the worker could not load it: {error!r}")
    del payload
    kind, resume, keywords = commands.recv()
    generator = None
    try:
        if engine is not None:
            generator = engine.increments(resume=resume, **keywords)
            outcome = ("done",)
            while commands.recv()[0] == "next":
                snapshot = next(generator, None)
                if snapshot is None:
                    break
                results.send(("snapshot", snapshot))
    except BaseException as error:  # the job must say why it ended
        text = traceback.format_exc()
        try:
            pickled: bytes | None = cloudpickle.dumps(error)
        except Exception:
            pickled = None
        outcome = ("error", pickled, text)
    finally:
        if generator is not None:
            generator.close()  # the engine's own final checkpoint
    results.send(outcome)
    # Credits asked ahead are still in the pipe: read up to the kernel's "end".
    while commands.recv()[0] != "end":
        pass


def _exit_with_parent() -> None:
    """End this process as soon as the kernel that spawned it is gone (even mid-forward)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="aefi-parent-watch", daemon=True).start()
