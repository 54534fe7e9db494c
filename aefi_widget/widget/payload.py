"""ImportanceResult -> compact binary trait values for the dashboard (and back, for tests).

Layout (all little-endian, see docs/widget-protocol.md):

- ``summary``: float32, shape (5, F), rows :data:`SUMMARY_ROWS` = mean, ci_low, ci_high,
  normalized, n_done. Sent for every feature so the search box and ranks cover all of them.
- ``repeat_rows``: int32, shape (k,): the top-N features in rank order, then the selected
  feature when it is not among them.
- ``repeats``: float32, shape (k, R): per-repeat Δerror of those rows (NaN = not computed yet).

At 2,000 features x 10 repeats and N = 20 that is 40 KB + 84 B + 840 B per update; per-repeat
values for every feature would add 80 KB per update for boxes nobody sees.

Cost per update (benchmarks/bench_dashboard.py): the summary numbers are computed here with numpy,
the same operations as :meth:`ImportanceResult.summary` (a test pins them bit for bit), because
building that DataFrame was ~75 % of the encoding time (~2 ms of pandas overhead at 2,000
features, measured); and the last snapshot's summary bytes and rank order are kept, so an update
of the same snapshot (a selection, a new top N, a clock refresh) only re-slices the repeats.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from aefi_widget.result import ImportanceResult
from aefi_widget.result_summary import ranking_order, summary_columns

__all__ = [
    "SUMMARY_ROWS",
    "Payload",
    "decode_repeats",
    "decode_summary",
    "encode_result",
    "summary_rows",
]

SUMMARY_ROWS: tuple[str, ...] = ("mean", "ci_low", "ci_high", "normalized", "n_done")
_FLOAT32 = np.dtype("<f4")
_INT32 = np.dtype("<i4")


@dataclass(frozen=True)
class Payload:
    """Trait values for one update: binary buffers plus the numbers the header shows."""

    summary: bytes
    repeat_rows: bytes
    repeats: bytes
    n_repeats: int

    @property
    def nbytes(self) -> int:
        """Bytes of binary data this update sends."""
        return len(self.summary) + len(self.repeat_rows) + len(self.repeats)

    def traits(self) -> dict[str, Any]:
        """The trait names and values to set on the dashboard."""
        return {
            "summary": self.summary,
            "repeat_rows": self.repeat_rows,
            "repeats": self.repeats,
            "n_repeats": self.n_repeats,
        }


def summary_rows(
    importances: np.ndarray,
    interim: np.ndarray | None = None,
    race: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of ``ImportanceResult.summary(sort=False)``, without pandas.

    Parameters
    ----------
    importances : (F, R) float64 array
        Estimates, NaN where not computed yet.
    interim : (4, F) float64 array, optional
        A method's estimate before its estimates carry an interval (``extras["interim"]``:
        mean, SE, half-width of the 95 % interval, estimates' worth walked, e.g. a Shapley
        column part way): it replaces the rows of units with fewer than two estimates.
    race : dict of str -> (F,) array, optional
        A rows race's numbers (``ImportanceResult.race_values()``), as in its summary.

    Returns
    -------
    rows : (5, F) float64 array
        :data:`SUMMARY_ROWS` (mean, ci_low, ci_high, normalized, n_done), in feature order;
        equal, bit for bit, to the summary's columns.
    order : (F,) int64 array
        Feature indices by rank (``ranking_order`` of the mean).
    """
    columns = summary_columns(importances, race)
    if interim is not None and interim.shape == (4, importances.shape[0]):
        columns = _with_interim(columns, interim)
    rows = np.stack([columns[name].astype(np.float64) for name in SUMMARY_ROWS])
    return rows, ranking_order(columns["mean"])


def _with_interim(columns: dict[str, np.ndarray], interim: np.ndarray) -> dict[str, np.ndarray]:
    """``columns`` with the interim estimate where fewer than two estimates are finished."""
    use = columns["n_done"] < 2
    mean = np.where(use, interim[0], columns["mean"])
    positive = np.where(np.isnan(mean), 0.0, np.clip(mean, 0.0, None))
    total = positive.sum()
    normalized = positive / total if total > 0 else np.zeros_like(positive)
    return {
        "mean": mean,
        "ci_low": np.where(use, mean - interim[2], columns["ci_low"]),
        "ci_high": np.where(use, mean + interim[2], columns["ci_high"]),
        "normalized": np.where(np.isnan(mean), np.nan, normalized),
        "n_done": np.where(use, interim[3], columns["n_done"]),
    }


class _LastSummary:
    """The summary bytes and rank order of the last snapshot encoded (one entry, any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[weakref.ref[ImportanceResult], bytes, np.ndarray] | None = None

    def get(self, result: ImportanceResult) -> tuple[bytes, np.ndarray]:
        with self._lock:
            entry = self._entry
        # Snapshots are immutable: the same object has the same numbers.
        if entry is not None and entry[0]() is result:
            return entry[1], entry[2]
        interim = result.extras.get("interim")
        rows, order = summary_rows(np.asarray(result.importances), interim, result.race_values())
        summary = rows.astype(_FLOAT32).tobytes()
        with self._lock:
            self._entry = (weakref.ref(result), summary, order)
        return summary, order


_LAST = _LastSummary()


def encode_result(result: ImportanceResult, top_n: int, selected: str = "") -> Payload:
    """Encode ``result`` for the dashboard.

    Parameters
    ----------
    result : ImportanceResult
        Snapshot with F features and R repeats.
    top_n : int
        Features whose per-repeat values are sent (clamped to [0, F]).
    selected : str
        Selected feature name ("" for none); its per-repeat values are sent too.

    Returns
    -------
    Payload
        ``summary`` (5, F) float32, ``repeat_rows`` (k,) int32, ``repeats`` (k, R) float32.
    """
    summary, order = _LAST.get(result)
    rows = [int(i) for i in order[: max(0, min(int(top_n), result.n_features))]]
    if selected in result.feature_names:
        index = result.feature_names.index(selected)
        if index not in rows:
            rows.append(index)
    row_array = np.asarray(rows, dtype=_INT32)
    return Payload(
        summary=summary,
        repeat_rows=row_array.tobytes(),
        repeats=np.asarray(result.importances)[row_array].astype(_FLOAT32).tobytes(),
        n_repeats=result.n_repeats,
    )


def decode_summary(summary: bytes, n_features: int) -> dict[str, np.ndarray]:
    """Inverse of the ``summary`` encoding: {row name: (F,) float32 array}."""
    values = np.frombuffer(summary, dtype=_FLOAT32)
    if values.size != len(SUMMARY_ROWS) * n_features:
        raise ValueError(
            f"summary holds {values.size} values, expected {len(SUMMARY_ROWS)} x {n_features}"
        )
    table = values.reshape(len(SUMMARY_ROWS), n_features)
    return dict(zip(SUMMARY_ROWS, table, strict=True))


def decode_repeats(repeat_rows: bytes, repeats: bytes, n_repeats: int) -> dict[int, np.ndarray]:
    """Inverse of the per-repeat encoding: {feature index: (R,) float32 array}."""
    rows = np.frombuffer(repeat_rows, dtype=_INT32)
    values = np.frombuffer(repeats, dtype=_FLOAT32).reshape(len(rows), n_repeats)
    return {int(row): values[r] for r, row in enumerate(rows)}
