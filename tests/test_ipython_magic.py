"""``%load_ext aefi_widget`` and ``%aefi``: the magic opens the Explorer the Python call opens,
bad input is one UsageError line before any work, ``--help`` prints, names tab-complete;
in-process (IPython's InteractiveShell) and in a real kernel (nbclient)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nbclient
import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import aefi_widget as aefi

SETUP = """
import numpy as np, torch
import aefi_widget as aefi
torch.manual_seed(0)
X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
model = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Tanh(), torch.nn.Linear(3, 6))
groups = {"pair": ["x0", "x1"]}
names = [f"x{i}" for i in range(6)]
"""
MAGIC = "%aefi model X --set n_repeats=2 --seed 0 --no-first-look --top 4 --as ex"


@pytest.fixture(scope="module")
def module_shell() -> Iterator[InteractiveShell]:
    """IPython's shell in this process, with the extension loaded and a tiny model and data."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "aefi_widget")
    ip.run_cell(SETUP)
    yield ip
    ip.run_line_magic("reset", "-f")


@pytest.fixture
def shell(module_shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell, without any explorer: those a test opened are closed and removed after it."""
    yield module_shell
    namespace = module_shell.user_ns
    for name, value in list(namespace.items()):
        if isinstance(value, aefi.Explorer):
            value.close()
            del namespace[name]


def _error(shell: InteractiveShell, line: str) -> BaseException | None:
    return shell.run_cell(line).error_in_exec


def test_the_magic_opens_the_explorer_the_python_call_opens(shell: InteractiveShell) -> None:
    outcome = shell.run_cell(MAGIC)
    explorer = shell.user_ns["ex"]
    assert outcome.result is explorer and isinstance(explorer, aefi.Explorer)
    reference = aefi.Explorer(
        shell.user_ns["model"], shell.user_ns["X"], n_repeats=2, seed=0, first_look=False, top=4
    )
    try:
        assert explorer.job.wait(60) and reference.job.wait(60)
        assert explorer.result == reference.result
        assert (
            (explorer.method, explorer.top)
            == (reference.method, reference.top)
            == (
                "permutation",
                4,
            )
        )
    finally:
        reference.close()


def test_groups_feature_names_and_method_reach_the_explorer(shell: InteractiveShell) -> None:
    line = "%aefi model X --method gradient --groups groups --feature-names names --no-start"
    explorer = shell.run_cell(line).result
    assert explorer.method == "gradient" and explorer.job.status == "idle"
    assert "pair" in explorer.engine.empty_result().feature_names


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%aefi modle X", "no variable named 'modle' for the model; did you mean model?"),
        ("%aefi model X.T.nothing", "no attribute 'nothing'"),
        ("%aefi model X --bogus", "unrecognized arguments: --bogus (see %aefi --help)"),
        ("%aefi model", "the following arguments are required: X"),
        ("%aefi model X --method shap", "invalid choice: 'shap'"),
        ("%aefi model X --top 0", "top must be >= 1"),
        ("%aefi model X --set n_repeats", "--set takes KEY=VALUE"),
        ("%aefi model X --set metric=mse", "is not a Python literal"),
        ("%aefi model X --set nrepeats=3", "unexpected keyword argument 'nrepeats'"),
        ("%aefi model X --as 2x", "--as takes a variable name"),
        ("%aefi model 'import os'", "must be a variable name"),
    ],
)
def test_bad_input_is_one_usage_error_line(
    shell: InteractiveShell, line: str, message: str
) -> None:
    error = _error(shell, line)
    assert isinstance(error, UsageError), error
    assert message in str(error) and "\n" not in str(error)
    assert not any(isinstance(v, aefi.Explorer) for v in shell.user_ns.values())


def test_help_prints_the_options_and_opens_nothing(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shell.run_cell("%aefi --help").result is None
    shown = capsys.readouterr().out
    for option in ("--method", "--groups", "--set", "--as", "model", "X", "shapley"):
        assert option in shown


def test_tab_completion_offers_variables_options_and_methods(shell: InteractiveShell) -> None:
    def complete(line: str) -> list[str]:
        return list(shell.complete(None, line, len(line))[1])

    assert complete("%aefi mo") == ["model"]
    assert complete("%aefi model X --me") == ["--method", "--metric"]
    assert complete("%aefi model X --method sh") == ["shapley"]


def _run(cells: list[str]) -> list[Any]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", allow_errors=True
    )
    client.execute()
    return [cell.outputs for cell in notebook.cells]


def test_the_magic_in_a_real_kernel() -> None:
    compare = (
        "ref = aefi.Explorer(model, X, n_repeats=2, seed=0, first_look=False, top=4)\n"
        "print(ex.job.wait(60) and ref.job.wait(60) and ex.result == ref.result)\n"
        # In a kernel the default backend is a worker process.
        "print(ex.job.backend, ex.job.worker_pid is not None)"
    )
    target = "import comm\nprint('aefi.jobs' in comm.get_comm_manager().targets)"
    cells = [target, SETUP, target, "%load_ext aefi_widget", MAGIC, compare, "%aefi modle X"]
    outputs = _run(cells)
    # The comm target of the page's job list (aefi_widget/job_feed.py): `import aefi_widget`
    # (in SETUP) registers it, no %load_ext needed for the status-bar item.
    assert [outputs[0][0]["text"].strip(), outputs[2][0]["text"].strip()] == ["False", "True"]
    shown = outputs[4][0]
    assert shown["output_type"] == "execute_result"
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]  # the Explorer's view
    assert outputs[5][0]["text"].strip().splitlines() == ["True", "process True"]
    # IPython shows a UsageError as one line on stderr: no traceback, no error output.
    (error,) = outputs[6]
    assert (error["output_type"], error["name"]) == ("stream", "stderr")
    assert error["text"].strip().splitlines() == [
        "UsageError: %aefi: no variable named 'modle' for the model; did you mean model?"
    ]
