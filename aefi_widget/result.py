"""Immutable, method-agnostic snapshots of attribution results and their pandas views.

An :class:`ImportanceResult` is what every layer passes around: a method's engine yields one after
every chunk of work, the job keeps the latest, the widget draws it, and users keep it for papers.
It is plain data (numpy arrays, tuples, JSON-able dicts); :mod:`aefi_widget.result_file` saves it
as ``.npz`` without pickle.

Every method fills the same (F, R) array of estimates: R counts repeats (permutation importance),
permutations (Shapley values) or samples (gradients), named by ``labels["axis"]``. Method-specific
arrays travel as named ``extras``; how to continue a run travels as an opaque :class:`ResumeState`
that only the method that wrote it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from aefi_widget import result_file
from aefi_widget.result_summary import race_values, ranking_order, summary_columns
from aefi_widget.resume_state import ResumeState, frozen_array

__all__ = ["ImportanceResult", "ResumeState", "default_labels", "ranking_order", "summary_columns"]

# Titles and axis names of the released method, for results that do not carry their own labels.
_PERMUTATION_LABELS = {"title": "Permutation importance", "value": "Δ error", "axis": "repeat"}


def default_labels(method: str) -> dict[str, str]:
    """Labels for a result that carries none: the permutation method's, else generic ones."""
    if method == "permutation":
        return dict(_PERMUTATION_LABELS)
    return {"title": f"{method} importance", "value": "importance", "axis": "repeat"}


