"""The permutation engine's rows race (``top_k`` with ``tolerance > 0``): state, resume, snapshots.

What the result of a rows race holds (beyond an exact run's fields):

- ``importances`` (F, R): per shuffle r, the mean of the rows done under it (NaN for none);
  equal to the exact run's value once all n rows of that shuffle are done.
- ``extras["settled"]``: +1 within the tolerance of the top k, -1 outside, 0 open or tied.
- ``extras["race_tied"]``: 1 for units given up on (their separation would cost more than
  ``n_repeats`` shuffles of rows); with the open units they share the places the certified units
  leave (k minus the units settled inside).
- ``extras["race_rows"]``, ``extras["race_permutations"]``: rows done and shuffles touched.
- ``extras["race_mean"]``, ``race_lower``, ``race_upper``: the race's row-weighted mean and its
  simultaneous bounds (``-inf``/``inf`` before a unit's first look).
- ``extras["race_epsilon"]`` (1,): the absolute tolerance used; ``race_certified_ranks`` (1,):
  the top k' certified as a set; ``race_separation_rows`` (1,): projected rows the open and
  tied units would still need.
- ``settings``: ``tolerance``, ``tolerance_scale``, ``confidence``, ``bound``, ``first_rows``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from aefi_widget.engine.pac_race import PacDecision, row_bounds
from aefi_widget.engine.permutation_blocks import evaluate_granules
from aefi_widget.engine.resume_checks import check_same_run
from aefi_widget.engine.rows_race import (
    FIRST_ROWS,
    RowsRaceSettings,
    RowsRaceState,
    Totals,
    allocate,
    granules_of,
    rows_race_rounds,
)
from aefi_widget.result import ImportanceResult, ResumeState

__all__ = ["check_rows_race_options", "rows_race_compute", "rows_race_empty",
           "rows_race_finished", "rows_race_settings"]  # fmt: skip

BOUND = "student-t, Bonferroni over units, sides and looks (row counts growing 1.5x), no FPC"
_SUMS = ("count", "total", "m2", "perm_sum")


def check_rows_race_options(client: Any, max_samples: Any, min_repeats: Any) -> None:
    """Refuse what the rows race does not combine with, before any work."""
    if client is not None:
        raise ValueError(
            "the rows race (top_k with tolerance > 0) runs locally only for now: its rounds are "
            "small and decided one after another; drop client= or pass tolerance=0 (the exact "
            "race runs on Dask)"
        )
    if max_samples is not None:
        raise ValueError(
            "max_samples does not combine with tolerance: the rows race samples rows itself "
            "(blocks growing from 32 rows); drop max_samples"
        )
    if min_repeats is not None:
        raise ValueError(
            "min_repeats applies to the exact race (tolerance=0); the rows race settles a unit "
            f"from its first {FIRST_ROWS} rows on; drop min_repeats"
        )


def rows_race_settings(engine: Any) -> dict[str, Any]:
    """The settings a rows race adds to the run's."""
    return {"tolerance": engine.tolerance, "tolerance_scale": engine.tolerance_scale,
            "bound": BOUND, "first_rows": FIRST_ROWS}  # fmt: skip


def _race(engine: Any) -> RowsRaceSettings:
    return RowsRaceSettings(engine.top_k, engine.confidence, engine.tolerance,
                            engine.tolerance_scale == "relative", engine.n_samples,
                            engine.n_repeats)  # fmt: skip


def _fresh(engine: Any) -> RowsRaceState:
    shape = (engine.n_features, engine.n_repeats, engine.n_inputs, engine.per_output)
    return RowsRaceState(_race(engine), Totals.zeros(*shape), Totals.zeros(*shape))


def _totals(arrays: dict[str, np.ndarray], prefix: str, engine: Any) -> Totals:
    F, R, d = engine.n_features, engine.n_repeats, engine.n_inputs
    shapes = {"count": (F,), "total": (F,), "m2": (F,), "perm_sum": (F, R)}
    values = {}
    for name in _SUMS:
        value = arrays.get(prefix + name)
        if value is None or value.shape != shapes[name] or not np.isfinite(value).all():
            raise ValueError(f"the resume state lacks a finite {shapes[name]} {prefix}{name}")
        values[name] = value
    count = values["count"]
    bad = (count < 0) | (count != np.round(count)) | (count > engine.n_samples * R)
    if bad.any():
        raise ValueError(f"the resume state's {prefix}count is not a row count per unit")
    delta = None
    if engine.per_output:
        delta = arrays.get(prefix + "delta")
        if delta is None or delta.shape != (F, d) or not np.isfinite(delta).all():
            raise ValueError(f"the resume state lacks a finite (F, d) {prefix}delta")
        delta = delta.copy()
    return Totals(count.astype(np.int64), values["total"].copy(), values["m2"].copy(),
                  values["perm_sum"].copy(), delta)  # fmt: skip


