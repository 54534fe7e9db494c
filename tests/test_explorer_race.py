"""The explorer's default permutation run is the rows race for its Top N, and its first look is
the race's first round: kept, counted, and continued with the numbers of a headless race."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import correlated_data, sequential_ae

from aefi_widget import Job, PermutationImportance
from aefi_widget.engine.rows_race import FIRST_ROWS
from aefi_widget.widget import Explorer
from aefi_widget.widget.method_payload import certified_trait, tolerance_words
from aefi_widget.widget.methods import RACE_TOLERANCE, RaceFirstStep

pytestmark = pytest.mark.timeout(300)

D, N, TOP = 24, 200, 5


@pytest.fixture(scope="module")
def model_and_x() -> tuple[torch.nn.Module, np.ndarray]:
    return sequential_ae(D, hidden=4, dtype=torch.float32), correlated_data(N, D)


def _race_arrays(result) -> dict[str, np.ndarray]:
    return {key: result.extras[key] for key in ("race_mean", "race_lower", "race_upper",
                                               "race_rows", "settled", "race_tied")}  # fmt: skip


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_the_default_run_is_the_race_and_continues_from_the_first_look(model_and_x, backend):
    model, X = model_and_x
    reference = PermutationImportance(model, X, seed=2, top_k=TOP, tolerance=RACE_TOLERANCE).run()
    explorer = Explorer(model, X, seed=2, top=TOP, backend=backend)
    try:
        first, main = explorer.display.first, explorer.display.main
        assert isinstance(first.engine, RaceFirstStep)
        assert (main.engine.top_k, main.engine.tolerance) == (TOP, RACE_TOLERANCE)
        assert first.job.wait(120) and first.job.status == "done"
        look = first.job.snapshot()
        # The first look is the race's first round: every unit's first block of rows.
        assert look.evaluations_done == D * FIRST_ROWS
        assert (look.extras["race_rows"] == FIRST_ROWS).all()
        assert main.job.wait(120) and main.job.status == "done"
        result = main.job.snapshot()
        # Nothing redone: the evaluations are the headless race's, and so are the numbers.
        assert result.evaluations_done == reference.evaluations_done
        np.testing.assert_array_equal(result.importances, reference.importances)
        for key, value in _race_arrays(reference).items():
            np.testing.assert_array_equal(result.extras[key], value, err_msg=key)
        assert result.certified_top_k == reference.certified_top_k
        assert explorer.display.shown is main  # the first look gave way to the race
        assert explorer.publisher.flush()
        trait = explorer.dashboard.certified
        assert trait["k"] == TOP and trait["tolerance"] == "10 % of the 5th importance"
        assert trait["names"] == reference.certified_top_k
    finally:
        explorer.close()


@pytest.mark.parametrize("keywords", [{"top_k": None}, {"max_samples": 50}, {"top_k": 3},
                                      {"tolerance": 0.2, "top_k": 4}])  # fmt: skip
def test_keywords_that_choose_another_run_are_kept(model_and_x, keywords) -> None:
    model, X = model_and_x
    explorer = Explorer(model, X, top=TOP, autostart=False, backend="thread", **keywords)
    try:
        engine = explorer.display.main.engine
        assert engine.top_k == keywords.get("top_k")
        assert engine.tolerance == keywords.get("tolerance", 0.0)
        assert not isinstance(explorer.display.first.engine, RaceFirstStep)
    finally:
        explorer.close()


def test_no_race_when_every_unit_is_in_the_top(model_and_x) -> None:
    model, X = model_and_x
    explorer = Explorer(model, X, top=D, autostart=False, backend="thread")
    try:
        assert explorer.display.main.engine.top_k is None
    finally:
        explorer.close()


def test_the_first_round_is_shown_chunk_by_chunk_with_valid_bounds(model_and_x) -> None:
    model, X = model_and_x
    # 96 rows a chunk: the first round (24 units x 32 rows) comes in 8 chunks.
    engine = PermutationImportance(model, X, seed=1, top_k=TOP, tolerance=0.1, batch_size=96)
    snapshots = []
    for snapshot in engine.increments():
        snapshots.append(snapshot)
        if snapshot.resume.position["round"] >= 1:
            break
    partial = snapshots[0]
    rows = partial.extras["race_rows"]
    shown = rows > 0
    assert 0 < shown.sum() < D and set(rows[shown]) == {FIRST_ROWS}
    assert np.isfinite(partial.extras["race_lower"][shown]).all()
    assert np.isnan(partial.extras["race_lower"][~shown]).all()
    # The bounds shown mid-round are those the round's end gives (same rows, same look size).
    end = snapshots[-1]
    for key in ("race_mean", "race_lower", "race_upper"):
        np.testing.assert_array_equal(partial.extras[key][shown], end.extras[key][shown])
    # The summary shows the race's numbers: its mean and simultaneous bounds, rows done.
    table = partial.summary(sort=False)
    np.testing.assert_array_equal(table["mean"].to_numpy()[shown],
                                  partial.extras["race_mean"][shown])  # fmt: skip
    np.testing.assert_array_equal(table["ci_low"].to_numpy()[shown],
                                  partial.extras["race_lower"][shown])  # fmt: skip
    assert (table["n_done"].to_numpy() == rows).all()
    assert "simultaneous 95 % bounds" in partial.labels["interval"]
    assert partial.labels["count"] == "row"  # what the summary's n_done counts
    # Decisions wait for the round's end.
    assert (partial.extras["settled"] == 0).all()


def test_certified_trait_words_tied_and_open_units(model_and_x) -> None:
    model, X = model_and_x
    result = PermutationImportance(model, X, seed=0, top_k=TOP, tolerance=0.1, n_repeats=2).run()
    trait = certified_trait(result, ended=True)
    codes, tied = result.extras["settled"], result.extras["race_tied"]
    assert trait["tied"] == int(tied.sum())
    assert trait["open"] == int(((codes == 0) & (tied == 0)).sum())
    assert trait["confidence"] == 0.95 and trait["done"]
    assert tolerance_words({"tolerance": 0.1}, 20) == "10 % of the 20th importance"
    assert tolerance_words({"tolerance": 0.05}, 1) == "5 % of the 1st importance"
    assert tolerance_words({"tolerance": 0.25}, 12) == "25 % of the 12th importance"
    assert tolerance_words({"tolerance": 0.002, "tolerance_scale": "absolute"}, 3) == "0.002"


def test_a_job_resume_function_is_asked_when_the_job_starts(model_and_x) -> None:
    model, X = model_and_x
    engine = PermutationImportance(model, X, n_repeats=3, seed=4)
    part = Job(engine, backend="thread")
    part.subscribe(lambda job: job.cancel())  # stops after its first snapshot
    part.start()
    assert part.wait(60) and part.status == "cancelled"
    asked = []
    job = Job(engine, resume=lambda: asked.append(1) or part.snapshot(), backend="thread")
    assert not asked  # not before the start
    assert job.snapshot().evaluations_done == 0
    job.start()
    assert job.wait(60) and job.status == "done" and asked == [1]
    np.testing.assert_array_equal(job.snapshot().importances, engine.run().importances)
    fresh = Job(engine, resume=lambda: None, backend="thread").start()
    assert fresh.wait(60) and fresh.status == "done"
    with pytest.raises(TypeError, match="must return an ImportanceResult or None"):
        Job(engine, resume=lambda: "a path", backend="thread").start()


def test_a_race_with_a_checkpoint_resumes_from_it_not_from_a_first_look(model_and_x, tmp_path):
    model, X = model_and_x
    path = tmp_path / "race.npz"
    keywords = dict(seed=5, top=TOP, backend="thread", checkpoint=path)
    first = Explorer(model, X, **keywords)
    try:
        assert not isinstance(first.display.first.engine, RaceFirstStep)  # a first look apart
        assert first.job.wait(120) and first.job.status == "done" and path.exists()
        done = first.result
    finally:
        first.close()
    again = Explorer(model, X, **keywords)  # resumes from the finished checkpoint: no new work
    try:
        assert again.job.wait(120) and again.job.status == "done"
        assert again.result.evaluations_done == done.evaluations_done
        np.testing.assert_array_equal(again.result.importances, done.importances)
    finally:
        again.close()
