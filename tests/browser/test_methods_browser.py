"""The multi-method explorer (protocol v3) in a real JupyterLab page, dark theme, 1,280 px.

A first look and permutation importance finish before the widget shows; the test switches to the
compare view and the per-output map, selects a feature by clicking a scatter point and a heat-map
cell (checked in the kernel), and picks another method in the selector (checked in the kernel).
Screenshots of each view are saved in test-artifacts/ for people to look at.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from lab_page import LabPage
from theme_checks import check_theme

pytestmark = pytest.mark.browser

SETUP_CELL = """
import torch
import aefi_widget as aefi

torch.manual_seed(0)
n, d = 300, 40
X = torch.randn(n, 6) @ torch.randn(6, d) + 0.3 * torch.randn(n, d)
X[:, :4] *= 3.0
model = torch.nn.Sequential(torch.nn.Linear(d, 24), torch.nn.Tanh(), torch.nn.Linear(24, d))
explorer = aefi.Explorer(model, X, n_repeats=4, top=12, seed=0)
explorer.run_for("permutation").job.wait()
explorer
"""
READ_SELECTION_CELL = "print(explorer.selected_feature)"
READ_METHOD_CELL = "print(explorer.method)"


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def show_view(lab: LabPage, name: str) -> None:
    """Click the view's tab and wait until the kernel has made it the shown one."""
    tab = lab.page.locator(f'[data-testid="aefi-view-tab"][data-view="{name}"]')
    assert tab.get_attribute("aria-disabled") == "false", f"view {name} is not available"
    tab.click()
    lab.page.locator(
        f'[data-testid="aefi-view-tab"][data-view="{name}"][aria-selected="true"]'
    ).wait_for()


def test_views_selection_and_method_switch(lab: LabPage) -> None:
    lab.lab.set_theme("JupyterLab Dark")
    try:
        lab.page.set_viewport_size({"width": 1280, "height": 1000})
        cells = [SETUP_CELL, READ_SELECTION_CELL, READ_METHOD_CELL]
        lab.open_notebook(lab.write_notebook("methods", cells))
        lab.run_cell(0, timeout_s=120)
        page = lab.page
        method = page.get_by_test_id("aefi-method")
        wait_until(lambda: method.input_value() == "permutation", "the permutation run on show")
        keys = method.locator("option").evaluate_all("options => options.map(o => o.value)")
        assert keys[:2] == ["first_look", "permutation"], keys
        page.get_by_test_id("aefi-bar").first.wait_for()
        lab.screenshot_output(0, "methods-importance-dark-1280")

        # Compare view: the pair table and a scatter; a clicked point selects its feature.
        show_view(lab, "compare")
        pair = page.get_by_test_id("aefi-compare-pair").first
        pair.wait_for()
        assert "/ 12" in pair.inner_text(), pair.inner_text()  # top-k overlap "n / 12"
        point = page.get_by_test_id("aefi-scatter-point").nth(5)
        point.wait_for()
        point.scroll_into_view_if_needed()  # below the fold at 1,000 px under a race's header
        box = point.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        tooltip = page.locator('.aefi-compare [data-testid="aefi-tooltip"]')
        tooltip.wait_for()
        feature = tooltip.get_attribute("data-feature")
        assert feature and feature in tooltip.inner_text()
        page.mouse.click(x, y)
        assert lab.rerun_until_output(1, feature) == feature
        page.locator(".aefi-drilldown .bqplot text.mainheading").first.wait_for()
        lab.screenshot_output(0, "methods-compare-dark-1280")
        check_theme(page, dark=True)  # every text of the view readable on the dark background

        # Per-output map: a click on a cell selects the row's unit.
        show_view(lab, "outputs")
        row = page.get_by_test_id("aefi-heatmap-row").nth(2)
        row.wait_for()
        feature = row.get_attribute("data-feature")
        assert feature
        row.get_by_test_id("aefi-heatmap-cell").nth(1).click()
        assert lab.rerun_until_output(1, feature) == feature
        page.locator(
            f'.aefi-selected-row[data-testid="aefi-heatmap-row"][data-feature="{feature}"]'
        ).wait_for()
        lab.screenshot_output(0, "methods-outputs-dark-1280")
        check_theme(page, dark=True)

        # The selector asks the kernel for another method; the kernel switches the shown run.
        method.select_option("gradient")
        assert lab.rerun_until_output(2, "gradient") == "gradient"
        wait_until(lambda: method.input_value() == "gradient", "the selector to follow the kernel")
        assert page.get_by_test_id("aefi-warning").is_hidden()
    finally:
        lab.lab.set_theme("JupyterLab Light")
