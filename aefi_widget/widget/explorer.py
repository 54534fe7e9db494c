"""Explorer: the live dashboard of several methods (one computing at a time) and a drilldown."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from aefi_widget.display_labels import header_fields, page_labels
from aefi_widget.engine.inputs import check_int
from aefi_widget.engine.runner import Engine
from aefi_widget.job import Job
from aefi_widget.job_worker import check_backend
from aefi_widget.result import ImportanceResult
from aefi_widget.snapshot_html import write_html
from aefi_widget.widget.dashboard import MAX_TOP_N, Dashboard
from aefi_widget.widget.drilldowns import DrilldownContext, DrilldownPanel, build_drilldown
from aefi_widget.widget.explorer_display import Display
from aefi_widget.widget.lineup import Lineup, groups_setting
from aefi_widget.widget.messages import Request
from aefi_widget.widget.methods import (
    FIRST_LOOK_FOR,
    RaceFirstStep,
    check_method,
    check_options,
    first_step_result,
)
from aefi_widget.widget.publisher import Publisher
from aefi_widget.widget.runs import MAX_RUNS, Run, Scheduler
from aefi_widget.widget.saved import SavedJob
from aefi_widget.worker_process import close_idle_workers

__all__ = ["Explorer"]


class Explorer(widgets.VBox):
    """Compute importances in the background, with several methods, and explore them live.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The autoencoder: maps (n, d) inputs to (n, d) reconstructions. Never modified.
    X : array-like, shape (n, d)
        Samples to attribute over (copied by each method).
    method : str, default "permutation"
        The method computed first: one of ``"first_look"``, ``"permutation"``, ``"shapley"``,
        ``"gradient"``, ``"latent"``, ``"latent_mi"``, ``"weights"``. The others are offered in
        the page's selector and computed when picked.
    groups : None, "auto" or dict of str -> list of names, optional
        Attribute groups of features together (for the methods that can); "auto" uses
        :func:`~aefi_widget.correlated_groups` (threshold 0.8, changeable in the page).
    first_look : bool, default True
        Before the race (the default permutation run): its first round (32 rows per unit),
        computed on a thread and shown labelled "First look"; the race continues from it. Before
        "shapley" or an exact permutation run: permutation importance on a subsample (about
        40,000 permuted rows: ~1 s at 1,000 features; see
        :func:`~aefi_widget.widget.methods.first_look_samples`), shown until the method has an
        interval for every unit (unless another method was picked meanwhile). A gradient
        preview would be quicker to explain but answers another question (on the demo
        autoencoder it finds none of permutation's top 20).
    top : int, default 20
        Features drawn in the bar and box charts (changeable in the page, 1 to 200), and the k
        of the default permutation run: the rows race certifying the top ``top`` within 10 % of
        the k-th importance at 95 % (``top_k=top, tolerance=0.1``); pass ``top_k=None`` (or
        ``top_k``, ``tolerance``, ``max_samples``, ``client``) for another run.
    autostart : bool, default True
        Start the computation at once; otherwise call :meth:`start`.
    options : dict of str -> dict, optional
        Settings of the other methods, e.g. ``{"shapley": {"n_permutations": 20}}``; checked
        by name now, by value when the method is built.
    engine : Engine, optional
        An engine built already (see :meth:`from_engine`), instead of model and X.
    result : ImportanceResult, optional
        A result computed earlier, shown without a model (see :meth:`from_result`).
    backend : {"thread", "process"}, optional
        Where the methods compute (see :class:`~aefi_widget.job.Job`): a worker process (the
        default in a Jupyter kernel), spawned when the explorer is made, which computes at full
        speed, stops at once and survives a crashing model; or a thread of the kernel (the
        default elsewhere, and where X takes more than 1 GiB; ``$AEFI_WIDGET_BACKEND`` sets it).
        The first look always computes on a thread (it is drawn while the worker starts). A
        model that cannot be sent to a worker computes on a thread, with a notice on the page.
    **engine_keywords
        Passed to the starting method's engine (for permutation: n_repeats, metric, target,
        feature_names, max_samples, seed, top_k, checkpoint, ...). The common ones
        (feature_names, metric, device, batch_size, seed, client) go to the other methods too.

    Attributes
    ----------
    engine, job : the run the Python controls act on: the starting method's (also while the
        first look is shown), else the shown method's. After Stop and :meth:`resume` the job
        is a new one that continued the stopped one.
    dashboard : Dashboard
        The anywidget (selector, header, charts, views, search, selection).
    drilldown : DrilldownPanel
        The shown method's view of the selected feature.

    Examples
    --------
    >>> explorer = aefi.Explorer(model, X, n_repeats=10, top=20)      # doctest: +SKIP
    >>> explorer.method = "shapley"                                   # doctest: +SKIP
    >>> explorer.results["permutation"].summary().head()              # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any = None,
        X: Any = None,
        *,
        method: str = "permutation",
        groups: Any = None,
        first_look: bool = True,
        top: int = 20,
        autostart: bool = True,
        options: dict[str, dict[str, Any]] | None = None,
        engine: Engine | None = None,
        result: ImportanceResult | None = None,
        backend: str | None = None,
        **engine_keywords: Any,
    ) -> None:
        # Checked first, before any computation: a typo must not cost a long set-up.
        top = check_int(top, "top", 1, MAX_TOP_N)
        check_backend(backend, engine_keywords.get("client"))  # a typo is an error now
        # As asked (None: the default, decided per job: a worker in a kernel unless X is large).
        make_job = functools.partial(Job, backend=backend)
        if result is not None:
            if model is not None or X is not None or engine is not None or engine_keywords:
                raise TypeError("give either a result= to show, or what to compute, not both")
            job = SavedJob(result)
            self._setup(None, Run(result.method, "none", None, job), None, top, False, Job)
            return
        if engine is not None:
            if model is not None or X is not None or engine_keywords or groups is not None:
                raise TypeError("give either model, X and engine keywords, or engine=, not both")
            key = engine.empty_result().method
            run = Run(key, "none", engine, make_job(engine).prepare())
            self._setup(None, run, None, top, autostart, make_job)
            return
        if model is None or X is None:
            raise TypeError("Explorer needs a model and X (or an engine=)")
        method = check_method(method)
        options = check_options(options)
        setting = groups_setting(groups)
        lineup = Lineup(model, X, method, engine_keywords, options, groups, race_k=top)
        # The starting method is built now: its errors come before any widget or thread exists.
        main_setting = lineup.setting_for(method, setting)
        main_engine = lineup.build(method, main_setting)
        first = None
        if first_look and method in FIRST_LOOK_FOR and not lineup.notes["first_look"]:
            first_setting = lineup.setting_for("first_look", setting)
            try:
                first_engine = lineup.build("first_look", first_setting)
            except Exception as error:  # e.g. not differentiable: go straight to the method
                lineup.notes["first_look"] = f"{type(error).__name__}: {error}"
            else:
                # On a thread always: drawn within ~1 s while the worker process starts.
                job = Job(first_engine, backend="thread")
                first = Run("first_look", first_setting, first_engine, job)
        # A race's first look is its first round: the race continues from it.
        resume = None
        if first is not None and isinstance(first.engine, RaceFirstStep):
            resume = functools.partial(first_step_result, first.job)
        # prepare(): a worker process starts now, while the first look computes on a thread.
        main_job = make_job(main_engine, resume=resume).prepare()
        main = Run(method, main_setting, main_engine, main_job)
        self._setup(lineup, main, first, top, autostart, make_job, setting)

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

    def _setup(
        self,
        lineup: Lineup | None,
        main: Run,
        first: Run | None,
        top: int,
        autostart: bool,
        make_job: Any,
        setting: str = "none",
    ) -> None:
        self._lock = threading.RLock()
        self._make_job = make_job
        self.scheduler = Scheduler(self._on_run_change, self._on_run_dropped)
        self.display = Display(lineup, main, first, setting, self.scheduler, make_job)
        shown = self.display.shown
        # Words on the page come from the result the engine makes (its method, labels, metric).
        snapshot = shown.job.snapshot()
        dashboard = Dashboard(
            snapshot.feature_names, header=header_fields(snapshot),
            labels=self.display.labels(shown, snapshot), top_n=top,
        )  # fmt: skip
        self.dashboard = dashboard
        self._panels: dict[tuple[str, str], DrilldownPanel] = {}
        for run in (main, first):
            if run is not None:
                self._panel(run)
        self.drilldown = self._panels[shown.run_key]
        widgets.VBox.__init__(self, [dashboard, self.drilldown.widget])
        # Runs on whichever thread wrote the trait; show() only records and wakes.
        dashboard.observe(lambda change: self.drilldown.show(change["new"]), "selected_feature")
        for run in (main, first):
            if run is not None:
                self.scheduler.add(run, pinned=True)
        self.publisher = Publisher(
            dashboard,
            shown.job,
            extra=lambda snap, sel, n: self.display.traits(snap, n, dashboard, sel),
        )
        # The page's Pause/Resume/Stop and multi-method requests come here.
        dashboard.connect(self.publisher.wake, self._control, self._request)
        self._refresh()
        self._say_notice(main)
        if autostart:
            self.start()

    # ------------------------------------------------------------------ control
    def start(self) -> Explorer:
        """Start the computation (the first look, then the starting method); returns the
        explorer. A second call continues a paused run."""
        self.scheduler.ask(*self.display.start_order())
        return self

    def pause(self) -> None:
        """Pause after the chunk in flight (the run :attr:`job` belongs to)."""
        self.scheduler.pause(self.display.control_run())

    def resume(self) -> None:
        """Continue a paused computation, or one stopped with :meth:`stop` (from its partial
        result, with the numbers an uninterrupted run gives)."""
        self._resume(self.display.control_run())

    def stop(self) -> None:
        """Cancel the computation; the partial result is kept in :attr:`result`
        (:meth:`resume` continues from it)."""
        self.scheduler.stop(self.display.control_run())

    def _resume(self, run: Run) -> None:
        with self._lock:
            if run.job.status == "cancelled" and run.engine is not None:
                # Continue after Stop: a new job from the partial result (exact numbers).
                job = self._make_job(run.engine, resume=run.job.snapshot())
                self.scheduler.replace_job(run, job)
            else:
                self.scheduler.ask(run)
        self._refresh()

    def _control(self, action: str) -> None:
        # From the page, on a message thread: acts on the run whose status the header shows.
        run = self.display.status_run()
        if action == "pause":
            self.scheduler.pause(run)
        elif action == "stop":
            self.scheduler.stop(run)
        else:
            self._resume(run)

    def _request(self, request: Request) -> None:
        # A validated multi-method request from the page (method, view, groups, ...).
        try:
            if self.display.apply(request):
                self._ensure_panel_and_refresh()
            self._say_notice(self.display.shown)
        except Exception as error:  # a method that fails to build: say why, keep the rest
            self.dashboard.warn(f"{type(error).__name__}: {error}")

    def _say_notice(self, run: Run) -> None:
        """Tell the page when a run asked for a worker process computes on a thread (why)."""
        notice = getattr(run.job, "notice", "")
        if notice:
            self.dashboard.warn(notice)

    def close(self) -> None:
        """Cancel the runs, stop the threads and close the widgets."""
        if not hasattr(self, "publisher"):
            # __init__ failed (bad arguments) before anything started: nothing to stop. Called by
            # Widget.__del__ too, which must not print "no attribute 'job'" later.
            return
        self.scheduler.cancel_all()  # kills the runs' worker processes, if any
        close_idle_workers()  # and the one kept for the next run
        self.publisher.close()
        for panel in self._panels.values():
            panel.close()
        self.dashboard.close()
        super().close()

    # ------------------------------------------------------------------ methods
    @property
    def method(self) -> str:
        """Key of the shown method; setting it shows that method (computing it if needed)."""
        return self.display.shown.key

    @method.setter
    def method(self, key: str) -> None:
        self.display.show(check_method(key), by_hand=True)
        self._ensure_panel_and_refresh()

    @property
    def results(self) -> dict[str, ImportanceResult]:
        """{method key: latest snapshot} of the runs with numbers (current groups setting)."""
        return self.display.results()

    def run_for(self, key: str) -> Run | None:
        """The run (``engine``, ``job``) of method ``key`` under the current groups setting."""
        return self.display.run_for(check_method(key))

    def _panel(self, run: Run) -> DrilldownPanel:
        """The drilldown of ``run``, built once (on the caller's thread: never a job worker)."""
        panel = self._panels.get(run.run_key)
        if panel is None:
            labels = page_labels(run.job.snapshot())
            panel = build_drilldown(DrilldownContext(
                run.engine, lambda: run.job.snapshot(), self.dashboard.warn, labels
            ))  # fmt: skip
            self._panels[run.run_key] = panel
        return panel

    def _ensure_panel_and_refresh(self) -> None:
        with self._lock:
            self._panel(self.display.shown)
        self._refresh()

    def _on_run_change(self, run: Run) -> None:
        # On a job's worker thread after each snapshot and status change: cheap.
        if self.display.note_change(run):
            self._refresh()
        self.publisher.wake()

    def _on_run_dropped(self, run: Run) -> None:
        # Past the scheduler's bound (e.g. a flood of groups thresholds from the page).
        with self._lock:
            panel = self._panels.pop(run.run_key, None)
        if panel is not None:
            panel.close()
        self.dashboard.warn(
            f"Dropped the {run.key} run under groups {run.groups!r} to bound memory (an explorer "
            f"keeps {MAX_RUNS} runs); asked for again, it starts over."
        )

    def _refresh(self) -> None:
        """Point the publisher and the drilldown at the shown run."""
        with self._lock:
            shown = self.display.shown
            self.publisher.follow(shown.job, self.display.status_run().job)
            panel = self._panels.get(shown.run_key)
            if panel is not None and panel is not self.drilldown:
                self.drilldown = panel
                self.children = (self.dashboard, panel.widget)
                if self.dashboard.selected:
                    panel.show(self.dashboard.selected)

    # ------------------------------------------------------------------ state
    @property
    def engine(self) -> Any:
        """The engine of the run the controls act on (None for a saved result)."""
        return self.display.control_run().engine

    @property
    def job(self) -> Any:
        """The job of the run the controls act on."""
        return self.display.control_run().job

    @property
    def result(self) -> ImportanceResult:
        """The latest snapshot of that run (partial while its job runs)."""
        return self.job.snapshot()

    def to_html(self, path: str | Path) -> Path:
        """A static snapshot of what the charts show now (the shown method's latest result, the
        top :attr:`top` features) as a self-contained HTML file; see
        :func:`aefi_widget.write_html` (the headless door). Returns the path written."""
        return write_html(self.display.shown.job.snapshot(), path, top=self.top)

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
