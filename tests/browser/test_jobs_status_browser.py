"""The lab extension's status-bar item follows a running job: it appears, its progress moves,
pause from its popup pauses the job in the kernel, cancel ends it and the item says how each job
ended (cancelled, failed, done); in JupyterLab and in Notebook 7.

Needs the prebuilt extension where the server finds it (``pip install`` puts it in
``sys.prefix/share/jupyter/labextensions``; scripts/test_all.sh links this checkout's build
there). The tests FAIL when it should be there and is not: in CI, or when the installed
aefi_widget ships it; elsewhere (a checkout on an older install) they skip.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_page import JupyterLab, LabPage, page_on

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
# Two jobs at once: one fails after ~1 s, the other is done after ~3 s.
FAIL_AND_DONE_CELL = """
failing = aefi.Job(FakeEngine(n_features=30, n_repeats=1, chunk=1, delay_s=0.05, fail_after=20))
finishing = aefi.Job(FakeEngine(n_features=30, n_repeats=2, chunk=1, delay_s=0.05))
failing.start(), finishing.start()
"""
ENDED_CELL = "print(failing.status, finishing.status)"
SHIPPED = "share/jupyter/labextensions/aefi-widget/package.json"


def _require_the_extension() -> None:
    """Fail when the extension should be installed and is not (or is disabled); else skip."""
    # "-m jupyterlab.labextensions": what the servers of these tests (sys.executable) load;
    # "-m jupyter labextension" would run the first jupyter-labextension script on PATH.
    listed = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"], capture_output=True, text=True
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    if re.search(r"^\s*aefi-widget v\S+ enabled OK", text, re.MULTILINE):
        return
    shipped = any(str(f).endswith(SHIPPED) for f in importlib.metadata.files("aefi_widget") or [])
    if os.environ.get("CI", "").lower() == "true" or shipped:
        why = "CI=true" if not shipped else f"the installed aefi_widget ships {SHIPPED}"
        pytest.fail(f"the aefi-widget lab extension is not enabled and OK ({why}):\n{text}")
    pytest.skip("the aefi-widget lab extension is not installed (pip install ., npm run build:lab)")


@pytest.fixture
def notebook7(
    jupyter_notebook: JupyterLab, chromium: Any, request: pytest.FixtureRequest
) -> Iterator[LabPage]:
    """A fresh browser tab on the Notebook 7 server; screenshot saved when the test fails."""
    with page_on(jupyter_notebook, chromium, request) as helper:
        yield helper


def _percent(text: str) -> int:
    found = re.search(r"(\d+) %", text)
    assert found, text
    return int(found.group(1))


def _follow_pause_cancel(lab: LabPage, pause: bool = True) -> Any:
    """Run START_CELL (already open): the item appears, moves, pauses from its popup (unless
    ``pause`` is false), cancels; return the item."""
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
    if pause:
        popup.locator("button[data-action=pause]").click()
        popup.locator("[data-status=paused]").wait_for(timeout=10_000)
        assert "paused" in item.inner_text()
        assert lab.rerun_until_output(1, "paused") == "paused"  # the kernel's job, not the page

    popup.locator("button[data-action=cancel]").click()
    item.filter(has_text=re.compile(r"^aefi: permutation cancelled at \d+ %$")).wait_for(
        timeout=10_000
    )
    assert lab.rerun_until_output(1, "cancelled") == "cancelled"
    return item


def test_the_status_item_follows_pauses_and_cancels_a_job(lab: LabPage) -> None:
    _require_the_extension()
    cells = [START_CELL, STATUS_CELL, FAIL_AND_DONE_CELL, ENDED_CELL]
    lab.open_notebook(lab.write_notebook("jobs-status", cells))
    item = _follow_pause_cancel(lab)

    # Two more jobs: one fails, one finishes; the item reports both, each row says how it ended.
    lab.run_cell(2)
    item.filter(has_text="aefi: 2 jobs ended: 1 done, 1 failed").wait_for(timeout=30_000)
    assert lab.rerun_until_output(3, "error done") == "error done"
    popup = lab.page.get_by_test_id("aefi-jobs-popup")  # still open since the pause
    failed, done = popup.locator("[data-status=error]"), popup.locator("[data-status=done]")
    assert re.search(r"permutation failed at \d+ %", failed.inner_text()), failed.inner_text()
    assert failed.get_by_test_id("aefi-job-error").inner_text() == "RuntimeError: model exploded"
    assert "permutation done (480 evaluations)" in done.inner_text()
    assert popup.locator("[data-status=cancelled]").count() == 1
    lab.screenshot("jobs-status")


def test_the_status_item_follows_a_job_in_notebook7(notebook7: LabPage) -> None:
    """Notebook 7 has no status bar: the item floats at the bottom right of its page."""
    _require_the_extension()
    nb = notebook7
    file_name = nb.write_notebook("jobs-status-nb7", [START_CELL, STATUS_CELL])
    nb.open_in_notebook7(file_name)
    assert nb.page.locator(".jp-LabShell").count() == 0  # Notebook 7's own shell
    _follow_pause_cancel(nb, pause=False)  # pausing is the same code as in JupyterLab
    nb.screenshot("jobs-status-notebook7")
