"""The dashboard payload's own summary numbers equal ImportanceResult.summary() bit for bit, and
a snapshot encoded twice gives the same bytes (the second time from the cache)."""

from __future__ import annotations

import numpy as np
import pytest

from aefi_widget.result import ImportanceResult
from aefi_widget.widget.payload import (
    SUMMARY_ROWS,
    decode_repeats,
    decode_summary,
    encode_result,
    summary_rows,
)


def _result(importances: np.ndarray) -> ImportanceResult:
    names = [f"f{i}" for i in range(importances.shape[0])]
    return ImportanceResult(names, ["o"], importances, baseline_error=1.0)


def _partial(F: int, R: int, seed: int, nan_share: float = 0.4) -> np.ndarray:
    """Random estimates with NaN holes: rows with 0, 1, 2 and more finished estimates."""
    rng = np.random.default_rng(seed)
    values = rng.normal(loc=rng.normal(size=(F, 1)), scale=0.5, size=(F, R))
    values[rng.random((F, R)) < nan_share] = np.nan
    values[0] = np.nan  # not started
    values[1, 1:] = np.nan  # one estimate: zero-width interval
    values[2] = values[3]  # a tie, broken by index
    return values


@pytest.mark.parametrize(
    ("F", "R", "seed", "nan_share"),
    [(50, 10, 0, 0.4), (300, 3, 1, 0.6), (40, 45, 2, 0.3), (20, 5, 3, 0.0), (2000, 10, 4, 0.5)],
)
def test_summary_rows_equal_the_results_summary_bit_for_bit(F, R, seed, nan_share) -> None:
    result = _result(_partial(F, R, seed, nan_share))
    rows, order = summary_rows(result.importances)
    table = result.summary(sort=False)
    for name, row in zip(SUMMARY_ROWS, rows, strict=True):
        np.testing.assert_array_equal(row, table[name].to_numpy(dtype=np.float64), err_msg=name)
    np.testing.assert_array_equal(order, np.argsort(table["rank"].to_numpy(), kind="stable"))


def test_all_negative_and_all_missing_results() -> None:
    for values in (-np.abs(_partial(30, 4, 5, 0.0)), np.full((6, 3), np.nan)):
        result = _result(values)
        rows, _order = summary_rows(result.importances)
        table = result.summary(sort=False)
        for name, row in zip(SUMMARY_ROWS, rows, strict=True):
            np.testing.assert_array_equal(row, table[name].to_numpy(dtype=np.float64))


def test_encoding_decodes_to_the_summary_and_the_ranked_repeats() -> None:
    result = _result(_partial(200, 6, 7))
    payload = encode_result(result, top_n=10, selected="f150")
    summary = decode_summary(payload.summary, 200)
    table = result.summary(sort=False)
    for name in SUMMARY_ROWS:
        np.testing.assert_array_equal(summary[name], table[name].to_numpy(dtype=np.float32))
    repeats = decode_repeats(payload.repeat_rows, payload.repeats, payload.n_repeats)
    top = [result.feature_names.index(name) for name in result.top(10)]
    expected_rows = top + ([150] if 150 not in top else [])
    assert list(repeats) == expected_rows
    for index, values in repeats.items():
        np.testing.assert_array_equal(values, result.importances[index].astype(np.float32))


def test_same_snapshot_reuses_its_summary_and_a_new_one_is_recomputed() -> None:
    first = _result(_partial(100, 4, 8))
    a = encode_result(first, top_n=5)
    b = encode_result(first, top_n=20, selected="f99")  # same snapshot, other view
    assert b.summary is a.summary  # the cached bytes, not a recomputation
    assert len(np.frombuffer(b.repeat_rows, dtype="<i4")) == 21
    values = np.array(first.importances)
    values[0] = 100.0  # the next snapshot: a new leader
    second = _result(values)
    c = encode_result(second, top_n=5)
    assert c.summary != a.summary
    assert np.frombuffer(c.repeat_rows, dtype="<i4")[0] == 0
    # Back to the first snapshot (e.g. another explorer): right numbers again.
    assert encode_result(first, top_n=5).summary == a.summary
