"""Immutable snapshots of permutation-importance results, their pandas views, save and load.

An :class:`ImportanceResult` is what every layer passes around: the engine yields one after every
batch of work, the job keeps the latest, the widget draws it, and users keep it for papers. It is
plain data (numpy arrays, tuples, a JSON-able settings dict), saved as ``.npz`` without pickle.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aefi_widget._stats import t_quantile_975

__all__ = ["ImportanceResult", "ResumeState"]

_FORMAT = "aefi_widget.ImportanceResult"
_FORMAT_VERSION = 1


def _frozen(array: np.ndarray | None) -> np.ndarray | None:
    """A read-only view of ``array``, so a snapshot can never change after it is handed out."""
    if array is None:
        return None
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True)
class ResumeState:
    """Where the engine stands inside its deterministic work plan, so a run can continue exactly.

    The plan splits each round (one repeat of every feature) into ``chunks`` of consecutive
    (feature, sample) evaluations. ``round`` and ``chunk`` name the next chunk to compute; the
    partial sums belong to the one feature whose samples straddle the last finished chunk.

    Attributes
    ----------
    round, chunk : int
        Next round and chunk index to compute (``round == n_repeats`` when done).
    batch_rows : int
        Evaluations (permuted samples) per forward call the plan was made with.
    partial_error_sum : float
        Sum over the straddling feature's finished samples of the per-sample permuted error.
    partial_delta_sum : (d,) float64 array or None
        Sum over those samples of ``|recon_permuted - recon|`` (only with ``per_output``).
    """

    round: int
    chunk: int
    batch_rows: int
    partial_error_sum: float = 0.0
    partial_delta_sum: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ImportanceResult:
    """One snapshot of permutation importance, possibly partial (NaN where not computed yet).

    Attributes
    ----------
    feature_names : tuple of str, length F
        The attributed units: single features and named groups, in column order of their first
        member.
    output_names : tuple of str, length d
        The model's outputs (the reconstructed columns).
    importances : (F, n_repeats) float64 array
        ``error(permuted) - error(original)`` for each feature and repeat, in the units of the
        metric (e.g. squared input units for ``"mse"``); NaN where not computed yet.
    baseline_error : float
        Mean over all samples of the per-sample error of the unpermuted reconstruction.
    delta_sum : (F, d) float64 array or None
        Sum over finished repeats of the mean over samples of ``|recon_permuted - recon|``;
        :attr:`delta_recon` divides it by :attr:`n_done`.
    settings : dict
        JSON-able description of how the result was made (method, metric, target, seed, ...).
    groups : dict of str -> tuple of str
        Members of each group unit (empty when no groups were given).
    evaluations_done, evaluations_total : int
        Permuted samples evaluated so far, and in the whole run (for progress bars).
    elapsed_s : float
        Wall-clock seconds of computation behind this snapshot.
    resume : ResumeState or None
        Engine position for exact continuation (checkpoints); not part of the scientific result.
    """

    feature_names: tuple[str, ...]
    output_names: tuple[str, ...]
    importances: np.ndarray
    baseline_error: float
    delta_sum: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    evaluations_done: int = 0
    evaluations_total: int = 0
    elapsed_s: float = 0.0
    resume: ResumeState | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        importances = np.asarray(self.importances, dtype=np.float64)
        if importances.ndim != 2 or importances.shape[0] != len(self.feature_names):
            raise ValueError(
                f"importances must have shape (n_features={len(self.feature_names)}, n_repeats), "
                f"got {importances.shape}"
            )
        object.__setattr__(self, "importances", _frozen(importances))
        if self.delta_sum is not None:
            delta = np.asarray(self.delta_sum, dtype=np.float64)
            expected = (len(self.feature_names), len(self.output_names))
            if delta.shape != expected:
                raise ValueError(f"delta_sum must have shape {expected}, got {delta.shape}")
            object.__setattr__(self, "delta_sum", _frozen(delta))
        object.__setattr__(self, "feature_names", tuple(str(n) for n in self.feature_names))
        object.__setattr__(self, "output_names", tuple(str(n) for n in self.output_names))
        object.__setattr__(
            self, "groups", {str(k): tuple(str(m) for m in v) for k, v in self.groups.items()}
        )

    def __eq__(self, other: object) -> bool:
        """Same names, settings and numbers (NaN equal to NaN); progress fields are ignored."""
        if not isinstance(other, ImportanceResult):
            return NotImplemented
        if (self.delta_sum is None) != (other.delta_sum is None):
            return False
        same_delta = self.delta_sum is None or np.array_equal(
            self.delta_sum, other.delta_sum, equal_nan=True
        )
        return (
            self.feature_names == other.feature_names
            and self.output_names == other.output_names
            and self.importances.shape == other.importances.shape
            and np.array_equal(self.importances, other.importances, equal_nan=True)
            and same_delta
            and (self.baseline_error == other.baseline_error
                 or (math.isnan(self.baseline_error) and math.isnan(other.baseline_error)))
            and self.settings == other.settings
            and self.groups == other.groups
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable-looking arrays inside: not hashable

    # ------------------------------------------------------------------ basic views
    @property
    def n_features(self) -> int:
        """Number of attributed units F (features plus groups)."""
        return len(self.feature_names)

    @property
    def n_repeats(self) -> int:
        """Repeats per feature the run was asked for."""
        return int(self.importances.shape[1])

    @property
    def n_done(self) -> pd.Series:
        """Finished repeats per feature (int Series indexed by feature)."""
        return pd.Series(self._n_done_array(), index=self._index(), name="n_done")

    def _n_done_array(self) -> np.ndarray:
        return np.sum(~np.isnan(self.importances), axis=1).astype(np.int64)

    @property
    def rounds_done(self) -> int:
        """Complete rounds: repeats finished by every feature."""
        return int(self._n_done_array().min()) if self.n_features else self.n_repeats

    @property
    def complete(self) -> bool:
        """True when every feature has all its repeats."""
        return not bool(np.isnan(self.importances).any())

    @property
    def progress(self) -> float:
        """Fraction of the run's evaluations done, in [0, 1]."""
        if self.evaluations_total <= 0:
            return 1.0 if self.complete else 0.0
        return min(1.0, self.evaluations_done / self.evaluations_total)

    def _index(self) -> pd.Index:
        return pd.Index(self.feature_names, name="feature")

    @property
    def importances_mean(self) -> pd.Series:
        """Mean over finished repeats of Δerror per feature (NaN before the first repeat)."""
        return pd.Series(self._mean(), index=self._index(), name="importances_mean")

    @property
    def importances_std(self) -> pd.Series:
        """Sample standard deviation (ddof=1) over finished repeats; NaN with fewer than 2."""
        return pd.Series(self._std(), index=self._index(), name="importances_std")

    def _mean(self) -> np.ndarray:
        n_done = self._n_done_array()
        total = np.nansum(self.importances, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_done > 0, total / np.maximum(n_done, 1), np.nan)

    def _std(self) -> np.ndarray:
        n_done = self._n_done_array()
        mean = self._mean()
        squares = np.nansum((self.importances - mean[:, None]) ** 2, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_done > 1, np.sqrt(squares / np.maximum(n_done - 1, 1)), np.nan)

    @property
    def delta_recon(self) -> pd.DataFrame | None:
        """(F x d) mean over samples and finished repeats of ``|recon_permuted - recon|``.

        Row g says which outputs move when feature g is shuffled, in the outputs' units. None when
        the run did not accumulate it (``per_output=False``); NaN rows for features not started.
        """
        if self.delta_sum is None:
            return None
        n_done = self._n_done_array().astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = self.delta_sum / np.where(n_done > 0, n_done, np.nan)[:, None]
        return pd.DataFrame(
            values, index=self._index(), columns=pd.Index(self.output_names, name="output")
        )

    # ------------------------------------------------------------------ summary tables
    def summary(self, sort: bool = True) -> pd.DataFrame:
        """Per-feature table, sorted by rank (most important first), or in feature order.

        Columns: ``mean``, ``std`` (ddof=1), ``ci_low``/``ci_high`` (95 % Student-t interval of the
        mean over repeats; equal to the mean with a single repeat), ``normalized`` (share of the
        total positive mean importance, in [0, 1]), ``rank`` (1 = most important, by mean), and
        ``n_done`` (finished repeats).
        """
        mean = self._mean()
        std = self._std()
        n_done = self._n_done_array()
        # One t quantile per distinct repeat count (few), not per feature (up to 20,000).
        quantile = {int(n): t_quantile_975(int(n) - 1) for n in np.unique(n_done) if n > 1}
        t_values = np.array([quantile.get(int(n), 0.0) for n in n_done]) if quantile else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            half_width = np.where(
                n_done > 1,
                t_values * std / np.sqrt(np.maximum(n_done, 1)),
                np.where(n_done == 1, 0.0, np.nan),
            )
        positive = np.where(np.isnan(mean), 0.0, np.clip(mean, 0.0, None))
        total = positive.sum()
        normalized = positive / total if total > 0 else np.zeros_like(positive)
        table = pd.DataFrame(
            {
                "mean": mean,
                "std": std,
                "ci_low": mean - half_width,
                "ci_high": mean + half_width,
                "normalized": np.where(np.isnan(mean), np.nan, normalized),
                "n_done": n_done,
            },
            index=self._index(),
        )
        # Rank by mean, ties broken by column order, features without results last.
        order = ranking_order(mean)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        table.insert(5, "rank", rank)
        return table.iloc[order] if sort else table

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of finished evaluations: columns ``feature``, ``repeat``, ``delta_error``."""
        rows, repeats = np.nonzero(~np.isnan(self.importances))
        return pd.DataFrame(
            {
                "feature": np.asarray(self.feature_names, dtype=object)[rows],
                "repeat": repeats.astype(np.int64),
                "delta_error": self.importances[rows, repeats],
            }
        )

    def top(self, n: int = 20) -> list[str]:
        """Names of the ``n`` features with the largest mean importance."""
        order = ranking_order(self._mean())
        return [self.feature_names[i] for i in order[: max(0, int(n))]]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the result to ``path`` (``.npz``: numpy arrays and a JSON header, no pickle).

        Returns the path written (``.npz`` is appended when missing).
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays = self.to_arrays()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The result as named numpy arrays (no object arrays), for ``.npz`` files."""
        header = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "output_names": list(self.output_names),
            "baseline_error": self.baseline_error,
            "settings": self.settings,
            "groups": {k: list(v) for k, v in self.groups.items()},
            "evaluations_done": int(self.evaluations_done),
            "evaluations_total": int(self.evaluations_total),
            "elapsed_s": float(self.elapsed_s),
        }
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
            "importances": np.asarray(self.importances),
        }
        if self.delta_sum is not None:
            arrays["delta_sum"] = np.asarray(self.delta_sum)
        if self.resume is not None:
            resume = {
                "round": self.resume.round,
                "chunk": self.resume.chunk,
                "batch_rows": self.resume.batch_rows,
                "partial_error_sum": self.resume.partial_error_sum,
            }
            arrays["resume"] = np.frombuffer(json.dumps(resume).encode("utf-8"), dtype=np.uint8)
            if self.resume.partial_delta_sum is not None:
                arrays["resume_partial_delta_sum"] = np.asarray(self.resume.partial_delta_sum)
        return arrays

    @classmethod
    def load(cls, path: str | Path) -> ImportanceResult:
        """Read a result written by :meth:`save`. Raises ``ValueError`` on a corrupt file."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise
        except Exception as error:  # zipfile, zlib and numpy raise many kinds
            raise ValueError(
                f"{path} is not a readable aefi_widget result file: {error}"
            ) from error
        return cls.from_arrays(arrays, source=str(path))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str = "arrays") -> ImportanceResult:
        """Rebuild a result from :meth:`to_arrays` output; ``ValueError`` when it is malformed."""
        try:
            header = json.loads(bytes(arrays["header"]).decode("utf-8"))
            if header.get("format") != _FORMAT:
                raise ValueError(f"format is {header.get('format')!r}, not {_FORMAT!r}")
            if int(header.get("version", 0)) > _FORMAT_VERSION:
                raise ValueError(f"written by a newer aefi_widget (format {header['version']})")
            resume = None
            if "resume" in arrays:
                info = json.loads(bytes(arrays["resume"]).decode("utf-8"))
                resume = ResumeState(
                    round=int(info["round"]),
                    chunk=int(info["chunk"]),
                    batch_rows=int(info["batch_rows"]),
                    partial_error_sum=float(info["partial_error_sum"]),
                    partial_delta_sum=arrays.get("resume_partial_delta_sum"),
                )
            return cls(
                feature_names=tuple(header["feature_names"]),
                output_names=tuple(header["output_names"]),
                importances=np.array(arrays["importances"], dtype=np.float64),
                baseline_error=float(header["baseline_error"]),
                delta_sum=(
                    np.array(arrays["delta_sum"], dtype=np.float64)
                    if "delta_sum" in arrays
                    else None
                ),
                settings=dict(header.get("settings", {})),
                groups={k: tuple(v) for k, v in header.get("groups", {}).items()},
                evaluations_done=int(header.get("evaluations_done", 0)),
                evaluations_total=int(header.get("evaluations_total", 0)),
                elapsed_s=float(header.get("elapsed_s", 0.0)),
                resume=resume,
            )
        except ValueError as error:
            raise ValueError(f"{source} is not a valid aefi_widget result: {error}") from error
        except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(
                f"{source} is not a valid aefi_widget result (missing or malformed {error})"
            ) from error

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self.progress:.0%} done"
        return (
            f"ImportanceResult({self.n_features} features x {self.n_repeats} repeats, {state}, "
            f"metric={self.settings.get('metric')!r}, baseline_error={self.baseline_error:.4g})"
        )


def ranking_order(mean: np.ndarray) -> np.ndarray:
    """Indices sorting features by decreasing mean, ties by index, NaN (not started) last."""
    key = np.where(np.isnan(mean), -np.inf, mean)
    # lexsort's last key is primary: decreasing mean, then increasing index (stable).
    return np.lexsort((np.arange(len(mean)), -key))
