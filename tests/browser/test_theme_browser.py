"""The dashboard and the bqplot drilldown follow JupyterLab's dark theme.

2,000 features (some names long enough to need shortening), a finished job and a selected
feature, so every part of the page is drawn. Colours are read from computed styles (not
screenshots); a screenshot at 1,280 px is saved for people to look at. The light theme is
checked the same way in test_layout_browser.py (it is the default).
"""

from __future__ import annotations

import pytest
from lab_page import LabPage
from theme_checks import check_theme

pytestmark = pytest.mark.browser

EXPLORER_CELL = """
import numpy as np, torch
import aefi_widget as aefi

torch.manual_seed(0)
rng = np.random.default_rng(0)
n, d = 60, 2000
X = (rng.normal(size=(n, 16)) @ rng.normal(size=(16, d)) + 0.3 * rng.normal(size=(n, d)))
X = X.astype(np.float32)
names = [f"ENSG{i:08d}.3|GENE{i}_ANTISENSE_RNA" if i % 7 == 0 else f"g{i:04d}" for i in range(d)]
model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, d))
explorer = aefi.Explorer(model, X, n_repeats=2, feature_names=names, top=20, seed=0)
explorer.job.wait()
explorer.selected_feature = explorer.result.top(1)[0]
explorer.drilldown.flush()
explorer
"""


def test_dashboard_and_drilldown_follow_the_dark_theme(lab: LabPage) -> None:
    theme, dark = "JupyterLab Dark", True
    lab.lab.set_theme(theme)
    try:
        name = f"theme-{theme.split()[-1].lower()}"
        lab.page.set_viewport_size({"width": 1280, "height": 1000})
        lab.open_notebook(lab.write_notebook(name, [EXPLORER_CELL]))
        light = lab.page.evaluate("document.body.dataset.jpThemeLight")
        assert light == ("false" if dark else "true")
        lab.run_cell(0, timeout_s=120)
        page = lab.page
        page.get_by_test_id("aefi-bar").first.wait_for(timeout=30_000)
        page.locator(".aefi-drilldown .bqplot text.mainheading").first.wait_for(timeout=30_000)
        page.get_by_test_id("aefi-status").filter(has_text="done").wait_for(timeout=30_000)
        texts = check_theme(page, dark=dark)
        assert len(texts) > 100  # bars, boxes, axes, four figures' ticks and titles
        lab.screenshot_output(0, f"{name}-1280")
    finally:
        lab.lab.set_theme("JupyterLab Light")
