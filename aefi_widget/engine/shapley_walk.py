"""Walking orderings for Shapley values of the loss: each sample gains one unit at a time.

For a coalition S of units and a sample x the model sees B rows ``(x_S, b_{-S})``, one per
background row b; the prediction is their mean and the loss is the metric of that mean against x
(SAGE's marginal imputer). A walk starts from the empty coalition and adds the units of an
ordering one by one; unit ``u``'s contribution is ``loss(before) - loss(after)``, so a walk's
contributions sum to ``loss(empty) - loss(all units)`` for that sample.

A :class:`BatchWalk` advances many walks together, one forward call per step: on the rank-1 path
adding column j to a walk changes the first Linear's pre-activation of its B rows by
``(x_j - b_j) outer W[:, j]``, an elementwise update of a kept state, so only the rest of the
network runs per step; otherwise the kept state is the inputs themselves, with x's values
written into the added columns.

Exactness rules (why a walk's numbers do not depend on which other walks share its calls):
every walk occupies ``aligned(B)`` rows, so background row b sits at a row congruent to b modulo
16 in every call (:mod:`~aefi_widget.engine.calls`); state updates are elementwise; the mean over
background rows is a reduction over that dimension alone; and losses are taken over at least two
rows (torch splits a reduction to a single output across threads). A unit the model
ignores therefore changes nothing, bit for bit: its contribution is exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aefi_widget.engine.calls import aligned
from aefi_widget.engine.session import ModelSession
from aefi_widget.engine.units import Unit

__all__ = ["Background", "BatchWalk", "UnitTable", "empty_losses", "mean_over_background"]


@dataclass(frozen=True)
class Background:
    """The background rows as the walks use them.

    ``rows`` (Bp, d) in the model's dtype: the ``count`` real rows, then copies of the first up
    to ``Bp = aligned(count)``; ``columns`` (d, Bp) the same transposed (one feature's values
    contiguous); ``pre`` (Bp, h) their first-layer outputs on the rank-1 path, else None.
    """

    rows: torch.Tensor
    count: int
    columns: torch.Tensor
    pre: torch.Tensor | None

    @classmethod
    def prepare(cls, session: ModelSession, rows: torch.Tensor) -> Background:
        """Pad ``rows`` (B, d) to aligned(B) rows and run the first layer once (rank-1)."""
        count = rows.shape[0]
        padded = torch.cat([rows, rows[:1].expand(aligned(count) - count, -1)])
        first = session.path.first
        pre = None
        if first is not None:
            with session.computing():
                pre = session.caller(first, padded).detach()
        return cls(padded, count, padded.t().contiguous(), pre)


@dataclass(frozen=True)
class UnitTable:
    """Columns of every unit, padded: ``columns`` (F, L) int64 (a unit's first column repeats
    after its own), ``sizes`` (F,) int64 column counts, on the session's device."""

    columns: torch.Tensor
    sizes: torch.Tensor

    @classmethod
    def of(cls, units: list[Unit], device: torch.device) -> UnitTable:
        width = max(len(u.columns) for u in units)
        table = np.empty((len(units), width), dtype=np.int64)
        for k, unit in enumerate(units):
            table[k] = unit.columns[0]
            table[k, : len(unit.columns)] = unit.columns
        sizes = np.array([len(u.columns) for u in units], dtype=np.int64)
        return cls(torch.as_tensor(table, device=device), torch.as_tensor(sizes, device=device))


def mean_over_background(recon: torch.Tensor, count: int) -> torch.Tensor:
    """Mean over the first ``count`` background rows of (W, Bp, d) outputs: (W, d) float64.

    Summed in the model's dtype over the middle dimension, then widened: torch splits such a
    reduction between threads only along the kept dimensions, so each output is summed in an
    order that depends on ``count`` alone, not on W (checked bitwise for W from 1 to 600); a
    single output would be split along the summed one, hence the padding. A float32 sum of 64
    rows rounds about as much as the model's float32 outputs already do, and at W=512, d=100 it
    took 0.15 ms where a float64 tree of elementwise additions took 2.4 ms.
    """
    rows = recon[:, :count]
    if rows.shape[0] * rows.shape[2] == 1:
        rows = rows.expand(2, -1, -1)
    return rows.sum(dim=1)[: recon.shape[0]].to(torch.float64) / count


