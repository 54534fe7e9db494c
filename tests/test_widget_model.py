"""The widget model without a browser: traits carry the engine's numbers, at most 10 updates/s."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from aefi_widget.job import Job
from aefi_widget.result import ImportanceResult
from aefi_widget.widget import Dashboard, Explorer, Publisher
from aefi_widget.widget import dashboard as dashboard_module
from aefi_widget.widget.payload import decode_repeats, decode_summary, encode_result
from tests.widget_fakes import FakeEngine, UpdateLog


def _live(engine: FakeEngine, top: int = 5) -> tuple[Dashboard, Job, Publisher]:
    job = Job(engine)
    dashboard = Dashboard(engine.feature_names, header=engine.settings, top_n=top)
    return dashboard, job, Publisher(dashboard, job)


def _assert_traits_match(dashboard: Dashboard, result: ImportanceResult) -> None:
    summary = decode_summary(dashboard.summary, result.n_features)
    expected = result.summary().reindex(list(result.feature_names))
    for column in ("mean", "ci_low", "ci_high", "normalized", "n_done"):
        np.testing.assert_allclose(
            summary[column],
            expected[column].to_numpy(dtype=np.float32),
            rtol=1e-6,
            err_msg=column,
        )
    repeats = decode_repeats(dashboard.repeat_rows, dashboard.repeats, dashboard.n_repeats)
    top = [result.feature_names.index(n) for n in result.top(dashboard.top_n)]
    assert list(repeats)[: len(top)] == top  # rank order, as the charts draw them
    for index, values in repeats.items():
        np.testing.assert_array_equal(values, result.importances[index].astype(np.float32))


@pytest.fixture
def small_model() -> tuple[torch.nn.Module, np.ndarray]:
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(200, 12)).astype(np.float32)
    X[:, 1] = X[:, 0] + 0.1 * X[:, 1]  # correlated pair, so importances differ
    model = torch.nn.Sequential(torch.nn.Linear(12, 4), torch.nn.Tanh(), torch.nn.Linear(4, 12))
    return model, X


def test_traits_after_a_real_run_match_the_result(small_model) -> None:
    model, X = small_model
    explorer = Explorer(model, X, n_repeats=4, seed=1, top=5, top_k=None)  # the exact run
    assert explorer.job.wait(60)
    assert explorer.publisher.flush()
    dashboard, result = explorer.dashboard, explorer.result
    assert result.complete
    assert dashboard.status == "done"
    assert dashboard.feature_names == list(result.feature_names)
    _assert_traits_match(dashboard, result)
    assert dashboard.progress["rounds_done"] == 4
    assert dashboard.progress["fraction"] == 1.0
    assert dashboard.header["metric"] == "mse"
    explorer.close()


def test_the_selected_feature_gets_its_repeats_even_outside_the_top() -> None:
    engine = FakeEngine(n_features=30, n_repeats=3)
    dashboard, job, publisher = _live(engine, top=3)
    job.start()
    assert job.wait(10)
    dashboard.select("feature_0")  # the least important one
    assert publisher.flush()
    repeats = decode_repeats(dashboard.repeat_rows, dashboard.repeats, 3)
    top = [engine.feature_names.index(n) for n in job.snapshot().top(3)]
    assert list(repeats) == [*top, 0]
    _assert_traits_match(dashboard, job.snapshot())


def test_an_update_at_2000_features_and_10_repeats_is_under_100_kb() -> None:
    rng = np.random.default_rng(0)
    names = tuple(f"gene_{i}" for i in range(2000))
    result = ImportanceResult(names, names, rng.random((2000, 10)), baseline_error=1.0)
    payload = encode_result(result, top_n=200, selected="gene_5")
    assert payload.nbytes <= 100_000
    summary = decode_summary(payload.summary, 2000)
    np.testing.assert_allclose(summary["mean"], result.importances_mean, rtol=1e-6)


def test_the_publisher_never_sends_more_than_10_updates_per_second() -> None:
    # ~1,000 chunks in ~1.5 s: a notification every ~1.5 ms.
    engine = FakeEngine(n_features=250, n_repeats=4, chunk=1, delay_s=0.001)
    dashboard, job, publisher = _live(engine)
    log = UpdateLog(dashboard)
    job.start()
    assert job.wait(60)
    assert publisher.flush()
    assert len(log.times) >= 5  # it did stream
    assert np.diff(log.times).min() >= 0.099
    assert log.max_in_any_second() <= 10
    _assert_traits_match(dashboard, job.snapshot())


@pytest.mark.parametrize(
    ("fail_after", "cancel", "status"),
    [(None, False, "done"), (None, True, "cancelled"), (7, False, "error")],
)
def test_a_final_update_is_sent_however_the_job_ends(fail_after, cancel, status) -> None:
    engine = FakeEngine(n_features=40, n_repeats=5, chunk=2, delay_s=0.01, fail_after=fail_after)
    dashboard, job, publisher = _live(engine)
    job.start()
    if cancel:
        time.sleep(0.15)
        job.cancel()
    assert job.wait(30)
    assert publisher.flush()
    assert dashboard.status == status
    _assert_traits_match(dashboard, job.snapshot())  # the last snapshot, partial or not
    assert dashboard.progress["done"] == job.snapshot().evaluations_done
    if status == "error":
        assert dashboard.error == "RuntimeError: model exploded"
        assert not np.isnan(job.snapshot().importances).all()  # partial results shown
    else:
        assert dashboard.error == ""


def test_unknown_selected_feature_raises_with_a_hint_and_keeps_the_selection(small_model) -> None:
    model, X = small_model
    explorer = Explorer(model, X, n_repeats=2, seed=0, feature_names=[f"g{i}" for i in range(12)])
    explorer.selected_feature = "g3"
    with pytest.raises(ValueError, match=r"unknown feature 'g33'.*Did you mean 'g3'"):
        explorer.selected_feature = "g33"
    with pytest.raises(TypeError):
        explorer.selected_feature = 3  # type: ignore[assignment]
    assert explorer.selected_feature == "g3"
    assert explorer.dashboard.selected_feature == "g3"
    assert explorer.job.wait(30) and explorer.publisher.flush()
    assert explorer.dashboard.selected_feature == "g3"
    explorer.close()


def test_selecting_a_feature_draws_its_drilldown() -> None:
    engine = FakeEngine()
    explorer = Explorer.from_engine(engine, top=5)
    explorer.selected_feature = "feature_7"
    assert explorer.drilldown.flush(10)
    drill = explorer.drilldown.drilldown
    assert drill.feature == "feature_7"
    np.testing.assert_array_equal(explorer.drilldown._errors.y, np.sort(drill.error_increase))
    explorer.close()


def test_threads_end_when_the_job_ends() -> None:
    engine = FakeEngine(delay_s=0.002)
    _dashboard, job, publisher = _live(engine)
    job.start()
    assert job.wait(10) and publisher.flush()

    # The thread says it is done, then returns: wait for both (a busy machine can take a while
    # between the two); 60 s only bounds a thread that never ends.
    def publishers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("aefi-publisher")]

    deadline = time.monotonic() + 60
    while (publisher._thread.alive or publishers()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not publisher._thread.alive
    assert not publishers()


def test_a_missing_bundle_says_how_to_build_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(dashboard_module, "_STATIC", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"npm run build"):
        dashboard_module._bundle("widget.js")
