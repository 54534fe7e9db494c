"""benchmarks/bench_dashboard.py runs end to end on a tiny problem (no kernel, no browser)."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
from bench_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_dashboard")


def test_max_in_any_second_counts_the_densest_window(bench: ModuleType) -> None:
    assert bench.max_in_any_second([]) == 0
    assert bench.max_in_any_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3  # [0, 1) or [0.5, 1.5)
    assert bench.max_in_any_second([3.0, 0.1, 0.2]) == 2  # unsorted input


def test_main_prints_every_part_on_a_tiny_problem(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    try:
        results = bench.main(
            ["--d", "40", "--n", "30", "--hidden", "16", "--pairs", "1", "--seconds", "1.5",
             "--no-kernel"]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for label in ("automatic chunks", "small chunks (5 features)"):
        assert results[label]["wall_ratio"] > 0 and results[label]["cpu_ratio"] > 0
        assert 1 <= results[f"{label} max/s"] <= 11  # the publisher's cap, one window edge
    assert "most in any one second" in out and "Per update, median ms" in out
