"""The units a method attributes to: single features, or named groups of columns taken together.

``resolve_units`` checks a user's ``groups`` dict against the feature names (clear errors for
unknown names, out-of-range indices, overlapping or empty groups) before any work starts.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aefi_widget.engine.inputs import did_you_mean

__all__ = ["Unit", "resolve_units"]


@dataclass(frozen=True)
class Unit:
    """One attributed unit: a single feature or a named group shuffled together.

    ``columns`` holds the input column indices (int64, sorted), ``members`` their names.
    """

    name: str
    columns: np.ndarray
    members: tuple[str, ...]


def resolve_units(
    names: tuple[str, ...], groups: Mapping[str, Sequence[str | int]] | None
) -> list[Unit]:
    """The attributed units: groups, and every feature not in a group, ordered by first column."""
    if groups is None:
        return [Unit(n, np.array([j], dtype=np.int64), (n,)) for j, n in enumerate(names)]
    if not isinstance(groups, Mapping):
        raise TypeError(
            "groups must be a dict {name: [feature names or indices]}, "
            f"got {type(groups).__name__}"
        )
    index = {n: j for j, n in enumerate(names)}
    owner: dict[int, str] = {}
    grouped: list[Unit] = []
    for group_name, members in groups.items():
        if not isinstance(group_name, str):
            raise TypeError(f"group names must be strings, got {group_name!r}")
        if isinstance(members, str | bytes) or not isinstance(members, Sequence | np.ndarray):
            raise TypeError(f"group {group_name!r} must list its members, got {members!r}")
        if len(members) == 0:
            raise ValueError(f"group {group_name!r} is empty; give it at least one feature")
        columns = [_column_of(m, index, len(names), group_name) for m in members]
        for column in columns:
            if column in owner:
                where = "twice in" if owner[column] == group_name else f"in {owner[column]!r} and"
                raise ValueError(
                    f"feature {names[column]!r} is {where} group {group_name!r}; "
                    "groups must not overlap"
                )
            owner[column] = group_name
        cols = np.array(sorted(columns), dtype=np.int64)
        grouped.append(Unit(group_name, cols, tuple(names[c] for c in cols)))
    singles = [
        Unit(n, np.array([j], dtype=np.int64), (n,)) for j, n in enumerate(names) if j not in owner
    ]
    clash = {u.name for u in singles} & set(groups)
    if clash:
        raise ValueError(
            f"group name(s) {sorted(clash)} equal a feature that is not in any group; rename them"
        )
    return sorted(singles + grouped, key=lambda unit: int(unit.columns[0]))


def _column_of(member: Any, index: dict[str, int], d: int, group: str) -> int:
    if isinstance(member, bool):
        raise TypeError(f"group {group!r}: member {member!r} is neither a name nor an index")
    if isinstance(member, numbers.Integral):
        if not 0 <= int(member) < d:
            raise ValueError(f"group {group!r}: column index {member} is out of range [0, {d})")
        return int(member)
    if isinstance(member, str):
        if member not in index:
            raise ValueError(
                f"group {group!r}: unknown feature {member!r}.{did_you_mean(member, list(index))}"
            )
        return index[member]
    raise TypeError(f"group {group!r}: member {member!r} is neither a name nor an index")
