"""The checks every method runs before continuing a result: same method, features and run."""

from __future__ import annotations

from collections.abc import Mapping

from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["check_same_run"]

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
