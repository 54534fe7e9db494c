"""The ``groups=`` option every method shares: the user's dict, or ``"auto"``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from aefi_widget.engine.correlated_groups import correlated_groups

__all__ = ["resolve_groups"]


def resolve_groups(
    groups: Mapping[str, Sequence[Any]] | str | None, X: torch.Tensor, names: Sequence[str]
) -> Mapping[str, Sequence[Any]] | None:
    """``groups`` as a dict (or None): ``"auto"`` becomes :func:`correlated_groups` of X (n, d)
    with its defaults; a dict or None passes through (checked later with the names)."""
    if isinstance(groups, str):
        if groups != "auto":
            raise ValueError(
                f"groups must be a dict {{name: [features]}}, 'auto' or None, got {groups!r}"
            )
        return correlated_groups(X.detach().to("cpu"), feature_names=list(names))
    return groups
