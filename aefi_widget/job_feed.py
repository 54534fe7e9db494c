"""The kernel's aefi jobs as messages for a front end: the comm target ``aefi.jobs``.

A page (the JupyterLab status-bar item) opens a comm to the target ``aefi.jobs``; the kernel
answers with the list of jobs and sends it again whenever it changes, at most twice a second;
the page may ask to pause, resume or cancel a job. Why a comm and not the widget models already
in the page: a headless ``aefi.Job(engine).start()`` has no widget, and the dashboard's traits
are the dashboard's own business (they change with its views); the job list is read through
:class:`~aefi_widget.job.Job`'s public state only (``status``, ``progress``, ``snapshot()``,
``pause/resume/cancel``), so it holds wherever a Job computes (thread or worker process).

Messages (JSON)::

    kernel -> page  {"jobs": [{"id": 1, "method": "permutation", "status": "running",
                               "done": 1200, "total": 4000, "fraction": 0.3,
                               "elapsed_s": 4.1, "eta_s": 9.6}, ...]}
                    (a failed job, status "error", adds "error": "RuntimeError: ...")
    page -> kernel  {"action": "pause" | "resume" | "cancel", "id": 1}
                    {"action": "refresh"}

Jobs are listed oldest first, at most ``MAX_JOBS`` (the most recent). A page message is
checked before it acts: anything else is answered ``{"error": "..."}`` and changes nothing.
"""

from __future__ import annotations

import itertools
import json
import threading
import weakref
from collections.abc import Callable
from typing import Any

from aefi_widget.job import Job, live_jobs

__all__ = ["MAX_JOBS", "TARGET", "JobFeed", "register_target"]

TARGET = "aefi.jobs"
MAX_JOBS = 20
# Seconds between two looks at the jobs: the most a page hears of them (2 messages a second,
# far below the ~1,000/s a server drops) and the most a change waits to be seen.
INTERVAL_S = 0.5
_ACTIONS = ("pause", "resume", "cancel")
# Characters of a failed job's error sent to the page (its first line says what went wrong).
MAX_ERROR_CHARS = 200


def job_row(number: int, job: Job) -> dict[str, Any]:
    """What the page shows of one job (JSON scalars)."""
    progress = job.progress
    row = {
        "id": number,
        "method": job.snapshot().method,
        "status": job.status,
        "done": progress.done,
        "total": progress.total,
        "fraction": round(progress.fraction, 4),
        "elapsed_s": round(progress.elapsed_s, 1),
        "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1),
    }
    if job.status == "error" and job.error is not None:
        row["error"] = f"{type(job.error).__name__}: {job.error}"[:MAX_ERROR_CHARS]
    return row


class JobFeed:
    """Sends the job list to every open comm when it changes; acts on the pages' requests.

    Parameters
    ----------
    jobs : callable, default :func:`aefi_widget.job.live_jobs`
        Returns the jobs to list.
    interval_s : float
        Seconds between two looks at the jobs (on a daemon thread, while a comm is open).
    """

    def __init__(
        self, jobs: Callable[[], list[Job]] = live_jobs, interval_s: float = INTERVAL_S
    ) -> None:
        self._jobs = jobs
        self._interval_s = interval_s
        self._numbers: weakref.WeakKeyDictionary[Job, int] = weakref.WeakKeyDictionary()
        self._counter = itertools.count(1)
        self._comms: list[Any] = []
        self._last: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def rows(self) -> list[dict[str, Any]]:
        """The current list, oldest job first (numbered in the order the feed first saw them)."""
        with self._lock:
            for job in self._jobs():
                if job not in self._numbers:
                    self._numbers[job] = next(self._counter)
            numbered = sorted((n, job) for job, n in self._numbers.items())[-MAX_JOBS:]
        return [job_row(n, job) for n, job in numbered]

    def attach(self, comm: Any) -> None:
        """Serve ``comm`` (an open ``comm.base_comm.BaseComm``): the list now, then changes."""
        comm.on_msg(lambda message: self.handle(comm, message["content"]["data"]))
        comm.on_close(lambda _message: self._detach(comm))
        with self._lock:
            self._comms.append(comm)
            start = self._thread is None
            if start:
                self._thread = threading.Thread(target=self._watch, name="aefi-jobs", daemon=True)
        comm.send({"jobs": self.rows()})
        if start:
            self._thread.start()

    def _detach(self, comm: Any) -> None:
        with self._lock:
            if comm in self._comms:
                self._comms.remove(comm)

    def handle(self, comm: Any, data: Any) -> None:
        """Act on one page message (see the module's docstring); answer errors on ``comm``."""
        action = data.get("action") if isinstance(data, dict) else None
        if action == "refresh":
            comm.send({"jobs": self.rows()})
            return
        number = data.get("id") if isinstance(data, dict) else None
        if action not in _ACTIONS or isinstance(number, bool) or not isinstance(number, int):
            comm.send({"error": f"expected {{'action': pause|resume|cancel, 'id': int}}, got "
                                f"{json.dumps(data, default=str)[:200]}"})  # fmt: skip
            return
        with self._lock:
            job = next((j for j, n in self._numbers.items() if n == number), None)
        if job is None:
            comm.send({"error": f"no job {number} in this kernel"})
            return
        getattr(job, action)()
        self._wake.set()  # show the new state without waiting a whole interval

    def flush(self) -> bool:
        """Send the list to every comm if it changed since the last send; True when sent."""
        rows = self.rows()
        text = json.dumps(rows)
        with self._lock:
            if text == self._last:
                return False
            self._last = text
            comms = list(self._comms)
        for comm in comms:
            comm.send({"jobs": rows})
        return True

    def _watch(self) -> None:
        """Look every ``interval_s`` until the last comm closes (the next attach restarts it)."""
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            with self._lock:
                if not self._comms:
                    self._thread = None
                    return
            self.flush()


_feed: JobFeed | None = None


def register_target(manager: Any = None) -> JobFeed:
    """Register ``aefi.jobs`` with the kernel's comm manager (once) and return its feed."""
    global _feed
    if _feed is None:
        if manager is None:
            import comm  # ipykernel's comm layer; only in a kernel

            manager = comm.get_comm_manager()
        feed = JobFeed()
        manager.register_target(TARGET, lambda opened, _message: feed.attach(opened))
        _feed = feed
    return _feed
