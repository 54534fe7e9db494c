"""One publisher thread per dashboard: job notifications in, at most 10 trait updates a second out.

The job's worker calls :meth:`Publisher.wake` after every chunk (it only bumps a counter), so
the worker never waits for the page. The publisher thread coalesces everything that arrived
since its last update, encodes the latest snapshot once and writes all traits in one
``hold_sync`` message under the dashboard lock. The Jupyter server silently drops widget
messages above ~1,000/s, and a browser flooded with updates freezes; 10/s is what tqdm uses too.

The thread exists only while there is something to do (a running job or a pending request) and
starts again on the next wake, so a finished explorer holds no thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aefi_widget.display_labels import header_fields
from aefi_widget.result import ImportanceResult
from aefi_widget.widget.dashboard import Dashboard
from aefi_widget.widget.payload import encode_result
from aefi_widget.widget.run_lines import run_lines
from aefi_widget.widget.worker import OnDemandThread

__all__ = ["Publisher"]

# Large updates (20,000 features = 400 KB) are spaced further apart to keep ~2 MB/s at most.
BYTES_PER_SECOND = 2_000_000
# While the job runs, refresh elapsed time and ETA at least this often even without a chunk.
REFRESH_S = 1.0


class Publisher:
    """Mirrors ``job`` into ``dashboard`` at most ``max_rate`` times per second.

    Parameters
    ----------
    dashboard : Dashboard
        The widget whose traits this publisher (and only it, apart from Python setters under
        the dashboard lock) writes.
    job : Job
        Anything following the Job contract (``subscribe``, ``snapshot``, ``progress``,
        ``status``, ``error``, ``pause``, ``resume``, ``cancel``).
    max_rate : float
        Upper bound on updates per second.
    """

    def __init__(
        self,
        dashboard: Dashboard,
        job: Any,
        *,
        max_rate: float = 10.0,
        extra: Callable[[ImportanceResult, str, int], dict[str, Any]] | None = None,
    ) -> None:
        self.dashboard = dashboard
        self.job = job
        # Whose status, progress and error the header shows (the shown job unless follow() says
        # otherwise: a first look stands in for the run it precedes).
        self.status_job = job
        # More traits of the same update (the explorer's methods, views and view data):
        # extra(snapshot, selected name, top_n) -> {trait: value}, computed outside the lock.
        self._extra = extra
        self.min_interval = 1.0 / max_rate
        self.updates = 0
        self._last_update = -math.inf
        self._last_bytes = 0
        self._thread = OnDemandThread(
            "aefi-publisher",
            self._update,
            delay=self._delay,
            # While the job runs, elapsed time and ETA move even between chunks.
            keep_alive=lambda: self.status_job.status == "running",
            refresh_s=REFRESH_S,
        )
        dashboard.connect(self.wake, self._control)
        self._unsubscribe = job.subscribe(lambda _job: self.wake())
        self.wake()  # the initial picture (names, empty summary, status)

    def follow(self, job: Any, status_job: Any = None) -> None:
        """Publish ``job`` from now on instead of the current one (a run continued after Stop,
        another method shown); the header's status and progress come from ``status_job``
        (default: ``job``)."""
        status_job = job if status_job is None else status_job
        if job is self.job and status_job is self.status_job:
            return
        self._unsubscribe()
        self.job, self.status_job = job, status_job
        wake = lambda _job: self.wake()  # noqa: E731
        unsubscribes = [job.subscribe(wake)]
        if status_job is not job:
            unsubscribes.append(status_job.subscribe(wake))
        self._unsubscribe = lambda: [unsubscribe() for unsubscribe in unsubscribes]
        self.wake()

    def wake(self) -> None:
        """Ask for an update soon; cheap and safe on any thread (the job's worker calls it)."""
        self._thread.wake()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every wake so far is reflected in the traits; False on timeout."""
        return self._thread.flush(timeout)

    def close(self) -> None:
        """Stop publishing and unsubscribe from the job (the job itself keeps running)."""
        self._unsubscribe()
        self._thread.close()

    def _control(self, action: str) -> None:
        # Job.pause/resume/cancel only set events: fine on a message thread.
        job = self.status_job
        {"pause": job.pause, "resume": job.resume, "stop": job.cancel}[action]()

    def _delay(self) -> float:
        # The rate limit, or longer for large updates.
        spacing = max(self.min_interval, self._last_bytes / BYTES_PER_SECOND)
        return self._last_update + spacing - time.monotonic()

    def _update(self) -> None:
        """Read the job once, encode, and write every trait in one message."""
        job, status_job, dashboard = self.job, self.status_job, self.dashboard
        # Status first: a snapshot read after an "ended" status is the final one, and the job
        # wakes us after every status change, so the last update always shows the end.
        status = status_job.status
        error = status_job.error
        snapshot = job.snapshot()
        progress = status_job.progress
        selected, top_n, warnings, resync = dashboard.take_requests()
        top_n = dashboard.top_n if top_n is None else top_n
        payload = encode_result(snapshot, top_n, selected)
        # One header line per run on screen; the explorer's extra traits may name them better.
        extra = {"runs": run_lines(job, status_job)}
        if self._extra is not None:
            extra.update(self._extra(snapshot, selected, top_n))
        extra_bytes = sum(len(v) for v in extra.values() if isinstance(v, bytes))
        self._last_bytes = payload.nbytes + extra_bytes
        progress_state = {
            key: getattr(progress, key)
            for key in (
                "done",
                "total",
                "fraction",
                "elapsed_s",
                "eta_s",
                "evals_per_s",
                "rounds_done",
                "n_repeats",
            )
        }
        with dashboard.lock, dashboard.hold_sync():
            if snapshot.feature_names != tuple(dashboard.feature_names):
                # Another run shown (other units): new names in the same message as their
                # numbers, a new name index, and a selection outside them dropped.
                dashboard.set_units(snapshot.feature_names)
            dashboard.top_n = top_n
            # Unchanged values send nothing; the baseline error appears with the first chunk.
            dashboard.header = header_fields(snapshot)
            for name, value in payload.traits().items():
                dashboard.set_trait(name, value)
            for name, value in extra.items():
                dashboard.set_trait(name, value)
            dashboard.progress = progress_state
            dashboard.status = status
            dashboard.error = "" if error is None else f"{type(error).__name__}: {error}"
            # The current selection, not the one encoded: a Python setter may have run since.
            dashboard.selected_feature = dashboard.selected
            warning, new_warnings = warnings
            if new_warnings:
                dashboard.warning = warning
                dashboard.warning_count += new_warnings
            dashboard.update_count += 1
            self.updates += 1
            if resync:
                dashboard.send_state(sorted(resync))
        # Measured after the message left (hold_sync sends on exit), so the next one starts at
        # least min_interval later: what the page sees is spaced, not just the encodings.
        self._last_update = time.monotonic()