@dataclass(frozen=True, eq=False, init=False)
class ImportanceResult:
    """One snapshot of an attribution run, possibly partial (NaN where not computed yet).

    Attributes
    ----------
    feature_names : tuple of str, length F
        The attributed units: single features and named groups, in column order.
    output_names : tuple of str, length d
        The model's outputs (the reconstructed columns).
    importances : (F, R) float64 array
        The method's estimates per unit and repeat/permutation/sample (``labels["axis"]``), in the
        units of ``labels["value"]``; NaN where not computed yet. For permutation importance,
        ``error(permuted) - error(original)`` in the metric's units.
    baseline_error : float
        Mean over all samples of the per-sample error of the unperturbed reconstruction.
    settings : dict
        JSON-able description of how the result was made (``method``, metric, seed, ...).
    groups : dict of str -> tuple of str
        Members of each group unit (empty when no groups were given).
    evaluations_done, evaluations_total : int
        Work units (model evaluations of one sample) done so far and in the whole run.
    elapsed_s : float
        Wall-clock seconds of computation behind this snapshot.
    resume : ResumeState or None
        The method's position for exact continuation; not part of the scientific result.
    extras : dict of str -> float64 array
        Named method-specific arrays (e.g. ``delta_sum``, (F, d)).
    labels : dict of str -> str
        ``title`` (e.g. "Permutation importance"), ``value`` (e.g. "Δ error") and ``axis``
        (what R counts: "repeat", "permutation", "sample"), for tables and the dashboard.
    """

    feature_names: tuple[str, ...]
    output_names: tuple[str, ...]
    importances: np.ndarray
    baseline_error: float
    settings: dict[str, Any]
    groups: dict[str, tuple[str, ...]]
    evaluations_done: int
    evaluations_total: int
    elapsed_s: float
    resume: ResumeState | None
    extras: dict[str, np.ndarray]
    labels: dict[str, str]

    def __init__(
        self,
        feature_names: Any,
        output_names: Any,
        importances: Any,
        baseline_error: float,
        delta_sum: Any = None,
        settings: Mapping[str, Any] | None = None,
        groups: Mapping[str, Any] | None = None,
        evaluations_done: int = 0,
        evaluations_total: int = 0,
        elapsed_s: float = 0.0,
        resume: ResumeState | None = None,
        extras: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        set_ = object.__setattr__
        names = tuple(str(n) for n in feature_names)
        outputs = tuple(str(n) for n in output_names)
        values = frozen_array(importances)
        if values.ndim != 2 or values.shape[0] != len(names):
            raise ValueError(
                f"importances must have shape (n_features={len(names)}, n_repeats), "
                f"got {values.shape}"
            )
        settings = dict(settings or {})
        arrays = {str(k): frozen_array(v) for k, v in (extras or {}).items()}
        if delta_sum is not None:  # the permutation method's per-output sums, by their old name
            arrays["delta_sum"] = frozen_array(delta_sum)
        delta = arrays.get("delta_sum")
        if delta is not None and delta.shape != (len(names), len(outputs)):
            raise ValueError(
                f"delta_sum must have shape {(len(names), len(outputs))}, got {delta.shape}"
            )
        method = str(settings.get("method", "permutation"))
        merged = {**default_labels(method), **{str(k): str(v) for k, v in (labels or {}).items()}}
        set_(self, "feature_names", names)
        set_(self, "output_names", outputs)
        set_(self, "importances", values)
        set_(self, "baseline_error", float(baseline_error))
        set_(self, "settings", settings)
        set_(self, "groups", {str(k): tuple(str(m) for m in v) for k, v in (groups or {}).items()})
        set_(self, "evaluations_done", int(evaluations_done))
        set_(self, "evaluations_total", int(evaluations_total))
        set_(self, "elapsed_s", float(elapsed_s))
        set_(self, "resume", resume)
        set_(self, "extras", arrays)
        set_(self, "labels", merged)

    def __eq__(self, other: object) -> bool:
        """Same names, settings, labels and numbers (NaN equal to NaN); progress is ignored."""
        if not isinstance(other, ImportanceResult):
            return NotImplemented
        same_extras = self.extras.keys() == other.extras.keys() and all(
            v.shape == other.extras[k].shape and np.array_equal(v, other.extras[k], equal_nan=True)
            for k, v in self.extras.items()
        )
        return (
            self.feature_names == other.feature_names
            and self.output_names == other.output_names
            and self.importances.shape == other.importances.shape
            and np.array_equal(self.importances, other.importances, equal_nan=True)
            and same_extras
            and (self.baseline_error == other.baseline_error
                 or (math.isnan(self.baseline_error) and math.isnan(other.baseline_error)))
            and self.settings == other.settings
            and self.groups == other.groups
            and self.labels == other.labels
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # arrays inside: not hashable

    # ------------------------------------------------------------------ basic views
    @property
    def method(self) -> str:
        """The method that made the result (``settings["method"]``)."""
        return str(self.settings.get("method", "permutation"))

    @property
    def delta_sum(self) -> np.ndarray | None:
        """(F, d) permutation extra: sum over finished repeats of mean ``|recon_perm - recon|``."""
        return self.extras.get("delta_sum")

    @property
    def settled(self) -> pd.Series | None:
        """Certified top-k runs: +1 settled inside the top k, -1 outside, 0 undecided (None for
        runs without ``top_k``)."""
        codes = self.extras.get("settled")
        if codes is None:
            return None
        return pd.Series(codes.astype(np.int64), index=self._index(), name="settled")

    @property
    def certified_top_k(self) -> list[str] | None:
        """Names settled inside the top k, most important first (fewer than k when the budget
        ran out first); None for runs without ``top_k``."""
        codes = self.extras.get("settled")
        if codes is None:
            return None
        order = ranking_order(self._mean())
        return [self.feature_names[i] for i in order if codes[i] > 0]

    def race_values(self) -> dict[str, np.ndarray] | None:
        """A rows race's per-unit mean, simultaneous bounds and rows done (``race_mean``,
        ``race_lower``, ``race_upper``, ``race_rows``: (F,) float64), or None for other runs."""
        return race_values(self.extras, self.n_features)

    @property
    def n_features(self) -> int:
        """Number of attributed units F (features plus groups)."""
        return len(self.feature_names)

    @property
    def n_repeats(self) -> int:
        """Estimates per unit the run was asked for (R: repeats, permutations or samples)."""
        return int(self.importances.shape[1])

    @property
    def n_done(self) -> pd.Series:
        """Finished estimates per feature (int Series indexed by feature)."""
        return pd.Series(self._n_done_array(), index=self._index(), name="n_done")

    def _n_done_array(self) -> np.ndarray:
        return np.sum(~np.isnan(self.importances), axis=1).astype(np.int64)

    @property
    def rounds_done(self) -> int:
        """Complete rounds: estimates finished by every feature."""
        return int(self._n_done_array().min()) if self.n_features else self.n_repeats

    @property
    def complete(self) -> bool:
        """True when every feature has all its estimates."""
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
        """Mean over finished estimates per feature (NaN before the first)."""
        return pd.Series(self._mean(), index=self._index(), name="importances_mean")

    @property
    def importances_std(self) -> pd.Series:
        """Sample standard deviation (ddof=1) over finished estimates; NaN with fewer than 2."""
        return pd.Series(self._std(), index=self._index(), name="importances_std")

    def _mean(self) -> np.ndarray:
        race = self.race_values()
        if race is not None:  # a rows race ranks by its row-weighted mean
            return race["race_mean"]
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

    @property
    def per_sample(self) -> pd.DataFrame | None:
        """(n x F) signed per-sample attributions of a gradient result, in the metric's units.

        Indexed by sample (X's DataFrame index when it had one, else 0..n-1); NaN rows for
        samples not computed yet. None for methods without per-sample values.
        """
        values = self.extras.get("per_sample")
        if values is None:
            return None
        labels = self.settings.get("sample_index")
        index = pd.Index(range(len(values)) if labels is None else labels, name="sample")
        return pd.DataFrame(values, index=index, columns=self._index())

    # ------------------------------------------------------------------ summary tables
    def summary(self, sort: bool = True) -> pd.DataFrame:
        """Per-feature table, sorted by rank (most important first), or in feature order.

        Columns: ``mean``, ``std`` (ddof=1), ``ci_low``/``ci_high`` (95 % Student-t interval of the
        mean over estimates; equal to the mean with a single one), ``normalized`` (share of the
        total positive mean importance, in [0, 1]), ``rank`` (1 = most important, by mean), and
        ``n_done`` (finished estimates). For a rows race (``top_k`` with ``tolerance``):
        ``mean`` is its row-weighted mean, ``ci_low``/``ci_high`` its simultaneous bounds at
        ``settings["confidence"]`` and ``n_done`` its rows done (see :meth:`race_values`).
        """
        columns = summary_columns(self.importances, self.race_values())
        mean = columns["mean"]
        table = pd.DataFrame(columns, index=self._index())
        # Rank by mean, ties broken by column order, features without results last.
        order = ranking_order(mean)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        table.insert(5, "rank", rank)
        return table.iloc[order] if sort else table

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of finished estimates: ``feature``, the axis (e.g. ``repeat``), the value.

        For permutation importance the columns are ``feature``, ``repeat``, ``delta_error``.
        """
        rows, repeats = np.nonzero(~np.isnan(self.importances))
        value = "delta_error" if self.method == "permutation" else "value"
        return pd.DataFrame(
            {
                "feature": np.asarray(self.feature_names, dtype=object)[rows],
                self.labels["axis"]: repeats.astype(np.int64),
                value: self.importances[rows, repeats],
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
        return result_file.save_arrays(self.to_arrays(), path)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The result as named numpy arrays (no object arrays), for ``.npz`` files."""
        return result_file.to_arrays(self)

    def to_anndata(self, adata: Any, key: str = "aefi", overwrite: bool = False) -> None:
        """Write the per-gene summary into ``adata.var`` (columns ``{key}_mean``, ...), the
        matrices into ``adata.varm``/``varp``/``layers`` and the settings into
        ``adata.uns[key]``, in place; existing keys raise unless ``overwrite=True``. See
        :func:`aefi_widget.result_anndata.write_to_anndata` (needs ``aefi_widget[anndata]``)."""
        from aefi_widget.result_anndata import write_to_anndata  # anndata is optional

        write_to_anndata(self, adata, key, overwrite=overwrite)

    def to_shap(self, X: Any = None) -> Any:
        """This result as a ``shap.Explanation`` for ``shap.plots.beeswarm`` / ``bar``: one row
        per sample for per-sample methods, one row of means (CI as bounds) otherwise. See
        :func:`aefi_widget.result_shap.to_explanation` (needs the ``shap`` package)."""
        from aefi_widget.result_shap import to_explanation  # shap is optional

        return to_explanation(self, X)

    @classmethod
    def load(cls, path: str | Path) -> ImportanceResult:
        """Read a result written by :meth:`save` (this or the released format).

        Raises ``ValueError`` naming the file and the problem for anything that is not a valid
        result file; ``FileNotFoundError`` when there is no file.
        """
        return cls(**result_file.load_fields(path))

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "arrays") -> Any:
        """Rebuild a result from :meth:`to_arrays` output; ``ValueError`` when it is malformed."""
        return cls(**result_file.fields_from_arrays(arrays, source=source))

    # Draws the notebook's HTML: aefi_widget.rich_display.result_html, installed by the package's
    # __init__ (the drawing code reads results, so this module cannot import it).
    html_renderer: ClassVar[Callable[[ImportanceResult], str] | None] = None

    def _repr_html_(self) -> str | None:
        """Rich display in notebooks: title, settings, the top 20 bars with their 95 % intervals
        and the summary's first 10 rows (``None``, so text only, without a renderer)."""
        renderer = ImportanceResult.html_renderer
        return None if renderer is None else renderer(self)

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self.progress:.0%} done"
        return (
            f"ImportanceResult({self.method}, {self.n_features} features x {self.n_repeats} "
            f"{self.labels['axis']}s, {state}, metric={self.settings.get('metric')!r}, "
            f"baseline_error={self.baseline_error:.4g})"
        )
