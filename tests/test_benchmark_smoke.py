"""The benchmark script runs end to end on a tiny problem, so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest
import torch
from bench_scripts import FOLDER, load_benchmark

_SMALL_SCRIPT = FOLDER / "bench_small.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_permutation")


def test_main_prints_the_table_on_a_tiny_problem(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--d", "16", "--n", "40", "--repeats", "2", "--recipe-features", "2",
            "--sklearn-features", "4", "--epochs", "2", "--matmul-size", "128",
            "--min-overlap", "0"]  # fmt: skip
    threads = torch.get_num_threads()
    try:
        timings = bench.main(argv)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for key in ("aefi", "recipe", "loop", "sklearn", "floor_full", "floor_rank1"):
        assert timings[key].seconds > 0
        assert timings[key].method in out
    assert timings["recipe"].extrapolated and timings["sklearn"].extrapolated
    assert not timings["loop"].extrapolated
    assert "top-10 overlap" in out


def test_recipe_and_whole_batch_loop_compute_the_same_numbers(bench: ModuleType) -> None:
    model, X = bench.build_problem(d=12, n=30, epochs=1)
    recipe = bench.recipe_batch4(model, X, [0, 5], repeats=2, seed=3)
    loop = bench.loop_whole_batch(model, X, [0, 5], repeats=2, seed=3, target="permuted")
    np.testing.assert_allclose(recipe, loop, rtol=1e-4, atol=1e-6)


def test_sklearn_wrapper_gives_one_row_per_timed_column(bench: ModuleType) -> None:
    model, X = bench.build_problem(d=12, n=30, epochs=1)
    importances = bench.sklearn_importances(model, X, [1, 7], repeats=3)
    assert importances.shape == (2, 3)
    assert np.isfinite(importances).all()


def test_rank1_flops_leave_out_the_first_layer(bench: ModuleType) -> None:
    model, _ = bench.build_problem(d=8, n=10, epochs=0)  # layers 8-6-4-6-8
    assert bench.linear_flops_per_sample(model, skip_first=False) == 2 * (48 + 24 + 24 + 48)
    assert bench.linear_flops_per_sample(model, skip_first=True) == 2 * (24 + 24 + 48)


def test_helpers(bench: ModuleType) -> None:
    assert bench.spread_features(10, 3).tolist() == [0, 4, 9]
    assert bench.spread_features(3, 10).tolist() == [0, 1, 2]
    assert bench.top_overlap(np.arange(20.0), np.arange(20.0)[::-1], k=10) == 0


def test_bench_small_quick_prints_both_cases_with_targets() -> None:
    # Run as users do (`python benchmarks/bench_small.py`), so its import of bench_permutation
    # from the script's folder is exercised too. Speed is never asserted: only the output's shape.
    # One thread: about 10 s alone, and no multi-threaded kernel stalls on a busy shared machine.
    completed = subprocess.run(
        [sys.executable, str(_SMALL_SCRIPT), "--quick", "--threads", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for expected in ("== iris: 27 validation rows, 5 features", "validation rmse%",
                     "recipe: DataLoader batch 4 (shuffled) loop",
                     "same loop, whole batch per forward", "ranking, aefi:",
                     "ranking, batch-4 loop:", "== seed-like AE: d=200",
                     "== breast cancer: 569 x 30",
                     "whole-batch loop, features x repeats", "summary"):  # fmt: skip
        assert expected in out, f"missing {expected!r} in:\n{out}"
    assert out.count("aefi_widget.permutation_importance") == 3  # one table per case
    summary = out.split("summary")[1].splitlines()[1:]
    assert len(summary) == 4 and all(line.rstrip().endswith(("PASS", "MISS")) for line in summary)


def test_bench_worker_prints_the_three_rates_and_their_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In miniature (d=8, 10 samples, one round); speed is never asserted, only the output.
    ratios = load_benchmark("bench_worker").main(
        ["--d", "8", "--n", "24", "--samples", "10", "--rounds", "1", "--train-steps", "1"]
    )
    out = capsys.readouterr().out
    peaks = ("resident peak, thread: kernel", "resident peak, process: kernel")
    for expected in ("headless:", "thread:", "process:", "engine shipped to the worker", *peaks):
        assert expected in out
    assert set(ratios) == {
        "process/headless",
        "process/thread",
        "process/best",
        "cancel_s",
        "cancel_in_forward_s",
    }
    assert all(value > 0 for key, value in ratios.items() if "/" in key)


def test_bench_memory_rows_reads_a_backed_h5ad_in_a_child(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("anndata")
    load_benchmark("bench_memory_rows").main(
        ["--backed", "--n", "300", "--d", "12", "--max-samples", "20"]
    )
    out = capsys.readouterr().out
    assert "X in a backed .h5ad (dense)" in out
    row = out.strip().splitlines()[-1].split()
    # n, X MB, extra peak MB (0 is possible for 14 kB of X), x X, time s, x first
    assert row[0] == "300" and float(row[2]) >= 0 and float(row[4]) >= 0
