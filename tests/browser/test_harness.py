"""Prove the browser harness with a throwaway anywidget defined inline in the notebook.

The widget's count is set from a background thread while the kernel is idle: the page must see it
rise, which is what the Explorer's live updates rely on. A click in the page must reach Python.
"""

from __future__ import annotations

import time

import pytest
from lab_page import LabPage

pytestmark = pytest.mark.browser

COUNTER_CELL = '''
import threading, time
import anywidget, traitlets

class Counter(anywidget.AnyWidget):
    _esm = """
    export default { render({ model, el }) {
      const count = document.createElement("span");
      count.dataset.testid = "count";
      const bump = document.createElement("button");
      bump.dataset.testid = "bump";
      bump.textContent = "bump";
      const show = () => { count.textContent = String(model.get("count")); };
      model.on("change:count", show);
      show();
      bump.addEventListener("click", () => {
        model.set("clicks", model.get("clicks") + 1);
        model.save_changes();
      });
      el.append(count, bump);
    } };
    """
    count = traitlets.Int(0).tag(sync=True)
    clicks = traitlets.Int(0).tag(sync=True)

counter = Counter()

def tick():
    for i in range(1, 51):
        time.sleep(0.1)
        counter.count = i

threading.Thread(target=tick, daemon=True).start()
counter
'''


def test_thread_updates_reach_the_page_and_clicks_reach_python(lab: LabPage) -> None:
    """Counts set from a thread show up while the kernel idles; a click is read back in Python."""
    lab.open_notebook(
        lab.write_notebook("harness", [COUNTER_CELL, "print('clicks', counter.clicks)"])
    )
    lab.run_cell(0)
    count = lab.page.get_by_test_id("count")
    count.wait_for()

    seen: list[int] = []
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline and len(set(seen)) < 4:
        assert not lab.cells_running(), "the counter cell should have returned"
        seen.append(int(count.inner_text()))
        time.sleep(0.1)
    assert len(set(seen)) >= 4, f"count did not rise while the kernel was idle: {seen}"
    assert seen == sorted(seen)

    lab.page.get_by_test_id("bump").click()
    assert lab.rerun_until_output(1, "clicks 1") == "clicks 1"
    lab.screenshot("harness")
