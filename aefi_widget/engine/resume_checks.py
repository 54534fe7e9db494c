"""A run's identity, and the checks every method runs before continuing a result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aefi_widget.engine.units import Unit
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["check_same_run", "run_identity"]

_WHAT = {
    "model": "the model's parameters",
    "outputs": "the model's outputs on the first rows of X",
    "data": "the data X",
    "settings": "the settings that fix the numbers",
}


def check_same_run(
    result: ImportanceResult,
    method: str,
    identity: Mapping[str, str],
    feature_names: tuple[str, ...],
    what: Mapping[str, str] | None = None,
) -> ResumeState:
    """``result``'s resume state, after checking it was written by ``method`` for these features
    and for the run of ``identity``; ``ValueError`` naming what differs otherwise.

    ``what`` overrides how an identity key is described (e.g. which settings fix the numbers).
    """
    resume = result.resume
    if resume is None:
        raise ValueError("this result has no resume state; it cannot be continued")
    if resume.method != method:
        raise ValueError(
            f"this result was made by the {resume.method!r} method; a {method} run cannot "
            "continue it"
        )
    if tuple(result.feature_names) != feature_names:
        raise ValueError("the result was computed for other features; it cannot be continued")
    names = {**_WHAT, **(what or {})}
    differs = [names.get(k, k) for k in identity if resume.identity.get(k) != identity[k]]
    if differs:
        raise ValueError(
            f"the result to resume belongs to another run: {' and '.join(differs)} differ. "
            "Nothing was mixed in; start a fresh run (resume=None)."
        )
    return resume


def run_identity(
    session_identity: Mapping[str, str],
    settings: Mapping[str, Any],
    keep: tuple[str, ...],
    units: Sequence[Unit] | None = None,
    **digests: str,
) -> dict[str, str]:
    """A run's identity: the session's digests (model, probe outputs, data) plus one digest of
    the ``keep`` settings, the units' columns and any extra ``digests`` (e.g. a background)."""
    chosen: dict[str, Any] = {k: v for k, v in settings.items() if k in keep}
    if units is not None:
        chosen["units"] = [[u.name, u.columns.tolist()] for u in units]
    chosen.update(digests)
    text = json.dumps(chosen, sort_keys=True, default=str)
    return {**session_identity, "settings": hashlib.sha256(text.encode()).hexdigest()}
