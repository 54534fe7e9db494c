"""2,000 features in a real page: honest while streaming, readable at 800 to 1,920 px, exportable.

One notebook: a job paused during its first round (the charts rank only evaluated features and
say how many), then resumed to the end; then labels checked at three window widths, light-theme
colours, and the CSV/SVG/PNG downloads parsed.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ElementTree

import pandas as pd
import pytest
from lab_page import ARTIFACTS, LabPage
from layout_checks import check_chart_labels
from theme_checks import check_theme

pytestmark = pytest.mark.browser

D, PAUSE_AT = 2000, 500
SETUP_CELL = f"""
import json, numpy as np, torch
import aefi_widget as aefi

torch.manual_seed(0)
rng = np.random.default_rng(0)
n, d = 60, {D}
X = (rng.normal(size=(n, 16)) @ rng.normal(size=(16, d)) + 0.3 * rng.normal(size=(n, d)))
X = X.astype(np.float32)
names = [f"ENSG{{i:08d}}.3|GENE{{i}}_ANTISENSE_RNA" if i % 7 == 0 else f"g{{i:04d}}"
         for i in range(d)]
model = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, d))
# 100 features a chunk: 20 chunks a round. Paused once {PAUSE_AT} features have a value. No
# first look: this test watches the permutation run's own first round stream.
# top_k=None: the exact run (the default race's first round has its own test).
explorer = aefi.Explorer(model, X, n_repeats=2, feature_names=names, top=20, seed=0,
                         batch_size=6000, autostart=False, first_look=False, top_k=None)
def pause_once(job, paused=[]):
    if not paused and np.isfinite(job.snapshot().importances).any(axis=1).sum() >= {PAUSE_AT}:
        paused.append(True)
        job.pause()
