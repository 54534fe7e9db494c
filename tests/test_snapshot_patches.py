"""A worker's snapshots travel with their large extras as changed rows and arrive bit for bit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from aefi_widget.snapshot_patches import PATCH_BYTES, SnapshotReceiver, SnapshotSender

ROWS, COLS = 64, PATCH_BYTES // (8 * 64) + 1  # just above the size that is patched


def _through(sender: SnapshotSender, receiver: SnapshotReceiver, extras: dict) -> tuple:
    """(what arrived, the bytes that travelled) for one snapshot's extras."""
    message = pickle.dumps(sender.pack(extras))
    return receiver.unpack(*pickle.loads(message)), len(message)


def test_only_changed_rows_travel_and_every_snapshot_arrives_whole() -> None:
    rng = np.random.default_rng(0)
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    delta = np.full((ROWS, COLS), np.nan)
    sizes = []
    for step in range(6):
        delta = delta.copy()
        rows = rng.choice(ROWS, size=3, replace=False)
        delta[rows] = rng.standard_normal((3, COLS))
        if step == 4:
            delta[rows[0], 0] = -0.0  # a sign bit alone is a change
        extras = {"delta_sum": delta, "small": np.arange(5.0)}
        got, size = _through(sender, receiver, extras)
        assert got.keys() == extras.keys()
        assert np.array_equal(got["delta_sum"], delta, equal_nan=True)
        assert np.array_equal(np.signbit(got["delta_sum"]), np.signbit(delta))
        assert not got["delta_sum"].flags.writeable
        sizes.append(size)
    # The first goes whole; after it, 3 of 64 rows each time (NaN rows unchanged are not sent).
    assert sizes[0] > delta.nbytes and max(sizes[1:]) < delta.nbytes / 10


def test_a_new_shape_goes_whole_and_a_key_that_went_away_stays_away() -> None:
    sender, receiver = SnapshotSender(), SnapshotReceiver()
    first = np.zeros((ROWS, COLS))
    _through(sender, receiver, {"delta_sum": first, "interim": np.ones((ROWS, COLS))})
    wider = np.ones((ROWS, COLS + 1))
    got, _ = _through(sender, receiver, {"delta_sum": wider})
    assert set(got) == {"delta_sum"} and np.array_equal(got["delta_sum"], wider)


def test_a_patch_without_its_whole_array_is_refused() -> None:
    sender = SnapshotSender()
    sender.pack({"delta_sum": np.zeros((ROWS, COLS))})
    whole, patches = sender.pack({"delta_sum": np.ones((ROWS, COLS))})
    with pytest.raises(ValueError, match="before its whole array"):
        SnapshotReceiver().unpack(whole, patches)
