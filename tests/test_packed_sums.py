"""A packed call's per-segment sums have the bits of reducing each segment alone, at any length
and thread count (torch splits one long single-output sum across threads)."""

from __future__ import annotations

import pytest
import torch

from aefi_widget.engine import permutation_packed


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("length", [1, 17, 569, 1797, 32767, 32768, 40000])
def test_segment_sums_equal_each_segment_summed_alone(threads, length):
    generator = torch.Generator().manual_seed(length)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scale = 10.0 ** torch.randint(-6, 6, (3, length), generator=generator)
        errors = torch.randn(3, length, generator=generator, dtype=torch.float64) * scale
        got = permutation_packed._row_sums(errors, dim=1)
        assert torch.equal(got, torch.stack([errors[i].contiguous().sum() for i in range(3)]))
        for width in (1, 5):
            moved = torch.rand(3, length, width, generator=generator, dtype=torch.float64)
            got = permutation_packed._row_sums(moved, dim=1)
            assert torch.equal(got, torch.stack([moved[i].sum(dim=0) for i in range(3)]))
    finally:
        torch.set_num_threads(before)
