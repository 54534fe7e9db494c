"""A thread that runs only while there is work: wake() starts it, it ends when idle.

Used by the publisher and the drilldown so that a finished explorer holds no thread, while any
number of wakes between two steps cost one step (coalescing). Wakes are counted: flush() waits
until every wake made before it is covered by a finished step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["OnDemandThread"]

logger = logging.getLogger(__name__)


class OnDemandThread:
    """Runs ``step()`` after wakes, one at a time, on a daemon thread started on demand.

    Parameters
    ----------
    name : str
        Thread name (shows up in debuggers and thread dumps).
    step : callable
        The work; its exceptions are logged and the thread goes on.
    delay : callable returning float, optional
        Seconds to wait before the next step (rate limiting); wakes arriving meanwhile are
        covered by that same step.
    keep_alive : callable returning bool, optional
        While true, the thread stays and steps every ``refresh_s`` even without wakes.
    refresh_s : float
        Idle step interval while ``keep_alive()`` holds.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], None],
        *,
        delay: Callable[[], float] = lambda: 0.0,
        keep_alive: Callable[[], bool] = lambda: False,
        refresh_s: float = 1.0,
    ) -> None:
        self.name = name
        self._step, self._delay, self._keep_alive = step, delay, keep_alive
        self._refresh_s = refresh_s
        self._cv = threading.Condition()
        self._wanted = 0  # wakes so far
        self._served = 0  # wakes covered by a finished step
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = False  # the thread is blocked in _next() waiting for a wake

    def wake(self) -> None:
        """Ask for a step soon; cheap and safe on any thread."""
        with self._cv:
            if self._closed:
                return
            self._wanted += 1
            # Only a thread waiting for work needs a notify: one waiting out its delay (the
            # rate limit) covers this wake when the delay ends. Notifying it on every wake
            # made it wake, take the GIL and sleep again per chunk: ~5 % of a busy job's
            # worker thread at 20 chunks/s (py-spy, benchmarks/bench_dashboard.py).
            if self._idle:
                self._cv.notify_all()
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                # Recorded only once started: a thread that failed to start (too many threads)
                # must not stand in for one, or no later wake would start one and close()
                # would join a thread that never ran. The wake stays counted for the next one.
                thread.start()
                self._thread = thread

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every wake so far is covered by a finished step; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            target = self._wanted
            while self._served < target and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return self._served >= target

    def close(self, timeout: float = 5.0) -> None:
        """No more steps; waits (up to ``timeout``) for a step in progress to finish."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is running now."""
        with self._cv:
            return self._thread is not None

    def _next(self) -> bool:
        """Block until there is work (True) or the thread should end (False)."""
        with self._cv:
            while not self._closed:
                if self._served < self._wanted:
                    return True
                if not self._keep_alive():
                    break
                self._idle = True
                try:
                    woken = self._cv.wait(self._refresh_s)
                finally:
                    self._idle = False
                if not woken:
                    return True  # kept alive: step anyway (e.g. refresh a clock)
            # Decided under the lock, so a wake either sees this thread or starts a new one.
            self._thread = None
            return False

    def _run(self) -> None:
        while self._next():
            delay = self._delay()
            if delay > 0:
                with self._cv:
                    self._cv.wait_for(lambda: self._closed, timeout=delay)
            with self._cv:
                target = self._wanted  # wakes that arrived during the delay are covered too
            try:
                self._step()
            except Exception:
                logger.exception("aefi_widget: %s failed a step", self.name)
            with self._cv:
                self._served = max(self._served, target)
                self._cv.notify_all()
