"""client=: Shapley values and the latent permutation lens on a Dask LocalCluster equal the local
run bit for bit; errors, pause, checkpoints and cancel behave as locally, and start/cancel cycles
of every method leak nothing (tasks, futures, threads, worker memory)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, seed_like_autoencoder
from aefi_widget.job import Job

distributed = pytest.importorskip("distributed")
from dask_helpers import eventually, local_cluster, scheduler_tasks, worker_rss  # noqa: E402
from reference import FailingOnCall  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def client():
    with local_cluster() as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def problem():
    # Small: a Shapley column walks every sample through all F units (n x F forward calls).
    X = make_correlated_data(40, 12, seed=3)
    return seed_like_autoencoder(12, seed=1), X


@pytest.mark.parametrize(
    "keywords",
    [
        {"n_permutations": 2, "background": 8},
        {"n_permutations": 3, "background": 12, "batch_size": 40, "antithetic": False},
        {"n_permutations": 2, "background": 8, "groups": "auto", "batch_size": 333,
         "_forward_path": "plain"},
        {"n_permutations": None, "tol": 0.3, "background": 8, "batch_size": 100},
        {"n_permutations": "all", "background": 8, "batch_size": 200,
         "groups": {f"g{k}": [3 * k, 3 * k + 1, 3 * k + 2] for k in range(4)}},
    ],
)  # fmt: skip
def test_shapley_on_the_cluster_equals_local_bit_for_bit(client, problem, keywords):
    model, X = problem
    local = aefi.shapley_importance(model, X, **keywords)
    remote = aefi.shapley_importance(model, X, client=client, **keywords)
    np.testing.assert_array_equal(remote.importances, local.importances)
    np.testing.assert_array_equal(remote.extras["se"], local.extras["se"])
    for key in ("permutations_done", "converged", "convergence_ratio", "loss_empty"):
        assert remote.settings[key] == local.settings[key]
    assert remote.baseline_error == local.baseline_error
    assert remote.evaluations_done == local.evaluations_done


def test_shapley_snapshots_from_the_cluster_resume_locally_with_the_same_numbers(client, problem):
    model, X = problem
    keywords = {"n_permutations": 2, "background": 8, "batch_size": 320, "seed": 5}
    reference = aefi.shapley_importance(model, X, **keywords)
    engine = aefi.ShapleyImportance(model, X, **keywords)
    snapshots = list(engine.increments(client=client))  # a task: 10 samples (320 // 32 rows)
    done = [s.evaluations_done for s in snapshots]
    assert len(snapshots) == 8 and done == sorted(done) and done[-1] == reference.evaluations_done
    for stop in (1, len(snapshots) // 2):
        resumed = aefi.ShapleyImportance(model, X, **keywords).run(resume=snapshots[stop])
        np.testing.assert_array_equal(resumed.importances, reference.importances)
        np.testing.assert_array_equal(resumed.extras["se"], reference.extras["se"])


@pytest.mark.parametrize(
    "keywords",
    [{"n_repeats": 3}, {"n_repeats": 2, "batch_size": 50}, {"n_repeats": 2, "batch_size": 13}],
)
def test_latent_permutation_on_the_cluster_equals_local_bit_for_bit(client, problem, keywords):
    model, X = problem
    local = aefi.latent_importance(model, X, **keywords)
    remote = aefi.latent_importance(model, X, client=client, **keywords)
    np.testing.assert_array_equal(remote.importances, local.importances)
    np.testing.assert_array_equal(remote.extras["latent_shift"], local.extras["latent_shift"])
    # Snapshots stream in plan order, as locally.
    engine = aefi.LatentPermutation(model, X, **keywords)
    local_steps = [s.evaluations_done for s in engine.increments()]
    assert [s.evaluations_done for s in engine.increments(client=client)] == local_steps


def test_latent_permutation_with_a_given_encoder_on_the_cluster(client, problem):
    model, X = problem
    keywords = {"encoder": model.encoder[:1], "n_repeats": 2, "batch_size": 64}
    local = aefi.latent_importance(model, X, **keywords)
    remote = aefi.latent_importance(model, X, client=client, **keywords)
    np.testing.assert_array_equal(remote.importances, local.importances)
    assert remote.output_names == local.output_names and len(local.output_names) == 9


def test_the_one_shot_latent_lenses_check_the_client_and_run_here(client, problem):
    model, X = problem
    here = aefi.latent_importance(model, X, method="mutual_information")
    there = aefi.latent_importance(model, X, method="mutual_information", client=client)
    np.testing.assert_array_equal(there.importances, here.importances)
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        aefi.latent_importance(model, X, method="gradient", client="tcp://localhost:8786")


def test_a_job_on_the_cluster_pauses_and_resumes_with_the_same_numbers(client, problem):
    model, X = problem
    keywords = {"n_repeats": 20, "batch_size": 40}  # 240 chunks
    reference = aefi.latent_importance(model, X, **keywords)
    job = Job(aefi.LatentPermutation(model, X, **keywords), client=client).start()
    assert eventually(lambda: job.progress.done > 0)
    job.pause()
    assert eventually(lambda: job.status == "paused")
    held = job.progress.done
    assert held < job.progress.total, "finished before the pause: enlarge the run"
    time.sleep(0.3)
    assert job.progress.done == held  # nothing merged while paused
    job.resume()
    assert job.wait(timeout=60) and job.status == "done"
    np.testing.assert_array_equal(job.snapshot().importances, reference.importances)


def _shapley_failing(model, X, keywords, tasks_before_failing):
    """A Shapley engine whose model fails in each worker's task ``tasks_before_failing + 1``:
    a worker's calls before its first walk step are counted on a local twin, and each task
    (``batch_size // 32`` samples) makes one call per unit."""
    counting = FailingOnCall(model, -1)
    twin = aefi.ShapleyImportance(counting, X, **keywords)
    twin.chunk_sums(None, 0, 1)
    first = counting.calls
    twin.chunk_sums(None, 1, 2)
    per_task = counting.calls - first
    set_up = first - per_task
    fail_at = set_up + tasks_before_failing * per_task + 1
    return FailingOnCall(model, fail_at)


def _latent_failing(model, X, keywords, chunks_before_failing):
    """A latent engine whose encoder fails in each worker's chunk ``chunks_before_failing + 1``
    (one encoder call per chunk: batch_size is the call size)."""
    counting = FailingOnCall(model.encoder, -1)
    twin = aefi.LatentPermutation(model, X, encoder=counting, **keywords)
    twin.chunk_sums(twin.plan(), 0, 0)
    fail_at = counting.calls - 1 + chunks_before_failing + 1
    return FailingOnCall(model.encoder, fail_at)


@pytest.mark.parametrize("method", ["shapley", "latent"])
def test_a_chunk_raising_on_a_worker_ends_in_error_and_resumes_locally(
    client, problem, tmp_path, method
):
    model, X = problem
    path = tmp_path / "run.npz"
    if method == "shapley":
        keywords = {"n_permutations": 3, "background": 8, "batch_size": 320}  # 12 tasks

        def make(failing=None, **more):
            return aefi.ShapleyImportance(failing or FailingOnCall(model, -1), X, **more,
                                          **keywords)  # fmt: skip

        failing = _shapley_failing(model, X, keywords, tasks_before_failing=2)
    else:
        keywords = {"n_repeats": 8, "batch_size": 40}  # 96 chunks

        def make(failing=None, **more):
            encoder = failing or FailingOnCall(model.encoder, -1)
            return aefi.LatentPermutation(model, X, encoder=encoder, **more, **keywords)

        failing = _latent_failing(model, X, keywords, chunks_before_failing=3)
    reference = make().run()
    job = Job(make(failing, checkpoint=path, checkpoint_every=3600), client=client).start()
    assert job.wait(timeout=60)
    assert job.status == "error" and "odd batch" in str(job.error)
    kept = job.snapshot()
    assert 0 < kept.evaluations_done < kept.evaluations_total
    saved = aefi.ImportanceResult.load(path)
    assert saved.evaluations_done == kept.evaluations_done
    resumed = make(checkpoint=path).run()  # locally, from the checkpoint
    np.testing.assert_array_equal(resumed.importances, reference.importances)
    assert eventually(lambda: scheduler_tasks(client) == 0)


def _nothing_left(client) -> bool:
    """No task on the scheduler and no future held by this client."""
    return scheduler_tasks(client) == 0 and not client.futures


def _cycle_engines(X, model):
    """One engine of every method, with chunks of well under a second."""
    return [
        aefi.PermutationImportance(model, X, n_repeats=500, batch_size=256),
        aefi.GradientImportance(model, X, steps=64, batch_size=16),
        aefi.ShapleyImportance(model, X, n_permutations=50, background=16, batch_size=32),
        aefi.LatentPermutation(model, X, n_repeats=500, batch_size=256),
    ]


def _start_and_cancel(engine, client) -> float:
    """Start a job, cancel it after its first chunk; the seconds from cancel to its end."""
    job = Job(engine, client=client).start()
    assert eventually(lambda: job.progress.done > 0 or job.status != "running", 30)
    started = time.monotonic()
    job.cancel()
    # A generous liveness bound, not a speed claim (the machine may be busy): a cancel that
    # waited for the run would take minutes; the waits are printed below.
    assert job.wait(timeout=60)
    seconds = time.monotonic() - started
    assert job.status == "cancelled", job.error
    snapshot = job.snapshot()
    assert 0 < snapshot.evaluations_done < snapshot.evaluations_total  # stopped part-way
    return seconds


def test_cancel_is_prompt_and_twenty_cycles_leak_no_tasks_threads_or_worker_memory(client):
    # X (2 MiB) and the model travel to each worker every cycle, and each worker builds an
    # engine holding several copies of X: a leaked spec or engine per cycle would add >= 2 MiB
    # per worker and cycle, >= 40 MiB over 20.
    X = make_correlated_data(2048, 256, seed=0)
    model = seed_like_autoencoder(256, seed=0)
    engines = _cycle_engines(X, model)
    for engine in engines:  # warm: imports, allocator pools, the engines' local caches
        _start_and_cancel(engine, client)
    assert eventually(lambda: _nothing_left(client)), (scheduler_tasks(client), client.futures)
    threads_before = threading.active_count()
    rss_before = worker_rss(client)
    waits = [_start_and_cancel(engines[k % len(engines)], client) for k in range(20)]
    assert eventually(lambda: _nothing_left(client)), (scheduler_tasks(client), client.futures)
    assert eventually(lambda: threading.active_count() <= threads_before)
    rss_after = worker_rss(client)
    growth = {w: (rss_after[w] - rss_before[w]) / 2**20 for w in rss_before}
    slowest = type(engines[int(np.argmax(waits)) % len(engines)]).__name__
    print(f"cancel waits (s): max {max(waits):.3f} ({slowest}), median {np.median(waits):.3f}; "
          f"worker RSS before {[round(v / 2**20) for v in rss_before.values()]} MiB, "
          f"growth {[round(g, 1) for g in growth.values()]} MiB")  # fmt: skip
    # Half of what a leak of one spec per cycle would add; glibc and torch pools settle
    # within the warm-up cycles.
    assert max(growth.values()) < 20, growth
