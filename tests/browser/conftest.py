"""Fixtures for real-browser tests: a JupyterLab server and Debian's Chromium driven by Playwright.

Every test in this folder is marked ``browser``. When Chromium (or JupyterLab) cannot start, the
tests skip locally but FAIL in CI (``CI=true``): a CI run must never pass by skipping them.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_page import ARTIFACTS, JupyterLab, LabPage, page_on

CHROMIUM = "/usr/bin/chromium"
# Flags for a headless Chromium in a container, without background traffic (there is no network).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT_S = 90.0


def cannot_run(reason: str) -> None:
    """Fail in CI (a skipped browser test would hide a broken set-up), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """Return a localhost TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _write_lab_settings(settings_dir: Path) -> None:
    """Turn off the news and update-check toasts, which would cover the notebook."""
    target = settings_dir / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """A JupyterLab server on a free localhost port, serving a fresh temporary folder."""
    yield from _serve(tmp_path_factory, "jupyterlab", "LabApp")


@pytest.fixture(scope="session")
def jupyter_notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """A Jupyter Notebook 7 server (``python -m notebook``), like :func:`jupyter_lab`."""
    try:
        import notebook
    except ImportError as error:
        cannot_run(f"Jupyter Notebook is not installed (pip install 'notebook>=7,<8'): {error}")
    if int(notebook.__version__.split(".")[0]) != 7:
        cannot_run(f"these tests need Notebook 7, found {notebook.__version__}")
    yield from _serve(tmp_path_factory, "notebook", "JupyterNotebookApp")


def _serve(tmp_path_factory: pytest.TempPathFactory, module: str, app: str) -> Iterator[JupyterLab]:
    """Run ``python -m <module>`` (a Jupyter server app) in a fresh folder until teardown."""
    base = tmp_path_factory.mktemp(module)
    root, settings, workspaces = base / "root", base / "settings", base / "workspaces"
    for folder in (root, settings, workspaces):
        folder.mkdir()
    _write_lab_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    # "-m jupyterlab", not "-m jupyter lab": the latter execs whichever jupyter-lab script is first
    # on PATH, possibly another interpreter's, whose kernels would not see this checkout.
    command = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--allow-root",  # CI runs as root
        f"--ServerApp.root_dir={root}",
        f"--{app}.user_settings_dir={settings}",
        f"--{app}.workspaces_dir={workspaces}",
    ]
    if module == "jupyterlab":
        command.append("--LabApp.news_url=None")
    # Isolated runtime dir: no clash with a developer's running servers; unbuffered kernel output.
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "PYTHONUNBUFFERED": "1"}
    # "python" in kernels and their subprocesses is this interpreter (a venv included).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("ANYWIDGET_HMR", None)  # its file watcher has no place in tests
    log_path = ARTIFACTS / ("jupyterlab.log" if module == "jupyterlab" else f"{module}.log")
    ARTIFACTS.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        # A new session (process group) so teardown can stop the server and all it started.
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = JupyterLab(url=f"http://127.0.0.1:{port}", token=token, root=root)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _server_ready(f"{lab.url}/api/status?token={token}"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                cannot_run(f"{module} did not start (see {log_path}):\n{tail}")
            time.sleep(0.25)
        yield lab
    finally:
        lab.shutdown_kernels()
        _stop_process_group(process)


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium, headless, with a fresh profile (a Playwright persistent context)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        cannot_run(f"playwright is not installed: {error}")
    if not os.access(CHROMIUM, os.X_OK):
        cannot_run(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1400, "height": 1000},
            )
        except Exception as error:  # Playwright raises its own Error for launch problems
            cannot_run(f"Chromium did not start: {error}")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def lab(
    jupyter_lab: JupyterLab, chromium: Any, request: pytest.FixtureRequest
) -> Iterator[LabPage]:
    """A fresh browser tab on the JupyterLab server; screenshot saved when the test fails."""
    with page_on(jupyter_lab, chromium, request) as helper:
        yield helper


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call-phase report on the item so the ``lab`` fixture can screenshot failures."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
