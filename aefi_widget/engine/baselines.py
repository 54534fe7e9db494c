"""The unperturbed quantities every method compares against, over all rows or only some.

A method that evaluates every row needs the whole :class:`Baseline` (reconstruction, first-layer
pre-activations and X transposed, each of X's size). One that samples ``m`` of the ``n`` rows
(permutation importance with ``max_samples``) needs them only for its rows, plus the mean error
over all rows it reports as the baseline error; :func:`row_baseline` and :func:`all_errors`
give exactly those, so memory follows the rows sampled, not n.

The numbers are bit for bit those of the whole baseline: a row's output does not depend on the
call it is in as long as it sits at a row congruent to its index in X modulo ``ROW_ALIGNMENT``
(see :mod:`aefi_widget.engine.calls`), which :func:`row_baseline` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aefi_widget.engine.calls import MIN_FORWARD_ROWS, ROW_ALIGNMENT, aligned
from aefi_widget.engine.probes import joined_reconstructions

__all__ = ["Baseline", "all_errors", "full_baseline", "row_baseline"]

_PASS_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Baseline:
    """Unperturbed quantities over a set of rows (all n, or a sorted subset).

    ``pre`` (rows, h) is the first Linear's output on the rank-1 path (else None); ``recon``
    (rows, d) the reconstruction; ``errors`` (rows,) float64 per-sample errors against X;
    ``error`` the mean error over all n rows (whatever the subset); ``columns`` (d, rows) X
    transposed, so one feature's values are contiguous to gather from.
    """

    pre: torch.Tensor | None
    recon: torch.Tensor
    errors: torch.Tensor
    error: float
    columns: torch.Tensor


def full_baseline(session: Any, call_rows: int) -> Baseline:
    """The baseline over all n rows of ``session.X`` (calls of ``call_rows`` rows)."""
    X = session.X
    pre, recon = _reconstruct(session, X, call_rows)
    errors = _errors(session, recon, X)
    _check_finite(session, errors, bool(torch.isfinite(recon).all()))
    return Baseline(pre, recon, errors, float(errors.mean()), X.t().contiguous())


def all_errors(session: Any, call_rows: int) -> torch.Tensor:
    """(n,) float64 per-sample errors over all rows, computed one call at a time: only one
    call's reconstruction is alive at once. Equal to :func:`full_baseline`'s ``errors``."""
    X = session.X
    # Calls of at most ~_PASS_BYTES of reconstruction: this pass keeps nothing per call but the
    # errors, and larger calls only leave large freed blocks behind in the heap. Any call size
    # gives the same numbers (a row's output does not depend on its call).
    rows = max(MIN_FORWARD_ROWS, _PASS_BYTES // max(1, X.shape[1] * X.element_size()))
    step = aligned(min(max(MIN_FORWARD_ROWS, call_rows), rows))
    # Filled in place: small tensors kept between the calls' large freed ones would pin the
    # heap, which then grows by a call's size per call.
    errors = torch.empty(X.shape[0], dtype=torch.float64, device=X.device)
    finite = True
    for start in range(0, X.shape[0], step):
        piece = X[start : start + step]
        recon = _reconstruct(session, piece, step)[1]
        errors[start : start + step] = _errors(session, recon, piece)
        finite = finite and bool(torch.isfinite(recon).all())
    _check_finite(session, errors, finite)
    return errors


def row_baseline(session: Any, rows: np.ndarray, errors: torch.Tensor, call_rows: int) -> Baseline:
    """The baseline restricted to the sorted (m,) int64 ``rows`` of X, given all n ``errors``.

    The rows are placed in one buffer at positions congruent to their index in X (modulo
    ``ROW_ALIGNMENT``), the gaps filled with copies of the first row; at most ``ROW_ALIGNMENT``
    times m rows are run.
    """
    positions = _aligned_positions(rows)
    source = np.full(int(positions[-1]) + 1, rows[0], dtype=np.int64)
    source[positions] = rows
    device = session.X.device
    buffer = session.X[torch.as_tensor(source, device=device)]
    pre, recon = _reconstruct(session, buffer, call_rows)
    keep = torch.as_tensor(positions, device=device)
    index = torch.as_tensor(rows, device=device)
    X_rows = buffer[keep]
    return Baseline(
        None if pre is None else pre[keep],
        recon[keep],
        errors[index],
        float(errors.mean()),
        X_rows.t().contiguous(),
    )


def _aligned_positions(rows: np.ndarray) -> np.ndarray:
    """Increasing positions, one per sorted row, with ``position % 16 == row % 16``: each
    row sits just past the previous one, plus the gap (< 16) that restores its residue."""
    gaps = 1 + (np.diff(rows) - 1) % ROW_ALIGNMENT
    return rows[0] % ROW_ALIGNMENT + np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)


def _reconstruct(
    session: Any, X: torch.Tensor, call_rows: int
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """First-layer outputs (rank-1 path, else None) and reconstructions of the rows of ``X``,
    in calls of ``call_rows`` rows rounded up to a multiple of ``ROW_ALIGNMENT``."""
    path, caller, d = session.path, session.caller, X.shape[1]
    step = aligned(max(MIN_FORWARD_ROWS, call_rows))
    pieces = torch.split(X, step)
    if path.first is None:
        return None, joined_reconstructions([caller(path.model, p) for p in pieces], d)
    pre = torch.cat([caller(path.first, p) for p in pieces])
    # Copies: a layer after the first Linear may work in place (ReLU(inplace=True)) and must not
    # change the cached pre-activations every rank-1 update starts from.
    parts = [caller(path.rest, p.clone()) for p in torch.split(pre, step)]
    return pre, joined_reconstructions(parts, d)


def _errors(session: Any, recon: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """(rows,) float64 errors of ``recon`` against ``X``; refuses a metric of the wrong shape."""
    errors = torch.as_tensor(session.errors(recon, X)).to(torch.float64)
    if errors.shape != (X.shape[0],):
        raise ValueError(f"the metric returned shape {tuple(errors.shape)}, not ({X.shape[0]},)")
    return errors


def _check_finite(session: Any, errors: torch.Tensor, recon_finite: bool) -> None:
    """Refuse NaN or inf errors, or a reconstruction with one."""
    if not bool(torch.isfinite(errors).all()) or not recon_finite:
        bad = int((~torch.isfinite(errors)).sum())
        raise ValueError(
            f"the unpermuted reconstruction error is NaN or inf for {bad} sample(s) (metric "
            f"{session.metric_name!r}); 'rmse_pct' needs samples with a non-zero norm"
        )