explorer.job.subscribe(pause_once)
explorer.start()
explorer
"""
EVALUATED_CELL = """
print(json.dumps([name for name, k in explorer.result.n_done.items() if k > 0]))
"""
SUMMARY_CELL = """
print(explorer.result.summary().head(5)[["mean", "n_done"]].to_json(orient="split"))
"""
_EVALUATED = re.compile(r"([\d,]+) of ([\d,]+) features evaluated")


def test_streaming_layout_and_exports_at_2000_features(lab: LabPage) -> None:
    page = lab.page
    page.set_viewport_size({"width": 1280, "height": 1000})
    lab.open_notebook(lab.write_notebook("layout", [SETUP_CELL, EVALUATED_CELL, SUMMARY_CELL]))
    lab.run_cell(0, timeout_s=120)
    status = page.get_by_test_id("aefi-status")
    status.filter(has_text="paused").wait_for(timeout=240_000)  # a busy CI machine

    # (1) paused in the first round: "k of F" is the kernel's count; bars only evaluated ones
    lab.run_cell(1)
    evaluated = json.loads(lab.output_text(1))
    assert PAUSE_AT <= len(evaluated) < D
    counter = page.get_by_test_id("aefi-evaluated")
    # Waited for, not read once: the page can show "paused" an update before the last counts
    # arrive (on a busy machine the counter was read one update early).
    expected = f"{len(evaluated):,} of {D:,} features evaluated"
    try:
        counter.filter(has_text=expected).wait_for(timeout=30_000)
    except Exception:
        pytest.fail(f"the counter never said {expected!r}: {counter.inner_text()!r}")
    match = _EVALUATED.search(counter.inner_text())
    assert match, counter.inner_text()
    assert int(match.group(1).replace(",", "")) == len(evaluated)
    assert int(match.group(2).replace(",", "")) == D
    bars = page.get_by_test_id("aefi-bar")
    shown = [bars.nth(i).get_attribute("data-feature") for i in range(bars.count())]
    assert len(shown) == 20 and set(shown) <= set(evaluated)
    bars_title = page.locator('[data-testid="aefi-bars"] .aefi-axis-label')
    among = f"among the {len(evaluated):,} evaluated"
    try:
        bars_title.filter(has_text=among).wait_for(timeout=30_000)
    except Exception:
        pytest.fail(f"the axis never said {among!r}: {bars_title.text_content()!r}")
    lab.screenshot_output(0, "layout-streaming-1280")

    # (2) resume to the end: the counter goes, every feature has a value
    page.get_by_test_id("aefi-resume").click()
    status.filter(has_text="done").wait_for(timeout=120_000)
    counter.wait_for(state="hidden", timeout=30_000)  # the update after "done" may lag too
    bars_title.filter(has_text="of total importance").wait_for(timeout=30_000)
    page.get_by_test_id("aefi-bar").first.click()
    page.locator(".aefi-drilldown .bqplot text.mainheading").first.wait_for(timeout=30_000)

    # (3) labels at three widths; light-theme colours at 1,280 px
    layouts = {}
    for width in (800, 1280, 1920):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(400)  # the resize observer redraws within a frame or two
        geometry = check_chart_labels(page)
        layouts[width] = {
            "stacked": geometry["stacked"],
            "widget_px": round(geometry["root"]["right"] - geometry["root"]["left"]),
        }
        lab.screenshot_output(0, f"layout-{width}")
    assert layouts[800]["stacked"] and not layouts[1920]["stacked"], layouts
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.wait_for_timeout(400)
    check_theme(page, dark=False)

    # (4) exports download files that parse and hold what the kernel and the page show
    lab.run_cell(2)
    summary = json.loads(lab.output_text(2))
    page_labels = page.locator('[data-testid="aefi-bars"] [data-testid="aefi-label"]')
    shown_labels = page_labels.all_text_contents()
    files = {}
    for kind in ("csv", "svg", "png"):
        with page.expect_download() as download:
            page.get_by_test_id(f"aefi-export-{kind}").click()
        files[kind] = download.value.path().read_bytes()
        # Method, metric and date in the name: exports of several runs do not overwrite.
        assert re.fullmatch(
            rf"aefi-permutation-mse-\d{{4}}-\d\d-\d\d-(table|importance)\.{kind}",
            download.value.suggested_filename,
        ), download.value.suggested_filename
    table = pd.read_csv(io.BytesIO(files["csv"]))
    assert list(table.columns) == ["feature", "rank", "mean", "ci_low", "ci_high",
                                   "share_percent", "n_done"]  # fmt: skip
    assert len(table) == D and table["rank"].tolist() == list(range(1, D + 1))
    assert table["feature"].head(5).tolist() == summary["index"]
    expected = pd.DataFrame(summary["data"], columns=summary["columns"])
    assert table["mean"].head(5).to_numpy() == pytest.approx(expected["mean"].to_numpy(), rel=1e-6)
    assert (table["n_done"] == 2).all()
    assert table["share_percent"].sum() == pytest.approx(100, abs=0.01)
    svg = ElementTree.fromstring(files["svg"])
    assert svg.tag.endswith("svg")
    texts = {t.text for t in svg.iter() if t.tag.endswith("text") and t.text}
    assert len(shown_labels) == 20 and set(shown_labels) <= texts
    # It says what it is: title, units and interval, and the legend.
    assert "Permutation importance" in texts
    assert any("whiskers: 95 % interval" in t and "squared input units" in t for t in texts)
    assert any(t.startswith("Bars: mean share") for t in texts)
    assert files["png"][:8] == b"\x89PNG\r\n\x1a\n" and len(files["png"]) > 5000

    # (5) search lists the best-ranked matches and says how many more; a pick outside the
    # top N is drawn as an extra row below them, with its rank
    page.get_by_test_id("aefi-search").fill("G09")
    items = page.get_by_test_id("aefi-search-item")
    items.first.wait_for()
    found = [items.nth(i).get_attribute("data-feature") for i in range(items.count())]
    ranked = table.set_index("feature")["rank"]
    assert len(found) == 12 and all("g09" in name.lower() for name in found)
    assert [ranked[name] for name in found] == sorted(ranked[name] for name in found)
    expected_more = sum("g09" in name.lower() for name in table["feature"]) - 12
    more = page.get_by_test_id("aefi-search-more").inner_text()
    assert f"{expected_more:,} more" in more, more
    outside = next(name for name in found if ranked[name] > 20)
    page.locator(f'[data-testid="aefi-search-item"][data-feature="{outside}"]').click()
    note = page.get_by_test_id("aefi-pin-note")
    note.wait_for(timeout=10_000)
    assert f"rank #{ranked[outside]}" in note.text_content()
    assert page.get_by_test_id("aefi-bar").last.get_attribute("data-feature") == outside
    assert page.get_by_test_id("aefi-bar").count() == 21
    check_chart_labels(page)
    lab.screenshot_output(0, "layout-pinned-1280")

    # Render time per update, as the page measured it (reported, not asserted).
    draws = page.evaluate("performance.getEntriesByName('aefi-draw').map((e) => e.duration)")
    draws.sort()
    report = {
        "layouts": layouts,
        "draws": len(draws),
        "median_ms": round(draws[len(draws) // 2], 2),
        "max_ms": round(draws[-1], 2),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "layout-report.json").write_text(json.dumps(report, indent=1))
    print("render time per update at 2,000 features:", report)
