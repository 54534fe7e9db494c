"""The bqplot drilldown follows the window: drawn at 1,280 px, then narrowed to 800 px and widened
to 1,920 px, its four figures stay inside the widget, never overlap, keep their titles, axis
labels and tick labels inside their own box, and change width with the window: one a row where
the drilldown is under 720 px wide (800 px with and without the file browser), two a row above.
Dark theme, a small explorer, a feature selected by clicking its bar. Screenshots and geometry:
test-artifacts/drilldown-resize-{1280,800,800-wide,1920}.{png,json}.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from lab_page import ARTIFACTS, LabPage
from layout_checks import _inside, _overlap

pytestmark = pytest.mark.browser

EXPLORER_CELL = """
import numpy as np, torch
import aefi_widget as aefi

torch.manual_seed(0)
rng = np.random.default_rng(0)
n, d = 60, 40
X = (rng.normal(size=(n, 8)) @ rng.normal(size=(8, d)) + 0.3 * rng.normal(size=(n, d)))
names = [f"ENSG{i:08d}.3|GENE{i}_ANTISENSE_RNA" if i % 7 == 0 else f"g{i:04d}" for i in range(d)]
model = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, d))
explorer = aefi.Explorer(model, X.astype(np.float32), n_repeats=2, feature_names=names, top=10,
                         seed=0)
explorer.job.wait()
explorer
"""

# Boxes of the drilldown, the output area holding it, each figure and the texts drawn in it.
FIGURES_JS = """
() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const drill = document.querySelector('.aefi-drilldown');
  const figures = [...drill.querySelectorAll('.bqplot.figure')].map((f) => ({
    ...box(f),
    texts: [...f.querySelectorAll('text')]
      .filter((t) => t.textContent.trim() && getComputedStyle(t).display !== 'none')
      .map((t) => ({...box(t), text: t.textContent})),
  }));
  return {drill: box(drill), output: box(drill.closest('.jp-OutputArea-output')), figures};
}
"""


def _check_figures(page: Any, step: str) -> dict[str, Any]:
    """Every figure inside the drilldown (itself inside its output area), none overlapping, all
    its texts inside it; returns the geometry read."""
    geometry = page.evaluate(FIGURES_JS)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"drilldown-resize-{step}.json").write_text(json.dumps(geometry, indent=1))
    drill, figures = geometry["drill"], geometry["figures"]
    assert len(figures) == 4, f"{step}: {len(figures)} figures"
    assert _inside(drill, geometry["output"]), f"{step}: drilldown outside its output area"
    for i, fig in enumerate(figures):
        assert fig["right"] - fig["left"] > 200, f"{step}: figure {i} squeezed: {fig}"
        assert _inside(fig, drill), f"{step}: figure {i} outside the widget: {fig} {drill}"
        outside = [t["text"] for t in fig["texts"] if not _inside(t, fig)]
        assert not outside, f"{step}: figure {i} texts outside it: {outside}"
        for j, other in enumerate(figures[i + 1 :], i + 1):
            assert not _overlap(fig, other), f"{step}: figures {i} and {j} overlap"
    return geometry


def _show_each_figure(page: Any) -> None:
    """Scroll each figure into view and let it redraw: bqplot relayouts a figure after a resize
    (debounced, 300 ms) only while it is on screen, and again when it scrolls into view."""
    figures = page.locator(".aefi-drilldown .bqplot.figure")
    for i in range(figures.count()):
        figures.nth(i).scroll_into_view_if_needed()
        page.wait_for_timeout(450)


def _columns(figures: list[dict[str, Any]]) -> int:
    """Figures on the first row (same top as the first figure)."""
    return sum(abs(f["top"] - figures[0]["top"]) < 1 for f in figures)


def test_drilldown_figures_follow_the_window_width(lab: LabPage) -> None:
    lab.lab.set_theme("JupyterLab Dark")
    try:
        page = lab.page
        page.set_viewport_size({"width": 1280, "height": 1000})
        lab.open_notebook(lab.write_notebook("drilldown_resize", [EXPLORER_CELL]))
        lab.run_cell(0, timeout_s=90)
        page.get_by_test_id("aefi-status").filter(has_text="done").wait_for(timeout=30_000)
        page.get_by_test_id("aefi-bar").first.click()
        # Panel (d) is drawn last (the most affected sample): its title names the sample.
        page.locator(".aefi-drilldown .bqplot text.mainheading", has_text="(d) sample ").wait_for(
            timeout=30_000
        )
        widths: dict[str, list[float]] = {}
        # "800-wide": the file browser closed, so the drilldown is ~650 px wide: still one
        # panel a row (two of ~320 px would squeeze the output names).
        for step, width in (("1280", 1280), ("800", 800), ("800-wide", 800), ("1920", 1920)):
            if step == "800-wide":
                page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
            page.set_viewport_size({"width": width, "height": 1000})
            _show_each_figure(page)
            geometry = _check_figures(page, step)
            widths[step] = [f["right"] - f["left"] for f in geometry["figures"]]
            drill_px = geometry["drill"]["right"] - geometry["drill"]["left"]
            columns = _columns(geometry["figures"])
            assert columns == (1 if drill_px < 720 else 2), f"{step}: {columns} columns"
            lab.screenshot_output(0, f"drilldown-resize-{step}")
            if step == "800-wide":
                assert 500 < drill_px < 720, f"{step}: drilldown {drill_px} px wide"
        assert widths["1280"][0] > widths["800"][0]  # two columns of ~420 px, one of ~365
        assert widths["800-wide"][0] > widths["1280"][0] > widths["800"][0]
        wider = zip(widths["1920"], widths["1280"], strict=True)
        assert all(w1920 > w1280 for w1920, w1280 in wider), widths
        assert all(len(set(np.round(w))) == 1 for w in widths.values()), widths  # equal panels
    finally:
        lab.lab.set_theme("JupyterLab Light")
