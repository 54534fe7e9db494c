"""The opaque resume state a method leaves in its snapshots, and read-only array views.

Shared by :mod:`aefi_widget.result` (which carries it) and :mod:`aefi_widget.result_file` (which
saves and validates it); only the method that wrote a state reads its position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ResumeState", "frozen_array"]


def frozen_array(array: Any, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy-free view of ``array`` as ``dtype``, so a snapshot never changes."""
    view = np.asarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class ResumeState:
    """Where a method stands in its deterministic plan, so a run can continue exactly.

    Opaque to everything but the method that wrote it: the runtime only stores, saves and
    compares it.

    Attributes
    ----------
    method : str
        The method that wrote it (``settings["method"]`` of its result).
    position : dict of str -> int or float
        JSON scalars (e.g. round, chunk, rows per chunk, a partial sum).
    arrays : dict of str -> float64 array
        Named partial accumulators (e.g. a (d,) partial per-output sum).
    identity : dict of str -> str
        Digests of the run (model, probe outputs, data, settings): a resume whose identity
        differs from the new run's is refused.
    """

    method: str
    position: Mapping[str, int | float] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    identity: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", str(self.method))
        object.__setattr__(self, "position", dict(self.position))
        object.__setattr__(
            self, "arrays", {str(k): frozen_array(v) for k, v in self.arrays.items()}
        )
        object.__setattr__(self, "identity", {str(k): str(v) for k, v in self.identity.items()})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResumeState):
            return NotImplemented
        return (
            self.method == other.method
            and self.position == other.position
            and self.identity == other.identity
            and self.arrays.keys() == other.arrays.keys()
            and all(np.array_equal(v, other.arrays[k]) for k, v in self.arrays.items())
        )

    __hash__ = None  # type: ignore[assignment]
