"""The gradient method's per-sample accumulators, its resume position, and the checks a resume
must pass before any work (a snapshot, a job or an edited checkpoint file may be handed back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aefi_widget.engine.resume_checks import check_same_run
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["GradientState", "UnitFold", "completeness_gap"]

_WHAT = {
    "model": "the model's parameters",
    "outputs": "the model's outputs on the first rows of X",
    "data": "the data X",
    "settings": "the settings that fix the numbers (method, baseline, steps, quadrature, metric, "
    "groups or dtype)",
}


class GradientState:
    """Signed attributions ``per_sample`` (n, F) float64 and, for integrated gradients,
    ``error_delta`` (n,) = error(x_i) - error(baseline) per sample; NaN rows for samples not done.
    Samples are computed in order: ``samples_done`` is the next one."""

    def __init__(self, n: int, n_units: int, completeness: bool) -> None:
        self.per_sample = np.full((n, n_units), np.nan)
        self.error_delta = np.full(n, np.nan) if completeness else None
        self.samples_done = 0
        self.elapsed_s = 0.0

    @classmethod
    def resumed(
        cls,
        result: ImportanceResult,
        identity: dict[str, str],
        feature_names: tuple[str, ...],
        n: int,
        completeness: bool,
    ) -> GradientState:
        """The state ``result`` stands at, after checking it is this run's and consistent."""
        resume = check_same_run(result, "gradient", identity, feature_names, _WHAT)
        done = resume.position.get("samples_done")
        if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= n:
            raise ValueError(f"the resume position's samples_done is {done!r}, not in [0, {n}]")
        state = cls(n, len(feature_names), completeness)
        state.samples_done = done
        state.elapsed_s = result.elapsed_s
        state.per_sample[:] = _checked_rows(result, "per_sample", (n, len(feature_names)), done)
        if state.error_delta is not None:
            state.error_delta[:] = _checked_rows(result, "error_delta", (n,), done)
        magnitudes = np.abs(state.per_sample).T
        if not np.array_equal(result.importances, magnitudes, equal_nan=True):
            raise ValueError("the result's importances are not |per_sample|; it was altered")
        return state

    def store(self, start: int, per_sample: np.ndarray, error_delta: np.ndarray | None) -> None:
        """Record samples ``[start, start + len(per_sample))``, the next ones in order."""
        stop = start + per_sample.shape[0]
        self.per_sample[start:stop] = per_sample
        if self.error_delta is not None and error_delta is not None:
            self.error_delta[start:stop] = error_delta
        self.samples_done = stop

    def export(
        self, identity: dict[str, str] | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray], ResumeState | None]:
        """(F, n) |attributions|, copies of the extras, and the resume state (None without an
        identity)."""
        per_sample = self.per_sample.copy()
        extras = {"per_sample": per_sample}
        if self.error_delta is not None:
            extras["error_delta"] = self.error_delta.copy()
        importances = np.ascontiguousarray(np.abs(per_sample).T)
        if identity is None:
            return importances, extras, None
        resume = ResumeState("gradient", {"samples_done": self.samples_done}, {}, identity)
        return importances, extras, resume

    def completeness_gap(self) -> float | None:
        """See :func:`completeness_gap`; None before the first sample or without a baseline."""
        if self.error_delta is None or self.samples_done == 0:
            return None
        done = slice(0, self.samples_done)
        return completeness_gap(self.per_sample[done], self.error_delta[done])


def completeness_gap(per_sample: np.ndarray, error_delta: np.ndarray) -> float | None:
    """``max_i |sum_j a_ij - delta_i| / mean_i |delta_i|``: the worst sample's completeness error
    relative to the typical change of error along the path (None when every delta is 0 and the
    attributions are not)."""
    gaps = np.abs(per_sample.sum(axis=1) - error_delta)
    scale = float(np.mean(np.abs(error_delta)))
    worst = float(gaps.max())
    if scale == 0.0:
        return 0.0 if worst == 0.0 else None
    return worst / scale


def _checked_rows(
    result: ImportanceResult, name: str, shape: tuple[int, ...], done: int
) -> np.ndarray:
    """Extra ``name`` of ``shape``: finite in its first ``done`` rows, NaN after them."""
    values = result.extras.get(name)
    if values is None or values.shape != shape:
        got = None if values is None else values.shape
        raise ValueError(f"the result's {name!r} extra has shape {got}, not {shape}")
    finished = values[:done]
    if not np.isfinite(finished).all() or not np.isnan(values[done:]).all():
        raise ValueError(
            f"the result's {name!r} does not match its resume position ({done} samples done): "
            "values missing where finished, or present where not yet computed"
        )
    return values


class UnitFold:
    """(rows, d) feature attributions -> (rows, F) unit attributions: a group's is the sum of its
    members', left to right (``np.add.reduceat``), so it never depends on the chunking."""

    def __init__(self, units: Sequence[Any], d: int) -> None:
        # Every unit a single feature (units come in column order): nothing to fold.
        self.identity = len(units) == d
        self.order = np.concatenate([u.columns for u in units])
        sizes = np.array([len(u.columns) for u in units])
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def __call__(self, attributions: np.ndarray) -> np.ndarray:
        if self.identity:
            return attributions
        return np.add.reduceat(attributions[:, self.order], self.starts, axis=1)

