"""The Explorer in JupyterLab streams a run whose chunks a Dask LocalCluster computes.

The kernel starts ``distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``
itself (worker processes spawned from a notebook kernel: Dask re-imports no notebook code in
them), builds a small autoencoder inline and shows ``Explorer(..., client=client)``. The page
must show bars and a rounds counter that rises while no cell runs, end "done", and the kernel
then checks that both workers executed chunks and that the numbers equal a local run bit for bit.
"""

from __future__ import annotations

import re
import time

import pytest
from lab_page import LabPage
from notebook_code import at_least
from test_explorer_browser import _explorer_available, rounds_done, wait_for_status

pytestmark = pytest.mark.browser

N_REPEATS = 12
SETUP_CELL = f"""
import distributed
import numpy as np
import torch
import aefi_widget as aefi
{at_least(0.1)}

cluster = distributed.LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
)
client = distributed.Client(cluster)
torch.manual_seed(0)
n, d = 300, 40
X = torch.randn(n, 6) @ torch.randn(6, d) + 0.3 * torch.randn(n, d)
model = AtLeast(torch.nn.Sequential(
    torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16), torch.nn.ReLU(),
    torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, d),
))
# 4 chunks a round, N_REPEATS rounds: >= 2.4 s of streaming on two worker processes.
keywords = dict(n_repeats={N_REPEATS}, batch_size=3_000, seed=4)
explorer = aefi.Explorer(model, X, client=client, top=10, **keywords)
explorer
"""
CHECK_CELL = """
local = aefi.permutation_importance(model, X, **keywords)
executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
same = np.array_equal(explorer.job.snapshot().importances, local.importances)
print(explorer.job.status, "identical" if same else "DIFFERENT",
      "on", len(executed), "workers", "all busy" if min(executed.values()) > 0 else "one idle")
"""
CLOSE_CELL = "client.close(); cluster.close(); print('closed')"


def test_explorer_streams_a_run_computed_on_a_local_cluster(lab: LabPage) -> None:
    _explorer_available()
    lab.open_notebook(lab.write_notebook("cluster", [SETUP_CELL, CHECK_CELL, CLOSE_CELL]))
    started = time.monotonic()
    lab.run_cell(0, timeout_s=90)
    print(f"cluster started and explorer shown in {time.monotonic() - started:.1f} s")
    page = lab.page
    page.get_by_test_id("aefi-bar").first.wait_for(timeout=30_000)
    rounds = page.get_by_test_id("aefi-rounds")
    seen = {rounds_done(rounds.inner_text())[0]}
    deadline = time.monotonic() + 60
    while "done" not in page.get_by_test_id("aefi-status").inner_text().lower():
        assert not lab.cells_running(), "the Explorer cell should have returned"
        assert time.monotonic() < deadline, f"the run did not finish: {rounds.inner_text()!r}"
        seen.add(rounds_done(rounds.inner_text())[0])
        time.sleep(0.05)
    wait_for_status(lab, "done", timeout_s=5)
    print(f"streamed and done at {time.monotonic() - started:.1f} s; counts seen {sorted(seen)}")
    assert rounds_done(rounds.inner_text()) == (N_REPEATS, N_REPEATS)
    # Streamed: the page showed several partial counts before the end, not one jump.
    assert len(seen - {N_REPEATS}) >= 3, sorted(seen)
    lab.run_cell(1, timeout_s=60)
    print(f"checked at {time.monotonic() - started:.1f} s")
    assert lab.output_text(1) == "done identical on 2 workers all busy"
    lab.run_cell(2, timeout_s=30)
    print(f"closed at {time.monotonic() - started:.1f} s")
    assert re.search(r"closed", lab.output_text(2))
