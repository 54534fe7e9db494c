"""Behaviour of aefi_widget.job.Job: pause, resume, cancel, errors, subscribers, thread hygiene.

Most tests drive a small fake engine whose chunks take a known time, so timings are measured
against known numbers; the last ones run the real PermutationImportance on a tiny autoencoder.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from aefi_widget.engine import PermutationImportance
from aefi_widget.job import Job, JobProgress
from aefi_widget.result import ImportanceResult, ResumeState

pytestmark = pytest.mark.timeout(60)


class FakeEngine:
    """Engine-shaped generator: chunk k fills one (feature, repeat) cell, round by round.

    Values are a deterministic function of the cell, so a resumed run must give identical
    numbers. ``chunk_s`` sleeps per chunk; ``fail_at`` raises while computing that chunk.
    """

    def __init__(
        self,
        n_features: int = 3,
        n_repeats: int = 4,
        samples: int = 10,
        chunk_s: float = 0.0,
        fail_at: int | None = None,
    ) -> None:
        self.n_features, self.n_repeats, self.samples = n_features, n_repeats, samples
        self.chunk_s, self.fail_at = chunk_s, fail_at
        self.evaluations_total = n_features * n_repeats * samples
        self.generators_started = 0
        self.closed = threading.Event()  # set when a generator is closed before its end

    def empty_result(self) -> ImportanceResult:
        importances = np.full((self.n_features, self.n_repeats), np.nan)
        return self._result(importances, chunks_done=0)

    def _result(self, importances: np.ndarray, chunks_done: int) -> ImportanceResult:
        return ImportanceResult(
            feature_names=tuple(f"x{g}" for g in range(self.n_features)),
            output_names=tuple(f"x{g}" for g in range(self.n_features)),
            importances=importances.copy(),
            baseline_error=0.5,
            evaluations_done=chunks_done * self.samples,
            evaluations_total=self.evaluations_total,
            resume=ResumeState(
                "fake",
                {
                    "round": chunks_done // self.n_features,
                    "chunk": chunks_done % self.n_features,
                    "batch_rows": self.samples,
                },
            ),
        )

    def increments(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
        self.generators_started += 1
        start = resume if resume is not None else self.empty_result()
        importances = np.array(start.importances)
        chunk = start.evaluations_done // self.samples
        try:
            while chunk < self.n_features * self.n_repeats:
                if chunk == self.fail_at:
                    raise RuntimeError(f"model exploded in chunk {chunk}")
                time.sleep(self.chunk_s)
                repeat, feature = divmod(chunk, self.n_features)
                importances[feature, repeat] = np.sin(1.0 + feature * 7.0 + repeat) / 3.0
                chunk += 1
                yield self._result(importances, chunks_done=chunk)
        except GeneratorExit:
            self.closed.set()
            raise

    def run(self) -> ImportanceResult:
        *_, last = self.increments()
        return last


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``condition`` until true; fail the test when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.002)


def assert_same_numbers(actual: ImportanceResult, expected: ImportanceResult) -> None:
    np.testing.assert_array_equal(actual.importances, expected.importances)
    if expected.delta_sum is not None:
        np.testing.assert_array_equal(actual.delta_sum, expected.delta_sum)
    assert actual.evaluations_done == expected.evaluations_done


# ---------------------------------------------------------------------- lifecycle
def test_before_start_the_job_is_idle_and_shows_the_empty_result() -> None:
    engine = FakeEngine()
    job = Job(engine)
    assert job.status == "idle"
    assert job.error is None
    assert np.isnan(job.snapshot().importances).all()
    progress = job.progress
    assert isinstance(progress, JobProgress)
    assert (progress.done, progress.total, progress.fraction) == (0, engine.evaluations_total, 0.0)
    assert progress.eta_s is None and progress.evals_per_s is None
    assert (progress.rounds_done, progress.n_repeats) == (0, 4)
    assert engine.generators_started == 0  # nothing computed until start()


def test_run_to_the_end_gives_the_engine_numbers_and_full_progress() -> None:
    engine = FakeEngine()
    job = Job(engine)
    assert job.start() is job
    result = job.result(timeout=5)
    assert job.status == "done"
    assert_same_numbers(result, FakeEngine().run())
    assert result is job.snapshot()
    progress = job.progress
    assert progress.fraction == 1.0 and progress.done == progress.total
    assert progress.eta_s == 0.0
    assert progress.rounds_done == progress.n_repeats == 4
    assert "done" in repr(job) and "120/120" in repr(job)


def test_starting_twice_raises() -> None:
    job = Job(FakeEngine()).start()
    with pytest.raises(RuntimeError, match="runs only once"):
        job.start()
    job.wait(5)
    with pytest.raises(RuntimeError, match="runs only once"):
        job.start()


def test_wait_and_result_time_out_while_running() -> None:
    job = Job(FakeEngine(chunk_s=0.05)).start()
    started = time.monotonic()
    assert job.wait(timeout=0.05) is False
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)
    assert time.monotonic() - started < 0.5
    job.cancel()
    assert job.wait(2)


def test_result_of_a_job_never_started_raises_instead_of_hanging() -> None:
    with pytest.raises(RuntimeError, match="never started"):
        Job(FakeEngine()).result(timeout=0.1)


def test_rate_and_eta_appear_once_chunks_arrive() -> None:
    job = Job(FakeEngine(n_repeats=20, chunk_s=0.01)).start()
    wait_until(lambda: job.progress.done >= 30)
    progress = job.progress
    assert progress.evals_per_s is not None and progress.evals_per_s > 0
    assert progress.eta_s is not None and progress.eta_s > 0
    assert 0 < progress.fraction < 1 and progress.elapsed_s > 0
    assert "running" in repr(job)
    job.cancel()
    assert job.wait(2)


# ---------------------------------------------------------------------- pause and resume
def test_pause_holds_progress_still_and_resume_reaches_identical_numbers() -> None:
    engine = FakeEngine(n_repeats=10, chunk_s=0.01)
    started = time.monotonic()
    job = Job(engine).start()
    wait_until(lambda: job.progress.done >= 20)
    job.pause()
    wait_until(lambda: job.status == "paused", timeout=1.0)
    held = job.snapshot()
    before = job.progress
    time.sleep(0.25)  # ~25 chunks' worth of time
    after = job.progress
    assert job.status == "paused"
    assert job.snapshot() is held
    assert after.done == before.done < after.total
    assert after.elapsed_s == before.elapsed_s  # paused time is not computing time

    job.resume()
    result = job.result(timeout=5)
    assert job.status == "done"
    assert_same_numbers(result, FakeEngine(n_repeats=10).run())
    assert engine.generators_started == 1  # the same generator continued
    assert not engine.closed.is_set()
    # Elapsed is computing time: the wall-clock time minus (at least) the 0.25 s pause.
    assert job.progress.elapsed_s <= time.monotonic() - started - 0.25


def test_pause_requested_before_start_parks_at_the_first_boundary() -> None:
    job = Job(FakeEngine())
    job.pause()
    job.start()
    wait_until(lambda: job.status == "paused")
    assert job.progress.done == 0
    job.resume()
    assert job.result(timeout=5).complete


def test_a_new_job_resumed_from_a_cancelled_snapshot_finishes_identically() -> None:
    first = Job(FakeEngine(chunk_s=0.01)).start()
    wait_until(lambda: first.progress.done >= 30)
    first.cancel()
    partial = first.result(timeout=2)
    assert 0 < partial.evaluations_done < partial.evaluations_total

    second = Job(FakeEngine(), resume=partial)
    assert second.snapshot() is partial and second.progress.done == partial.evaluations_done
    assert_same_numbers(second.start().result(timeout=5), FakeEngine().run())
    # Its rate counts only the evaluations it computed itself.
    assert second.progress.evals_per_s is not None


# ---------------------------------------------------------------------- cancel
def test_cancel_takes_effect_within_one_second_and_keeps_the_partial_result() -> None:
    engine = FakeEngine(n_repeats=100, chunk_s=0.1)
    job = Job(engine)
    closed_when_cancelled: list[bool] = []
    job.subscribe(
        lambda job_: (
            job_.status == "cancelled" and closed_when_cancelled.append(engine.closed.is_set())
        )
    )
    job.start()
    wait_until(lambda: job.progress.done > 0)
    started = time.monotonic()
    job.cancel()
    assert job.wait(timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert job.status == "cancelled"
    # The generator was closed before "cancelled" was announced, so the engine has cleaned up.
    assert closed_when_cancelled == [True]
    partial = job.result(timeout=0)
    assert 0 < partial.evaluations_done < partial.evaluations_total
    assert job.progress.eta_s is None


def test_cancel_while_paused_ends_the_job() -> None:
    engine = FakeEngine(chunk_s=0.01)
    job = Job(engine).start()
    wait_until(lambda: job.progress.done > 0)  # the generator is suspended at a yield
    job.pause()
    wait_until(lambda: job.status == "paused")
    job.cancel()
    assert job.wait(1.0)
    assert job.status == "cancelled" and engine.closed.is_set()


def test_cancel_before_start_ends_the_job_without_a_thread() -> None:
    job = Job(FakeEngine())
    job.cancel()
    assert job.status == "cancelled" and job.wait(0)
    with pytest.raises(RuntimeError, match="runs only once"):
        job.start()


def test_100_start_cancel_cycles_leave_no_threads_behind() -> None:
    baseline = threading.active_count()
    for cycle in range(100):
        job = Job(FakeEngine(chunk_s=0.002)).start()
        if cycle % 3 == 1:
            job.pause()
        job.cancel()
        assert job.wait(2.0)
        assert job.status in ("cancelled", "done")
        # Ended means the worker thread is gone, not merely finishing.
        assert threading.active_count() == baseline, f"cycle {cycle}"
    assert threading.active_count() == baseline


# ---------------------------------------------------------------------- errors
def test_engine_exception_sets_error_keeps_partial_result_and_result_reraises() -> None:
    job = Job(FakeEngine(fail_at=3)).start()
    assert job.wait(5)
    assert job.status == "error"
    assert isinstance(job.error, RuntimeError)
    assert job.snapshot().evaluations_done == 3 * 10  # the three finished chunks are kept
    with pytest.raises(RuntimeError, match="model exploded in chunk 3") as raised:
        job.result()
    assert raised.value is job.error
    # The traceback still reaches into the engine's frame that raised.
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-1] == "increments"
    assert "error" in repr(job) and "model exploded" in repr(job)


def test_engine_that_raises_before_its_first_chunk_ends_in_error() -> None:
    class EagerlyFailing(FakeEngine):
        def increments(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
            raise ValueError("bad settings")

    job = Job(EagerlyFailing()).start()
    with pytest.raises(ValueError, match="bad settings"):
        job.result(timeout=5)
    assert job.status == "error" and np.isnan(job.snapshot().importances).all()


# ---------------------------------------------------------------------- subscribers
def test_subscribers_see_every_snapshot_and_status_change_on_the_worker_thread() -> None:
    job = Job(FakeEngine())
    seen: list[tuple[str, int]] = []
    threads: set[threading.Thread] = set()

    def record(job_: Job) -> None:
        # Reading progress and repr here would deadlock if the job held its lock while calling.
        seen.append((job_.status, job_.progress.done))
        repr(job_)
        threads.add(threading.current_thread())

    job.subscribe(record)
    ended = job.start().wait(5)
    assert ended, "the worker is stuck: it probably calls subscribers while holding its lock"
    assert threads and threading.main_thread() not in threads
    assert seen[0] == ("running", 0) and seen[-1] == ("done", 120)
    done_values = [done for status, done in seen if status == "running"]
    assert done_values == [0, *range(10, 121, 10)]  # once at the start, then once per chunk


def test_a_failing_subscriber_is_logged_and_the_job_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = Job(FakeEngine())
    calls: list[str] = []

    def broken(job_: Job) -> None:
        raise ZeroDivisionError("subscriber bug")

    job.subscribe(broken)
    job.subscribe(lambda job_: calls.append(job_.status))
    with caplog.at_level(logging.ERROR, logger="aefi_widget.job"):
        assert job.start().result(timeout=5).complete
    assert job.status == "done" and calls[-1] == "done"
    assert any("subscriber bug" in (r.exc_text or "") for r in caplog.records)


def test_unsubscribe_stops_notifications() -> None:
    job = Job(FakeEngine(chunk_s=0.005))
    calls: list[int] = []
    unsubscribe = job.subscribe(lambda job_: calls.append(job_.progress.done))
    job.start()
    wait_until(lambda: len(calls) >= 3)
    unsubscribe()
    count = len(calls)
    job.wait(5)
    assert len(calls) <= count + 1  # at most the call already under way
    unsubscribe()  # a second call is harmless


# ---------------------------------------------------------------------- the real engine
class TinyAutoencoder(torch.nn.Module):
    """6 -> 4 -> 6 autoencoder that counts forward calls, can be slow, and can raise on call k."""

    def __init__(self, fail_on_call: int | None = None, forward_s: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 6)
        )
        self.calls, self.fail_on_call, self.forward_s = 0, fail_on_call, forward_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise FloatingPointError(f"forward call {self.calls} failed")
        time.sleep(self.forward_s)
        return self.net(x)


X_TINY = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)


def tiny_engine(model: torch.nn.Module, batch_size: int = 10) -> PermutationImportance:
    # batch_size=10 splits every (feature, repeat) into 5 chunks: many pause/cancel boundaries.
    return PermutationImportance(model, X_TINY, n_repeats=10, batch_size=batch_size, seed=3)


def test_real_engine_pause_and_resume_reach_the_uninterrupted_numbers() -> None:
    expected = tiny_engine(TinyAutoencoder()).run()
    job = Job(tiny_engine(TinyAutoencoder(forward_s=0.002))).start()
    wait_until(lambda: job.progress.done >= 100)
    job.pause()
    wait_until(lambda: job.status == "paused", timeout=1.0)
    held = job.progress.done
    time.sleep(0.1)
    assert job.progress.done == held < expected.evaluations_total
    job.resume()
    assert_same_numbers(job.result(timeout=15), expected)
    np.testing.assert_array_equal(job.snapshot().importances, expected.importances)


def test_real_engine_job_resumed_from_a_cancelled_snapshot_matches_a_full_run() -> None:
    expected = tiny_engine(TinyAutoencoder()).run()
    first = Job(tiny_engine(TinyAutoencoder(forward_s=0.002))).start()
    wait_until(lambda: first.progress.done >= 100)
    first.cancel()
    partial = first.result(timeout=2)
    assert 0 < partial.evaluations_done < expected.evaluations_total
    second = Job(tiny_engine(TinyAutoencoder()), resume=partial).start()
    assert_same_numbers(second.result(timeout=15), expected)


def test_real_engine_cancel_within_one_second_restores_the_model() -> None:
    model = TinyAutoencoder(forward_s=0.05)  # ~30 s of work in all
    model.train()
    job = Job(tiny_engine(model)).start()
    wait_until(lambda: job.progress.done > 0, timeout=5)
    started = time.monotonic()
    job.cancel()
    assert job.wait(timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert job.status == "cancelled"
    assert 0 < job.result().evaluations_done < job.progress.total
    assert model.training  # the closed generator put the training flags back


def test_real_engine_model_raising_on_its_third_forward_call() -> None:
    expected = tiny_engine(TinyAutoencoder()).run()
    model = TinyAutoencoder()
    # One forward call per (feature, repeat): the run calls baseline, chunk 1, then chunk 2.
    engine = tiny_engine(model, batch_size=len(X_TINY))
    model.calls, model.fail_on_call = 0, 3  # count the run's calls, not the engine's set-up
    job = Job(engine).start()
    assert job.wait(10)
    assert job.status == "error" and isinstance(job.error, FloatingPointError)
    partial = job.snapshot()
    assert 0 < partial.evaluations_done < expected.evaluations_total
    computed = ~np.isnan(partial.importances)
    np.testing.assert_array_equal(partial.importances[computed], expected.importances[computed])
    with pytest.raises(FloatingPointError, match="forward call 3 failed") as raised:
        job.result()
    assert raised.value is job.error
    assert "forward" in [f.name for f in traceback.extract_tb(raised.value.__traceback__)]

    model.fail_on_call = None  # the cause is fixed: a new job continues from the partial result
    assert_same_numbers(Job(engine, resume=partial).start().result(timeout=15), expected)


EXITING_SCRIPT = """
import sys, time
import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder
frame = make_correlated_data(n_samples=200, n_features=200, seed=0)
model = seed_like_autoencoder(200, seed=0).eval()
engine = aefi.PermutationImportance(model, frame, n_repeats=500, batch_size=4000)
job = aefi.Job(engine, checkpoint=sys.argv[1]).start()
while job.snapshot().evaluations_done == 0:
    time.sleep(0.01)
print("returning while the job runs", job.status)
"""


def test_a_script_returning_while_a_job_runs_exits_cleanly(tmp_path):
    # Without the exit hook the interpreter tore down under a thread still inside torch:
    # "terminate called without an active exception", exit status 134.
    checkpoint = tmp_path / "run.npz"
    done = subprocess.run(
        [sys.executable, "-c", EXITING_SCRIPT, str(checkpoint)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "returning while the job runs running" in done.stdout
    assert "terminate called" not in done.stderr
    # The cancel at exit wrote the job's last snapshot: nothing computed is lost.
    saved = ImportanceResult.load(checkpoint)
    assert 0 < saved.evaluations_done < saved.evaluations_total
