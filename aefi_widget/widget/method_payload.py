"""Trait values of the multi-method explorer (protocol v3): selector, views, groups, view data.

Pure encodings of results and of the explorer's state, plus :class:`ViewData`, which computes
the compare table and the heat maps only for the view the page shows (nobody sees the others),
through the functions of :mod:`aefi_widget.widget.view_data`, and reuses them while their inputs
are the same snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aefi_widget.result import ImportanceResult
from aefi_widget.widget import view_data

__all__ = [
    "VIEW_TITLES",
    "MethodEntry",
    "ViewData",
    "certified_trait",
    "has_values",
    "members_trait",
    "methods_trait",
    "settled_trait",
    "views_trait",
]

VIEW_TITLES = {
    "importance": "Importance",
    "compare": "Compare methods",
    "outputs": "Inputs x outputs",
    "latent": "Inputs x latent code",
}
_EMPTY_VIEW: dict[str, Any] = {
    "compare": {},
    "compare_points": b"",
    "heatmap": {},
    "heatmap_values": b"",
}


@dataclass(frozen=True)
class MethodEntry:
    """One row of the selector: key, title, status word, why unavailable, whether it has numbers."""

    key: str
    title: str
    status: str
    note: str
    has_result: bool


def has_values(result: ImportanceResult | None) -> bool:
    """Whether ``result`` holds at least one finished estimate."""
    return result is not None and bool(np.isfinite(result.importances).any())


def methods_trait(entries: Sequence[MethodEntry]) -> list[dict[str, Any]]:
    """The ``methods`` trait: one dict per offered method, in the order given."""
    return [
        {"key": e.key, "title": e.title, "status": e.status, "note": e.note,
         "has_result": e.has_result}
        for e in entries
    ]  # fmt: skip


def settled_trait(result: ImportanceResult) -> bytes:
    """int8 (F,): +1 settled inside the top k, -1 outside, 0 open; b"" without ``top_k``."""
    codes = result.extras.get("settled")
    if codes is None:
        return b""
    return np.asarray(codes).astype(np.int8).tobytes()


def certified_trait(result: ImportanceResult, ended: bool) -> dict[str, Any]:
    """{"k", "names" (certified, most important first), "done"} for a top-k run, else {}; a
    rows race adds "tolerance" (in words), "confidence", "tied" and "open" (units sharing the
    places not certified) and "separation_rows" (projected rows a separation would need)."""
    names = result.certified_top_k
    k = result.settings.get("top_k")
    if names is None or not isinstance(k, int):
        return {}
    trait: dict[str, Any] = {"k": k, "names": list(names), "done": bool(ended or len(names) >= k)}
    tied, codes = result.extras.get("race_tied"), result.extras.get("settled")
    if tied is None or codes is None:
        return trait
    open_ = (np.asarray(codes) == 0) & (np.asarray(tied) == 0)
    separation = result.extras.get("race_separation_rows")
    trait.update({
        "tolerance": tolerance_words(result.settings, k),
        "confidence": float(result.settings.get("confidence") or 0.95),
        "tied": int(np.count_nonzero(tied)), "open": int(np.count_nonzero(open_)),
        "separation_rows": float(separation[0]) if separation is not None else 0.0,
    })  # fmt: skip
    return trait


def tolerance_words(settings: Mapping[str, Any], k: int) -> str:
    """A rows race's tolerance as the page says it: "10 % of the 20th importance" or, when
    absolute, "0.002" (in the importances' units)."""
    tolerance = float(settings.get("tolerance") or 0.0)
    if settings.get("tolerance_scale") == "absolute":
        return f"{tolerance:.3g}"
    return f"{tolerance * 100:g} % of the {_ordinal(k)} importance"


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def members_trait(result: ImportanceResult) -> dict[str, list[str]]:
    """{unit: members} for the units of ``result`` that are groups of two or more features."""
    return {name: list(members) for name, members in result.groups.items() if len(members) >= 2}


def latent_source(results: Mapping[str, ImportanceResult], shown: ImportanceResult) -> Any:
    """The latent result the latent view draws: the shown one when it is latent, else the
    first latent run with numbers (None when there is none)."""
    if shown.method == "latent" and has_values(shown):
        return shown
    for key in ("latent", "latent_mi"):
        result = results.get(key)
        if result is not None and has_values(result):
            return result
    return None


def views_trait(
    shown: ImportanceResult, comparable: int, latent: ImportanceResult | None, latent_note: str
) -> list[dict[str, Any]]:
    """The ``views`` trait: {"key", "title", "available", "note"} for the four views."""
    outputs = "delta_sum" in shown.extras
    notes = {
        "importance": "",
        "compare": "" if comparable >= 2 else "Compute a second method to compare (selector).",
        "outputs": "" if outputs else "Only permutation importance measures each output's shift.",
        "latent": "" if latent is not None else (latent_note or "Compute a latent lens first."),
    }
    return [
        {"key": key, "title": title, "available": not notes[key], "note": notes[key]}
        for key, title in VIEW_TITLES.items()
    ]


class ViewData:
    """The compare, heat-map and latent-top traits of the view shown, cached by their inputs."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._traits: dict[str, Any] = dict(_EMPTY_VIEW)
        self._top_key: tuple[Any, ...] | None = None
        self._top: dict[str, Any] = {}

    def traits(
        self,
        view: str,
        shown: ImportanceResult,
        comparable: Mapping[str, ImportanceResult],
        titles: Mapping[str, str],
        top_n: int,
        pair: tuple[str | None, str | None],
        latent: ImportanceResult | None,
    ) -> dict[str, Any]:
        """Trait values for ``view``; the data of the other views are empty (not computed)."""
        k = max(1, min(int(top_n), shown.n_features))
        if view == "compare":
            key: tuple[Any, ...] = (
                view, tuple((name, id(r)) for name, r in comparable.items()), k, pair,
                shown.feature_names,
            )  # fmt: skip
        elif view == "outputs":
            key = (view, id(shown), top_n)
        elif view == "latent" and latent is not None:
            key = (view, id(latent), top_n)
        else:
            return dict(_EMPTY_VIEW)
        if key != self._key:
            self._traits = {**_EMPTY_VIEW, **_compute(view, shown, comparable, titles, k, pair,
                                                      latent, top_n)}  # fmt: skip
            self._key = key
        return self._traits

    def latent_top(self, latent: ImportanceResult | None, dimension: int | None) -> dict[str, Any]:
        """The ``latent_top`` trait after a latent_dim request ({} otherwise)."""
        if latent is None or dimension is None:
            return {}
        if not 0 <= dimension < len(latent.output_names):
            return {}
        key = (id(latent), dimension)
        if key != self._top_key:
            self._top = dict(view_data.latent_top(latent, dimension))
            self._top_key = key
        return self._top


def _compute(
    view: str,
    shown: ImportanceResult,
    comparable: Mapping[str, ImportanceResult],
    titles: Mapping[str, str],
    k: int,
    pair: tuple[str | None, str | None],
    latent: ImportanceResult | None,
    top_n: int,
) -> dict[str, Any]:
    """Call the view-data function of ``view`` (looked up at call time: tests count calls)."""
    if view == "compare":
        table, points = view_data.compare_table(
            comparable, titles, k, pair[0], pair[1], shown.feature_names
        )
        return {"compare": dict(table), "compare_points": bytes(points)}
    if view == "outputs":
        heatmap, values = view_data.output_map(shown, top_n)
    else:
        heatmap, values = view_data.latent_map(latent, top_n)
    return {"heatmap": dict(heatmap), "heatmap_values": bytes(values)}
