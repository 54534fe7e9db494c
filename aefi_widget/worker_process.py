"""A spawned worker process that computes an engine's ``increments()``; the kernel's handle on it.

:class:`~aefi_widget.job.Job` uses this with ``backend="process"`` (through
:mod:`aefi_widget.job_worker`; the worker's side is :mod:`aefi_widget.worker_serve`). Why a
process: the kernel's own OpenMP team and GIL slow a computing thread 1.2-1.8x
(``benchmarks/bench_threads.py``), a kernel cannot change libgomp's settings once torch loaded,
and a model that segfaults, calls ``os._exit`` or runs out of memory would take the kernel down.
A worker chooses its OpenMP settings before it imports torch, and its death costs only the chunk
in flight.

Mechanism (standard library and cloudpickle, no protocol beyond message tuples):

- ``multiprocessing`` with the *spawn* context (never fork: the kernel's OpenMP or CUDA state does
  not survive a fork), two one-way ``Pipe`` connections. The results pipe has a single writer
  (the worker), so the worker's death, even mid-message, reads as ``EOFError``. One job at a time
  per worker; a worker whose job ended cleanly is kept (one at most) for the next job.
- The engine travels once, by value with ``cloudpickle`` (as Dask ships it to its workers), so a
  model class, closure or lambda metric defined in ``__main__`` or a notebook works. What travels:
  the engine's settings, the model (parameters and buffers), the session's private copy of X and
  its 16 probe rows; what does not (rebuilt in the worker with the same bits): locks, the detected
  forward path and its packed kernels, the cached baseline (see ``ModelSession.__getstate__``).
  Its size and pickling time: ``benchmarks/bench_worker.py``.
- Flow control by credits: the kernel asks for at most two chunks ahead, so the worker computes
  while the kernel handles a snapshot, and a pause stops it after the chunk in flight, exactly as
  on a thread (its generator stays suspended at a yield).
- Cancel kills the worker at once (a 30 s forward call is not waited for); the kernel keeps the
  last snapshot it received and writes it to the checkpoint. The worker exits by itself when the
  kernel dies (it watches the parent's sentinel), so no process outlives the kernel.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from aefi_widget.worker_serve import serve

__all__ = [
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
# At most one idle worker is kept (it holds torch, ~150 MB); keyed by its torch thread count.
_idle: list[WorkerProcess] = []
_IDLE_LOCK = threading.Lock()


class Unshippable(TypeError):
    """The engine (a part named in the message) cannot be pickled for a worker process."""


class WorkerDied(RuntimeError):
    """The worker process ended without a word: a crash, ``os._exit``, the out-of-memory killer."""


class WorkerCancelled(Exception):
    """The worker was killed on purpose (cancel); the job ends as cancelled."""


def ship(engine: Any) -> bytes:
    """``engine`` pickled by value (cloudpickle); :class:`Unshippable` names a part that is not."""
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


@contextlib.contextmanager
def _main_readable_by_spawn() -> Iterator[None]:
    """Give ``__main__`` a ``__spec__`` (None) while a child is spawned, if it has none.

    spawn reads ``sys.modules["__main__"].__spec__``; IPython's ``%reset`` clears the user
    namespace, which is ``__main__``'s ``__dict__``, and takes the attribute with it.
    """
    main = sys.modules.get("__main__")
    missing = main is not None and not hasattr(main, "__spec__")
    if missing:
        main.__spec__ = None
    try:
        yield
    finally:
        if missing:
            with contextlib.suppress(AttributeError):
                del main.__spec__


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
        overrides = {**WORKER_ENVIRONMENT, "OMP_NUM_THREADS": str(threads)}
        with _environment(overrides), _main_readable_by_spawn():
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
    # multiprocessing's spawn re-imports a script's __main__ in the worker (as Dask's processes
    # do): a script whose top level is not guarded fails there, with its traceback on stderr.
    return (
        f"exited with status {code} (os._exit or sys.exit in the model; or the worker could not "
        "start: its traceback is on stderr, and a script must guard its top level with "
        "`if __name__ == '__main__':`)"
    )
