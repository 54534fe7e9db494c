"""Option checks and work sizing for permutation importance, done before the model is called.

Everything here runs in :class:`~aefi_widget.engine.permutation.PermutationImportance`'s
constructor: scalar options are checked first, the units (features and groups) and the samples
per repeat once X is known but before any forward call, so a bad option costs no model call; then
the per-output accumulation and the chunk size are fixed from the problem's size.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from aefi_widget.engine.groups import resolve_groups
from aefi_widget.engine.inputs import check_int, resolve_max_samples
from aefi_widget.engine.session import ModelSession
from aefi_widget.engine.units import Unit, resolve_units

__all__ = [
    "MAX_ESTIMATES",
    "PER_OUTPUT_MAX_ENTRIES",
    "RunOptions",
    "UnitSizing",
    "auto_batch_rows",
    "check_run_options",
    "resolve_per_output",
    "size_units",
]

# Per-output accumulation costs F x d float64; past this many entries it is off unless forced.
PER_OUTPUT_MAX_ENTRIES = 25_000_000
# Estimates held in memory (F x n_repeats float64): past this, refuse at construction.
MAX_ESTIMATES = 200_000_000
# A chunk should take about this long, so pause and cancel answer well within a second.
TARGET_CHUNK_SECONDS = 0.25


@dataclass(frozen=True)
class RunOptions:
    """The checked scalar options (see :class:`PermutationImportance` for their meaning).

    ``seed`` is drawn when the caller passed None; ``confidence``, ``min_repeats`` and
    ``tolerance`` belong to a certified top-k run (``top_k`` not None) and are refused without
    one. ``tolerance`` 0 is the exact race over whole repeats; above 0 the rows race.
    """

    n_repeats: int
    target: str
    seed: int
    batch_size: int | None
    top_k: int | None
    confidence: float
    min_repeats: int
    tolerance: float = 0.0
    tolerance_scale: str = "relative"


def check_run_options(
    n_repeats: int,
    target: str,
    seed: int | None,
    batch_size: int | None,
    per_output: bool | str,
    top_k: int | None,
    confidence: float | None,
    min_repeats: int | None,
    tolerance: float | str | None = None,
    tolerance_scale: str = "relative",
) -> RunOptions:
    """The scalar options checked, in the order of the signature; TypeError/ValueError names the
    bad option and its allowed values."""
    n_repeats = check_int(n_repeats, "n_repeats", 1)
    if target not in ("original", "permuted"):
        raise ValueError(f"target must be 'original' or 'permuted', got {target!r}")
    if seed is None:
        seed = secrets.randbits(63)
    seed = check_int(seed, "seed", -(2**63), 2**64 - 1)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", 1)
    if per_output not in (True, False, "always"):
        raise ValueError(f"per_output must be True, False or 'always', got {per_output!r}")
    if top_k is None:
        given = [name for name, value in (("confidence", confidence), ("min_repeats",
                 min_repeats), ("tolerance", tolerance)) if value is not None]  # fmt: skip
        if given:
            raise ValueError(
                f"{' and '.join(given)} apply only to a certified top-k run; pass top_k= (the "
                f"number of units to certify) or drop {' and '.join(given)}"
            )
        return RunOptions(n_repeats, target, seed, batch_size, None, 0.95, 3)
    top_k = check_int(top_k, "top_k", 1)
    confidence = 0.95 if confidence is None else confidence
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not (0 < confidence < 1)
    ):
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    value, scale = check_tolerance(tolerance, tolerance_scale)
    if value == 0 or min_repeats is not None:  # the rows race refuses min_repeats later
        min_repeats = check_int(3 if min_repeats is None else min_repeats, "min_repeats", 2,
                                n_repeats)  # fmt: skip
    return RunOptions(n_repeats, target, seed, batch_size, top_k, float(confidence), min_repeats,
                      value, scale)  # fmt: skip


def check_tolerance(tolerance: float | str | None, scale: str) -> tuple[float, str]:
    """``(value, scale)``: a number >= 0 or a percentage string such as ``"10%"`` (relative
    only); None is 0 (the exact race)."""
    if scale not in ("relative", "absolute"):
        raise ValueError(f"tolerance_scale must be 'relative' or 'absolute'; got {scale!r}")
    if tolerance is None:
        return 0.0, scale
    if isinstance(tolerance, str):
        text = tolerance.strip()
        number = None
        if text.endswith("%") and scale == "relative":
            try:
                number = float(text[:-1]) / 100.0
            except ValueError:
                number = None
        if number is None:
            raise ValueError(
                f"tolerance must be a number >= 0 (a fraction of the k-th importance, e.g. 0.1) "
                f"or a percentage such as '10%'; got {tolerance!r}"
            )
        tolerance = number
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise TypeError(f"tolerance must be a number >= 0 or a string like '10%'; got "
                        f"{tolerance!r}")  # fmt: skip
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(
            f"tolerance must be finite and >= 0 (0: the exact race; 0.1: within 10 % of the "
            f"k-th importance); got {tolerance!r}"
        )
    if scale == "relative" and tolerance >= 1:
        raise ValueError(
            f"a relative tolerance must be below 1 (a fraction of the k-th importance); got "
            f"{tolerance!r}; pass tolerance_scale='absolute' for an absolute one"
        )
    return float(tolerance), scale


@dataclass(frozen=True)
class UnitSizing:
    """The attributed units, the groups among them (name -> member names; empty without
    groups) and the samples each repeat evaluates."""

    units: list[Unit]
    groups: dict[str, tuple[str, ...]]
    samples_per_repeat: int


def size_units(
    groups: Mapping[str, Sequence[str | int]] | str | None,
    data: torch.Tensor,
    names: tuple[str, ...],
    n_repeats: int,
    max_samples: int | float | None,
    top_k: int | None,
) -> UnitSizing:
    """Units and samples per repeat for the (n, d) ``data`` with column ``names``; refuses a run
    whose (F, n_repeats) estimates would not fit memory, or a ``top_k`` above F."""
    resolved = resolve_groups(groups, data, names)
    units = resolve_units(names, resolved)
    named_groups = {u.name: u.members for u in units if resolved and u.name in resolved}
    estimates = len(units) * n_repeats
    if estimates > MAX_ESTIMATES:
        raise ValueError(
            f"n_repeats={n_repeats:,} for {len(units):,} features needs "
            f"{estimates * 8 / 2**30:,.1f} GiB for the estimates alone; use fewer "
            "repeats (50 is plenty for a 95 % interval), or fewer features"
        )
    samples_per_repeat = resolve_max_samples(max_samples, data.shape[0])
    if top_k is not None and top_k > len(units):
        raise ValueError(f"top_k={top_k} is more than the {len(units)} features (and groups)")
    return UnitSizing(units, named_groups, samples_per_repeat)


def resolve_per_output(per_output: bool | str, n_units: int, n_inputs: int) -> bool:
    """Whether to accumulate ``delta_recon`` (n_units x n_inputs): off, with a warning, past
    :data:`PER_OUTPUT_MAX_ENTRIES` unless ``per_output == "always"``.

    Called from the engine's constructor: the warning points at the constructor's caller.
    """
    entries = n_units * n_inputs
    if per_output is True and entries > PER_OUTPUT_MAX_ENTRIES:
        warnings.warn(
            f"per_output is off: delta_recon would hold {n_units} x {n_inputs} "
            f"= {entries:,} values ({entries * 8 / 2**30:.1f} GiB while accumulating). "
            "Pass per_output='always' to compute it anyway, or per_output=False to silence "
            "this warning.",
            stacklevel=3,
        )
        return False
    return bool(per_output)


def auto_batch_rows(session: ModelSession, samples_per_repeat: int) -> int:
    """Samples per chunk: ~0.25 s of work that fits memory, in whole units when they fit."""
    rows = session.rows_per_chunk(TARGET_CHUNK_SECONDS)
    m = samples_per_repeat
    return (rows // m) * m if rows >= m else rows
