"""Explorer: the live importance dashboard plus the method's drilldown, in one widget."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from aefi_widget.engine import PermutationImportance
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.runner import Engine
from aefi_widget.job import Job
from aefi_widget.result import ImportanceResult
from aefi_widget.widget.dashboard import MAX_TOP_N, Dashboard
from aefi_widget.widget.drilldowns import DrilldownContext, DrilldownPanel, build_drilldown
from aefi_widget.widget.labels import header_fields, page_labels
from aefi_widget.widget.publisher import Publisher
from aefi_widget.widget.saved import SavedJob

__all__ = ["Explorer"]


class Explorer(widgets.VBox):
    """Compute permutation importance in the background and explore it live.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The autoencoder: maps (n, d) inputs to (n, d) reconstructions.
    X : array-like, shape (n, d)
        Samples to attribute over.
    top : int, default 20
        Features drawn in the bar and box charts (changeable in the page, 1 to 200).
    autostart : bool, default True
        Start the computation at once; otherwise call :meth:`start`.
    engine : Engine, optional
        An engine built already, of any method (see :meth:`from_engine`), instead of model and X.
    result : ImportanceResult, optional
        A result computed earlier, shown without a model (see :meth:`from_result`).
    **engine_keywords
        Passed to :class:`~aefi_widget.PermutationImportance` (n_repeats, metric, target,
        feature_names, groups, max_samples, seed, checkpoint, ...).

    Attributes
    ----------
    engine : Engine or None
        The method's engine (None when showing a saved result).
    job : Job
        Runs the engine on a daemon thread; ``explorer.job.wait()`` blocks until it ends. After
        Stop and :meth:`resume` it is a new job that continued the stopped one.
    dashboard : Dashboard
        The anywidget (header, charts, search, selection).
    drilldown : DrilldownPanel
        The method's view of the selected feature (for permutation importance the bqplot
        panels of :class:`~aefi_widget.widget.drilldown_view.DrilldownView`; a short note for
        a method without a registered view, see :mod:`~aefi_widget.widget.drilldowns`).

    Examples
    --------
    >>> explorer = aefi.Explorer(model, X, n_repeats=10, top=20)  # doctest: +SKIP
    >>> explorer                                                  # doctest: +SKIP
    >>> explorer.selected_feature = "gene_7"                      # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any = None,
        X: Any = None,
        *,
        top: int = 20,
        autostart: bool = True,
        engine: Engine | None = None,
        result: ImportanceResult | None = None,
        **engine_keywords: Any,
    ) -> None:
        # Checked first, before any computation: a typo must not cost a long set-up.
        top = check_int(top, "top", 1, MAX_TOP_N)
        if result is not None:
            if model is not None or X is not None or engine is not None or engine_keywords:
                raise TypeError("give either a result= to show, or what to compute, not both")
            self._setup(None, SavedJob(result), top=top, autostart=False)
            return
        if engine is None:
            if model is None or X is None:
                raise TypeError("Explorer needs a model and X (or an engine=)")
            # Validate everything before any widget or thread exists (errors up front).
            engine = PermutationImportance(model, X, **engine_keywords)
        elif model is not None or X is not None or engine_keywords:
            raise TypeError("give either model, X and engine keywords, or engine=, not both")
        self._setup(engine, Job(engine), top=top, autostart=autostart)

    @classmethod
    def from_engine(cls, engine: Engine, *, top: int = 20, autostart: bool = True) -> Explorer:
        """An explorer for an engine built already: any method that follows
        :class:`~aefi_widget.engine.runner.Engine` (its results carry their own labels)."""
        return cls(engine=engine, top=top, autostart=autostart)

    @classmethod
    def from_result(cls, result: ImportanceResult, *, top: int = 20) -> Explorer:
        """Show a result computed earlier (e.g. ``ImportanceResult.load(path)``), no model needed.

        The charts, search and export work as for a live run; nothing is computed, the controls
        are disabled, and the drilldown (which needs the model) shows a note instead.
        """
        return cls(result=result, top=top)

    def _setup(self, engine: Engine | None, job: Any, *, top: int, autostart: bool) -> None:
        # Words on the page come from the result the engine makes (its method, labels, metric).
        first = job.snapshot()
        labels = page_labels(first)
        dashboard = Dashboard(
            first.feature_names, header=header_fields(first), labels=labels, top_n=top
        )
        # Through self.job: after Stop and Continue the snapshot comes from the new job.
        drilldown: DrilldownPanel = build_drilldown(
            DrilldownContext(engine, lambda: self.job.snapshot(), dashboard.warn, labels)
        )
        widgets.VBox.__init__(self, [dashboard, drilldown.widget])
        self.engine, self.job, self.dashboard, self.drilldown = engine, job, dashboard, drilldown
        # Runs on whichever thread wrote the trait; show() only records and wakes.
        dashboard.observe(lambda change: drilldown.show(change["new"]), "selected_feature")
        self.publisher = Publisher(dashboard, job)
        self._continue_lock = threading.Lock()
        # The page's Pause/Resume/Stop come here (Continue after Stop needs the explorer).
        dashboard.connect(self.publisher.wake, self._control)
        if autostart:
            self.start()

    # ------------------------------------------------------------------ control
    def start(self) -> Explorer:
        """Start the computation (once); returns the explorer."""
        self.job.start()
        return self

    def pause(self) -> None:
        """Pause after the chunk in flight."""
        self.job.pause()

    def resume(self) -> None:
        """Continue a paused computation, or one stopped with :meth:`stop` (from its partial
        result, with the numbers an uninterrupted run gives)."""
        if self.job.status != "cancelled" or self.engine is None:
            self.job.resume()
            return
        with self._continue_lock:
            if self.job.status != "cancelled":
                return  # a second click raced the first: already continued
            job = Job(self.engine, resume=self.job.snapshot())
            self.job = job
            self.publisher.follow(job)
            job.start()

    def stop(self) -> None:
        """Cancel the computation; the partial result is kept in :attr:`result`
        (:meth:`resume` continues from it)."""
        self.job.cancel()

    def _control(self, action: str) -> None:
        # From the page, on a message thread: Job controls only set events; a continue starts
        # one thread.
        {"pause": self.pause, "resume": self.resume, "stop": self.stop}[action]()

    def close(self) -> None:
        """Cancel the job, stop the threads and close the widgets."""
        if not hasattr(self, "publisher"):
            # __init__ failed (bad arguments) before anything started: nothing to stop. Called by
            # Widget.__del__ too, which must not print "no attribute 'job'" later.
            return
        self.job.cancel()
        self.publisher.close()
        self.drilldown.close()
        self.dashboard.close()
        super().close()

    # ------------------------------------------------------------------ state
    @property
    def result(self) -> ImportanceResult:
        """The latest snapshot (partial while the job runs)."""
        return self.job.snapshot()

    @property
    def selected_feature(self) -> str:
        """Name of the feature shown in the drilldown ("" before any selection)."""
        return self.dashboard.selected

    @selected_feature.setter
    def selected_feature(self, name: str) -> None:
        # ValueError with close matches for an unknown name; the selection stays as it was.
        self.dashboard.select(name)

    @property
    def top(self) -> int:
        """How many top features the charts draw."""
        return self.dashboard.top_n

    @top.setter
    def top(self, value: int) -> None:
        self.dashboard.request_top_n(value)
