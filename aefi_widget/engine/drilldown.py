"""Per-sample view of one feature: how the model reconstructs each sample with and without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from aefi_widget.engine import evaluation
from aefi_widget.engine.inputs import check_int, did_you_mean
from aefi_widget.engine.permutations import permutation
from aefi_widget.engine.plan import Segment

if TYPE_CHECKING:
    from aefi_widget.engine.permutation import PermutationImportance

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


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


def compute_drilldown(
    engine: PermutationImportance, feature: str, repeat: int = 0, top_outputs: int = 20
) -> Drilldown:
    """Recompute ``feature``'s shuffle in ``repeat`` and return the per-sample :class:`Drilldown`.

    Uses the engine's forward path, batch size and permutation, so ``error_increase.mean()``
    equals the importance the run reports for (feature, repeat).
    """
    if feature not in engine.feature_names:
        raise ValueError(
            f"unknown feature {feature!r}.{did_you_mean(feature, engine.feature_names)}"
        )
    repeat = check_int(repeat, "repeat", 0, engine.n_repeats - 1)
    top_outputs = check_int(top_outputs, "top_outputs", 1)
    unit_index = engine.feature_names.index(feature)
    unit = engine.units[unit_index]
    baseline = engine._get_baseline()
    m = engine.samples_per_repeat
    step = evaluation._aligned(max(evaluation.MIN_FORWARD_ROWS, engine.call_rows))
    with evaluation.computing(engine._model):
        data = evaluation.round_data(engine, baseline, repeat)
        order = permutation(engine.seed, repeat, unit_index, m)
        recon_parts, error_parts = [], []
        for start in range(0, m, step):
            segment = Segment(unit_index, start, min(m, start + step), 0)
            inputs, _, (segment,) = evaluation.build_inputs(engine, data, [segment])
            recon = evaluation.reconstruct(engine, inputs)
            target = evaluation.segment_target(engine, data, segment, order, inputs)
            errors = torch.as_tensor(engine._metric(recon, target)).to(torch.float64)
            recon_parts.append(recon)
            error_parts.append(errors - data.errors[segment.start : segment.stop])
        shuffled = torch.cat(recon_parts)
        shift = (shuffled - data.recon).abs().to(torch.float64).mean(dim=0)
        k = min(top_outputs, engine.n_inputs)
        top = torch.argsort(shift, descending=True, stable=True)[:k]
        column = int(unit.columns[0])
        return Drilldown(
            feature=feature,
            columns=unit.members,
            shown_column=engine.output_names[column],
            repeat=repeat,
            sample_index=data.rows.copy(),
            original=_numpy(data.X[:, column]),
            reconstructed=_numpy(data.recon[:, column]),
            shuffled_reconstruction=_numpy(shuffled[:, column]),
            error_increase=_numpy(torch.cat(error_parts)),
            top_outputs=tuple(engine.output_names[int(i)] for i in top),
            output_shift=_numpy(shift[top]),
            profile_original=_numpy(data.X[:, top]),
            profile_reconstructed=_numpy(data.recon[:, top]),
            profile_shuffled=_numpy(shuffled[:, top]),
        )
