"""What the explorer shows: the shown run, the first-look switch, the page's view choices.

:class:`Display` holds the explorer's state apart from its widgets: which run is shown and
whether the user picked it by hand, the groups setting, the view and its options (compare pair,
latent dimension). It answers the requests of the page and computes the v3 traits for the
publisher (:meth:`Display.traits`, on the publisher's thread).

First look: while the first look is shown in place of the starting method (nobody picked
anything by hand), the header's status and the page's controls belong to the starting method
once it has started (before that, to the first look computing), and the display switches to the
starting method as soon as every unit has an interval (two estimates each, ``rounds_done >= 2``,
or all of them when the run has fewer): switching at one estimate would replace bars with
intervals by bars without. It also switches when the first look fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aefi_widget.display_labels import page_labels
from aefi_widget.job import Job
from aefi_widget.result import ImportanceResult
from aefi_widget.widget.disagreement import why_they_disagree
from aefi_widget.widget.lineup import Lineup, auto_setting, setting_threshold
from aefi_widget.widget.messages import (
    ComparePair,
    GroupsChoice,
    LatentDim,
    MethodChoice,
    Request,
    ViewChoice,
)
from aefi_widget.widget.method_payload import (
    MethodEntry,
    ViewData,
    certified_trait,
    has_values,
    latent_source,
    members_trait,
    methods_trait,
    settled_trait,
    views_trait,
)
from aefi_widget.widget.methods import METHODS
from aefi_widget.widget.run_lines import run_lines
from aefi_widget.widget.runs import Run, Scheduler, run_status

__all__ = ["Display"]


def has_intervals(result: ImportanceResult) -> bool:
    """True when every unit has two estimates (an interval), or all it will get; for a rows
    race, when every unit has its first block of rows (and so its bound)."""
    race = result.race_values()
    if race is not None:
        return bool(result.n_features) and bool((race["race_rows"] >= 2).all())
    return result.rounds_done >= min(2, result.n_repeats)


class Display:
    """The shown run and the page's choices, and the traits they give.

    Parameters
    ----------
    lineup : Lineup or None
        The offered methods (None for an explorer of one engine or one saved result).
    main : Run
        The starting method's run.
    first : Run or None
        The first look shown before it (None without one).
    setting : str
        The groups setting ("none", "auto:<t>", "custom").
    scheduler : Scheduler
        Where runs are added and asked for.
    make_job : callable, optional
        ``make_job(engine)``: the Job of a new run (the explorer's backend).
    """

    def __init__(
        self,
        lineup: Lineup | None,
        main: Run,
        first: Run | None,
        setting: str,
        scheduler: Scheduler,
        make_job: Callable[..., Job] = Job,
    ) -> None:
        self.lineup, self.main, self.first = lineup, main, first
        self._make_job = make_job
        self.setting = setting
        self._last_auto = setting if setting.startswith("auto:") else auto_setting(0.8)
        self.scheduler = scheduler
        self.shown: Run = first if first is not None else main
        self.auto_first = first is not None  # the first look stands in for the main run
        self.view = "importance"
        self.pair: tuple[str | None, str | None] = (None, None)
        self.latent_dim: int | None = None
        self._lock = threading.RLock()
        self._followed: tuple[Run, Run] | None = None
        self._view_data = ViewData()
        self._why_key: tuple[Any, ...] | None = None
        self._why_value: dict[str, Any] = {}

    # ------------------------------------------------------------------ runs
    def start_order(self) -> list[Run]:
        """Runs to ask for on start, the one to compute first last."""
        if self.auto_first and self.first is not None:
            return [self.main, self.first]
        return [self.main] if self.shown is self.main else [self.main, self.shown]

    def control_run(self) -> Run:
        """The run the Python controls (and ``explorer.job``) act on."""
        return self.main if self.auto_first else self.shown

    def status_run(self) -> Run:
        """The run whose status, progress and controls the page's header shows."""
        first = self.first
        if self.auto_first and first is not None:
            if self.main.job.status == "idle" and not first.ended:
                return first
            return self.main
        return self.shown

    def run_for(self, key: str) -> Run | None:
        """The run of ``key`` under the current groups setting (None when never asked for)."""
        if self.lineup is None:
            return self.main if key == self.main.key else None
        return self.scheduler.get((key, self.lineup.setting_for(key, self.setting)))

    def results(self) -> dict[str, ImportanceResult]:
        """{key: snapshot} of the runs with numbers, under the current groups setting."""
        keys = self.lineup.keys if self.lineup is not None else (self.main.key,)
        found = {}
        for key in keys:
            run = self.run_for(key)
            if run is not None and has_values(run.job.snapshot()):
                found[key] = run.job.snapshot()
        return found

    def show(self, key: str, *, by_hand: bool) -> Run:
        """Show method ``key``'s run (built and asked for when needed)."""
        with self._lock:
            run = self.run_for(key)
            if run is None:
                if self.lineup is None:
                    raise ValueError(f"this explorer shows only {self.main.key!r}")
                setting = self.lineup.setting_for(key, self.setting)
                engine = self.lineup.build(key, setting)  # raises with the reason
                run = self.scheduler.add(Run(key, setting, engine, self._make_job(engine)))
            self.shown = run
            if by_hand:
                self.auto_first = False
        self.scheduler.ask(run)
        return run

    def set_groups(self, mode: str, threshold: float | None) -> None:
        """A new groups setting; the shown method's run for it is asked for."""
        if self.lineup is None:
            raise ValueError("groups need a model: this explorer shows one engine or result")
        if mode == "auto":
            threshold = setting_threshold(self._last_auto) if threshold is None else threshold
            setting = self._last_auto = auto_setting(threshold)
        elif mode == "custom":
            if self.lineup.custom is None:
                raise ValueError("no custom groups were given (Explorer(groups={...}))")
            setting = "custom"
        else:
            setting = "none"
        key = self.main.key if self.auto_first else self.shown.key
        self.setting = setting
        if METHODS[key].accepts_groups:
            self.show(key, by_hand=True)

    def apply(self, request: Request) -> bool:
        """Apply a validated page request; True when the shown run may have changed."""
        if isinstance(request, MethodChoice):
            self.show(request.key, by_hand=True)
            return True
        if isinstance(request, GroupsChoice):
            self.set_groups(request.mode, request.threshold)
            return True
        if isinstance(request, ViewChoice):
            self.view = request.name
        elif isinstance(request, ComparePair):
            self.pair = (request.x, request.y)
        elif isinstance(request, LatentDim):
            self.latent_dim = request.index
        return False

    def note_change(self, run: Run) -> bool:
        """After a snapshot or status change of ``run``: switch from the first look when due.
        True when the shown run or the status run changed (the publisher must follow)."""
        with self._lock:
            if self.auto_first and self.first is not None:
                if run is self.main and has_intervals(run.job.snapshot()):
                    self.shown, self.auto_first = self.main, False
                elif run is self.first and run.job.status == "error":
                    self.shown, self.auto_first = self.main, False
            followed = (self.shown, self.status_run())
            changed = followed != self._followed
            self._followed = followed
            return changed

    # ------------------------------------------------------------------ traits
    def title(self, key: str, result: ImportanceResult) -> str:
        """The selector's words for ``key`` (the result's own title for a method not offered)."""
        spec = METHODS.get(key)
        if spec is None or self.lineup is None:
            return page_labels(result)["title"]
        return self.method_title(key)

    def method_title(self, key: str) -> str:
        """The selector's words for ``key``: the first look says which first look it is."""
        if key == "first_look" and self.first is not None:
            return getattr(self.first.engine, "look_title", METHODS[key].title)
        return METHODS[key].title

    def labels(self, run: Run, result: ImportanceResult) -> dict[str, str]:
        """The ``labels`` trait of ``result`` shown for ``run`` (a first look says so)."""
        labels = page_labels(result)
        if run.key == "first_look":
            labels["title"] = getattr(run.engine, "look_title", METHODS["first_look"].title)
        return labels

    def _entries(self) -> list[MethodEntry]:
        if self.lineup is None:
            snapshot = self.main.job.snapshot()
            return [MethodEntry(self.main.key, self.title(self.main.key, snapshot),
                                run_status(self.main), "", has_values(snapshot))]  # fmt: skip
        entries = []
        for key in self.lineup.keys:
            run = self.run_for(key)
            note = self.lineup.notes[key]
            result = None if run is None else run.job.snapshot()
            entries.append(MethodEntry(key, self.method_title(key), run_status(run, note), note,
                                       has_values(result)))  # fmt: skip
        return entries

    def _why(
        self,
        view: str,
        selected: str,
        comparable: dict[str, ImportanceResult],
        titles: dict[str, str],
    ) -> dict[str, Any]:
        """The compare view's "why do they disagree?" for the selected unit ({} otherwise),
        computed again only when the selection or a compared snapshot changed."""
        if view != "compare" or not selected or len(comparable) < 2:
            return {}
        key = (selected, tuple((k, id(r)) for k, r in comparable.items()))
        if key != self._why_key:
            X = self.lineup.context.X if self.lineup is not None else None
            self._why_value = why_they_disagree(selected, comparable, titles, X)
            self._why_key = key
        return self._why_value

    def _run_lines(self, shown: Run, status: Run) -> list[dict[str, Any]]:
        """The header's lines: the shown run and, when another computes, that one, each saying
        what replaces what while the first look stands in."""
        # Short words: the title row above names the shown run in full.
        titles = tuple(
            "First look" if run.key == "first_look" else page_labels(run.job.snapshot())["title"]
            for run in (shown, status)
        )
        notes = ("", "")
        if shown is self.first and status is self.main and self.auto_first:
            if getattr(shown.engine, "look_title", None):  # the race's own first round
                notes = ("the race's first round", "continues from the first look's rows")
            else:
                need = min(2, status.job.snapshot().n_repeats)
                notes = (f"until {titles[1]} has {need} rounds (intervals for all)",
                         f"replaces the first look at round {need}")  # fmt: skip
        return run_lines(shown.job, status.job, titles=(titles[0], titles[1]), notes=notes)

    def _groups(self, key: str, snapshot: ImportanceResult) -> dict[str, Any]:
        mode = self.setting.split(":", 1)[0]
        return {
            "mode": mode,
            "threshold": setting_threshold(self._last_auto),
            "n_groups": len(members_trait(snapshot)),
            "has_custom": self.lineup is not None and self.lineup.custom is not None,
            "supported": self.lineup is not None and key in METHODS
            and METHODS[key].accepts_groups,
        }  # fmt: skip

    def traits(
        self, snapshot: ImportanceResult, top_n: int, dashboard: Any, selected: str = ""
    ) -> dict[str, Any]:
        """The v3 traits for the publisher's update of ``snapshot`` (the shown run's)."""
        with self._lock:
            shown, status, view, pair = self.shown, self.status_run(), self.view, self.pair
            latent_dim = self.latent_dim
        results = self.results()
        comparable = {k: r for k, r in results.items() if r.feature_names == snapshot.feature_names}
        titles = {key: self.title(key, result) for key, result in results.items()}
        latent = latent_source(results, snapshot)
        # Read by the dashboard when it checks a latent_dim request.
        dashboard.latent_dims = 0 if latent is None else len(latent.output_names)
        note = self.lineup.notes["latent"] if self.lineup is not None else ""
        traits: dict[str, Any] = {
            "labels": self.labels(shown, snapshot),
            "methods": methods_trait(self._entries()),
            "method": shown.key,
            "view": view,
            "views": views_trait(snapshot, len(comparable), latent, note),
            "groups": self._groups(shown.key, snapshot),
            "members": members_trait(snapshot),
            "settled": settled_trait(snapshot),
            "certified": certified_trait(snapshot, status.ended),
        }
        traits.update(
            self._view_data.traits(view, snapshot, comparable, titles, top_n, pair, latent)
        )
        traits["runs"] = self._run_lines(shown, status)
        traits["why"] = self._why(view, selected, comparable, titles)
        shown_latent = latent if view == "latent" else None
        traits["latent_top"] = self._view_data.latent_top(shown_latent, latent_dim)
        return traits
