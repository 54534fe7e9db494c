"""A finished result standing in for a job: lets the dashboard show a saved result, no model.

:class:`SavedJob` follows the part of the :class:`~aefi_widget.job.Job` contract the publisher
and the explorer use (``status``, ``snapshot``, ``progress``, ``subscribe``, controls), with the
status ``"saved"``: nothing runs, the controls do nothing, and the page disables them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aefi_widget.job import JobProgress
from aefi_widget.result import ImportanceResult

__all__ = ["SavedJob"]


class SavedJob:
    """A job that ended with ``result`` before it began (e.g. ``ImportanceResult.load(path)``).

    Parameters
    ----------
    result : ImportanceResult
        Complete or partial; it is shown as it is.
    """

    status = "saved"
    error: BaseException | None = None

    def __init__(self, result: ImportanceResult) -> None:
        if not isinstance(result, ImportanceResult):
            raise TypeError(
                "Explorer.from_result needs an ImportanceResult (e.g. "
                f"aefi.ImportanceResult.load(path)), got {type(result).__name__}"
            )
        self._result = result

    def snapshot(self) -> ImportanceResult:
        """The saved result."""
        return self._result

    @property
    def progress(self) -> JobProgress:
        """The result's own progress; no time is running."""
        result = self._result
        return JobProgress(
            done=result.evaluations_done,
            total=result.evaluations_total,
            fraction=result.progress,
            elapsed_s=result.elapsed_s,
            eta_s=None,
            evals_per_s=None,
            rounds_done=result.rounds_done,
            n_repeats=result.n_repeats,
        )

    def subscribe(self, callback: Callable[[Any], Any]) -> Callable[[], None]:
        """Nothing will change: no calls, and unsubscribing does nothing."""
        return lambda: None

    def start(self) -> SavedJob:
        """Nothing to start."""
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Already ended."""
        return True

    def pause(self) -> None:
        """Nothing runs."""

    def resume(self) -> None:
        """Nothing runs."""

    def cancel(self) -> None:
        """Nothing runs."""
