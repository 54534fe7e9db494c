"""The worker process's side of :mod:`aefi_widget.worker_process`: load an engine, compute one
chunk per credit, send each snapshot back; exit with the kernel.

Spawned by :class:`~aefi_widget.worker_process.WorkerProcess` with ``OMP_NUM_THREADS`` and
``GOMP_SPINCOUNT`` already in its environment, so libgomp reads them when torch first loads here.
Messages (tuples, pickled by ``multiprocessing.Connection``), kernel to worker: the engine's
cloudpickle bytes, ``("start", resume, keywords)``, ``("next",)`` per chunk wanted, ``("end",)``;
worker to kernel: ``("snapshot", result, patches)`` per chunk (its large extras as patches,
:mod:`aefi_widget.snapshot_patches`), then one of ``("done",)``,
``("error", pickled exception or None, traceback text)`` or ``("unloadable", why)``.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import threading
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

from aefi_widget.snapshot_patches import SnapshotSender, with_extras

__all__ = ["IDLE_EXIT_S", "serve"]

# A worker whose job ended cleanly waits this long for the next job (Continue, another method,
# the next test) before it exits: spawning one costs 2-6 s on a 2-core machine (torch's import).
IDLE_EXIT_S = 60.0


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
    _start, resume, keywords = commands.recv()
    generator = None
    sender = SnapshotSender()  # large extras go as the rows that changed: see snapshot_patches
    try:
        if engine is not None:
            generator = engine.increments(resume=resume, **keywords)
            outcome = ("done",)
            while commands.recv()[0] == "next":
                snapshot = next(generator, None)
                if snapshot is None:
                    break
                whole, patches = sender.pack(snapshot.extras)
                results.send(("snapshot", with_extras(snapshot, whole), patches))
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
