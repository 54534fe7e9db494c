"""The rows race: certified top-k within a tolerance, sampling rows as well as shuffles.

A round gives every open unit (not settled, not tied, under the cap of ``n_repeats * n`` rows) a
block of rows that takes its row count to the next size of the look schedule (32, 64, 96, ...:
:func:`~aefi_widget.engine.pac_race.look_sizes`); the ``top_k + LEADERS_EXTRA`` open units with
the largest means jump two sizes (LUCB's idea: the boundary's bounds tighten first, and the
relative tolerance and every other unit's settling are measured against them). After the round
:func:`~aefi_widget.engine.pac_race.pac_decide` settles units. Blocks are cut into granules of
at most ``GRANULE`` rows on a grid fixed per shuffle, each summed alone in float64 and combined
in order (Chan et al.'s pairwise update), so no number depends on batch sizes or call cuts.

Every allocation is a pure function of the accumulators at the round's start and the last
decision, so a resumed run recomputes its round from its snapshot; the accumulators of the round
in progress travel apart (``round_*``) and are merged at the round's end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from aefi_widget.engine.pac_race import (
    PacDecision,
    hopeless,
    look_sizes,
    pac_decide,
    projected_rows,
    row_bounds,
)

__all__ = [
    "FIRST_ROWS",
    "GRANULE",
    "LEADERS_EXTRA",
    "GranuleSums",
    "RowsRaceSettings",
    "RowsRaceState",
    "rows_race_rounds",
]  # fmt: skip

# Rows of a unit's first block: about the explorer's first look (~40,000 rows at d = 1,000),
# and enough rows for the t approximation (module notes of pac_race).
FIRST_ROWS = 32
GRANULE = 32
LEADERS_EXTRA = 10
# Rows before a unit may be given up as hopeless (pac_race.hopeless): its spread and mean are
# then known to about 10 % and 0.2 spreads.
GIVE_UP_ROWS = 128


@dataclass(frozen=True)
class RowsRaceSettings:
    """``top_k`` at ``confidence`` within ``tolerance`` (a fraction of the k-th importance when
    ``relative``), over ``n`` rows and at most ``n_repeats`` shuffles' worth of rows a unit."""

    top_k: int
    confidence: float
    tolerance: float
    relative: bool
    n: int
    n_repeats: int
    first: int = FIRST_ROWS

    @property
    def cap(self) -> int:
        """Rows one unit may take: what a ``n_repeats`` exact run spends on it."""
        return self.n * self.n_repeats

    @property
    def sizes(self) -> np.ndarray:
        return look_sizes(min(self.first, self.cap), self.cap)


@dataclass
class Totals:
    """Per-unit accumulators: rows, their sum and sum of squared deviations, per-shuffle sums
    (F, R) and (per_output) the (F, d) sum of ``|recon_perm - recon|``."""

    count: np.ndarray
    total: np.ndarray
    m2: np.ndarray
    perm_sum: np.ndarray
    delta: np.ndarray | None

    @classmethod
    def zeros(cls, n_units: int, n_repeats: int, d: int, per_output: bool) -> Totals:
        return cls(np.zeros(n_units, dtype=np.int64), np.zeros(n_units), np.zeros(n_units),
                   np.zeros((n_units, n_repeats)),
                   np.zeros((n_units, d)) if per_output else None)  # fmt: skip

    def add(self, unit: int, perm: int, count: int, total: float, m2: float,
            delta: np.ndarray | None) -> None:  # fmt: skip
        """Merge one granule (or one unit's round) into unit ``unit``."""
        before = int(self.count[unit])
        if before == 0:
            self.m2[unit] = m2
        else:
            gap = total / count - self.total[unit] / before
            self.m2[unit] += m2 + gap * gap * before * count / (before + count)
        self.count[unit] = before + count
        self.total[unit] += total
        if perm >= 0:
            self.perm_sum[unit, perm] += total
        if self.delta is not None and delta is not None:
            self.delta[unit] += delta

    def merge(self, other: Totals) -> None:
        """Add a round's accumulators, unit by unit in index order."""
        for unit in np.flatnonzero(other.count):
            self.add(int(unit), -1, int(other.count[unit]), float(other.total[unit]),
                     float(other.m2[unit]), None)  # fmt: skip
        self.perm_sum += other.perm_sum
        if self.delta is not None and other.delta is not None:
            self.delta += other.delta

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / np.maximum(self.count, 1), np.nan)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}count": self.count.astype(np.float64), f"{prefix}total": self.total,
               f"{prefix}m2": self.m2, f"{prefix}perm_sum": self.perm_sum}  # fmt: skip
        if self.delta is not None:
            out[f"{prefix}delta"] = self.delta
        return {k: v.copy() for k, v in out.items()}


