"""The Explorer's core path in Jupyter Notebook 7 (``python -m notebook``), not only JupyterLab.

Notebook 7 is built from JupyterLab's components but is its own application (own page, shell,
settings and widget manager set-up), so the anywidget front end and the bqplot drilldown are
checked there too: the explorer renders, its bars are drawn, a click selects a feature in the
page and in Python, and the drilldown draws the selection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from lab_page import JupyterLab, LabPage, page_on

pytestmark = pytest.mark.browser

EXPLORER_CELL = """
import json, numpy as np, torch
import aefi_widget as aefi

torch.manual_seed(0)
rng = np.random.default_rng(0)
X = (rng.normal(size=(120, 6)) @ rng.normal(size=(6, 40)) + 0.3 * rng.normal(size=(120, 40)))
model = torch.nn.Sequential(torch.nn.Linear(40, 16), torch.nn.Tanh(), torch.nn.Linear(16, 40))
explorer = aefi.Explorer(model, X.astype(np.float32), n_repeats=4, top=12, seed=0)
explorer
"""
READ_CELL = "print(json.dumps([explorer.job.status, explorer.selected_feature]))"


@pytest.fixture
def notebook7(
    jupyter_notebook: JupyterLab, chromium: Any, request: pytest.FixtureRequest
) -> Iterator[LabPage]:
    """A fresh browser tab on the Notebook 7 server; screenshot saved when the test fails."""
    with page_on(jupyter_notebook, chromium, request) as helper:
        yield helper


def test_explorer_renders_draws_and_selects_in_notebook7(notebook7: LabPage) -> None:
    nb = notebook7
    file_name = nb.write_notebook("notebook7", [EXPLORER_CELL, READ_CELL])
    nb.open_in_notebook7(file_name)
    page = nb.page
    # Notebook 7's own application, not JupyterLab's shell behind another URL.
    config = json.loads(page.locator("#jupyter-config-data").text_content() or "{}")
    assert config.get("appName") == "Jupyter Notebook", config.get("appName")
    assert page.locator(".jp-LabShell").count() == 0
    nb.run_cell(0, timeout_s=90)

    bars = page.get_by_test_id("aefi-bar")
    bars.first.wait_for(timeout=30_000)
    page.get_by_test_id("aefi-status").filter(has_text="done").wait_for(timeout=30_000)
    assert bars.count() == 12

    feature = bars.nth(2).get_attribute("data-feature")
    assert feature
    bars.nth(2).click()
    exact = re.compile(f"^{re.escape(feature)}$")
    page.get_by_test_id("aefi-selected").filter(has_text=exact).wait_for(timeout=10_000)
    expected = json.dumps(["done", feature])
    assert nb.rerun_until_output(1, expected) == expected
    # The bqplot drilldown draws the selection in this application too.
    page.locator(".aefi-drilldown .bqplot text.mainheading").first.wait_for(timeout=30_000)
    assert "Error displaying widget" not in nb.cell(0).inner_text()
    nb.screenshot_output(0, "notebook7-explorer")
