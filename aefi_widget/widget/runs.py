"""The explorer's runs, one per (method, groups setting), and the scheduler: one computes at a time.

Asking for a run starts it (or continues it) and pauses the one computing, which goes on a stack;
when the run on top ends (done, stopped or failed) the run below it continues by itself. A run
paused by the user stays paused (nothing below it takes its turn) until it is asked for again.
Pausing is the Job's own pause at a chunk boundary, which is exact (same numbers as an
uninterrupted run), so switching never loses or changes work. The run displaced finishes the
chunk in flight after the new one started: for well under a second two runs may overlap.

The runs kept are bounded (:data:`MAX_RUNS`): every groups threshold the page sends builds a
run with its own engine (a copy of X) and job, so a flood of messages could otherwise fill the
kernel's memory. Past the bound the least recently asked-for run that is not pinned (the
starting method and its first look) is cancelled and dropped; asked for again, it starts over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDED", "MAX_RUNS", "Run", "RunKey", "Scheduler", "run_status"]

RunKey = tuple[str, str]  # (method key, groups setting: "none", "auto:0.8", "custom")
ENDED = frozenset({"done", "cancelled", "error", "saved"})
_SHOWN_STATUS = {"idle": "not started", "saved": "done"}
# Runs an explorer keeps: the methods (7) under one groups setting and a few more settings.
MAX_RUNS = 12


@dataclass(eq=False)
class Run:
    """One method's computation under one groups setting.

    Attributes
    ----------
    key : str
        Method key (see :data:`~aefi_widget.widget.methods.METHOD_KEYS`).
    groups : str
        Groups setting: "none", "auto:<threshold>" or "custom".
    engine : Engine or None
        None when the run shows a saved result.
    job : Job or SavedJob
        The current job (replaced when a stopped run is continued).
    user_paused : bool
        Paused from the page or Python: the scheduler does not continue it by itself.
    """

    key: str
    groups: str
    engine: Any
    job: Any
    user_paused: bool = False
    unsubscribe: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def run_key(self) -> RunKey:
        """(method key, groups setting)."""
        return (self.key, self.groups)

    @property
    def ended(self) -> bool:
        """Done, stopped, failed, or a saved result."""
        return self.job.status in ENDED


def run_status(run: Run | None, note: str = "") -> str:
    """The selector's word for a run: "not started"/"running"/"paused"/"done"/"cancelled"/
    "error", or "unavailable" when ``note`` says why it cannot run."""
    if note:
        return "unavailable"
    if run is None:
        return "not started"
    status = str(run.job.status)
    return _SHOWN_STATUS.get(status, status)


class Scheduler:
    """Keeps the runs and lets one compute at a time.

    Parameters
    ----------
    on_change : callable(Run)
        Called after every snapshot and status change of any run (on that run's worker thread,
        or the caller's): keep it cheap (the explorer wakes its publisher).
    on_drop : callable(Run), optional
        Called with each run dropped past ``max_runs`` (after its job was cancelled), on the
        thread that added the run displacing it: the explorer closes its drilldown.
    max_runs : int
        Runs kept at most (pinned ones included; pinned runs are never dropped).
    """

    def __init__(
        self,
        on_change: Callable[[Run], None],
        on_drop: Callable[[Run], None] = lambda run: None,
        max_runs: int = MAX_RUNS,
    ) -> None:
        self._on_change, self._on_drop, self._max_runs = on_change, on_drop, max_runs
        self._lock = threading.RLock()
        self._runs: dict[RunKey, Run] = {}
        self._recent: dict[RunKey, None] = {}  # least recently asked for first
        self._pinned: set[RunKey] = set()
        self._stack: list[Run] = []  # asked and not ended; the last one computes

    # ------------------------------------------------------------------ runs
    def add(self, run: Run, *, pinned: bool = False) -> Run:
        """Keep ``run`` (not started) and follow its job; a pinned run is never dropped.
        Drops the least recently asked-for unpinned runs beyond ``max_runs``."""
        with self._lock:
            self._runs[run.run_key] = run
            self._touch(run)
            if pinned:
                self._pinned.add(run.run_key)
            dropped = self._over_bound(keep=run)
        self._follow(run)
        for old in dropped:
            old.unsubscribe()
            old.job.cancel()
            self._on_drop(old)
        return run

    def get(self, key: RunKey) -> Run | None:
        """The run for (method key, groups setting), or None."""
        with self._lock:
            return self._runs.get(key)

    def runs(self) -> list[Run]:
        """Every run, in the order they were added."""
        with self._lock:
            return list(self._runs.values())

    def computing(self) -> Run | None:
        """The run whose turn it is (None when every asked run ended)."""
        with self._lock:
            return self._stack[-1] if self._stack else None

    def replace_job(self, run: Run, job: Any) -> None:
        """Give ``run`` a new job (a stopped run continued) and ask for it."""
        run.unsubscribe()
        with self._lock:
            run.job = job
            run.user_paused = False
        self._follow(run)
        self.ask(run)

    # ------------------------------------------------------------------ control
    def ask(self, *runs: Run) -> None:
        """Let the last of ``runs`` compute now; the others (in order) and the one computing
        until now continue after it, each when the runs above it on the stack end."""
        with self._lock:
            wanted = [run for run in runs if not run.ended]
            if not wanted:
                return
            previous = self.computing()
            for run in runs:
                self._touch(run)
            for run in wanted:
                if run in self._stack:
                    self._stack.remove(run)
                self._stack.append(run)
            top = self._stack[-1]
            if previous is not None and previous is not top and not previous.user_paused:
                previous.job.pause()
            self._go(top)

    def pause(self, run: Run) -> None:
        """Pause ``run`` at its next chunk boundary; it stays paused until asked for again."""
        with self._lock:
            if run.ended:
                return
            run.user_paused = True
            run.job.pause()

    def stop(self, run: Run) -> None:
        """Cancel ``run`` (its partial result is kept); the run below it continues."""
        run.job.cancel()

    def cancel_all(self) -> None:
        """Cancel every run (closing the explorer)."""
        with self._lock:
            self._stack.clear()
            runs = list(self._runs.values())
        for run in runs:
            run.unsubscribe()
            run.job.cancel()

    # ------------------------------------------------------------------ internals
    def _touch(self, run: Run) -> None:
        """Mark ``run`` the most recently asked for (under the lock)."""
        self._recent.pop(run.run_key, None)
        self._recent[run.run_key] = None

    def _over_bound(self, keep: Run) -> list[Run]:
        """Remove the least recently asked-for unpinned runs (never ``keep``) until at most
        ``max_runs`` are kept; returns them (under the lock)."""
        dropped = []
        for key in list(self._recent):
            if len(self._runs) <= self._max_runs:
                break
            if key in self._pinned or key == keep.run_key:
                continue
            del self._recent[key]
            run = self._runs.pop(key)
            if run in self._stack:
                self._stack.remove(run)
            dropped.append(run)
        return dropped

    def _go(self, run: Run) -> None:
        run.user_paused = False
        # Also before a start: a pause asked for before the job ran must not park it at once.
        run.job.resume()
        if run.job.status == "idle":
            run.job.start()

    def _follow(self, run: Run) -> None:
        job = run.job
        run.unsubscribe = job.subscribe(lambda _job: self._notified(run, job))

    def _notified(self, run: Run, job: Any) -> None:
        if job.status in ENDED and job is run.job:
            self._ended(run)
        self._on_change(run)

    def _ended(self, run: Run) -> None:
        with self._lock:
            if run not in self._stack:
                return
            was_top = self._stack[-1] is run
            self._stack.remove(run)
            if was_top and self._stack and not self._stack[-1].user_paused:
                self._go(self._stack[-1])
