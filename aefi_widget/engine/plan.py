"""Deterministic layout of a run's (repeat, unit, sample) evaluations into chunks and calls.

A round evaluates every unit on every sample of the repeat's subset: ``n_units * m`` samples,
laid out unit-major. When a round is larger than a chunk, chunk ``c`` of a round covers flat
positions ``[c * rows, (c + 1) * rows)`` of it. When a whole round fits in one forward call, a
chunk packs several rounds and each call holds whole rounds: small problems then make a few large
calls instead of one tiny call per round.

Either way every unit's samples are summed in the same pieces as in the one-round-per-chunk
layout, so packing changes speed, never numbers. The plan depends only on
``(n_units, m, rows, call_rows)``, so a run resumed at (round, chunk) repeats exactly the calls an
uninterrupted run would have made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

__all__ = ["Plan", "Segment", "chunk_count", "chunk_segments", "split_calls"]


@dataclass(frozen=True)
class Segment:
    """Samples ``[start, stop)`` of ``unit`` in ``repeat``, placed at rows
    ``[offset, offset + stop - start)`` of a forward call."""

    unit: int
    start: int
    stop: int
    offset: int
    repeat: int = 0

    @property
    def size(self) -> int:
        return self.stop - self.start


def chunk_count(n_units: int, m: int, rows: int) -> int:
    """Chunks per round when rounds are not packed."""
    return -(-(n_units * m) // rows)


def chunk_segments(chunk: int, n_units: int, m: int, rows: int, repeat: int = 0) -> list[Segment]:
    """The per-unit pieces of chunk ``chunk`` of one round (at most ``rows`` samples in all)."""
    begin = chunk * rows
    end = min(begin + rows, n_units * m)
    segments = []
    position = begin
    while position < end:
        unit, start = divmod(position, m)
        stop = min(m, start + end - position)
        segments.append(Segment(unit, start, stop, position - begin, repeat))
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
            calls[-1].append(Segment(segment.unit, start, stop, 0, segment.repeat))
            room -= stop - start
            start = stop
    return [call for call in calls if call]


@dataclass(frozen=True)
class Plan:
    """Chunks and forward calls of a run: ``n_units`` units, ``m`` samples per repeat,
    ``n_repeats`` repeats, ``rows`` samples per chunk, ``call_rows`` samples per call.

    ``slots`` ((unit, repeat) pairs, ``n_units`` of them) lays out a round over only those
    places: a round of an adaptive run, over its unsettled units, where a unit may take several
    repeats (None: units 0..n_units-1, each at the round's repeat). ``pack=False`` never packs
    rounds (an adaptive run decides after every round).
    """

    n_units: int
    m: int
    n_repeats: int
    rows: int
    call_rows: int
    slots: tuple[tuple[int, int], ...] | None = None
    pack: bool = True

    def over(self, slots: tuple[tuple[int, int], ...]) -> Plan:
        """The same plan laid out over ``slots`` only, rounds never packed."""
        return Plan(len(slots), self.m, self.n_repeats, self.rows, self.call_rows, slots, False)

    @property
    def round_size(self) -> int:
        """Evaluations in one round."""
        return self.n_units * self.m

    @property
    def rounds_per_call(self) -> int:
        """Whole rounds one forward call holds when rounds are packed; 0 when they are not."""
        return self.call_rows // self.round_size if self.round_size <= self.call_rows else 0

    @property
    def rounds_per_chunk(self) -> int:
        """Rounds one chunk covers (1 when rounds are not packed)."""
        per_call = self.rounds_per_call
        if not self.pack or per_call == 0 or self.rows < 2 * self.round_size:
            return 1
        return max(per_call, self.rows // self.round_size // per_call * per_call)

    @property
    def chunks_per_round(self) -> int:
        """Chunks of one round (1 when rounds are packed)."""
        return 1 if self.rounds_per_chunk > 1 else chunk_count(self.n_units, self.m, self.rows)

    def is_position(self, round_: int, chunk: int) -> bool:
        """Whether (round, chunk) is a place this plan can stand at (the next chunk to compute)."""
        if round_ == self.n_repeats:
            return chunk == 0
        return 0 <= round_ < self.n_repeats and 0 <= chunk < self.chunks_per_round

    def calls(self, round_: int, chunk: int) -> list[list[Segment]]:
        """The forward calls of the chunk at (round, chunk): lists of segments, unplaced."""
        packed = self.rounds_per_chunk
        if packed == 1:
            segments = chunk_segments(chunk, self.n_units, self.m, self.rows, round_)
            if self.slots is not None:
                slots = self.slots
                segments = [
                    replace(s, unit=slots[s.unit][0], repeat=slots[s.unit][1]) for s in segments
                ]
            return split_calls(segments, self.call_rows)
        last = min(self.n_repeats, round_ + packed)
        per_call = self.rounds_per_call
        calls = []
        for first in range(round_, last, per_call):
            calls.append([
                Segment(unit, 0, self.m, 0, repeat)
                for repeat in range(first, min(last, first + per_call))
                for unit in range(self.n_units)
            ])  # fmt: skip
        return calls

    def advance(self, round_: int, chunk: int) -> tuple[int, int]:
        """The position after the chunk at (round, chunk)."""
        packed = self.rounds_per_chunk
        if packed > 1:
            return min(self.n_repeats, round_ + packed), 0
        chunk += 1
        return (round_ + 1, 0) if chunk == self.chunks_per_round else (round_, chunk)

    def positions(self, round_: int, chunk: int) -> Iterator[tuple[int, int]]:
        """Every position from (round, chunk) to the end of the plan, in order."""
        while round_ < self.n_repeats:
            yield round_, chunk
            round_, chunk = self.advance(round_, chunk)

    def done_before(self, round_: int, chunk: int) -> int:
        """Evaluations finished before position (round, chunk)."""
        return round_ * self.round_size + min(chunk * self.rows, self.round_size)
