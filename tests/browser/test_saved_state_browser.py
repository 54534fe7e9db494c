"""A notebook saved with widget state shows the Explorer's last picture when reopened, no cell run.

JupyterLab writes widget state into the notebook only when the jupyterlab-manager setting
``saveState`` is on (default off). With it on, the cell's output keeps the widget's model id and
the notebook's metadata keeps every model's state, the anywidget's ``_esm`` bundle included, so
the dashboard can draw from the saved traits alone. The test saves, shuts the kernel down,
reloads the page and checks that the bars are drawn and nothing says "model not found".
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from lab_page import ARTIFACTS, LabPage

pytestmark = pytest.mark.browser

WIDGET_SETTINGS = "/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
EXPLORER_CELL = """
import numpy as np, torch
import aefi_widget as aefi

torch.manual_seed(0)
rng = np.random.default_rng(0)
X = (rng.normal(size=(80, 4)) @ rng.normal(size=(4, 30)) + 0.3 * rng.normal(size=(80, 30)))
model = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.Tanh(), torch.nn.Linear(8, 30))
explorer = aefi.Explorer(model, X.astype(np.float32), n_repeats=3, top=10, seed=0)
explorer.job.wait()
explorer.selected_feature = explorer.result.top(1)[0]
explorer.drilldown.flush()
explorer.publisher.flush()
print(json.dumps(explorer.result.top(10)))
explorer
"""


def _save_widget_state(lab: LabPage, on: bool) -> None:
    lab.lab.api("PUT", WIDGET_SETTINGS, {"raw": json.dumps({"saveState": on})})


def _saved_widget_state(lab: LabPage, file_name: str) -> dict[str, Any]:
    """The widget state in the notebook file on disk ({} before a save with state)."""
    notebook = json.loads((lab.lab.root / file_name).read_text())
    return notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})


def _save(lab: LabPage, file_name: str, timeout_s: float = 15.0) -> dict[str, Any]:
    """Save with Ctrl+S until the file holds widget state; return that state."""
    deadline = time.monotonic() + timeout_s
    while not (state := _saved_widget_state(lab, file_name)):
        assert time.monotonic() < deadline, "saving did not write any widget state"
        lab.cell(0).locator(".jp-InputPrompt").click()  # focus the notebook, not an input
        lab.page.keyboard.press("Control+s")
        time.sleep(1.0)
    return state


def _bars(lab: LabPage) -> list[str]:
    bars = lab.page.get_by_test_id("aefi-bar")
    return [bars.nth(i).get_attribute("data-feature") or "" for i in range(bars.count())]


def test_saved_notebook_shows_the_explorer_without_a_kernel(lab: LabPage) -> None:
    _save_widget_state(lab, True)
    try:
        file_name = lab.write_notebook("saved_state", ["import json", EXPLORER_CELL])
        lab.open_notebook(file_name)
        lab.run_cell(0)
        lab.run_cell(1, timeout_s=90)
        page = lab.page
        page.get_by_test_id("aefi-status").filter(has_text="done").wait_for(timeout=30_000)
        assert page.get_by_test_id("aefi-saved-notice").is_hidden()  # live: the kernel answered
        top = json.loads(lab.output_text(1).splitlines()[0])
        page.locator(".aefi-drilldown .bqplot").first.wait_for(timeout=30_000)
        live_bars = _bars(lab)
        assert live_bars == top, (live_bars, top)
        live_drilldown = page.locator(".aefi-drilldown .bqplot").count()

        state = _save(lab, file_name)
        anywidgets = [m for m in state["state"].values() if m["model_name"] == "AnyModel"]
        assert anywidgets and all(m["state"].get("_esm") for m in anywidgets)

        # The kernel goes away; the reopened page gets a fresh one that knows no widget.
        lab.lab.shutdown_kernels()
        lab.open_notebook(file_name)
        bars = page.get_by_test_id("aefi-bar")
        bars.first.wait_for(timeout=20_000)
        output = lab.cell(1).locator(".jp-OutputArea-output")
        assert "model not found" not in " ".join(output.all_inner_texts()).lower()
        assert _bars(lab) == top, "the reopened chart is not the last picture"
        # No kernel answers the page's hello: it says it is a saved picture (waited on, the
        # verdict comes after the page's own timeout), and its run line what it was.
        notice = page.get_by_test_id("aefi-saved-notice")
        notice.filter(has_text="Saved picture").wait_for(timeout=20_000)
        assert "run the cell to compute" in notice.inner_text().lower()
        assert page.get_by_test_id("aefi-status").inner_text() == "saved picture"
        assert "saved picture (done)" in page.get_by_test_id("aefi-run-line").first.inner_text()
        assert page.get_by_test_id("aefi-selected").inner_text().strip() == top[0]
        # A control says what it needs instead of acting: the selector stays on what is shown,
        # the bars stay the same.
        method = page.get_by_test_id("aefi-method")
        shown = method.input_value()
        offered = method.locator("option").evaluate_all("(options) => options.map(o => o.value)")
        other = next(value for value in offered if value != shown)
        method.select_option(other)
        hint = page.get_by_test_id("aefi-top-hint")
        hint.filter(has_text="needs a live kernel").wait_for(timeout=5_000)
        page.wait_for_function(
            "(shown) => document.querySelector('[data-testid=\"aefi-method\"]').value === shown",
            arg=shown,
        )
        page.get_by_test_id("aefi-pause").click()
        hint.filter(has_text="needs a live kernel").wait_for(timeout=5_000)
        assert _bars(lab) == top
        lab.screenshot("saved-state-reopened-notice")
        assert lab.output_text(1).splitlines()[0] == json.dumps(top)  # no cell ran again
        # The drilldown's bqplot figures come back from their saved models as well.
        drilldown = page.locator(".aefi-drilldown .bqplot")
        drilldown.first.wait_for(timeout=20_000)
        report = {
            "live_drilldown_figures": live_drilldown,
            "reopened_drilldown_figures": drilldown.count(),
            "saved_models": len(state["state"]),
            "saved_bytes": len(json.dumps(state)),
        }
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "saved-state-report.json").write_text(json.dumps(report, indent=1))
        assert drilldown.count() == live_drilldown, report
        lab.screenshot("saved-state-reopened")
    finally:
        _save_widget_state(lab, False)
