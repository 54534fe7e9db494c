"""Explorer(backend="process"): the main run computes in a worker spawned when the explorer is
made; Stop kills it, Continue is exact, a model that cannot travel computes on a thread with a
notice on the page, and closing leaves no worker process behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from reference import correlated_data, sequential_ae
from test_job_process import process_alive, wait_until

from aefi_widget import PermutationImportance
from aefi_widget.widget import Explorer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def small_model() -> tuple[torch.nn.Module, np.ndarray]:
    return sequential_ae(10, hidden=3, dtype=torch.float32), correlated_data(120, 10)


def test_stop_continue_and_close_in_a_worker_process(small_model) -> None:
    model, X = small_model
    keywords = dict(n_repeats=6, seed=3, batch_size=240)  # 240 rows a chunk: many chunks
    reference = PermutationImportance(model, X, **keywords).run()
    explorer = Explorer(model, X, autostart=False, backend="process", **keywords)
    try:
        first = explorer.job
        assert first.backend == "process" and first.worker_pid is not None  # spawned already
        first.subscribe(lambda job: job.cancel())  # Stop after the first snapshot
        explorer.start()
        assert first.wait(60) and first.status == "cancelled"
        assert wait_until(lambda: not process_alive(first.worker_pid), timeout=10)
        assert not explorer.result.complete
        explorer._control("resume")  # the page's Continue: a new worker from the partial result
        assert explorer.job is not first and explorer.job.backend == "process"
        assert explorer.job.wait(60) and explorer.job.status == "done"
        np.testing.assert_array_equal(explorer.result.importances, reference.importances)
        kept = explorer.job.worker_pid  # ended cleanly: kept idle for the next run
        assert process_alive(kept)
    finally:
        explorer.close()
    assert wait_until(lambda: not process_alive(kept), timeout=10)


def test_a_model_that_cannot_travel_computes_on_a_thread_with_a_notice(small_model) -> None:
    model, X = small_model
    model.log_lock = threading.Lock()
    with pytest.warns(RuntimeWarning, match="log_lock"):
        explorer = Explorer(model, X, autostart=False, backend="process", n_repeats=2)
    try:
        assert explorer.job.backend == "thread"
        assert explorer.publisher.flush()
        assert "computing on a thread" in explorer.dashboard.warning
    finally:
        explorer.close()
