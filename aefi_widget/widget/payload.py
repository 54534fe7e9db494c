"""ImportanceResult -> compact binary trait values for the dashboard (and back, for tests).

Layout (all little-endian, see docs/widget-protocol.md):

- ``summary``: float32, shape (5, F), rows :data:`SUMMARY_ROWS` = mean, ci_low, ci_high,
  normalized, n_done. Sent for every feature so the search box and ranks cover all of them.
- ``repeat_rows``: int32, shape (k,): the top-N features in rank order, then the selected
  feature when it is not among them.
- ``repeats``: float32, shape (k, R): per-repeat Δerror of those rows (NaN = not computed yet).

At 2,000 features x 10 repeats and N = 20 that is 40 KB + 84 B + 840 B per update; per-repeat
values for every feature would add 80 KB per update for boxes nobody sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aefi_widget.result import ImportanceResult

__all__ = ["SUMMARY_ROWS", "Payload", "decode_repeats", "decode_summary", "encode_result"]

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
    table = result.summary(sort=False)  # feature order, as the page indexes it
    summary = np.stack([table[name].to_numpy(dtype=np.float64) for name in SUMMARY_ROWS])
    order = np.argsort(table["rank"].to_numpy(), kind="stable")
    rows = [int(i) for i in order[: max(0, min(int(top_n), result.n_features))]]
    if selected in result.feature_names:
        index = result.feature_names.index(selected)
        if index not in rows:
            rows.append(index)
    row_array = np.asarray(rows, dtype=_INT32)
    return Payload(
        summary=summary.astype(_FLOAT32).tobytes(),
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
