"""Snapshots from a worker process with their large arrays sent as the rows that changed.

A permutation run's per-output deltas (``extras["delta_sum"]``, features x outputs, float64) are
32 MB at 2,000 genes, and a run streams a snapshot per chunk: pickled whole, 167 snapshots moved
5 GB through the pipe and made the worker 30 % slower than the thread. A chunk changes only the
rows of the units it computed, so :class:`SnapshotSender` (in the worker) sends, for each 2-D
extra of at least :data:`PATCH_BYTES`, the rows whose bits differ from the last snapshot it sent,
and :class:`SnapshotReceiver` (in the kernel) applies them to a copy of the last array it built.
The kernel's snapshots are bit for bit the worker's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aefi_widget.result import ImportanceResult

__all__ = ["PATCH_BYTES", "SnapshotReceiver", "SnapshotSender", "with_extras"]

# Smaller extras travel whole: a patch saves little on them.
PATCH_BYTES = 256 * 2**10

# (shape, dtype string, changed rows or None for all, their values)
Patch = tuple[tuple[int, ...], str, np.ndarray | None, np.ndarray]


def _changed_rows(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Indices of the rows of two same-shape arrays whose bits differ (NaN equals NaN)."""
    kind = np.dtype(f"u{new.dtype.itemsize}") if new.dtype.itemsize in (1, 2, 4, 8) else None
    if kind is None:
        a = np.ascontiguousarray(old).view(np.uint8).reshape(len(old), -1)
        b = np.ascontiguousarray(new).view(np.uint8).reshape(len(new), -1)
    else:
        a, b = np.ascontiguousarray(old).view(kind), np.ascontiguousarray(new).view(kind)
    return np.flatnonzero((a != b).any(axis=1))


class SnapshotSender:
    """The worker's side: :meth:`pack` each snapshot's extras before sending it."""

    def __init__(self) -> None:
        self._sent: dict[str, np.ndarray] = {}

    def pack(self, extras: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Patch]]:
        """(the extras sent whole, a patch for each large 2-D one)."""
        whole: dict[str, Any] = {}
        patches: dict[str, Patch] = {}
        sent: dict[str, np.ndarray] = {}
        for key, value in extras.items():
            if not (
                isinstance(value, np.ndarray) and value.ndim == 2 and value.nbytes >= PATCH_BYTES
            ):
                whole[key] = value
                continue
            previous = self._sent.get(key)
            if previous is None or previous.shape != value.shape or previous.dtype != value.dtype:
                patches[key] = (value.shape, value.dtype.str, None, value)
            else:
                rows = _changed_rows(previous, value)
                patches[key] = (value.shape, value.dtype.str, rows, value[rows])
            sent[key] = value.copy()  # a copy: the engine may reuse its buffer
        self._sent = sent
        return whole, patches


class SnapshotReceiver:
    """The kernel's side: :meth:`unpack` rebuilds the extras :meth:`SnapshotSender.pack` split."""

    def __init__(self) -> None:
        self._held: dict[str, np.ndarray] = {}

    def unpack(self, whole: dict[str, Any], patches: dict[str, Patch]) -> dict[str, Any]:
        """The full extras: ``whole`` plus each patched array (new and read-only)."""
        extras = dict(whole)
        held: dict[str, np.ndarray] = {}
        for key, (shape, dtype, rows, values) in patches.items():
            if rows is None:
                array = np.array(values, dtype=np.dtype(dtype), copy=True)
            else:
                previous = self._held.get(key)
                if previous is None or previous.shape != tuple(shape):
                    raise ValueError(f"a patch of {key!r} arrived before its whole array")
                array = previous.copy()
                array[rows] = values
            array.flags.writeable = False
            extras[key] = held[key] = array
        self._held = held
        return extras


def with_extras(
    snapshot: ImportanceResult, extras: dict[str, Any], resume: Any = None
) -> ImportanceResult:
    """A new snapshot equal to ``snapshot`` but for its ``extras`` (and ``resume``, if given);
    the original is untouched (the engine may still hold it)."""
    return ImportanceResult(
        snapshot.feature_names, snapshot.output_names, snapshot.importances,
        snapshot.baseline_error, settings=snapshot.settings, groups=snapshot.groups,
        evaluations_done=snapshot.evaluations_done, evaluations_total=snapshot.evaluations_total,
        elapsed_s=snapshot.elapsed_s, resume=snapshot.resume if resume is None else resume,
        extras=extras,
        labels=snapshot.labels,
    )  # fmt: skip
