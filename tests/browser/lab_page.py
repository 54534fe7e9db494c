"""Helpers that drive a JupyterLab notebook in a Playwright page (used by the browser tests)."""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

# Screenshots and the server log land here (git-ignored) so CI keeps them for a human to look at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# A finished cell shows "[n]:" in its prompt; a running one shows "[*]:".
_DONE_PROMPT = re.compile(r"\[\d+\]")
# The notebook tab on show (hidden tabs keep their DOM, with the class lm-mod-hidden).
_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# The status bar's kernel item once a real kernel is connected and idle.
_KERNEL_IDLE = re.compile(r"(?<!No Kernel) \| Idle")


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab server: where it listens, its token and the folder it serves."""

    url: str
    token: str
    root: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API (``body`` sent as JSON) and return the decoded JSON
        (None for an empty body)."""
        headers = {"Authorization": f"token {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers=headers, data=data
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def set_theme(self, theme: str) -> None:
        """Make ``theme`` ("JupyterLab Light" or "JupyterLab Dark") the user's setting; pages
        opened afterwards start in it."""
        raw = json.dumps({"theme": theme})
        self.api("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:themes", {"raw": raw})

    def shutdown_kernels(self) -> None:
        """Shut down every kernel (they run in their own process groups, not the server's)."""
        try:
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        except OSError:
            pass  # the server is already gone; nothing left to ask


class LabPage:
    """One browser tab on a JupyterLab server, with the few actions the tests need."""

    def __init__(self, lab: JupyterLab, page: Any) -> None:
        self.lab = lab
        self.page = page

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Write code ``cells`` as ``<name>.ipynb`` in the served folder; return the file name."""
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        # A kernelspec lets JupyterLab start the kernel without asking (the dialog may still show).
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        file_name = f"{name}.ipynb"
        nbformat.write(notebook, self.lab.root / file_name)
        return file_name

    def open_notebook(self, file_name: str, timeout_s: float = 60.0) -> None:
        """Open the notebook and wait until its kernel is idle."""
        # A workspace of its own, reset: otherwise JupyterLab restores the tabs of earlier tests
        # and their hidden notebooks would match the locators below.
        workspace = Path(file_name).stem
        self.page.goto(
            f"{self.lab.url}/lab/workspaces/{workspace}/tree/{file_name}"
            f"?reset&token={self.lab.token}"
        )
        self.page.locator(f"{_PANEL} .jp-Cell").first.wait_for()
        deadline = time.monotonic() + timeout_s
        while not self.kernel_ready():
            self.accept_kernel_dialog()
            if time.monotonic() > deadline:
                raise TimeoutError(f"kernel not ready after {timeout_s} s: {self.kernel_status()}")
            time.sleep(0.2)
        self.dismiss_toasts()

    def open_in_notebook7(self, file_name: str, timeout_s: float = 60.0) -> None:
        """Open the notebook in Jupyter Notebook 7's own page (``/notebooks/...``) and wait until
        its kernel is idle (asked from the server: Notebook 7 has no status bar)."""
        self.page.goto(f"{self.lab.url}/notebooks/{file_name}?token={self.lab.token}")
        self.page.locator(f"{_PANEL} .jp-Cell").first.wait_for()
        deadline = time.monotonic() + timeout_s
        while not self.server_kernel_idle(file_name):
            self.accept_kernel_dialog()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no idle kernel for {file_name} after {timeout_s} s")
            time.sleep(0.2)

    def server_kernel_idle(self, file_name: str) -> bool:
        """True when the server has a session for ``file_name`` whose kernel is idle."""
        sessions = self.lab.api("GET", "/api/sessions")
        return any(
            s.get("path") == file_name and (s.get("kernel") or {}).get("execution_state") == "idle"
            for s in sessions
        )

    def accept_kernel_dialog(self) -> None:
        """Accept the "Select Kernel" dialog if it is showing (default kernel: python3)."""
        accept = self.page.locator(".jp-Dialog .jp-mod-accept")
        if accept.count() and accept.first.is_visible():
            accept.first.click()

    def dismiss_toasts(self) -> None:
        """Close notification toasts, which can cover the widget being clicked."""
        for close in self.page.locator(".jp-Notification-Toast-Close").all():
            if close.is_visible():
                close.click()

    def kernel_status(self) -> str:
        """The notebook toolbar's kernel status: "idle", "busy", "starting", ... or ""."""
        indicator = self.page.locator(f"{_PANEL} .jp-Notebook-ExecutionIndicator")
        if not indicator.count():
            return ""
        return indicator.first.get_attribute("data-status") or ""

    def kernel_ready(self) -> bool:
        """True once a kernel is connected and idle.

        The toolbar says "idle" for a moment before any kernel exists, so the status bar must also
        name a kernel ("Python 3 (ipykernel) | Idle", not "No Kernel | ...").
        """
        status_bar = " ".join(self.page.locator(".jp-StatusBar-TextItem").all_inner_texts())
        return self.kernel_status() == "idle" and bool(_KERNEL_IDLE.search(status_bar))

    def cells_running(self) -> bool:
        """True while any cell is executing or queued (its prompt shows "[*]").

        This, not the kernel's busy/idle status, says whether the user's kernel is free: the
        kernel also turns "busy" for a moment whenever it handles a widget message from the page.
        """
        return any(
            "*" in text for text in self.page.locator(f"{_PANEL} .jp-InputPrompt").all_inner_texts()
        )

    def cell(self, index: int) -> Any:
        """The Playwright locator of code cell ``index`` (0-based)."""
        return self.page.locator(f"{_PANEL} .jp-Cell").nth(index)

    def run_cell(self, index: int, timeout_s: float = 60.0) -> None:
        """Run cell ``index`` with Shift+Enter and wait until it has finished."""
        cell = self.cell(index)
        prompt = cell.locator(".jp-InputPrompt")
        before = prompt.inner_text()
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + timeout_s
        # A re-run cell shows its old "[n]" until the new run starts: wait for a new number.
        while (text := prompt.inner_text()) == before or not _DONE_PROMPT.search(text):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell {index} still running after {timeout_s} s")
            time.sleep(0.1)

    def rerun_until_output(self, index: int, expected: str, timeout_s: float = 10.0) -> str:
        """Re-run cell ``index`` until its output is ``expected``; return the last output.

        For reading back state that a click sent to the kernel: the message travels
        asynchronously, so one run right after the click can still see the old value.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self.run_cell(index)
            output = self.output_text(index)
            if output == expected or time.monotonic() > deadline:
                return output
            time.sleep(0.2)

    def output_text(self, index: int) -> str:
        """The text of cell ``index``'s outputs (stream, results and errors)."""
        outputs = self.cell(index).locator(".jp-OutputArea-output")
        return "\n".join(outputs.nth(i).inner_text() for i in range(outputs.count())).strip()

    def screenshot_output(self, index: int, name: str) -> Path:
        """Save cell ``index``'s first output as ``test-artifacts/<name>.png``, uncropped."""
        output = self.cell(index).locator(".jp-OutputArea-output").first
        box = output.bounding_box()
        # The notebook scrolls inside a fixed-size panel: grow the window so the output fits.
        viewport = self.page.viewport_size
        if box and viewport and box["height"] + 200 > viewport["height"]:
            self.page.set_viewport_size(
                {"width": viewport["width"], "height": int(box["height"]) + 300}
            )
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        output.screenshot(path=str(path))
        return path

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as ``test-artifacts/<name>.png`` and return its path."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.contextmanager
def page_on(server: JupyterLab, chromium: Any, request: Any) -> Iterator[LabPage]:
    """A fresh browser tab on ``server`` (JupyterLab or Notebook 7) for the test ``request``
    (a pytest fixture request); screenshot saved when the test fails."""
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    helper = LabPage(server, page)
    try:
        yield helper
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            helper.screenshot(f"failed-{request.node.name}")
        page.close()
        # No kernel outlives its test: an Explorer left streaming (the first-look test's
        # 50-repeat run at d = 1,000 takes ~20 min) kept both cores busy under later tests.
        server.shutdown_kernels()
