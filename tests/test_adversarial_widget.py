"""Adversarial sweep, round three (issue 21), the widget's side: hostile names never become
markup, and page messages cannot make the kernel keep unbounded runs or threads.

The browser half of the injection case (a real page, a bar clicked, no handler run) is
``tests/browser/test_injection_browser.py``.
"""

from __future__ import annotations

import gc
import html
import threading
import time

import ipywidgets
import numpy as np
import pandas as pd
import pytest
import torch
from ipywidgets.widgets.widget import _instances

import aefi_widget.widget.worker as worker_module
from aefi_widget import PermutationImportance
from aefi_widget.widget import Explorer
from aefi_widget.widget.runs import MAX_RUNS
from aefi_widget.widget.worker import OnDemandThread
from tests.widget_fakes import FakeEngine

pytestmark = pytest.mark.timeout(60)

HOSTILE = "<img src=x onerror=window.__pwned=1>"


class HostileEngine(FakeEngine):
    """Feature, output and error texts that are markup; the drilldown optionally fails."""

    def __init__(self, fail: bool) -> None:
        super().__init__(n_features=6, n_repeats=2, n_outputs=4, chunk=3)
        self.feature_names = (HOSTILE, *self.feature_names[1:])
        self.output_names = (f"<b onmouseover=1>{HOSTILE}", *self.output_names[1:])
        self.fail = fail

    def drilldown(self, feature: str, repeat: int = 0, top_outputs: int = 20):
        if self.fail:
            raise RuntimeError(f"cannot read column {feature}")
        return super().drilldown(feature, repeat, top_outputs)


def _html_widgets() -> list[ipywidgets.HTML]:
    return [w for w in list(_instances.values()) if isinstance(w, ipywidgets.HTML)]


def _every_html_value_written(explorer: Explorer, feature: str) -> list[str]:
    """Every value any HTML widget takes while ``feature`` is selected and drawn (the
    transient "computing" line included), and the values left at the end; closes the
    explorer."""
    written: list[str] = []
    try:
        assert explorer.job.wait(30)
        for widget in _html_widgets():
            widget.observe(lambda change: written.append(change["new"]), "value")
        explorer.selected_feature = feature
        assert explorer.drilldown.flush(30)
        assert explorer.publisher.flush()
        return written + [w.value for w in _html_widgets()]
    finally:
        explorer.close()


@pytest.mark.parametrize("fail", [False, True], ids=["drawn", "drilldown-fails"])
def test_a_hostile_feature_name_never_becomes_markup_in_any_html_widget(fail) -> None:
    values = _every_html_value_written(Explorer.from_engine(HostileEngine(fail), top=6), HOSTILE)
    assert not [v for v in values if "<img" in v or "<b onmouseover" in v]
    shown = " ".join(values)
    assert html.escape(HOSTILE) in shown  # the name is shown, as text
    if fail:
        assert "failed: RuntimeError: cannot read column &lt;img" in shown


def test_a_hostile_dataframe_column_is_escaped_in_the_real_drilldown() -> None:
    torch.manual_seed(0)
    names = [HOSTILE, *(f"gene_{i}" for i in range(1, 5))]
    X = pd.DataFrame(
        np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32),
        columns=names, index=[f"<i>{HOSTILE}{i}" for i in range(30)],
    )  # fmt: skip
    model = torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.Tanh(), torch.nn.Linear(2, 5))
    explorer = Explorer(model, X, n_repeats=2, first_look=False, top=5)
    values = _every_html_value_written(explorer, HOSTILE)
    assert not [v for v in values if "<img" in v or "<i>" in v]
    assert f"<b>{html.escape(HOSTILE)}</b>" in " ".join(values)


def _live(kind: type) -> int:
    gc.collect()
    # type(), not isinstance(): some lazy proxies raise AttributeError for __class__.
    return sum(issubclass(type(o), kind) for o in gc.get_objects())


def test_a_flood_of_groups_thresholds_keeps_runs_threads_and_widgets_bounded() -> None:
    """Each new threshold built and kept a run (engine with a copy of X, job, drilldown): 100
    messages took a kernel from 363 MB to 3.9 GB and 88 threads."""
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Tanh(), torch.nn.Linear(3, 8))
    threads_before, engines_before = threading.active_count(), _live(PermutationImportance)
    explorer = Explorer(model, X, n_repeats=2, first_look=False, top=5)
    try:
        send = explorer.dashboard._on_front_end_message
        counts = []
        for i in range(3 * MAX_RUNS):
            send(None, {"type": "groups", "mode": "auto", "threshold": 0.3 + i / 100}, [])
            if i in (MAX_RUNS + 1, 3 * MAX_RUNS - 1):
                for run in explorer.scheduler.runs():
                    assert run.job.wait(30)
                counts.append((len(_instances), _live(PermutationImportance) - engines_before))
        runs = explorer.scheduler.runs()
        assert len(runs) <= MAX_RUNS
        assert explorer.display.shown in runs and explorer.display.main in runs
        assert counts[1] <= counts[0] and counts[1][1] <= MAX_RUNS, counts
        deadline = time.monotonic() + 30  # cancelled jobs' threads end soon after
        while threading.active_count() > threads_before + 4:
            assert time.monotonic() < deadline, threading.enumerate()
            time.sleep(0.05)
        assert explorer.publisher.flush()
        assert "Dropped the permutation run" in explorer.dashboard.warning
    finally:
        explorer.close()
    assert len(explorer.scheduler.runs()) <= MAX_RUNS


class _CannotStart(threading.Thread):
    def start(self) -> None:
        raise RuntimeError("can't start new thread")


def test_a_thread_that_failed_to_start_is_not_recorded_and_close_still_works(
    monkeypatch,
) -> None:
    steps: list[int] = []
    worker = OnDemandThread("test", lambda: steps.append(1))
    with monkeypatch.context() as patch:
        patch.setattr(worker_module.threading, "Thread", _CannotStart)
        with pytest.raises(RuntimeError, match="can't start"):
            worker.wake()
    assert not worker.alive
    worker.wake()  # the next wake starts a thread, and covers the failed one's wake too
    assert worker.flush(10) and steps
    worker.close()
    never_started = OnDemandThread("test", lambda: None)
    with monkeypatch.context() as patch:
        patch.setattr(worker_module.threading, "Thread", _CannotStart)
        with pytest.raises(RuntimeError):
            never_started.wake()
    never_started.close()  # used to raise "cannot join thread before it is started"


def test_an_explorer_closes_after_its_publisher_failed_to_start_a_thread(monkeypatch) -> None:
    explorer = Explorer.from_engine(FakeEngine(n_features=6), autostart=False)
    with monkeypatch.context() as patch:
        patch.setattr(worker_module.threading, "Thread", _CannotStart)
        with pytest.raises(RuntimeError):
            explorer.selected_feature = "feature_2"
    explorer.selected_feature = "feature_3"  # the panel updates again
    assert explorer.publisher.flush() and explorer.dashboard.selected_feature == "feature_3"
    explorer.close()
