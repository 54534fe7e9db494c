"""Explorer life cycle: saved results without a model, Stop then Continue, failed constructions."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest
import torch

from aefi_widget import ImportanceResult, PermutationImportance
from aefi_widget.widget import Explorer
from aefi_widget.widget.dashboard import close_matches
from aefi_widget.widget.drilldowns import NoDrilldown
from aefi_widget.widget.payload import decode_summary
from tests.widget_fakes import FakeEngine


@pytest.fixture
def small_model() -> tuple[torch.nn.Module, np.ndarray]:
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(120, 10)).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Linear(10, 3), torch.nn.Tanh(), torch.nn.Linear(3, 10))
    return model, X


def test_a_saved_result_is_shown_without_a_model(tmp_path) -> None:
    engine = FakeEngine(n_features=12, n_repeats=3)
    saved = list(engine.increments())[-1]
    path = saved.save(tmp_path / "run.npz")
    explorer = Explorer.from_result(ImportanceResult.load(path), top=4)
    try:
        assert explorer.publisher.flush()
        dashboard = explorer.dashboard
        assert dashboard.status == "saved"
        assert dashboard.labels["title"] == "Permutation importance"
        assert dashboard.header["repeats"] == 3 and dashboard.header["baseline error"] == 1.0
        summary = decode_summary(dashboard.summary, 12)
        np.testing.assert_allclose(summary["mean"], saved.importances_mean, rtol=1e-6)
        assert dashboard.progress["fraction"] == 1.0 and dashboard.progress["eta_s"] is None
        assert isinstance(explorer.drilldown, NoDrilldown)
        assert "without its model" in explorer.drilldown.note
        explorer.selected_feature = "feature_3"  # selection and search still work
        assert explorer.publisher.flush() and dashboard.selected_feature == "feature_3"
        explorer.stop()  # controls do nothing, and say nothing
        explorer.resume()
        assert dashboard.status == "saved"
    finally:
        explorer.close()
    with pytest.raises(TypeError, match="ImportanceResult"):
        Explorer.from_result(str(path))  # type: ignore[arg-type]


def test_stop_then_continue_gives_the_numbers_of_an_uninterrupted_run(small_model) -> None:
    model, X = small_model
    keywords = dict(n_repeats=6, seed=3, batch_size=240)  # 240 rows a chunk: many chunks
    reference = PermutationImportance(model, X, **keywords).run()
    explorer = Explorer(model, X, autostart=False, **keywords)
    try:
        first = explorer.job
        # Stop after the first snapshot: deterministic, however fast the machine is.
        first.subscribe(lambda job: job.cancel())
        explorer.start()
        assert first.wait(30) and first.status == "cancelled"
        partial = explorer.result
        assert not partial.complete
        assert explorer.publisher.flush() and explorer.dashboard.status == "cancelled"
        explorer._control("resume")  # the page's Continue button
        assert explorer.job is not first
        assert explorer.job.wait(60) and explorer.job.status == "done"
        assert explorer.publisher.flush() and explorer.dashboard.status == "done"
        np.testing.assert_array_equal(explorer.result.importances, reference.importances)
        explorer._control("resume")  # after the end: nothing new starts
        assert explorer.job.status == "done"
    finally:
        explorer.close()


def test_failed_constructions_leave_no_noise_for_later_cells(small_model) -> None:
    model, X = small_model
    noise: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda report: noise.append(f"{report.exc_type}: {report.exc_value}")
    try:
        for _ in range(2):
            with pytest.raises(ValueError):
                Explorer(model, X[:, :4])  # wrong width: refused before any widget exists
            with pytest.raises(TypeError):
                Explorer(model)
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert noise == []


def test_did_you_mean_finds_zero_padded_names() -> None:
    names = [f"g{i:04d}" for i in range(2000)]
    assert close_matches("g061", names).startswith(" Did you mean 'g0061'")
    assert close_matches("G61", names) == " Did you mean 'g0061'?"
    assert close_matches("totally-different", names) == ""
