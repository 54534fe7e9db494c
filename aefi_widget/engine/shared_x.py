"""X checked and copied once, then shared by the other engines of one explorer.

Every engine makes its own private copy of the user's X (so the user's array is never written
and may change while a job runs). An explorer builds several engines from one X; with 100,000
cells each copy is gigabytes. :class:`SharedX` hands the first engine's private copy to the
next ones: :func:`~aefi_widget.engine.inputs.as_feature_matrix` returns its tensor as it is
(already checked, C-contiguous, in the model's dtype), so the explorer holds X once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["SharedX"]


@dataclass(frozen=True)
class SharedX:
    """One engine's private X, for other engines built on the same data.

    Attributes
    ----------
    tensor : torch.Tensor
        (n, d) values in the model's dtype on its device; no engine writes it.
    names : tuple of str
        The d columns' names.
    sample_names : list or None
        The n rows' labels (None: 0..n-1), as :func:`~aefi_widget.engine.anndata_input.row_labels`
        gave them for the user's X.
    """

    tensor: torch.Tensor
    names: tuple[str, ...]
    sample_names: list[int] | list[str] | None

    @property
    def shape(self) -> tuple[int, int]:
        """(n, d)."""
        n, d = self.tensor.shape
        return int(n), int(d)

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    @classmethod
    def of(cls, engine: Any, sample_names: list[int] | list[str] | None) -> SharedX | None:
        """The private X of ``engine``'s model session (None for an engine without one)."""
        session = getattr(engine, "session", None)
        X = getattr(session, "X", None)
        names = getattr(session, "output_names", None) or getattr(session, "feature_names", None)
        if not isinstance(X, torch.Tensor) or names is None or len(names) != X.shape[1]:
            return None
        return cls(X, tuple(str(name) for name in names), sample_names)
