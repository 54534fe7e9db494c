"""Which extra arrays a result of each method carries, and their shapes.

A result file declares its extras in its header; :mod:`aefi_widget.result_file` reads only those
this table allows, at exactly the shape the result's own sizes imply, before reading any of
their bytes: a small file cannot make a load allocate more than a result of its sizes holds,
and a malformed extra (``settled`` of 3 codes for 8 features) is refused at load instead of
failing later in ``certified_top_k`` or ``per_sample``.

Sizes: F units (features or groups), d outputs (latent dimensions for the latent lens), R
columns of ``importances`` (repeats, permutations, or samples for gradients) and the input
columns (F with each group counted by its members).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["check_extra_shape", "expected_extra_shapes", "input_columns"]


def input_columns(F: int, groups: Mapping[str, Sequence[str]]) -> int:
    """Input columns of a result of F units of which ``groups`` are groups of columns."""
    return F - len(groups) + sum(len(members) for members in groups.values())


_RACE_PER_UNIT = (
    "race_tied", "race_rows", "race_permutations", "race_mean", "race_lower", "race_upper",
)  # fmt: skip
_RACE_SCALARS = ("race_epsilon", "race_certified_ranks", "race_separation_rows")


def expected_extra_shapes(
    method: str, F: int, d: int, R: int, inputs: int
) -> dict[str, tuple[int, ...]] | None:
    """{extra name: shape} a result of ``method`` may carry; None for a method this package
    does not define (a custom engine's), whose extras may only have 1 or 2 dimensions, each
    one of F, d, R or ``inputs`` (see :func:`check_extra_shape`)."""
    table: dict[str, dict[str, tuple[int, ...]]] = {
        "permutation": {
            "delta_sum": (F, d),
            "settled": (F,),
            # the rows race of a tolerant top-k (engine/permutation_rows_race.py)
            **{name: (F,) for name in _RACE_PER_UNIT},
            **{name: (1,) for name in _RACE_SCALARS},
        },
        # interim: mean, SE, half-width and columns walked while an ordering is in flight
        "shapley": {"se": (F,), "interim": (4, F)},
        "gradient": {"per_sample": (R, F), "error_delta": (R,), "baseline_row": (inputs,)},
        "latent": {"latent_shift": (F, d), "latent_map": (F, d)},
        "weights": {},
    }
    return table.get(method)


def check_extra_shape(
    method: str, name: str, shape: tuple[int, ...], sizes: tuple[int, int, int, int]
) -> str:
    """Why extra ``name`` of declared ``shape`` cannot be in a result of ``method`` with
    ``sizes`` (F, d, R, input columns); "" when it can."""
    known = expected_extra_shapes(method, *sizes)
    if known is None:
        if 1 <= len(shape) <= 2 and all(n in sizes for n in shape):
            return ""
        return (
            f"extra {name!r} declares shape {shape}; an extra of a custom method has 1 or 2 "
            f"dimensions, each one of the result's sizes {sorted(set(sizes))}"
        )
    if name not in known:
        allowed = ", ".join(sorted(known)) or "none"
        return f"extra {name!r} is not one a {method} result carries (those are: {allowed})"
    if shape != known[name]:
        return f"extra {name!r} declares shape {shape}, not {known[name]}"
    return ""
