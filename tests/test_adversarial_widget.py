"""Adversarial sweep, round three (issue 21), the widget's side: hostile names never become
markup, and page messages cannot make the kernel keep unbounded runs or threads.

The browser half of the injection case (a real page, a bar clicked, no handler run) is
``tests/browser/test_injection_browser.py``.
"""

from __future__ import annotations

import html

import ipywidgets
import numpy as np
import pandas as pd
import pytest
import torch
from ipywidgets.widgets.widget import _instances

from aefi_widget.widget import Explorer
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
