"""Fakes for widget tests: an engine following the engine contract, fast and scriptable.

The real :class:`aefi_widget.job.Job` runs it, so the widget is tested against the real job
contract without torch work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from aefi_widget.engine import Drilldown
from aefi_widget.result import ImportanceResult


class FakeEngine:
    """Yields one snapshot per chunk of ``chunk`` features; optionally slow or failing.

    Parameters
    ----------
    n_features, n_repeats, n_outputs : int
        F, R and d of the results.
    chunk : int
        Features finished per yielded snapshot.
    delay_s : float
        Sleep per chunk (simulates work; the GIL is released while sleeping).
    fail_after : int or None
        Raise ``RuntimeError("model exploded")`` instead of yielding the chunk with this number.
    """

    def __init__(
        self,
        n_features: int = 30,
        n_repeats: int = 4,
        n_outputs: int = 6,
        *,
        chunk: int = 5,
        delay_s: float = 0.0,
        fail_after: int | None = None,
    ) -> None:
        self.feature_names = tuple(f"feature_{i}" for i in range(n_features))
        self.output_names = tuple(f"out_{j}" for j in range(n_outputs))
        self.n_repeats, self.chunk, self.delay_s, self.fail_after = (
            n_repeats,
            chunk,
            delay_s,
            fail_after,
        )
        self.samples = 8
        self.evaluations_total = n_features * n_repeats * self.samples
        self.settings = {
            "method": "permutation",
            "metric": "mse",
            "target": "original",
            "n_repeats": n_repeats,
            "seed": 0,
        }
        rng = np.random.default_rng(0)
        # Feature i has importance around i / F (feature_29 most important), noisy per repeat.
        base = np.arange(n_features) / n_features
        self.values = base[:, None] + 0.05 * rng.standard_normal((n_features, n_repeats))
        self.delta = rng.random((n_features, n_outputs))

    def _result(self, importances: np.ndarray, done: int) -> ImportanceResult:
        n_done = np.sum(~np.isnan(importances), axis=1)
        return ImportanceResult(
            feature_names=self.feature_names,
            output_names=self.output_names,
            importances=importances,
            baseline_error=1.0,
            delta_sum=self.delta * n_done[:, None],
            settings=self.settings,
            evaluations_done=done,
            evaluations_total=self.evaluations_total,
        )

    def empty_result(self) -> ImportanceResult:
        return self._result(np.full(self.values.shape, np.nan), 0)

    def increments(self, resume: ImportanceResult | None = None) -> Iterator[ImportanceResult]:
        importances = np.full(self.values.shape, np.nan)
        done, number = 0, 0
        for repeat in range(self.n_repeats):
            for start in range(0, len(self.feature_names), self.chunk):
                number += 1
                if self.fail_after is not None and number >= self.fail_after:
                    raise RuntimeError("model exploded")
                if self.delay_s:
                    time.sleep(self.delay_s)
                stop = min(start + self.chunk, len(self.feature_names))
                importances[start:stop, repeat] = self.values[start:stop, repeat]
                done += (stop - start) * self.samples
                yield self._result(importances.copy(), done)

    def drilldown(self, feature: str, repeat: int = 0, top_outputs: int = 20) -> Drilldown:
        if feature not in self.feature_names:
            raise ValueError(f"unknown feature {feature!r}")
        m, k = self.samples, min(top_outputs, len(self.output_names))
        rng = np.random.default_rng(self.feature_names.index(feature))
        original = rng.standard_normal(m)
        return Drilldown(
            feature=feature,
            columns=(feature,),
            shown_column=feature,
            repeat=repeat,
            sample_index=np.arange(m),
            original=original,
            reconstructed=original * 0.9,
            shuffled_reconstruction=rng.standard_normal(m),
            error_increase=rng.random(m),
            top_outputs=self.output_names[:k],
            output_shift=np.sort(rng.random(k))[::-1],
            profile_original=rng.standard_normal((m, k)),
            profile_reconstructed=rng.standard_normal((m, k)),
            profile_shuffled=rng.standard_normal((m, k)),
        )


class UpdateLog:
    """Records (time, value) of every change of a dashboard's ``update_count`` trait."""

    def __init__(self, dashboard) -> None:
        self.times: list[float] = []
        dashboard.observe(lambda change: self.times.append(time.monotonic()), "update_count")

    def max_in_any_second(self) -> int:
        times = np.asarray(self.times)
        return int(max((np.sum((times >= t) & (times < t + 1.0)) for t in times), default=0))
