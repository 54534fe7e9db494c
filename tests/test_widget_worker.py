"""OnDemandThread: wakes during a rate-limit delay are covered by the step after it; a thread
idling in keep-alive is woken by a wake at once (not at its next refresh)."""

from __future__ import annotations

import threading

from aefi_widget.widget.worker import OnDemandThread


def test_wakes_during_the_delay_are_coalesced_into_one_step() -> None:
    steps: list[int] = []
    first_step = threading.Event()
    # The first step runs at once; every later one waits out a long delay.
    thread = OnDemandThread(
        "test-delay", lambda: (steps.append(1), first_step.set()), delay=lambda: 0.3 * len(steps)
    )
    thread.wake()
    assert first_step.wait(5)
    for _ in range(50):
        thread.wake()  # all during the delay: no notify, one step after it
    assert thread.flush(timeout=5)
    assert len(steps) == 2
    thread.close()


def test_a_wake_reaches_a_thread_idling_in_keep_alive_at_once() -> None:
    steps = threading.Semaphore(0)
    thread = OnDemandThread("test-idle", steps.release, keep_alive=lambda: True, refresh_s=60.0)
    thread.wake()
    assert steps.acquire(timeout=5)
    # Now blocked in its keep-alive wait (60 s): only a notify can make it step this soon.
    thread.wake()
    assert thread.flush(timeout=5)
    assert steps.acquire(timeout=1)
    thread.close()
