"""The ``aefi.jobs`` comm: a page sees the kernel's jobs with moving progress, pauses, resumes
and cancels them, and a bad message changes nothing (the target's registration by
``%load_ext`` in a real kernel: tests/test_ipython_magic.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from widget_fakes import FakeEngine

from aefi_widget.job import Job
from aefi_widget.job_feed import MAX_ERROR_CHARS, MAX_JOBS, JobFeed


class FakeComm:
    """Records what the kernel sends; ``page_sends`` plays a message from the page."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._on_msg: Callable[[Any], None] | None = None
        self._on_close: Callable[[Any], None] | None = None
        self._lock = threading.Lock()

    def send(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.sent.append(data)

    def on_msg(self, callback: Callable[[Any], None]) -> None:
        self._on_msg = callback

    def on_close(self, callback: Callable[[Any], None]) -> None:
        self._on_close = callback

    def page_sends(self, data: Any) -> None:
        assert self._on_msg is not None
        self._on_msg({"content": {"data": data}})

    def close(self) -> None:
        assert self._on_close is not None
        self._on_close({})

    def lists(self) -> list[list[dict[str, Any]]]:
        with self._lock:
            return [m["jobs"] for m in self.sent if "jobs" in m]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_the_page_sees_progress_move_and_pauses_resumes_cancels() -> None:
    job = Job(FakeEngine(n_features=30, n_repeats=4, chunk=2, delay_s=0.05))
    feed = JobFeed(jobs=lambda: [job], interval_s=0.05)
    comm = FakeComm()
    feed.attach(comm)
    assert comm.lists()[0][0]["status"] == "idle"  # the list at once, before any change
    job.start()
    wait_until(lambda: len({rows[0]["done"] for rows in comm.lists()}) >= 3)  # moving
    row = comm.lists()[-1][0]
    assert row["method"] == "permutation" and row["total"] == 30 * 4 * 8 and row["id"] == 1

    comm.page_sends({"action": "pause", "id": 1})
    wait_until(lambda: comm.lists()[-1][0]["status"] == "paused")
    assert job.status == "paused"
    comm.page_sends({"action": "resume", "id": 1})
    wait_until(lambda: job.status == "running")
    comm.page_sends({"action": "cancel", "id": 1})
    wait_until(lambda: comm.lists()[-1][0]["status"] == "cancelled")
    assert job.wait(5)
    comm.close()
    wait_until(lambda: feed._thread is None)  # the watcher stops with the last comm


def test_bad_page_messages_are_answered_and_change_nothing() -> None:
    job = Job(FakeEngine(chunk=2, delay_s=0.05))
    feed = JobFeed(jobs=lambda: [job], interval_s=60)
    comm = FakeComm()
    feed.attach(comm)
    bad_messages = [
        [1],
        {"action": "delete", "id": 1},
        {"action": "pause", "id": True},
        {"action": "pause", "id": "1"},
        {"action": "pause", "id": 99},
        "x" * 10_000,
    ]
    for bad in bad_messages:
        comm.page_sends(bad)
        assert "error" in comm.sent[-1] and len(comm.sent[-1]["error"]) < 300
    assert job.status == "idle"
    comm.page_sends({"action": "refresh"})
    assert comm.sent[-1] == {"jobs": feed.rows()}
    comm.close()


def test_at_most_the_most_recent_jobs_are_listed() -> None:
    jobs = [Job(FakeEngine()) for _ in range(MAX_JOBS + 5)]
    rows = JobFeed(jobs=lambda: jobs).rows()
    assert [r["id"] for r in rows] == list(range(6, MAX_JOBS + 6))


def test_the_page_is_told_done_cancelled_or_failed_and_why_a_job_failed() -> None:
    done = Job(FakeEngine(n_features=4, n_repeats=1, chunk=2))
    cancelled = Job(FakeEngine(n_features=4, n_repeats=1, chunk=2))
    failed = Job(FakeEngine(n_features=30, n_repeats=1, chunk=1, fail_after=3))
    feed = JobFeed(jobs=lambda: [done, cancelled, failed], interval_s=60)
    cancelled.cancel()  # before it starts
    done.start().wait(10)
    failed.start()
    wait_until(lambda: failed.status == "error")
    rows = feed.rows()
    assert [r["status"] for r in rows] == ["done", "cancelled", "error"]
    assert "error" not in rows[0] and "error" not in rows[1]
    assert rows[2]["error"] == "RuntimeError: model exploded"
    assert rows[2]["done"] == 2 * 8 and rows[2]["fraction"] < 0.1  # where it stopped


class LongFailure(FakeEngine):
    """Fails at once with a 5,000-character message (a model may raise any text)."""

    def increments(self, resume: Any = None) -> Any:
        raise ValueError("x" * 5000)
        yield  # a generator, as the runner's protocol asks


def test_a_long_error_is_cut_before_it_reaches_the_page() -> None:
    job = Job(LongFailure()).start()
    wait_until(lambda: job.status == "error")
    row = JobFeed(jobs=lambda: [job]).rows()[0]
    assert row["error"].startswith("ValueError: xxx") and len(row["error"]) == MAX_ERROR_CHARS
