"""Deterministic split of one round's (unit, sample) evaluations into forward calls.

A round evaluates every unit on every sample of the repeat's subset: ``n_units * m`` permuted
samples, laid out unit-major. Chunk ``c`` covers flat positions ``[c * rows, (c + 1) * rows)``.
The plan depends only on ``(n_units, m, rows)``, so a run resumed at chunk ``c`` repeats exactly the
forward calls an uninterrupted run would have made.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Segment", "chunk_count", "chunk_segments", "split_calls"]


@dataclass(frozen=True)
class Segment:
    """Samples ``[start, stop)`` of ``unit``, placed at rows ``[offset, offset + stop - start)``."""

    unit: int
    start: int
    stop: int
    offset: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def chunk_count(n_units: int, m: int, rows: int) -> int:
    """Forward calls per round."""
    return -(-(n_units * m) // rows)


def chunk_segments(chunk: int, n_units: int, m: int, rows: int) -> list[Segment]:
    """The per-unit pieces of chunk ``chunk`` (at most ``rows`` samples in all)."""
    begin = chunk * rows
    end = min(begin + rows, n_units * m)
    segments = []
    position = begin
    while position < end:
        unit, start = divmod(position, m)
        stop = min(m, start + end - position)
        segments.append(Segment(unit, start, stop, position - begin))
        position += stop - start
    return segments


def split_calls(segments: list[Segment], rows: int) -> list[list[Segment]]:
    """Cut a chunk's segments into forward calls of at most ``rows`` samples each.

    A segment crossing a call boundary is split in two; offsets are left for the caller to
    place. Sample outputs do not depend on how calls are cut (rows stay aligned), so this
    changes speed, not numbers.
    """
    calls: list[list[Segment]] = [[]]
    room = rows
    for segment in segments:
        start = segment.start
        while start < segment.stop:
            if room == 0:
                calls.append([])
                room = rows
            stop = min(segment.stop, start + room)
            calls[-1].append(Segment(segment.unit, start, stop, 0))
            room -= stop - start
            start = stop
    return [call for call in calls if call]