def _losses(session: ModelSession, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row losses (W,) float64 of (W, d) predictions against targets, on >= 2 rows."""
    rows = prediction.shape[0]
    if rows == 1:  # a one-row reduction is split across threads: another summation order
        prediction, target = prediction.expand(2, -1), target.expand(2, -1)
    losses = torch.as_tensor(session.errors(prediction, target))
    if losses.shape != (prediction.shape[0],):
        raise ValueError(
            f"the metric returned shape {tuple(losses.shape)} for {prediction.shape[0]} "
            "predictions; it must return one loss per row"
        )
    return losses[:rows].to(torch.float64)


def empty_losses(
    session: ModelSession, background: Background, targets: torch.Tensor
) -> torch.Tensor:
    """Loss of the empty coalition per sample, (n,) float64: the prediction is the mean of the
    model's outputs on the background rows, the same for every sample."""
    initial = background.pre if background.pre is not None else background.rows
    with session.computing():
        recon = session.reconstruct(initial.clone())
    prediction = mean_over_background(recon.unsqueeze(0), background.count)
    return _losses(session, prediction.expand(targets.shape[0], -1), targets)


class BatchWalk:
    """Walks of several samples advanced together, one step (one unit each) per forward call.

    Parameters
    ----------
    session : ModelSession
    background : Background
    units : UnitTable
    samples : (K,) int64 array
        The sample (row of X) of every walk.
    orders : (K, F) int64 array
        Every walk's ordering of the F units.
    targets : (n, d) float64 tensor
        X, the targets of the loss.
    empty : (n,) float64 tensor
        Loss of the empty coalition per sample (:func:`empty_losses`).
    antithetic : bool, default False
        Also walk every ordering reversed: W = 2K walks, the reversed ones after.
    """

    def __init__(
        self,
        session: ModelSession,
        background: Background,
        units: UnitTable,
        samples: np.ndarray,
        orders: np.ndarray,
        targets: torch.Tensor,
        empty: torch.Tensor,
        antithetic: bool = False,
    ) -> None:
        device = session.device
        self.samples = len(samples)
        if antithetic:
            orders = np.concatenate([orders, orders[:, ::-1]])
            samples = np.concatenate([samples, samples])
        self.session, self.background, self.units = session, background, units
        index = torch.as_tensor(samples, device=device)
        self.walks, self.n_units = orders.shape
        self.orders = torch.as_tensor(orders, device=device)
        self.x = session.X[index]  # (W, d)
        self.targets = targets[index]
        self.previous = empty[index].clone()
        self.contributions = torch.zeros((self.walks, self.n_units), dtype=torch.float64)
        self.contributions = self.contributions.to(device)
        first = session.path.first
        self.weight_t = None if first is None else first.weight.detach().t().contiguous()
        initial = background.rows if background.pre is None else background.pre
        self.state = initial.unsqueeze(0).repeat(self.walks, 1, 1)  # (W, Bp, width)
        self.scratch = torch.empty_like(self.state)
        self.arange = torch.arange(self.walks, device=device)
        self.steps_done = 0

    @property
    def done(self) -> bool:
        return self.steps_done == self.n_units

    def sample_contributions(self) -> np.ndarray:
        """(K, F) float64 contributions per sample of the finished walks (antithetic: the mean
        of each ordering and its reverse)."""
        contributions = self.contributions.cpu().numpy()
        if self.walks > self.samples:
            k = self.samples
            contributions = (contributions[:k] + contributions[k:]) / 2
        return contributions

    def step(self) -> None:
        """Add every walk's next unit, run the model, record the contributions."""
        units = self.orders[:, self.steps_done]
        self._add(units)
        walks, rows, _ = self.state.shape
        # The rest of the network may work in place on its input (fused ReLU): give it a copy.
        flat = self.scratch.copy_(self.state).view(walks * rows, -1)
        recon = self.session.reconstruct(flat).view(walks, rows, -1)
        prediction = mean_over_background(recon, self.background.count)
        losses = _losses(self.session, prediction, self.targets)
        if not bool(torch.isfinite(losses).all()):
            raise ValueError(
                f"the loss ({self.session.metric_name!r}) became NaN or inf at step "
                f"{self.steps_done + 1} of a walk: the model or metric is not finite on inputs "
                "that mix samples with background rows"
            )
        self.contributions[self.arange, units] = self.previous - losses
        self.previous = losses
        self.steps_done += 1

    def _add(self, units: torch.Tensor) -> None:
        """Put the units' columns of each walk's sample into its state."""
        columns = self.units.columns[units]  # (W, L)
        sizes = self.units.sizes[units]
        width = int(sizes.max())
        columns = columns[:, :width]
        values = self.x.gather(1, columns)  # (W, L)
        if self.weight_t is None:
            # Padding repeats a unit's first column with the same value: writing it twice is
            # harmless, so one indexed assignment serves units of every size.
            self.state[self.arange[:, None], :, columns] = values.unsqueeze(2)
            return
        for slot in range(width):
            # One exact elementwise rank-1 update per column (a small matrix product would
            # round differently for different call sizes).
            which = None if slot == 0 else torch.nonzero(sizes > slot).flatten()
            column, value = columns[:, slot], values[:, slot]
            if which is not None:
                column, value = column[which], value[which]
            delta = value.unsqueeze(1) - self.background.columns[column]  # (k, Bp)
            step = self.weight_t[column].unsqueeze(1)  # (k, 1, h)
            if which is None:
                self.state.addcmul_(delta.unsqueeze(2), step)
            else:
                part = self.state[which]
                part.addcmul_(delta.unsqueeze(2), step)
                self.state[which] = part
