"""An honest screen at 2,000 features (issue 23), light and dark, 1,280 px.

From the first bars on: every bar has a whisker (no bar without an interval is ever drawn: a
MutationObserver installed before the cell runs records any), the "ranking stable?" line is
present, the legend names no mark that is absent; while the first look stands in, the header
has one line for it and one for the run computing; paused, no ETA; the drilldown never prints
a degenerate "[x, x]". Screenshots of each state land in test-artifacts/honest-*.png.
"""

from __future__ import annotations

import re

import pytest
from lab_page import LabPage

pytestmark = pytest.mark.browser

EXPLORER_CELL = """
import numpy as np, torch
import aefi_widget as aefi
from aefi_widget.demo import make_correlated_data, train_autoencoder

torch.manual_seed(0)
X = make_correlated_data(n_samples=160, n_features=2000, seed=0)
model = torch.nn.Sequential(torch.nn.Linear(2000, 48), torch.nn.Tanh(), torch.nn.Linear(48, 2000))
train_autoencoder(model, X, epochs=15, seed=0)
# top_k=None: the exact run, which a first look stands in for (the race continues from its
# first look instead: tests/browser/test_first_look_browser.py).
explorer = aefi.Explorer(model, X, n_repeats=10, top=20, seed=0, top_k=None)
explorer
"""

# Records, on every change of the page, whether a bar without an interval or a bar without a
# whisker is drawn, and whether the stability line is missing while bars show.
WATCH_JS = """
() => {
  window.__aefiBad = [];
  const check = () => {
    const bars = document.querySelectorAll('[data-testid="aefi-bar"]');
    if (bars.length === 0) return;
    const without = document.querySelectorAll('[data-testid="aefi-bar"] rect[data-interval="no"]');
    const whiskers = document.querySelectorAll(
      '[data-testid="aefi-bar"] [data-testid="aefi-whisker"]');
    const line = document.querySelector('[data-testid="aefi-stability"]');
    if (without.length > 0 || whiskers.length < bars.length || !line || !line.textContent) {
      window.__aefiBad.push({bars: bars.length, without: without.length,
                             whiskers: whiskers.length, line: line ? line.textContent : null});
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true,
                                                      attributes: true, characterData: true});
}
"""

_ETA = re.compile(r"ETA \d")
_DEGENERATE = re.compile(r"\[([-\d.e]+), \1\]")


def _lines(page) -> list[dict[str, str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="aefi-run-line"]')).map(
             (row) => ({role: row.dataset.role, status: row.dataset.status,
                        text: row.innerText}))"""
    )


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_every_bar_has_an_interval_and_the_header_one_line_per_run(lab: LabPage, theme) -> None:
    name = f"honest-{theme.split()[-1].lower()}"
    lab.lab.set_theme(theme)
    try:
        page = lab.page
        page.set_viewport_size({"width": 1280, "height": 1000})
        lab.open_notebook(lab.write_notebook(name, [EXPLORER_CELL]))
        page.evaluate(WATCH_JS)
        lab.run_cell(0, timeout_s=180)
        page.get_by_test_id("aefi-bar").first.wait_for(timeout=60_000)
        stability = page.get_by_test_id("aefi-stability")
        assert stability.inner_text().startswith("Ranking")

        # (1) the first look shown, the permutation run computing: two lines, each its own
        page.locator('[data-testid="aefi-run-line"][data-role="computing"]').wait_for(
            timeout=60_000
        )
        lines = _lines(page)
        assert [line["role"] for line in lines] == ["shown", "computing"], lines
        assert "First look" in lines[0]["text"] and "until Permutation" in lines[0]["text"]
        assert "Permutation importance" in lines[1]["text"]
        assert "replaces the first look" in lines[1]["text"]
        assert not _ETA.search(lines[0]["text"]), lines[0]  # the first look is done: no ETA
        legend = page.get_by_test_id("aefi-legend").inner_text()
        assert "whiskers: 95 % interval" in legend and "Light bar" not in legend
        lab.screenshot_output(0, f"{name}-1-first-look-and-computing")

        # (2) paused: the computing line keeps its counts and has no ETA
        page.get_by_test_id("aefi-pause").click()
        page.locator('[data-testid="aefi-run-line"][data-status="paused"]').wait_for()
        paused = [line for line in _lines(page) if line["status"] == "paused"]
        assert paused and not _ETA.search(paused[0]["text"]), paused
        assert "no ETA while paused" in paused[0]["text"]
        lab.screenshot_output(0, f"{name}-2-paused")

        # (3) the drilldown of the top bar: its interval, never "[x, x]"
        page.get_by_test_id("aefi-bar").first.click()
        selected = page.locator(".aefi-drilldown-header")
        page.get_by_test_id("aefi-selected").filter(has_text=re.compile(".+")).wait_for()
        text = selected.inner_text()
        assert "95 % CI [" in text and not _DEGENERATE.search(text), text

        # (4) resumed: the run replaces the first look after 2 rounds, one line again
        page.get_by_test_id("aefi-resume").click()
        page.locator('[data-testid="aefi-run-line"][data-role="shown+computing"]').wait_for(
            timeout=240_000
        )
        page.get_by_test_id("aefi-title").filter(has_text="Permutation importance").wait_for()
        assert len(_lines(page)) == 1
        lab.screenshot_output(0, f"{name}-3-main-run")
        # An export carries no trace of the selection: not its colour, not its pinned row.
        accent = page.evaluate(
            """() => getComputedStyle(document.querySelector(
                 '.aefi-selected-row .aefi-bar-rect')).fill"""
        )
        with page.expect_download() as download:
            page.get_by_test_id("aefi-export-svg").click()
        svg = download.value.path().read_text()
        assert accent and f"fill:{accent}" not in svg, accent
        assert "selected, outside the top" not in svg and "Permutation importance" in svg
        page.get_by_test_id("aefi-stop").click()
        page.get_by_test_id("aefi-status").filter(has_text="stopped").wait_for()
        stopped = _lines(page)[0]["text"]
        assert not _ETA.search(stopped), stopped
        lab.screenshot_output(0, f"{name}-4-stopped")

        # (5) compare: a method x method matrix and, for the selected feature, why they disagree
        picked = page.get_by_test_id("aefi-selected").inner_text().strip()
        page.locator('[data-testid="aefi-view-tab"][data-view="compare"]').click()
        cell = page.get_by_test_id("aefi-compare-pair").first
        cell.wait_for()
        assert re.search(r"ρ .+\n?\s*\d+ / 20", cell.inner_text()), cell.inner_text()
        why = page.get_by_test_id("aefi-why")
        why.filter(has_text=f"Why do they disagree about {picked}?").wait_for()
        assert f"{picked} ranks #" in why.inner_text() and "docs/methods.md" in why.inner_text()
        lab.screenshot_output(0, f"{name}-5-compare")
        page.locator('[data-testid="aefi-view-tab"][data-view="importance"]').click()
        page.get_by_test_id("aefi-bar").first.wait_for()

        bad = page.evaluate("window.__aefiBad")
        assert bad == [], bad[:5]
    finally:
        lab.lab.set_theme("JupyterLab Light")
