"""A result and a job as the last expression of a cell render as rich HTML in JupyterLab.

Checked in the dark theme (the harder case for a fragment with its own colours): the result's
bars and summary rows are drawn, a hostile feature name is shown as text (no element made, no
script run), every text contrasts with the output's background, and the job shows its state.
"""

from __future__ import annotations

import pytest
from lab_page import LabPage
from theme_checks import contrast, luminance, text_colours

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=window.pwned=1>"
RESULT_CELL = f"""
import numpy as np, torch
import aefi_widget as aefi

torch.manual_seed(0)
rng = np.random.default_rng(0)
X = rng.normal(size=(80, 12)).astype(np.float32)
names = [f"g{{i}}" for i in range(12)]
names[0] = {HOSTILE!r}
model = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.Tanh(), torch.nn.Linear(6, 12))
res = aefi.permutation_importance(model, X, n_repeats=3, feature_names=names, seed=0)
res
"""
JOB_CELL = """
job = aefi.Job(aefi.PermutationImportance(model, X, n_repeats=2, seed=0)).start()
job.wait()
job
"""
READ_JS = """
() => {
  const result = document.querySelector('.jp-OutputArea [data-testid=aefi-repr-result]');
  return {
    features: [...result.querySelectorAll('g.row')].map((g) => g.dataset.feature),
    rows: result.querySelectorAll('tbody tr').length,
    images: document.querySelectorAll('.jp-OutputArea img').length,
    pwned: window.pwned === undefined ? null : window.pwned,
    bar: getComputedStyle(result.querySelector('rect.bar')).fill,
  };
}
"""


def test_a_result_and_a_job_render_as_html_in_the_dark_theme(lab: LabPage) -> None:
    lab.lab.set_theme("JupyterLab Dark")
    try:
        lab.open_notebook(lab.write_notebook("rich-display", [RESULT_CELL, JOB_CELL]))
        assert lab.page.evaluate("document.body.dataset.jpThemeLight") == "false"
        lab.run_cell(0, timeout_s=90)
        lab.run_cell(1, timeout_s=90)
        page = lab.page
        page.get_by_test_id("aefi-repr-result").wait_for(timeout=30_000)
        seen = page.evaluate(READ_JS)
        assert len(seen["features"]) == 12 and HOSTILE in seen["features"]
        assert seen["rows"] == 10
        assert seen["images"] == 0 and seen["pwned"] is None
        assert HOSTILE in lab.output_text(0)  # shown to the reader as text
        job = page.locator("[data-testid=aefi-repr-job][data-status=done]")
        job.wait_for(timeout=30_000)
        assert "100%" in job.inner_text()

        texts = text_colours(page, ".aefi-repr")
        assert len(texts) > 40  # bar labels, ticks, header, table cells, the job's line
        off = [t for t in texts if contrast(t["fg"], t["bg"]) < 4.5 or luminance(t["bg"]) >= 0.1]
        assert not off, off[:5]
        bar = [float(c) for c in seen["bar"].removeprefix("rgb(").rstrip(")").split(",")]
        assert luminance(bar) > 0.1, seen["bar"]  # the dark theme's lighter blue, not black
        lab.screenshot_output(0, "rich-display-dark")
    finally:
        lab.lab.set_theme("JupyterLab Light")
