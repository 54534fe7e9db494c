"""A chunk runs in several forward calls: how calls are cut changes speed, never numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aefi_widget as aefi
from aefi_widget.engine.plan import Segment, chunk_segments, split_calls


def test_split_calls_covers_every_sample_once_in_order_within_the_limit():
    segments = chunk_segments(chunk=1, n_units=7, m=23, rows=60)
    calls = split_calls(segments, rows=16)
    assert all(sum(s.size for s in call) <= 16 for call in calls)
    flat = [(s.unit, i) for call in calls for s in call for i in range(s.start, s.stop)]
    expected = [(s.unit, i) for s in segments for i in range(s.start, s.stop)]
    assert flat == expected


def test_split_calls_keeps_a_chunk_that_fits_in_one_call():
    segments = [Segment(0, 5, 20, 0), Segment(1, 0, 10, 15)]
    assert [[(s.unit, s.start, s.stop) for s in c] for c in split_calls(segments, 25)] == [
        [(0, 5, 20), (1, 0, 10)]
    ]


@pytest.mark.parametrize("forward_path", ["auto", "plain"])
@pytest.mark.parametrize("call_rows", [16, 37, 250])
def test_cutting_chunks_into_smaller_calls_gives_identical_numbers(forward_path, call_rows):
    torch.manual_seed(0)
    d = 12
    model = torch.nn.Sequential(torch.nn.Linear(d, 9), torch.nn.ReLU(), torch.nn.Linear(9, d))
    X = torch.randn(80, d, generator=torch.Generator().manual_seed(1))
    keywords = {"n_repeats": 3, "groups": {"pair": ["x1", "x4"]}, "_forward_path": forward_path}
    whole = aefi.PermutationImportance(model, X, **keywords)
    # Tiny model: a whole round is one chunk and one forward call.
    assert whole.call_rows >= whole.n_features * whole.samples_per_repeat
    cut = aefi.PermutationImportance(model, X, **keywords)
    cut.call_rows = call_rows
    reference, result = whole.run(), cut.run()
    np.testing.assert_array_equal(result.importances, reference.importances)
    np.testing.assert_array_equal(result.delta_sum, reference.delta_sum)
    drill = cut.drilldown("pair", repeat=1)
    pair = reference.feature_names.index("pair")
    assert drill.error_increase.mean() == pytest.approx(reference.importances[pair, 1], rel=1e-12)


def test_auto_call_rows_are_cache_sized_for_a_large_model():
    from aefi_widget.demo import seed_like_autoencoder

    engine = aefi.PermutationImportance(seed_like_autoencoder(1000), torch.randn(950, 1000))
    assert engine.call_rows < engine.batch_rows
    assert engine.call_rows % 16 == 0
