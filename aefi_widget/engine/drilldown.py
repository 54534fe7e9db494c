"""Per-sample view of one feature: how the model reconstructs each sample with and without it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aefi_widget.engine.calls import MIN_FORWARD_ROWS, aligned
from aefi_widget.engine.inputs import check_int, did_you_mean
from aefi_widget.engine.permutation_rows import Shuffles, build_inputs, round_data, segment_target
from aefi_widget.engine.permutations import permutation
from aefi_widget.engine.plan import Segment
from aefi_widget.engine.session import ModelSession

__all__ = ["Drilldown", "compute_drilldown"]


@dataclass(frozen=True)
class Drilldown:
    """One feature under one repeat's shuffle, sample by sample (m samples, k top outputs).

    Values are in the input's units; ``error_increase`` in the metric's units.

    Attributes
    ----------
    feature : str
        The unit (feature or group) shuffled.
    columns : tuple of str
        Input columns shuffled together.
    shown_column : str
        Column drawn in the value panel: the feature itself, or a group's first member.
    repeat : int
        Which repeat's permutation was used (the same one the importances used).
    sample_index : (m,) int64
        Row numbers in X.
    original, reconstructed, shuffled_reconstruction : (m,) float64
        ``X``, ``model(X)`` and ``model(X with the feature shuffled)`` at ``shown_column``.
    error_increase : (m,) float64
        Per-sample error(permuted) - error(original); its mean is ``importances[feature, repeat]``.
    top_outputs : tuple of str (k)
        Outputs whose reconstruction moves most (largest mean abs(recon_perm - recon)).
    output_shift : (k,) float64
        That mean for each top output.
    profile_original, profile_reconstructed, profile_shuffled : (m, k) float64
        Per-sample values at the top outputs.
    sample_labels : tuple of str (m)
        The samples' labels: X's DataFrame index or AnnData ``obs_names``, else the row numbers
        (empty from engines that do not label samples: read them through :meth:`labels`).
    """

    feature: str
    columns: tuple[str, ...]
    shown_column: str
    repeat: int
    sample_index: np.ndarray
    original: np.ndarray
    reconstructed: np.ndarray
    shuffled_reconstruction: np.ndarray
    error_increase: np.ndarray
    top_outputs: tuple[str, ...]
    output_shift: np.ndarray
    profile_original: np.ndarray
    profile_reconstructed: np.ndarray
    profile_shuffled: np.ndarray
    sample_labels: tuple[str, ...] = ()

    def labels(self) -> tuple[str, ...]:
        """One label per sample: ``sample_labels``, or the row numbers when it is empty."""
        if len(self.sample_labels) == len(self.sample_index):
            return self.sample_labels
        return tuple(str(int(row)) for row in self.sample_index)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


def _labels(names: list[int] | list[str] | None, rows: np.ndarray) -> tuple[str, ...]:
    """Labels of the samples at ``rows``: their names when X had them, else the row numbers."""
    if names is None:
        return tuple(str(int(row)) for row in rows)
    return tuple(str(names[int(row)]) for row in rows)


def compute_drilldown(
    session: ModelSession,
    shuffles: Shuffles,
    n_repeats: int,
    call_rows: int,
    feature: str,
    repeat: int = 0,
    top_outputs: int = 20,
) -> Drilldown:
    """Recompute ``feature``'s shuffle in ``repeat`` and return the per-sample :class:`Drilldown`.

    Uses the run's forward path, call size and permutation, so ``error_increase.mean()``
    equals the importance the run reports for (feature, repeat).
    """
    names = shuffles.feature_names
    if feature not in names:
        raise ValueError(f"unknown feature {feature!r}.{did_you_mean(feature, names)}")
    repeat = check_int(repeat, "repeat", 0, n_repeats - 1)
    top_outputs = check_int(top_outputs, "top_outputs", 1)
    unit_index = names.index(feature)
    unit = shuffles.units[unit_index]
    m = shuffles.samples_per_repeat
    step = aligned(max(MIN_FORWARD_ROWS, call_rows))
    with session.computing():
        data = round_data(session, shuffles, repeat, call_rows)
        datas = {repeat: data}
        order = permutation(shuffles.seed, repeat, unit_index, m)
        recon_parts, error_parts = [], []
        for start in range(0, m, step):
            segment = Segment(unit_index, start, min(m, start + step), 0, repeat)
            inputs, _, (segment,) = build_inputs(session, shuffles, datas, [segment])
            target = segment_target(session, shuffles, data, segment, order, inputs).clone()
            recon = session.reconstruct(inputs)
            errors = torch.as_tensor(session.errors(recon, target)).to(torch.float64)
            recon_parts.append(recon)
            error_parts.append(errors - data.errors[segment.start : segment.stop])
        shuffled = torch.cat(recon_parts)
        shift = (shuffled - data.recon).abs().to(torch.float64).mean(dim=0)
        k = min(top_outputs, session.n_inputs)
        top = torch.argsort(shift, descending=True, stable=True)[:k]
        column = int(unit.columns[0])
        outputs = session.output_names
        return Drilldown(
            feature=feature,
            columns=unit.members,
            shown_column=outputs[column],
            repeat=repeat,
            sample_index=data.rows.copy(),
            sample_labels=_labels(session.sample_names, data.rows),
            original=_numpy(data.X[:, column]),
            reconstructed=_numpy(data.recon[:, column]),
            shuffled_reconstruction=_numpy(shuffled[:, column]),
            error_increase=_numpy(torch.cat(error_parts)),
            top_outputs=tuple(outputs[int(i)] for i in top),
            output_shift=_numpy(shift[top]),
            profile_original=_numpy(data.X[:, top]),
            profile_reconstructed=_numpy(data.recon[:, top]),
            profile_shuffled=_numpy(shuffled[:, top]),
        )