@dataclass(frozen=True)
class GranuleSums:
    """Per granule: rows, sum and sum of squared deviations of the per-row values, and
    (per_output) the (G, d) sums of ``|recon_perm - recon|``."""

    count: np.ndarray
    total: np.ndarray
    m2: np.ndarray
    delta: np.ndarray | None


@dataclass
class RowsRaceState:
    """A rows race in progress: accumulators of finished rounds, of the round in progress, the
    last decision, the round's granules and the position in them."""

    settings: RowsRaceSettings
    totals: Totals
    in_round: Totals
    decision: PacDecision | None = None
    round: int = 0
    granule: int = 0
    elapsed_s: float = 0.0
    granules: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))

    def __post_init__(self) -> None:
        self.granules = granules_of(allocate(self.totals, self.decision, self.settings),
                                    self.settings.n)  # fmt: skip

    @property
    def over(self) -> bool:
        return len(self.granules) == 0

    @property
    def evaluations_done(self) -> int:
        return int(self.totals.count.sum() + self.in_round.count.sum())

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        t, s = self.totals, self.settings
        return row_bounds(t.count, t.mean, t.m2, s.sizes, s.confidence, s.n)

    def projected(self) -> np.ndarray:
        t, s = self.totals, self.settings
        epsilon = 0.0 if self.decision is None else self.decision.epsilon
        return projected_rows(t.count, t.mean, t.m2, s.top_k, epsilon, len(s.sizes),
                              s.confidence)  # fmt: skip

    def decide(self) -> None:
        """The decision after a round (also recomputes a resumed run's last decision)."""
        s, t = self.settings, self.totals
        lower, upper = self.bounds()
        at_cap = t.count >= s.cap
        judged = t.count >= min(GIVE_UP_ROWS, s.cap)
        give_up = at_cap | (judged & hopeless(t.count, t.mean, t.m2, s.top_k, s.tolerance,
                                              s.relative, len(s.sizes), s.confidence, s.cap,
                                              s.n))  # fmt: skip
        self.decision = pac_decide(lower, upper, t.mean, s.top_k, s.tolerance, s.relative,
                                   self.decision, give_up)  # fmt: skip

    def finish_round(self) -> None:
        """Merge the round, decide, lay out the next round."""
        self.totals.merge(self.in_round)
        self.in_round = Totals.zeros(*self.totals.perm_sum.shape, self.delta_width,
                                     self.totals.delta is not None)  # fmt: skip
        self.decide()
        self.round, self.granule = self.round + 1, 0
        self.granules = granules_of(allocate(self.totals, self.decision, self.settings),
                                    self.settings.n)  # fmt: skip

    def shown(self) -> Totals:
        """What a snapshot shows: the finished rounds plus, per unit, the rows of the round in
        progress once its count is a look size. The bounds then hold (pac_race's family covers
        every unit at every look size, whichever are read), so the first round's bars come
        chunk by chunk; decisions still wait for the round's end."""
        t, r = self.totals, self.in_round
        combined = t.count + r.count
        ready = np.flatnonzero((r.count > 0) & np.isin(combined, self.settings.sizes))
        if ready.size == 0:
            return t
        shown = Totals(t.count.copy(), t.total.copy(), t.m2.copy(), t.perm_sum.copy(),
                       None if t.delta is None else t.delta.copy())  # fmt: skip
        for unit in ready:
            shown.add(int(unit), -1, int(r.count[unit]), float(r.total[unit]), float(r.m2[unit]),
                      None if r.delta is None else r.delta[unit])  # fmt: skip
        shown.perm_sum[ready] += r.perm_sum[ready]
        return shown

    @property
    def delta_width(self) -> int:
        return 0 if self.totals.delta is None else self.totals.delta.shape[1]

    def absorb(self, chunk: np.ndarray, sums: GranuleSums) -> None:
        """Add the sums of granules ``chunk`` (the next ones of the round) to the round."""
        for i, (unit, perm, _, _) in enumerate(chunk):
            delta = None if sums.delta is None else sums.delta[i]
            self.in_round.add(int(unit), int(perm), int(sums.count[i]), float(sums.total[i]),
                              float(sums.m2[i]), delta)  # fmt: skip
        self.granule += len(chunk)

    def expected_total(self) -> int:
        """Rows done plus the rows the race still expects (an ETA; the done rows once over)."""
        done = self.evaluations_done
        if self.over:
            return done
        s, t = self.settings, self.totals
        settled = np.zeros(t.count.size, bool) if self.decision is None else self.decision.settled
        need = np.clip(np.nan_to_num(self.projected(), nan=s.cap, posinf=s.cap), 0, s.cap)
        planned = np.zeros(t.count.size, dtype=np.int64)
        np.add.at(planned, self.granules[:, 0], self.granules[:, 3] - self.granules[:, 2])
        target = np.maximum(need, t.count + planned)
        left = np.where(settled, 0.0, np.maximum(0.0, target - t.count)).sum()
        return int(t.count.sum() + max(left, planned.sum()))

    def separation_rows(self) -> float:
        """Rows the open and tied units would still need to be separated (projected)."""
        if self.decision is None or self.decision.certified:
            return 0.0
        t, d = self.totals, self.decision
        open_ = ~(d.settled_in | d.settled_out)
        need = self.projected()[open_]
        return float(np.maximum(0.0, need - t.count[open_]).sum())


