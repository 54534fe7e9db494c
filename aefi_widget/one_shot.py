"""An engine around a method that computes its whole result in one call (weights, latent lenses).

:class:`~aefi_widget.job.Job` and the explorer run anything that follows
:class:`~aefi_widget.engine.runner.Engine`. A one-shot function (``weight_importance``, the
gradient and mutual-information lenses of ``latent_importance``) has no chunks to stream, so this
adapter yields its single result: the job shows it "running" while it computes, then "done".
Pause and cancel take effect after that one call (it cannot be interrupted halfway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from aefi_widget.result import ImportanceResult

__all__ = ["OneShot"]


class OneShot:
    """Follows the Engine contract for ``compute()``, a function returning one result.

    Parameters
    ----------
    compute : callable returning ImportanceResult
        The whole computation; called once per :meth:`increments` that has work left.
    feature_names : sequence of str
        The F units the result will have (for the empty result shown before it is ready).
    n_estimates : int
        Estimates per unit (R) of the result (1 for weights and mutual information).
    settings, labels : dict
        Of the coming result, so the page names the method before it is computed.
    """

    def __init__(
        self,
        compute: Callable[[], ImportanceResult],
        feature_names: Sequence[str],
        *,
        n_estimates: int = 1,
        settings: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self._compute = compute
        self.feature_names = tuple(str(name) for name in feature_names)
        self._n_estimates = int(n_estimates)
        self._settings = dict(settings or {})
        self._labels = dict(labels or {})

    @property
    def evaluations_total(self) -> int:
        """One call of work."""
        return 1

    def empty_result(self) -> ImportanceResult:
        """All-NaN (F, R) estimates with the coming method's settings and labels."""
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.feature_names,
            importances=np.full((len(self.feature_names), self._n_estimates), np.nan),
            baseline_error=float("nan"),
            settings=self._settings,
            evaluations_done=0,
            evaluations_total=1,
            labels=self._labels,
        )

    def increments(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
        """Yield the computed result (or ``resume`` again when it is already complete)."""
        if resume is not None and resume.complete and resume.evaluations_done > 0:
            yield resume
            return
        yield self._compute()
