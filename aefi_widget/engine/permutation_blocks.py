"""Evaluate granules of the rows race: rows of one unit under one shuffle, per-row values summed.

A granule (unit j, repeat r, positions [p0, p1) of the row order) evaluates rows
``order[r, j][p0:p1]`` with unit j's columns taken from their donors ``pi[r, j][row]``: exactly
those rows of the exact run's repeat r. Granules go into forward calls at offsets that are
multiples of ``ROW_ALIGNMENT`` (a row's output never depends on the call it is in); each
granule's per-row values are summed exactly (``math.fsum``), so no number depends on how calls
or chunks are cut.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aefi_widget.engine.calls import ROW_ALIGNMENT
from aefi_widget.engine.permutation_rows import Shuffles
from aefi_widget.engine.permutations import permutations_of_pairs, row_orders
from aefi_widget.engine.rows_race import GranuleSums
from aefi_widget.engine.session import Baseline, ModelSession

__all__ = ["evaluate_granules", "granule_rows"]


def granule_rows(
    shuffles: Shuffles, granules: np.ndarray, n: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each granule's rows and their donors (int64 arrays), from one vectorised hash per
    distinct (repeat, unit) pair."""
    pairs, inverse = np.unique(granules[:, [1, 0]], axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    orders = row_orders(shuffles.seed, pairs[:, 0], pairs[:, 1], n)
    shuffle = permutations_of_pairs(shuffles.seed, pairs[:, 0], pairs[:, 1], n)
    rows, donors = [], []
    for g, (_, _, p0, p1) in enumerate(granules):
        chosen = orders[inverse[g], p0:p1]
        rows.append(chosen)
        donors.append(shuffle[inverse[g], chosen])
    return rows, donors


def _calls(sizes: np.ndarray, call_rows: int) -> list[tuple[int, int]]:
    """Granule ranges [a, b) per forward call: at most ``call_rows`` aligned rows (>= 1)."""
    calls, start, used = [], 0, 0
    for g, size in enumerate(sizes):
        room = -(-int(size) // ROW_ALIGNMENT) * ROW_ALIGNMENT
        if used and used + room > call_rows:
            calls.append((start, g))
            start, used = g, 0
        used += room
    calls.append((start, len(sizes)))
    return calls


def evaluate_granules(
    session: ModelSession,
    shuffles: Shuffles,
    baseline: Baseline,
    granules: np.ndarray,
    call_rows: int,
) -> GranuleSums:
    """Per-granule sums of ``error_perm - error_orig`` (and of ``|recon_perm - recon|``)."""
    n = session.n_samples
    rows, donors = granule_rows(shuffles, granules, n)
    sizes = granules[:, 3] - granules[:, 2]
    count = sizes.astype(np.int64)
    total, m2 = np.zeros(len(sizes)), np.zeros(len(sizes))
    delta = np.zeros((len(sizes), session.n_inputs)) if shuffles.per_output else None
    for a, b in _calls(sizes, call_rows):
        _evaluate_call(session, shuffles, baseline, granules[a:b], rows[a:b], donors[a:b],
                       total[a:b], m2[a:b], None if delta is None else delta[a:b])  # fmt: skip
    return GranuleSums(count, total, m2, delta)


def _evaluate_call(
    session: ModelSession, shuffles: Shuffles, baseline: Baseline, granules: np.ndarray,
    rows: list[np.ndarray], donors: list[np.ndarray], total: np.ndarray, m2: np.ndarray,
    delta: np.ndarray | None,
) -> None:  # fmt: skip
    """One forward call over ``granules``; writes their sums into the given views."""
    device = session.device
    offsets, at = [], 0
    for chosen in rows:
        offsets.append(at)
        at += -(-len(chosen) // ROW_ALIGNMENT) * ROW_ALIGNMENT
    index = np.zeros(at, dtype=np.int64)  # gap rows repeat row 0 (finite, ignored)
    donor = np.zeros(at, dtype=np.int64)
    for offset, chosen, given in zip(offsets, rows, donors, strict=True):
        index[offset : offset + len(chosen)] = chosen
        donor[offset : offset + len(chosen)] = given
    idx = torch.as_tensor(index, device=device)
    X, first = session.X, session.path.first
    original = X.index_select(0, idx)
    target = original
    if first is None:
        buffer = original.clone()
    else:
        buffer = baseline.pre.index_select(0, idx).clone()
        weight_t = first.weight.detach().t()  # (d, h)
    if shuffles.target == "permuted":
        target = original.clone()
    units = [shuffles.units[int(unit)].columns for unit in granules[:, 0]]
    if all(len(columns) == 1 for columns in units):
        _shuffle_single_columns(session, baseline, units, rows, offsets, index, donor, buffer,
                                target if shuffles.target == "permuted" else None)  # fmt: skip
    else:
        for g, columns_of in enumerate(units):
            columns = torch.as_tensor(columns_of, device=device)
            lo, hi = offsets[g], offsets[g] + len(rows[g])
            source = torch.as_tensor(donor[lo:hi], device=device)
            shuffled = baseline.columns[columns].index_select(1, source).t()
            if shuffles.target == "permuted":
                target[lo:hi, columns] = shuffled
            if first is None:
                buffer[lo:hi, columns] = shuffled
                continue
            change = shuffled - original[lo:hi][:, columns]
            out = buffer[lo:hi]
            for k, column in enumerate(columns.tolist()):
                # pre + (x_perm - x) * W[:, j], column by column: exact and call-independent.
                out.addcmul_(change[:, k : k + 1], weight_t[column].contiguous().unsqueeze(0))
    recon = session.reconstruct(buffer)
    errors = torch.as_tensor(session.errors(recon, target)).to(torch.float64)
    values = (errors - baseline.errors.index_select(0, idx)).cpu().numpy()
    if not np.isfinite(values).all():
        raise ValueError(
            "the reconstruction error became NaN or inf on shuffled data; the model or metric "
            f"{session.metric_name!r} is not finite there"
        )
    moved = None
    if delta is not None:
        moved = (recon - baseline.recon.index_select(0, idx)).abs_().to(torch.float64)
    for g, chosen in enumerate(rows):
        lo, hi = offsets[g], offsets[g] + len(chosen)
        piece = values[lo:hi].tolist()
        total[g] = math.fsum(piece)
        mean = total[g] / len(piece)
        m2[g] = math.fsum((v - mean) ** 2 for v in piece)
        if moved is not None:
            delta[g] = moved[lo:hi].sum(dim=0).cpu().numpy()


def _shuffle_single_columns(
    session: ModelSession, baseline: Baseline, units: list, rows: list[np.ndarray],
    offsets: list[int], index: np.ndarray, donor: np.ndarray, buffer: torch.Tensor,
    target: torch.Tensor | None,
) -> None:  # fmt: skip
    """Every granule's one column shuffled in one gather per call (gap rows: column 0 of row 0
    moved onto itself, a zero change)."""
    device = session.device
    column = np.zeros(len(index), dtype=np.int64)
    for g, columns in enumerate(units):
        column[offsets[g] : offsets[g] + len(rows[g])] = int(columns[0])
    col = torch.as_tensor(column, device=device)
    idx = torch.as_tensor(index, device=device)
    src = torch.as_tensor(donor, device=device)
    flat = baseline.columns  # (d, n)
    shuffled = flat[col, src]
    original = flat[col, idx]
    at = torch.arange(len(index), device=device)
    if target is not None:
        target[at, col] = shuffled
    first = session.path.first
    if first is None:
        buffer[at, col] = shuffled
        return
    weight_t = first.weight.detach().t()  # (d, h)
    # pre + (x_perm - x) * W[:, j] per row: the rank-1 update, elementwise.
    buffer.addcmul_((shuffled - original).unsqueeze(1), weight_t.index_select(0, col))
