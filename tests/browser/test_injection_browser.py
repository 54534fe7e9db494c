"""A column named ``<img src=x onerror=window.__pwned=1>`` runs no script in a real page.

Two explorers over the same data, the hostile column the most important one: one drills down
for real (the "computing" line, then the caption), one whose drilldown fails with an error text
naming the column (that text stays in the saved widget state). Its bar is clicked in each; a
MutationObserver counts every element added under a drilldown, so markup that was shown only
for a moment is caught too, whether or not the browser got round to firing its handler.
"""

from __future__ import annotations

import pytest
from lab_page import LabPage

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=window.__pwned=1>"
SETUP_CELL = f"""
import numpy as np, pandas as pd, torch
import aefi_widget as aefi

HOSTILE = {HOSTILE!r}
torch.manual_seed(0)
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(40, 6)).astype(np.float32),
                 columns=[HOSTILE, *(f"gene_{{i}}" for i in range(1, 6))])
X[HOSTILE] *= 6.0  # the most important column: the first bar
model = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Tanh(), torch.nn.Linear(3, 6))


class FailingDrilldown(aefi.PermutationImportance):
    def drilldown(self, feature, repeat=0, top_outputs=20):
        raise RuntimeError(f"cannot read column {{feature}}")


drawn = aefi.Explorer(model, X, n_repeats=2, first_look=False, top=6, seed=0)
failing = aefi.Explorer.from_engine(FailingDrilldown(model, X, n_repeats=2, seed=0), top=6)
drawn.job.wait(); failing.job.wait()
"""
# Every element added under a drilldown, and whether an <img> was among them.
WATCH_JS = """
() => {
  window.__drilldownImages = 0;
  new MutationObserver((changes) => {
    for (const change of changes) {
      const target = change.target;
      if (!(target instanceof Element) || !target.closest('.aefi-drilldown')) continue;
      for (const node of change.addedNodes) {
        if (node instanceof Element && (node.matches('img') || node.querySelector('img'))) {
          window.__drilldownImages += 1;
        }
      }
    }
  }).observe(document.body, {subtree: true, childList: true});
}
"""
HOSTILE_BAR_JS = "(bars, name) => bars.findIndex((b) => b.getAttribute('data-feature') === name)"


def _click_hostile_bar(lab: LabPage, cell: int, shown: str) -> None:
    """Click the hostile feature's bar in cell ``cell``'s explorer; wait for ``shown`` as text
    in its drilldown."""
    output = lab.cell(cell).locator(".jp-OutputArea-output")
    output.get_by_test_id("aefi-status").filter(has_text="done").wait_for(timeout=30_000)
    bars = output.get_by_test_id("aefi-bar")
    index = bars.evaluate_all(HOSTILE_BAR_JS, HOSTILE)
    assert index >= 0, "no bar for the hostile column"
    bars.nth(index).click()
    output.locator(".aefi-drilldown", has_text=shown).first.wait_for(timeout=30_000)


def test_a_column_named_like_markup_runs_no_script(lab: LabPage) -> None:
    lab.open_notebook(lab.write_notebook("injection", [SETUP_CELL, "drawn", "failing"]))
    for cell in range(3):
        lab.run_cell(cell, timeout_s=120)
    page = lab.page
    page.evaluate(WATCH_JS)
    _click_hostile_bar(lab, 1, f"{HOSTILE} (the shuffle of repeat 1")
    _click_hostile_bar(lab, 2, "failed: RuntimeError: cannot read column")
    # The image request (to the Jupyter server, a 404) has had time to fail by now on old code;
    # the observer's count does not depend on that.
    images = page.evaluate("document.querySelectorAll('.aefi-drilldown img').length")
    assert (page.evaluate("window.__drilldownImages"), images) == (0, 0)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    failed = lab.cell(2).locator(".aefi-drilldown").inner_text()
    assert f"drilldown of {HOSTILE} failed" in failed  # shown, as text
