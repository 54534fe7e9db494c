"""The shipped notebooks run headless, top to bottom, without error (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
# Generous: the quickstart (and genes.ipynb, on scanpy's bundled pbmc68k_reduced) train a small
# autoencoder and wait for their explorer's job to finish.
CELL_TIMEOUT_S = 600


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.ipynb", "genes.ipynb"])
def test_notebook_executes_without_error(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute every cell; nbclient raises CellExecutionError on the first failing cell."""
    path = NOTEBOOKS / name
    if not path.exists():
        pytest.skip(f"notebooks/{name} is not written yet")
    # Keep the dev-only hot reload (a file-watcher thread) out of the test kernel.
    monkeypatch.delenv("ANYWIDGET_HMR", raising=False)

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        # Run next to the notebook so relative paths in it work.
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    finally:
        # The executed copy, outputs and tracebacks included, for a human to read.
        ARTIFACTS.mkdir(exist_ok=True)
        nbformat.write(notebook, ARTIFACTS / f"executed-{name}")