def allocate(totals: Totals, decision: PacDecision | None, s: RowsRaceSettings) -> np.ndarray:
    """The round's blocks, (B, 3) int64 rows of (unit, first stream position, stop), by unit:
    every open unit to its next look size, the leaders two sizes; empty once over."""
    n_units = totals.count.size
    if decision is not None and decision.certified:
        return np.zeros((0, 3), dtype=np.int64)
    open_ = np.ones(n_units, dtype=bool) if decision is None else ~decision.settled
    open_ &= totals.count < s.cap
    units = np.flatnonzero(open_)
    if units.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    sizes = s.sizes
    steps = np.ones(units.size, dtype=np.int64)
    if totals.count[units].min() > 0:
        mean = totals.mean[units]
        steps[np.argsort(-mean, kind="stable")[: s.top_k + LEADERS_EXTRA]] = 2
    # The index of the next size above the current count, then steps further (clipped).
    index = np.searchsorted(sizes, totals.count[units], side="right") + steps - 1
    stop = sizes[np.minimum(index, len(sizes) - 1)]
    return np.stack([units, totals.count[units], stop], axis=1).astype(np.int64)


def granules_of(blocks: np.ndarray, n: int) -> np.ndarray:
    """Blocks cut on each shuffle's grid of ``GRANULE`` rows: (G, 4) int64 rows of (unit,
    repeat, first position in the repeat's row order, stop)."""
    rows = []
    for unit, start, stop in blocks:
        t = int(start)
        while t < stop:
            repeat, position = divmod(t, n)
            end = min(n, (position // GRANULE + 1) * GRANULE, position + int(stop) - t)
            rows.append((int(unit), repeat, position, end))
            t += end - position
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def rows_race_rounds(
    state: RowsRaceState,
    chunk_rows: int,
    evaluate: Callable[[np.ndarray], tuple[GranuleSums, float]],
    snapshot: Callable[[RowsRaceState], object],
) -> Iterator[object]:
    """Chunks of about ``chunk_rows`` rows (whole granules) until the race is over; yields
    ``snapshot(state)`` after each chunk (after the round's decision at a round's end)."""
    while not state.over:
        granules = state.granules
        sizes = granules[:, 3] - granules[:, 2]
        ends = np.cumsum(sizes)
        begin = state.granule
        done_before = ends[begin - 1] if begin else 0
        end = max(begin + 1, int(np.searchsorted(ends, done_before + chunk_rows, "right")))
        chunk = granules[begin:end]
        sums, seconds = evaluate(chunk)
        state.elapsed_s += seconds
        state.absorb(chunk, sums)
        if state.granule == len(granules):
            state.finish_round()
        yield snapshot(state)
