"""Drilldown views chosen by method: a registry keyed by ``settings["method"]``.

A method that wants its own drilldown registers a factory once::

    register_drilldown("shapley", ShapleyDrilldown)

and :class:`~aefi_widget.widget.explorer.Explorer` builds that view for results of the method,
without touching the other views. A method without a registered view (or an explorer without a
model, e.g. one showing a saved result) gets :class:`NoDrilldown`: a one-line note, never an error.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ipywidgets as widgets

from aefi_widget.result import ImportanceResult

__all__ = [
    "DrilldownContext",
    "DrilldownPanel",
    "NoDrilldown",
    "build_drilldown",
    "register_drilldown",
    "registered_methods",
]

# Put on every drilldown's outer box: widget.css styles bqplot figures inside it by theme.
DRILLDOWN_CLASS = "aefi-drilldown"


@dataclass(frozen=True)
class DrilldownContext:
    """What a drilldown factory gets.

    Attributes
    ----------
    engine : object or None
        The method's engine (None when the explorer shows a saved result without a model).
    latest_result : callable returning ImportanceResult
        The live snapshot.
    warn : callable(str)
        Shows a warning in the dashboard (for rejected clicks).
    labels : dict of str -> str
        The page's labels (:func:`~aefi_widget.display_labels.page_labels`): title, value label
        with its unit, axis name.
    """

    engine: Any
    latest_result: Callable[[], ImportanceResult]
    warn: Callable[[str], None]
    labels: dict[str, str]


class DrilldownPanel(Protocol):
    """What the explorer needs of a drilldown view."""

    widget: widgets.Widget

    def show(self, feature: str) -> None:
        """Draw ``feature`` (a valid name); must return at once (called on message threads)."""

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the requested feature is drawn; False on timeout."""

    def close(self) -> None:
        """Stop any thread the view started and close its widgets."""


DrilldownFactory = Callable[[DrilldownContext], DrilldownPanel]

_FACTORIES: dict[str, DrilldownFactory] = {}
_LOCK = threading.Lock()


def register_drilldown(method: str, factory: DrilldownFactory) -> None:
    """Use ``factory(context)`` for results whose ``settings["method"]`` is ``method``.

    Registering a method again replaces its factory (handy while developing a view).
    """
    if not isinstance(method, str) or not method:
        raise ValueError(f"method must be a non-empty string, got {method!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    with _LOCK:
        _FACTORIES[method] = factory


def registered_methods() -> list[str]:
    """Methods that have a drilldown view, sorted."""
    with _LOCK:
        return sorted(_FACTORIES)


class NoDrilldown:
    """A short note in place of a drilldown: for methods without a view, or without a model."""

    def __init__(self, note: str) -> None:
        self.note = note
        self.widget = widgets.HTML(
            f'<span class="aefi-drilldown-note">{html.escape(note)}</span>',
            _dom_classes=[DRILLDOWN_CLASS],
        )

    def show(self, feature: str) -> None:
        """Nothing to draw; the note stays."""

    def flush(self, timeout: float = 30.0) -> bool:
        """Always drawn."""
        return True

    def close(self) -> None:
        """No thread to stop; closes the note."""
        self.widget.close()


def build_drilldown(context: DrilldownContext) -> DrilldownPanel:
    """The registered view for the context's method, or a :class:`NoDrilldown` note."""
    method = context.labels.get("method", "")
    with _LOCK:
        factory = _FACTORIES.get(method)
    if factory is None:
        return NoDrilldown(f"No drilldown for the method {method!r} yet: the charts above show it.")
    if context.engine is None:
        return NoDrilldown("No drilldown: this explorer shows a saved result without its model.")
    view = factory(context)
    view.widget.add_class(DRILLDOWN_CLASS)
    return view


def _permutation(context: DrilldownContext) -> DrilldownPanel:
    # Imported on first use: bqplot loads only when a permutation drilldown is built.
    from aefi_widget.widget.drilldown_view import DrilldownView

    return DrilldownView(context.engine, context.latest_result, context.warn, context.labels)


register_drilldown("permutation", _permutation)