def _resumed(engine: Any, result: ImportanceResult) -> RowsRaceState:
    """The state ``result`` stood in, checked: same run, shapes, and the round's position."""
    resume = check_same_run(result, "permutation", engine.identity(), engine.feature_names)
    position, arrays = dict(resume.position), dict(resume.arrays)
    if position.get("rows_race") != 1:
        raise ValueError("this result is not a rows race's; it cannot continue one")
    state = _fresh(engine)
    state.totals, state.in_round = _totals(arrays, "", engine), _totals(arrays, "round_", engine)
    codes = arrays.get("codes")
    known = codes is not None and codes.shape == (engine.n_features,)
    if not known or not np.isin(codes, (-1, 0, 1, 2)).all():
        raise ValueError("the resume state lacks the race's settled codes")
    round_, granule = position.get("round"), position.get("granule")
    for name, value in (("round", round_), ("granule", granule)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"the resume position's {name} is {value!r}, not an integer >= 0")
    state.round, state.elapsed_s = round_, float(result.elapsed_s)
    if round_ > 0:
        lower, upper = state.bounds()
        state.decision = PacDecision(codes == 1, codes == -1, codes == 2, False, lower, upper,
                                     0.0, 0)  # fmt: skip
        state.decide()  # the same decision again (settled units stay settled)
    state.granules = granules_of(allocate(state.totals, state.decision, state.settings),
                                 state.settings.n)  # fmt: skip
    if granule > len(state.granules) or (granule and granule == len(state.granules)):
        raise ValueError(f"the resume position's granule {granule} is not in its round")
    state.granule = granule
    done = state.granules[:granule]
    expected = np.zeros(engine.n_features, dtype=np.int64)
    np.add.at(expected, done[:, 0], done[:, 3] - done[:, 2])
    if not np.array_equal(expected, state.in_round.count):
        raise ValueError("the resume state's round accumulators do not match its position")
    if result.evaluations_done != state.evaluations_done:
        raise ValueError("the result's evaluations_done does not match its race state")
    return state


def _codes(decision: PacDecision | None, n_units: int) -> np.ndarray:
    codes = np.zeros(n_units)
    if decision is not None:
        codes[decision.settled_in], codes[decision.settled_out] = 1.0, -1.0
        codes[decision.tied] = 2.0
    return codes


def _snapshot(
    engine: Any, state: RowsRaceState, identity: dict[str, str] | None
) -> ImportanceResult:
    t, n, s = state.shown(), state.settings.n, state.settings
    F, R = t.perm_sum.shape
    in_perm = np.clip(t.count[:, None] - n * np.arange(R)[None, :], 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        importances = np.where(in_perm > 0, t.perm_sum / np.maximum(in_perm, 1), np.nan)
    n_done = (in_perm > 0).sum(axis=1)
    delta = None
    if t.delta is not None:
        scale = np.where(t.count > 0, n_done / np.maximum(t.count, 1), 0.0)
        delta = t.delta * scale[:, None]
    codes = _codes(state.decision, F)
    lower, upper = row_bounds(t.count, t.mean, t.m2, s.sizes, s.confidence, n)
    decision = state.decision
    extras = {
        "settled": np.where(codes == 2, 0.0, codes),
        "race_tied": (codes == 2).astype(np.float64),
        "race_rows": t.count.astype(np.float64),
        "race_permutations": n_done.astype(np.float64),
        "race_mean": t.mean,
        "race_lower": np.where(np.isfinite(lower), lower, np.nan),
        "race_upper": np.where(np.isfinite(upper), upper, np.nan),
        "race_epsilon": np.array([0.0 if decision is None else decision.epsilon]),
        "race_certified_ranks": np.array([0.0 if decision is None else decision.certified_ranks]),
        "race_separation_rows": np.array([state.separation_rows()]),
    }  # fmt: skip
    if delta is not None:
        extras["delta_sum"] = delta
    resume = None
    if identity is not None:
        position = {"round": state.round, "granule": state.granule, "rows_race": 1,
                    "batch_rows": engine.batch_rows, "call_rows": engine.call_rows}  # fmt: skip
        arrays = {**state.totals.arrays(""), **state.in_round.arrays("round_"), "codes": codes}
        resume = ResumeState("permutation", position, arrays, identity)
    baseline = engine.session.cached_baseline()
    return ImportanceResult(
        feature_names=engine.feature_names, output_names=engine.output_names,
        importances=importances, baseline_error=baseline.error if baseline else float("nan"),
        delta_sum=delta, settings=engine.settings, groups=engine.groups,
        evaluations_done=state.evaluations_done, evaluations_total=state.expected_total(),
        elapsed_s=state.elapsed_s, resume=resume, extras=extras, labels=engine_labels(s.confidence),
    )  # fmt: skip


def engine_labels(confidence: float = 0.95) -> dict[str, str]:
    """The result's labels; ``interval`` says what the summary's bounds are."""
    level = f"{confidence * 100:g} %"
    return {"title": "Permutation importance", "value": "Δ error", "axis": "repeat", "count": "row",
            "interval": f"simultaneous {level} bounds (all units, every look of the race)"}


def rows_race_empty(engine: Any) -> ImportanceResult:
    return _snapshot(engine, _fresh(engine), None)


def rows_race_finished(engine: Any, resume: ImportanceResult) -> ImportanceResult:
    return _snapshot(engine, _resumed(engine, resume), engine.identity())


def rows_race_compute(engine: Any, resume: ImportanceResult | None) -> Iterator[ImportanceResult]:
    """The race from the start or from ``resume``; a snapshot after every chunk."""
    fresh = resume is None or (resume.resume is None and resume.evaluations_done == 0)
    state = _fresh(engine) if fresh else _resumed(engine, resume)
    identity = engine.identity()
    session = engine.session
    baseline = session.baseline(engine.call_rows)

    def evaluate(chunk: np.ndarray) -> tuple[Any, float]:
        started = time.perf_counter()
        with session.computing():
            sums = evaluate_granules(session, engine.shuffles, baseline, chunk, engine.call_rows)
        return sums, time.perf_counter() - started

    yield from rows_race_rounds(
        state, engine.batch_rows, evaluate, lambda st: _snapshot(engine, st, identity)
    )
