"""The header's progress lines (``runs`` trait): an ETA only while running, counts per run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aefi_widget.job import JobProgress
from aefi_widget.result import ImportanceResult
from aefi_widget.widget.run_lines import run_line, run_lines


@dataclass
class _Job:
    status: str
    result: ImportanceResult
    progress: JobProgress

    def snapshot(self) -> ImportanceResult:
        return self.result


def _job(status: str, eta: float | None, rate: float | None) -> _Job:
    importances = np.full((5, 3), np.nan)
    importances[:2, 0] = [0.5, 0.1]  # 2 of 5 units have a value in round 1
    result = ImportanceResult(
        feature_names=tuple("abcde"), output_names=("y",), importances=importances,
        baseline_error=1.0, settings={"metric": "mse"}, evaluations_done=20,
        evaluations_total=150,
    )  # fmt: skip
    progress = JobProgress(20, 150, 20 / 150, 3.0, eta, rate, 0, 3)
    return _Job(status, result, progress)


def test_a_running_line_counts_units_rounds_and_has_an_eta() -> None:
    line = run_line(_job("running", 19.5, 6.7), "computing", "Permutation importance")
    assert line["evaluated"] == 2 and line["n_units"] == 5
    assert (line["rounds_done"], line["n_repeats"]) == (0, 3)
    assert line["eta_s"] == 19.5 and line["evals_per_s"] == 6.7
    assert line["title"] == "Permutation importance" and line["axis"] == "repeat"


def test_a_paused_or_ended_run_sends_no_eta() -> None:
    # The job's own ETA may still be a number while paused (the rate so far): not shown.
    for status in ("paused", "done", "cancelled", "error"):
        line = run_line(_job(status, 19.5, 6.7), "shown")
        assert line["eta_s"] is None and line["evals_per_s"] is None, status


def test_one_line_when_the_shown_run_computes_two_when_another_does() -> None:
    shown, other = _job("done", 0.0, None), _job("running", 5.0, 1.0)
    assert [line["role"] for line in run_lines(shown, shown)] == ["shown+computing"]
    lines = run_lines(shown, other, titles=("First look", "Permutation"), notes=("until", ""))
    assert [line["role"] for line in lines] == ["shown", "computing"]
    assert [line["title"] for line in lines] == ["First look", "Permutation"]
    assert lines[0]["note"] == "until" and lines[1]["eta_s"] == 5.0
