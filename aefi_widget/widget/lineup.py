"""What an explorer over a model offers: its methods, their keywords, and the groups settings.

:class:`Lineup` turns (method key, groups setting) into an engine, so the explorer builds a run
only when it is asked for. Groups settings are strings: ``"none"``, ``"auto:<threshold>"``
(:func:`~aefi_widget.correlated_groups` of X at that threshold, computed once per threshold)
or ``"custom"`` (the dict given to the explorer).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

from aefi_widget.engine.anndata_input import row_labels
from aefi_widget.engine.correlated_groups import correlated_groups
from aefi_widget.engine.shared_x import SharedX
from aefi_widget.engine.units import resolve_units
from aefi_widget.widget.methods import (
    METHOD_KEYS,
    METHODS,
    MethodContext,
    RaceFirstStep,
    engine_keywords,
    race_keywords,
    unavailable_note,
)

__all__ = ["DEFAULT_THRESHOLD", "Lineup", "groups_setting", "input_names"]

DEFAULT_THRESHOLD = 0.8  # correlated_groups' default
# Automatic groupings kept (oldest computed dropped first; recomputed when asked for again).
MAX_GROUPINGS = 8


def groups_setting(groups: Any, threshold: float = DEFAULT_THRESHOLD) -> str:
    """The setting string of ``Explorer(groups=...)``: None, "auto" or a dict."""
    if groups is None:
        return "none"
    if isinstance(groups, str):
        if groups != "auto":
            raise ValueError(f"groups must be None, 'auto' or a dict {{name: [features]}}, "
                             f"got {groups!r}")  # fmt: skip
        return auto_setting(threshold)
    if not isinstance(groups, Mapping) or not groups:
        raise TypeError(
            "groups must be None, 'auto' or a non-empty dict {group name: [feature names]}, "
            f"got {type(groups).__name__}"
        )
    return "custom"


def auto_setting(threshold: float) -> str:
    """``"auto:<threshold>"`` for a threshold in (0, 1]."""
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not 0 < threshold <= 1
    ):
        raise ValueError(f"the groups threshold must be in (0, 1], got {threshold!r}")
    return f"auto:{float(threshold):g}"


def setting_threshold(setting: str) -> float:
    """The threshold of an "auto:<t>" setting (the default for the others)."""
    return float(setting.split(":", 1)[1]) if setting.startswith("auto:") else DEFAULT_THRESHOLD


def input_names(X: Any, feature_names: Any = None) -> tuple[str, ...]:
    """The input columns' names as the engines name them (given, a DataFrame's, an AnnData's
    ``var_names``, or x0..)."""
    if feature_names is not None:
        return tuple(str(name) for name in feature_names)
    genes = getattr(X, "var_names", None)
    if genes is not None:
        return tuple(str(name) for name in genes)
    columns = getattr(X, "columns", None)
    if columns is not None:
        return tuple(str(name) for name in columns)
    shape = getattr(X, "shape", None)
    d = int(shape[1]) if shape is not None and len(shape) == 2 else 0
    return tuple(f"x{j}" for j in range(d))


class Lineup:
    """The methods offered for ``model`` and ``X`` and how to build each one's engine.

    Parameters
    ----------
    model, X
        The user's; never modified (the engines copy X).
    starting : str
        The method the explorer starts with (gets every engine keyword).
    given : dict
        ``Explorer(**engine_keywords)``.
    options : dict
        Checked ``options`` ({method key: {keyword: value}}).
    groups : None, "auto" or dict
        ``Explorer(groups=...)``.
    race_k : int, optional
        The dashboard's Top N: permutation importance is then the rows race certifying the top
        ``race_k`` within :data:`~aefi_widget.widget.methods.RACE_TOLERANCE` (unless the
        keywords choose another run), and its first look is the race's first round.
    """

    def __init__(
        self,
        model: Any,
        X: Any,
        starting: str,
        given: Mapping[str, Any],
        options: Mapping[str, dict[str, Any]],
        groups: Any,
        race_k: int | None = None,
    ) -> None:
        self.starting, self.given, self.options = starting, dict(given), options
        self.race_k = race_k
        self.context = MethodContext(model, X, input_names(X, given.get("feature_names")))
        self.custom = dict(groups) if isinstance(groups, Mapping) else None
        self.notes = {key: unavailable_note(key, model, options) for key in METHOD_KEYS}
        self._auto: dict[str, dict[str, list[str]]] = {}

    @property
    def keys(self) -> tuple[str, ...]:
        """The offered method keys, in the selector's order."""
        return METHOD_KEYS

    def title(self, key: str) -> str:
        """The selector's words for ``key``."""
        return METHODS[key].title

    def setting_for(self, key: str, setting: str) -> str:
        """The groups setting a run of ``key`` has: ``setting``, or "none" for a method that does
        not attribute groups."""
        return setting if METHODS[key].accepts_groups else "none"

    def _race(self, groups: dict[str, list[str]] | None) -> dict[str, Any] | None:
        """The permutation keywords of the race (None when the run is not one)."""
        if self.race_k is None:
            return None
        keywords = engine_keywords("permutation", self.starting, self.given, self.options)
        n_units = len(resolve_units(self.context.input_names, groups))
        return race_keywords(keywords, self.race_k, n_units)

    def groups(self, setting: str) -> dict[str, list[str]] | None:
        """The groups dict of a setting (None for "none")."""
        if setting == "none":
            return None
        if setting == "custom":
            return self.custom
        if setting not in self._auto:
            if len(self._auto) >= MAX_GROUPINGS:  # page messages choose thresholds: bounded
                del self._auto[next(iter(self._auto))]
            found = correlated_groups(
                self.context.X, threshold=setting_threshold(setting),
                feature_names=list(self.context.input_names), layer=self.given.get("layer"),
            )  # fmt: skip
            self._auto[setting] = {name: list(members) for name, members in found.items()}
        return self._auto[setting]

    def build(self, key: str, setting: str) -> Any:
        """The engine of method ``key`` under the groups ``setting`` (raises on bad input)."""
        if self.notes[key]:
            raise ValueError(f"{self.title(key)} cannot run on this model: {self.notes[key]}")
        spec = METHODS[key]
        groups = self.groups(self.setting_for(key, setting))
        racing = key == "permutation" or (key == "first_look" and self.starting == "permutation")
        race = self._race(groups) if racing else None
        if race is not None and key == "first_look" and race.get("checkpoint") is None:
            # The race's first round, apart: the race continues from it (nothing is redone).
            # Not with a checkpoint: the race resumes from that file, which may hold more.
            engine = RaceFirstStep(self.context.model, self.context.source, **race,
                                   **({} if groups is None else {"groups": groups}))  # fmt: skip
        elif race is not None and key == "permutation":  # the race itself
            engine = spec.build(self.context, race, groups)
        else:
            keywords = engine_keywords(key, self.starting, self.given, self.options)
            engine = spec.build(self.context, keywords, groups)
        if self.context.shared is None:
            # The first engine's private copy of X serves every later one: X is held once.
            shared = SharedX.of(engine, row_labels(self.context.X))
            if shared is not None:
                self.context = dataclasses.replace(self.context, shared=shared)
        return engine
