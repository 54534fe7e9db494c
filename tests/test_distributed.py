"""client=: permutation and gradient importance on a Dask LocalCluster equal the local run bit
for bit (Shapley and the latent lens: test_distributed_methods.py)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder
from aefi_widget.engine.runner import IncrementalMethod
from aefi_widget.job import Job

distributed = pytest.importorskip("distributed")
from dask_helpers import eventually, local_cluster, scheduler_tasks  # noqa: E402
from reference import FailingOnCall  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def client():
    with local_cluster() as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def problem():
    X = make_correlated_data(96, 24, seed=3)
    return seed_like_autoencoder(24, seed=1), X


@pytest.mark.parametrize(
    "keywords",
    [
        {"n_repeats": 3},
        {"n_repeats": 2, "batch_size": 50, "max_samples": 40},
        {"n_repeats": 2, "batch_size": 77, "groups": "auto", "target": "permuted"},
        {"n_repeats": 2, "batch_size": 200, "per_output": False, "_forward_path": "plain"},
    ],
)
def test_cluster_numbers_equal_the_local_run_bit_for_bit(client, problem, keywords):
    model, X = problem
    local = aefi.permutation_importance(model, X, **keywords)
    remote = aefi.permutation_importance(model, X, client=client, **keywords)
    np.testing.assert_array_equal(remote.importances, local.importances)
    if local.delta_sum is not None:
        np.testing.assert_array_equal(remote.delta_sum, local.delta_sum)
    assert remote.evaluations_done == local.evaluations_done == local.evaluations_total
    # Snapshots stream in plan order, as locally.
    engine = aefi.PermutationImportance(model, X, **keywords)
    local_steps = [s.evaluations_done for s in engine.increments()]
    remote_steps = [s.evaluations_done for s in engine.increments(client=client)]
    assert remote_steps == local_steps


def test_cancel_stops_part_way_and_leaves_no_tasks(client, problem):
    model, X = problem
    engine = aefi.PermutationImportance(model, X, n_repeats=200, batch_size=40)
    for _ in range(3):
        job = Job(engine, client=client).start()
        while job.progress.done == 0 and job.status == "running":
            time.sleep(0.02)
        job.cancel()
        # Waits on the condition, not a clock (CI machines are busy): the run stops part-way.
        assert job.wait(timeout=120)
        snapshot = job.snapshot()
        assert job.status == "cancelled"
        assert 0 < snapshot.evaluations_done < snapshot.evaluations_total
    deadline = time.monotonic() + 60
    while scheduler_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scheduler_tasks(client) == 0


def test_a_killed_worker_costs_only_its_tasks(client, problem):
    model, X = problem
    keywords = {"n_repeats": 12, "batch_size": 120}  # 240 chunks: the kill lands mid-run
    reference = aefi.permutation_importance(model, X, **keywords)
    pids = list(client.run(os.getpid).values())
    killed = threading.Event()
    engine = aefi.PermutationImportance(model, X, **keywords)
    result = None
    for result in engine.increments(client=client):
        if not killed.is_set() and result.evaluations_done > result.evaluations_total // 4:
            os.kill(pids[0], signal.SIGKILL)
            killed.set()
    assert killed.is_set()
    np.testing.assert_array_equal(result.importances, reference.importances)
    np.testing.assert_array_equal(result.delta_sum, reference.delta_sum)
    client.wait_for_workers(2, timeout=240)  # a nanny restart on a busy machine


def _spec_holders(dask_scheduler) -> dict[str, list[str]]:
    """Scattered WorkerSpec keys and the workers holding a replica of each."""
    return {
        str(key): sorted(ws.address for ws in task.who_has)
        for key, task in dask_scheduler.tasks.items()
        if str(key).startswith("WorkerSpec-")
    }


def _drop_replica(dask_scheduler, key: str, address: str) -> None:
    """What Dask's active memory manager does to a replica no waiting task needs."""
    dask_scheduler.request_remove_replicas(address, [key], stimulus_id="test-drop-replica")


