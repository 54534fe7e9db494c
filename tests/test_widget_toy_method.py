"""A second method defined only here runs through Job and the Explorer with its own words.

The toy method follows the ``Engine`` protocol and nothing else: no change to the runtime, the
job or the widget is needed for the dashboard to show its title, value name and axis, and the
drilldown falls back to a note instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from aefi_widget.engine.runner import Engine
from aefi_widget.job import Job
from aefi_widget.result import ImportanceResult
from aefi_widget.widget import Explorer
from aefi_widget.widget.drilldowns import NoDrilldown
from aefi_widget.widget.payload import decode_summary

TOY_LABELS = {"title": "Toy importance", "value": "toy score", "unit": "toy units",
              "axis": "sample"}  # fmt: skip


class ToyMethod:
    """Importance of unit i = i, estimated once per sample; one sample per snapshot."""

    def __init__(self, n_features: int = 6, n_samples: int = 3) -> None:
        self.feature_names = tuple(f"t{i}" for i in range(n_features))
        self.n_samples = n_samples

    @property
    def evaluations_total(self) -> int:
        return len(self.feature_names) * self.n_samples

    def _result(self, values: np.ndarray, done: int) -> ImportanceResult:
        return ImportanceResult(
            self.feature_names, ("y",), values, baseline_error=float("nan"),
            settings={"method": "toy"}, evaluations_done=done,
            evaluations_total=self.evaluations_total, labels=TOY_LABELS,
        )  # fmt: skip

    def empty_result(self) -> ImportanceResult:
        return self._result(np.full((len(self.feature_names), self.n_samples), np.nan), 0)

    def increments(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
        values = np.full((len(self.feature_names), self.n_samples), np.nan)
        for sample in range(self.n_samples):
            values[:, sample] = np.arange(len(self.feature_names)) + 0.1 * sample
            yield self._result(values.copy(), (sample + 1) * len(self.feature_names))


def test_the_toy_method_follows_the_engine_protocol_and_runs_in_a_job() -> None:
    engine = ToyMethod()
    assert isinstance(engine, Engine)
    job = Job(engine).start()
    assert job.wait(10) and job.status == "done"
    result = job.snapshot()
    assert result.complete and result.method == "toy"
    assert result.top(2) == ["t5", "t4"]


def test_the_dashboard_shows_the_toy_method_with_its_own_words() -> None:
    explorer = Explorer.from_engine(ToyMethod(), top=3)
    try:
        assert explorer.job.wait(10) and explorer.publisher.flush()
        dashboard = explorer.dashboard
        assert dashboard.labels == {
            "method": "toy",
            "title": "Toy importance",
            "value": "toy score",
            "unit": "toy units",
            "value_label": "toy score (toy units)",
            "axis": "sample",
            "interval": "",
            "count": "sample",
        }
        # The header names the estimates by the method's axis; no permutation-only fields.
        assert dashboard.header == {"samples": 3}
        assert dashboard.status == "done"
        summary = decode_summary(dashboard.summary, 6)
        np.testing.assert_allclose(summary["mean"], np.arange(6) + 0.1, rtol=1e-6)
        # No drilldown is registered for "toy": a note, and selecting still works.
        assert isinstance(explorer.drilldown, NoDrilldown)
        assert "no drilldown" in explorer.drilldown.note.lower()
        explorer.selected_feature = "t2"
        assert explorer.drilldown.flush(1)
        assert explorer.dashboard.selected_feature == "t2"
    finally:
        explorer.close()
