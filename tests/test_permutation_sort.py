"""The shuffles' fast sort is exactly numpy's stable argsort of the hash keys, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from aefi_widget.engine import permutations as perms


def _tied_keys(rows: int, length: int, seed: int) -> np.ndarray:
    """Random uint64 keys with ties planted: equal top bits (low bits differ) and exact copies."""
    keys = np.random.default_rng(seed).integers(0, 2**64, size=(rows, length), dtype=np.uint64)
    if length > 3:
        keys[::2, 1] = keys[::2, 0] ^ np.uint64(1)  # same high bits, first sorts after second
        keys[1::3, 3] = keys[1::3, 2]  # an exact duplicate
    return keys


@pytest.mark.parametrize("length", [0, 1, 2, 3, 16, 17, 27, 512, 513, 1797, 4096])
def test_fast_sort_equals_stable_argsort(length):
    runs = np.tile(np.arange(length, dtype=np.uint64)[::-1] // 3, (4, 1))  # long runs of ties
    for keys in (_tied_keys(400, length, length), runs, runs[0]):
        expected = np.argsort(keys, axis=-1, kind="stable")
        got = perms._stable_argsort(keys)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)


def test_small_keys_with_many_ties_sort_stably():
    keys = np.random.default_rng(1).integers(0, 3, size=(50, 2, 300), dtype=np.uint64)
    np.testing.assert_array_equal(
        perms._stable_argsort(keys), np.argsort(keys, axis=-1, kind="stable")
    )


def test_shuffles_are_the_stable_argsort_of_their_hashes():
    key = perms._key(perms.normalize_seed(-4), 1, 3, 7)
    expected = np.argsort(perms._uniform_keys(key, 569), kind="stable")
    np.testing.assert_array_equal(perms.permutation(-4, 3, 7, 569), expected)
    subset_keys = perms._uniform_keys(perms._key(perms.normalize_seed(5), 2, 1), 100)
    expected_rows = np.sort(np.argsort(subset_keys, kind="stable")[:30])
    np.testing.assert_array_equal(perms.row_subset(5, 1, 100, 30), expected_rows)