def test_a_killed_worker_holding_the_only_replica_of_the_spec_costs_only_its_tasks(problem):
    model, X = problem
    keywords = {"n_repeats": 12, "batch_size": 120}
    reference = aefi.permutation_importance(model, X, **keywords)
    engine = aefi.PermutationImportance(model, X, **keywords)
    killed = None
    # A cluster of its own: the module's cluster never waits on a nanny's restart (which once
    # did not come within 240 s on a busy CI machine), and this test needs none.
    with local_cluster() as own:
        pids = own.run(os.getpid)
        for result in engine.increments(client=own):
            if killed is None and result.evaluations_done > result.evaluations_total // 4:
                ((key, addresses),) = own.run_on_scheduler(_spec_holders).items()
                for address in addresses[1:]:
                    own.run_on_scheduler(_drop_replica, key=key, address=address)
                alone = lambda key=key: len(own.run_on_scheduler(_spec_holders)[key]) == 1  # noqa: E731
                assert eventually(alone)
                killed = own.run_on_scheduler(_spec_holders)[key][0]
                os.kill(pids[killed], signal.SIGKILL)
    assert killed is not None
    np.testing.assert_array_equal(result.importances, reference.importances)
    np.testing.assert_array_equal(result.delta_sum, reference.delta_sum)
    assert result.evaluations_done == reference.evaluations_done


def test_a_chunk_raising_on_a_worker_ends_in_error_and_resumes_locally(client, problem, tmp_path):
    model, X = problem
    keywords = {"n_repeats": 6, "batch_size": 100}
    reference = aefi.permutation_importance(FailingOnCall(model, -1), X, **keywords)
    path = tmp_path / "run.npz"
    # A worker's calls before its first chunk (checks, path detection, baseline), counted on a
    # local twin; then one call per chunk (batch_size=100): each worker fails in its 3rd chunk.
    counting = FailingOnCall(model, -1)
    twin = aefi.PermutationImportance(counting, X, **keywords)
    twin.session.baseline(twin.call_rows)
    engine = aefi.PermutationImportance(
        FailingOnCall(model, fail_at=counting.calls + 3), X, checkpoint=path,
        checkpoint_every=3600, **keywords,
    )  # fmt: skip
    job = Job(engine, client=client).start()
    job.wait(timeout=240)
    assert job.status == "error" and "odd batch" in str(job.error)
    saved = aefi.ImportanceResult.load(path)
    assert 0 < saved.evaluations_done < saved.evaluations_total
    resumed = aefi.PermutationImportance(
        FailingOnCall(model, -1), X, checkpoint=path, **keywords
    ).run()
    np.testing.assert_array_equal(resumed.importances, reference.importances)


def test_client_must_be_a_dask_client(problem):
    model, X = problem
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        aefi.PermutationImportance(model, X, client="tcp://localhost:8786")


@pytest.mark.parametrize(
    "keywords", [{"steps": 8}, {"method": "gradient_x_input", "batch_size": 30}]
)
def test_gradient_importance_on_the_cluster_equals_local(client, problem, keywords):
    model, X = problem
    local = aefi.gradient_importance(model, X, **keywords)
    remote = aefi.gradient_importance(model, X, client=client, **keywords)
    np.testing.assert_array_equal(remote.importances, local.importances)
    np.testing.assert_array_equal(remote.per_sample.to_numpy(), local.per_sample.to_numpy())


def test_a_top_k_run_on_the_cluster_equals_local(client, problem):
    model, X = problem
    keywords = {"n_repeats": 8, "top_k": 3, "batch_size": 300}
    local = aefi.permutation_importance(model, X, **keywords)
    remote = aefi.permutation_importance(model, X, client=client, **keywords)
    np.testing.assert_array_equal(remote.importances, local.importances)
    assert remote.certified_top_k == local.certified_top_k


class LocalOnly(IncrementalMethod):
    """A method that implements compute() but not compute_on()."""

    feature_names = ("a",)
    evaluations_total = 1

    def empty_result(self):
        raise AssertionError("not reached")

    def identity(self):
        return {}

    def compute(self, resume):
        yield from ()


def test_a_method_without_dask_support_says_so(client):
    with pytest.raises(NotImplementedError, match="LocalOnly does not run on a Dask cluster"):
        next(iter(LocalOnly().increments(client=client)))
