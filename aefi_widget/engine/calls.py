"""Forward calls as every method makes them: row-aligned, padded, split after out-of-memory errors.

Exactness rules (they are why the code looks the way it does):

- Calls get at least ``MIN_FORWARD_ROWS`` rows (padding with copies of a real row): BLAS takes a
  different code path for very few rows, which would make results depend on batch size.
- Sample i sits at a row congruent to i modulo ``ROW_ALIGNMENT`` in every call: MKL's
  small-matrix kernels round a row differently depending on its memory alignment.
  :func:`place_segments` keeps that true with a few gap rows between segments.
- After an out-of-memory error a call is split into parts of a multiple of ``ROW_ALIGNMENT``
  rows, so every sample's output stays what it would have been in one call.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import torch

from aefi_widget.engine.inputs import reconstruction_of
from aefi_widget.engine.plan import Segment

__all__ = ["MIN_FORWARD_ROWS", "ROW_ALIGNMENT", "Caller", "Scratch", "aligned", "place_segments"]

MIN_FORWARD_ROWS = 16
ROW_ALIGNMENT = 16
_OOM_ERRORS: tuple[type[BaseException], ...] = (MemoryError, torch.OutOfMemoryError)


def aligned(rows: int) -> int:
    """``rows`` rounded up to a multiple of ``ROW_ALIGNMENT``."""
    return -(-rows // ROW_ALIGNMENT) * ROW_ALIGNMENT


def place_segments(segments: list[Segment]) -> tuple[list[Segment], int]:
    """Segments moved so sample ``start + j`` sits at a row congruent to it modulo 16, and the
    rows the call needs (gaps included)."""
    placed, row = [], 0
    for segment in segments:
        row += (segment.start - row) % ROW_ALIGNMENT
        placed.append(dataclasses.replace(segment, offset=row))
        row += segment.size
    return placed, row


class Caller:
    """Runs functions of the model on row blocks; remembers a row cap after out-of-memory errors.

    One per model session, shared by every method and drilldown using it (thread-safe).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._rows_cap: int | None = None
        self._lock = threading.Lock()

    @property
    def rows_cap(self) -> int | None:
        """Largest call (rows) since an out-of-memory error; None when none happened."""
        return self._rows_cap

    def __call__(self, fn: Callable[[torch.Tensor], Any], inputs: torch.Tensor) -> torch.Tensor:
        """``fn(inputs)`` (its reconstruction), padded to >= 16 rows, split when memory runs out."""
        rows = inputs.shape[0]
        if rows < MIN_FORWARD_ROWS:
            pad = inputs[:1].expand(MIN_FORWARD_ROWS - rows, -1)
            return self._split(fn, torch.cat([inputs, pad]))[:rows]
        return self._split(fn, inputs)

    def _split(self, fn: Callable[[torch.Tensor], Any], inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs.shape[0]
        cap = self._rows_cap
        if cap is not None and rows > cap:
            # Parts of a multiple of ROW_ALIGNMENT rows keep every row's alignment.
            step = max(ROW_ALIGNMENT, cap // ROW_ALIGNMENT * ROW_ALIGNMENT)
            return torch.cat([self(fn, part) for part in torch.split(inputs, step)])
        try:
            return reconstruction_of(fn(inputs))
        except _OOM_ERRORS:
            if rows <= MIN_FORWARD_ROWS:
                raise MemoryError(
                    f"out of memory even for {rows} samples in one forward call; free memory, "
                    "use a smaller model or data type, or compute on another device"
                ) from None
            with self._lock:
                self._rows_cap = max(MIN_FORWARD_ROWS, rows // 2)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._split(fn, inputs)


class Scratch:
    """Reusable (rows, width) buffers for one chunk's reductions, by use, grown as needed.

    Writing each segment's differences to fresh memory costs a read from DRAM per cache line
    first; reused buffers stay in cache.
    """

    def __init__(self, width: int, device: torch.device) -> None:
        self._width, self._device = width, device
        self._buffers: dict[str, torch.Tensor] = {}

    def rows(self, use: str, rows: int, dtype: torch.dtype) -> torch.Tensor:
        buffer = self._buffers.get(use)
        if buffer is None or buffer.shape[0] < rows or buffer.dtype != dtype:
            buffer = torch.empty((rows, self._width), dtype=dtype, device=self._device)
            self._buffers[use] = buffer
        return buffer[:rows]
