"""The lab extension's status-bar item follows a running job: it appears, its progress moves,
pause from its popup pauses the job in the kernel, cancel ends it and the item says so.

Needs the built extension (``npm run build:lab``) where the server finds it: the test skips
(fails in CI) unless ``jupyter labextension list`` of the server's environment shows it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_page import LabPage

pytestmark = pytest.mark.browser

TESTS = str(Path(__file__).resolve().parents[1])
START_CELL = f"""
import sys
sys.path.insert(0, {TESTS!r})
from widget_fakes import FakeEngine
import aefi_widget as aefi
%load_ext aefi_widget
job = aefi.Job(FakeEngine(n_features=30, n_repeats=50, chunk=1, delay_s=0.02)).start()
"""
STATUS_CELL = "print(job.status)"


def _percent(text: str) -> int:
    found = re.search(r"(\d+) %", text)
    assert found, text
    return int(found.group(1))


def test_the_status_item_follows_pauses_and_cancels_a_job(lab: LabPage) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True
    )
    if "aefi-widget" not in listed.stdout + listed.stderr:
        # Not packaged into the wheel yet (issue 27): CI does not install it, so this is a skip
        # everywhere, not a CI failure, until the wheel carries share/jupyter/labextensions.
        pytest.skip("the aefi-widget lab extension is not installed (npm run build:lab)")
    lab.open_notebook(lab.write_notebook("jobs-status", [START_CELL, STATUS_CELL]))
    lab.run_cell(0, timeout_s=90)
    page = lab.page
    item = page.get_by_test_id("aefi-jobs-status")
    item.filter(has_text="aefi: permutation").wait_for(timeout=30_000)
    first = _percent(item.inner_text())
    deadline = time.monotonic() + 20
    while _percent(item.inner_text()) <= first:  # progress moves
        assert time.monotonic() < deadline, item.inner_text()
        time.sleep(0.2)

    item.click()
    popup = page.get_by_test_id("aefi-jobs-popup")
    popup.locator("button[data-action=pause]").click()
    popup.locator("[data-status=paused]").wait_for(timeout=10_000)
    assert "paused" in item.inner_text()
    assert lab.rerun_until_output(1, "paused") == "paused"  # the kernel's job, not only the page

    popup.locator("button[data-action=cancel]").click()
    item.filter(has_text="aefi: done").wait_for(timeout=10_000)
    assert lab.rerun_until_output(1, "cancelled") == "cancelled"
    lab.screenshot("jobs-status")
