"""Shapley values of the loss (SAGE): exact enumeration, streaming SE, invariants, sage-importance.

The exact reference shares nothing with the engine: it evaluates v(S) for all 2^F coalitions with
the whole (samples x background) batch in one float64 forward call per coalition and applies the
Shapley formula.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from bench_scripts import load_benchmark
from reference import EncoderDecoderAE, correlated_data, cube_metric, sequential_ae
from torch import nn

import aefi_widget as aefi
from aefi_widget.engine import shapley as shapley_module
from aefi_widget.engine.shapley_walk import Background, BatchWalk, UnitTable, empty_losses

N, D, B = 24, 6, 5


def _data(n: int = N, d: int = D) -> tuple[np.ndarray, np.ndarray]:
    X = correlated_data(n, d, seed=3)
    return X, correlated_data(B, d, seed=4)


def exact_shapley(
    model, X: np.ndarray, background: np.ndarray, units: list[list[int]], power: int = 2
):
    """(F,) exact Shapley values and the dict mask -> v(S), by enumerating all coalitions; the
    loss is the mean over outputs of |prediction - x| ** power."""
    F = len(units)
    n, d = X.shape
    values = {}
    with torch.no_grad():
        for mask in range(2**F):
            columns = [c for k in range(F) if mask >> k & 1 for c in units[k]]
            inputs = np.repeat(background[None], n, axis=0)  # (n, B, d)
            inputs[:, :, columns] = X[:, None, columns]
            out = model(torch.as_tensor(inputs.reshape(-1, d), dtype=torch.float64)).numpy()
            prediction = out.reshape(n, len(background), d).mean(axis=1)
            values[mask] = float((np.abs(prediction - X) ** power).mean(axis=1).mean())
    phi = np.zeros(F)
    for j in range(F):
        for mask in range(2**F):
            if mask >> j & 1:
                continue
            size = bin(mask).count("1")
            weight = math.factorial(size) * math.factorial(F - size - 1) / math.factorial(F)
            phi[j] += weight * (values[mask] - values[mask | 1 << j])
    return phi, values


def _columns(result: aefi.ImportanceResult) -> np.ndarray:
    return result.importances[:, ~np.isnan(result.importances).any(axis=0)]


# ---------------------------------------------------------------------------- exact reference
@pytest.mark.parametrize(
    ("antithetic", "groups", "kind"),
    [(True, None, "rank1"), (False, None, "plain"), (True, {"g": [1, 4]}, "rank1")],
)
def test_all_orderings_give_the_exact_shapley_values(antithetic, groups, kind):
    X, background = _data()
    model = sequential_ae(D)
    engine = aefi.ShapleyImportance(
        model, X, background=background, groups=groups, n_permutations="all",
        antithetic=antithetic, _forward_path="plain" if kind == "plain" else "auto",
    )  # fmt: skip
    assert engine.forward_path == kind
    result = engine.run()
    units = [list(u.columns) for u in engine.units]
    phi, values = exact_shapley(model, X, background, units)
    F = len(units)
    assert result.importances.shape == (F, math.factorial(F) // (2 if antithetic else 1))
    np.testing.assert_allclose(result.importances_mean.to_numpy(), phi, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.extras["se"], np.zeros(F))
    # Efficiency holds for every column: the values sum to v(empty) - v(all).
    np.testing.assert_allclose(_columns(result).sum(axis=0), values[0] - values[2**F - 1],
                               rtol=1e-10)  # fmt: skip
    assert result.settings["loss_empty"] == pytest.approx(values[0], rel=1e-12)
    assert result.baseline_error == pytest.approx(values[2**F - 1], rel=1e-12)


@pytest.mark.parametrize(("metric", "power"), [("mae", 1), (cube_metric, 3)])
def test_exact_values_for_other_metrics(metric, power):
    X, background = _data(12, 4)
    model = sequential_ae(4)
    result = aefi.ShapleyImportance(
        model, X, background=background[:, :4], n_permutations="all", metric=metric
    ).run()
    phi, _ = exact_shapley(model, X, background[:, :4], [[j] for j in range(4)], power)
    np.testing.assert_allclose(result.importances_mean.to_numpy(), phi, rtol=0, atol=1e-9)


def test_streamed_estimates_lie_within_3_se_of_the_exact_values_at_every_snapshot():
    X, background = _data(40)
    model = sequential_ae(D)
    phi, _ = exact_shapley(model, X, background, [[j] for j in range(D)])
    for antithetic in (True, False):
        engine = aefi.ShapleyImportance(
            model, X, background=background, n_permutations=25, tol=1e-9,
            antithetic=antithetic, seed=7, batch_size=160,
        )  # fmt: skip
        checked = set()
        for snapshot in engine.increments():
            if snapshot.rounds_done < 2:
                continue
            se = snapshot.extras["se"]
            error = np.abs(snapshot.importances_mean.to_numpy() - phi)
            assert np.all(error <= 3 * se), (snapshot.rounds_done, error / se)
            checked.add(snapshot.rounds_done)
        assert checked == set(range(2, 26))


def test_every_walk_satisfies_efficiency():
    """Each ordering of each sample: its contributions sum to loss(empty) - loss(all units)."""
    X, background = _data()
    model = sequential_ae(D)
    engine = aefi.ShapleyImportance(model, X, background=background)
    session = engine.session
    prepared = Background.prepare(session, session.X.new_tensor(background))
    targets = session.X.to(torch.float64)
    empty = empty_losses(session, prepared, targets)
    samples = np.arange(N)
    orders = np.stack([np.random.default_rng(i).permutation(D) for i in range(N)])
    walk = BatchWalk(session, prepared, UnitTable.of(engine.units, session.device), samples,
                     orders, targets, empty)  # fmt: skip
    with session.computing():
        while not walk.done:
            walk.step()
    with torch.no_grad():
        full = ((model(session.X) - session.X) ** 2).mean(dim=1)
    np.testing.assert_allclose(walk.contributions.sum(dim=1).numpy(), (empty - full).numpy(),
                               rtol=1e-10, atol=1e-14)  # fmt: skip


# ---------------------------------------------------------------------------- invariants
def _float32_ae(d: int, ignored: int | None = None, seed: int = 0) -> nn.Sequential:
    model = sequential_ae(d, hidden=8, seed=seed, dtype=torch.float32)
    if ignored is not None:
        with torch.no_grad():
            model[0].weight[:, ignored] = 0.0
    return model


@pytest.mark.parametrize("path", ["auto", "plain"])
def test_a_feature_the_model_ignores_gets_exactly_zero(path):
    X = correlated_data(30, 8, seed=5)
    engine = aefi.ShapleyImportance(_float32_ae(8, ignored=3), X, n_permutations=4,
                                    _forward_path=path, background=12)  # fmt: skip
    assert engine.forward_path == ("rank1" if path == "auto" else "plain")
    result = engine.run()
    assert np.all(result.importances[3] == 0.0)
    assert result.extras["se"][3] == 0.0
    assert np.all(result.importances[[0, 1, 2]] != 0.0)


def test_exact_copies_used_by_the_model_get_equal_values():
    # With marginal (background) imputation, copies are symmetric players when the model reads
    # them alike: here both enter the first layer with the same weights.
    X = correlated_data(60, 6, seed=6)
    X[:, 4] = X[:, 2]
    model = _float32_ae(6, seed=2)
    with torch.no_grad():
        model[0].weight[:, 4] = model[0].weight[:, 2]
    result = aefi.shapley_importance(model, X, background=16, n_permutations=12, tol=1e-9)
    values, se = result.importances_mean.to_numpy(), result.extras["se"]
    assert abs(values[2]) > 10 * se[2]  # the model does use them
    assert abs(values[2] - values[4]) <= 3 * math.hypot(se[2], se[4])


def test_rank1_and_plain_paths_agree():
    X = correlated_data(40, 20, seed=7)
    model = sequential_ae(20, hidden=16, dtype=torch.float32)
    runs = {
        path: aefi.ShapleyImportance(model, X, background=16, n_permutations=3,
                                     _forward_path=path).run()
        for path in ("auto", "plain")
    }  # fmt: skip
    rank1, plain = runs["auto"].importances, runs["plain"].importances
    assert runs["auto"].settings["forward_path"] == "rank1"
    scale = np.abs(plain).max()
    np.testing.assert_allclose(rank1, plain, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("kind", ["rank1", "plain", "encoder_decoder"])
def test_same_numbers_for_any_batch_size(kind):
    X, background = correlated_data(10, 6, seed=8), 10
    model = (
        EncoderDecoderAE(6, dtype=torch.float32) if kind == "encoder_decoder" else _float32_ae(6)
    )
    path = "plain" if kind == "plain" else "auto"
    keywords = {
        "background": background,
        "n_permutations": 3,
        "_forward_path": path,
        "seed": 3,
        "tol": 1e-9,
    }
    reference = aefi.ShapleyImportance(model, X, **keywords).run()
    for batch_size in (1, 70, 10**9):
        other = aefi.ShapleyImportance(model, X, batch_size=batch_size, **keywords).run()
        np.testing.assert_array_equal(other.importances, reference.importances)
        np.testing.assert_array_equal(other.extras["se"], reference.extras["se"])


def test_pause_and_resume_anywhere_give_the_same_numbers(monkeypatch, tmp_path):
    monkeypatch.setattr(shapley_module, "_TARGET_CHUNK_SECONDS", 0.0)  # a snapshot per step
    X = correlated_data(12, 4, seed=9)
    model = _float32_ae(4)
    keywords = {"background": 8, "n_permutations": 3, "batch_size": 160, "seed": 11, "tol": 1e-9}
    reference = aefi.ShapleyImportance(model, X, **keywords).run()
    snapshots = list(aefi.ShapleyImportance(model, X, **keywords).increments())
    assert len(snapshots) > 20  # mid-walk and batch-boundary snapshots
    for stop in (0, 6, len(snapshots) // 2, len(snapshots) - 2):
        resumed = aefi.ShapleyImportance(model, X, **keywords).run(resume=snapshots[stop])
        np.testing.assert_array_equal(resumed.importances, reference.importances)
        np.testing.assert_array_equal(resumed.extras["se"], reference.extras["se"])
    # Through a checkpoint file, after stopping part way.
    path = tmp_path / "run.npz"
    engine = aefi.ShapleyImportance(model, X, checkpoint=path, checkpoint_every=0, **keywords)
    for k, _ in enumerate(engine.increments()):
        if k == 13:
            break
    resumed = aefi.ShapleyImportance(model, X, checkpoint=path, **keywords).run()
    np.testing.assert_array_equal(resumed.importances, reference.importances)
    # A larger n_permutations continues the same run.
    more = aefi.ShapleyImportance(model, X, **{**keywords, "n_permutations": 4})
    np.testing.assert_array_equal(more.run(resume=reference).importances[:, :3],
                                  reference.importances)  # fmt: skip


def test_a_resume_from_another_run_is_refused():
    X = correlated_data(20, 5, seed=9)
    model = _float32_ae(5)
    done = aefi.ShapleyImportance(model, X, background=8, n_permutations=2).run()
    with pytest.raises(ValueError, match="belongs to another run"):
        aefi.ShapleyImportance(model, X, background=8, n_permutations=2, seed=1).run(resume=done)
    permutation = aefi.permutation_importance(model, X, n_repeats=1)
    with pytest.raises(ValueError, match="permutation"):
        aefi.ShapleyImportance(model, X, background=8).run(resume=permutation)


def test_convergence_stops_the_run_and_is_recorded():
    X = correlated_data(64, 6, seed=10)
    result = aefi.shapley_importance(_float32_ae(6), X, background=16, tol=0.05)
    settings = result.settings
    assert settings["converged"] is True
    assert settings["convergence_ratio"] < 0.05
    R = result.importances.shape[1]
    assert R == settings["permutations_done"] >= 2 and result.complete
    se = result.extras["se"]
    values = result.importances_mean.to_numpy()
    assert se.max() / (values.max() - values.min()) == pytest.approx(settings["convergence_ratio"])
    tighter = aefi.ShapleyImportance(_float32_ae(6), X, background=16, tol=0.01).run(resume=result)
    assert tighter.importances.shape[1] > R
    np.testing.assert_array_equal(tighter.importances[:, :R], result.importances)


def test_result_labels_groups_save_and_load(tmp_path):
    X = pd.DataFrame(correlated_data(30, 6, seed=11), columns=[f"g{j}" for j in range(6)])
    background = X.iloc[:7]
    result = aefi.shapley_importance(_float32_ae(6), X, background=background,
                                     groups={"pair": ["g1", "g2"]}, n_permutations=3)  # fmt: skip
    assert result.method == "shapley"
    assert result.labels == {"title": "Shapley values of the loss (SAGE)",
                             "value": "Δ loss (mse)", "axis": "permutation"}  # fmt: skip
    assert result.feature_names == ("g0", "pair", "g3", "g4", "g5")
    assert result.groups == {"pair": ("g1", "g2")}
    assert result.settings["background"] == "given" and result.settings["background_rows"] == 7
    loaded = aefi.ImportanceResult.load(result.save(tmp_path / "shapley"))
    assert loaded == result
    np.testing.assert_array_equal(loaded.extras["se"], result.extras["se"])
    assert list(result.summary().columns[:2]) == ["mean", "std"]


def test_groups_auto_joins_correlated_columns():
    rng = np.random.default_rng(12)
    base = rng.normal(size=(50, 1))
    X = np.hstack([base + 0.01 * rng.normal(size=(50, 3)), rng.normal(size=(50, 3))])
    engine = aefi.ShapleyImportance(_float32_ae(6), X, groups="auto", n_permutations=2)
    assert len(engine.units) == 4
    assert [len(u.columns) for u in engine.units] == [3, 1, 1, 1]
    assert engine.run().importances.shape == (4, 2)


def test_a_job_runs_the_method():
    X = correlated_data(20, 5, seed=13)
    engine = aefi.ShapleyImportance(_float32_ae(5), X, n_permutations=3, tol=1e-9)
    job = aefi.Job(engine).start()
    job.wait(60)
    assert job.status == "done"
    assert job.snapshot().importances.shape == (5, 3)


def test_a_run_resumed_from_a_finished_state_reports_what_the_run_did(tmp_path):
    # Issue 21, item 3: nothing is left to compute, and the result still carries v(all) and
    # v(empty) as the computing run reported them (it returned baseline_error=NaN without
    # settings["loss_empty"]).
    X = correlated_data(40, 5, seed=12)
    keywords = {"background": 8, "seed": 2}
    done = aefi.ShapleyImportance(_float32_ae(5), X, n_permutations=3, **keywords).run()
    converged = aefi.ShapleyImportance(_float32_ae(5), X, tol=0.5, **keywords).run()
    assert converged.settings["converged"] and math.isfinite(done.baseline_error)
    saved = aefi.ImportanceResult.load(done.save(tmp_path / "done.npz"))
    cases = [(done, 3, done), (saved, 3, done), (converged, 50, converged)]
    for resume, cap, reference in cases:
        again = aefi.ShapleyImportance(
            _float32_ae(5), X, n_permutations=cap, tol=reference.settings["tol"], **keywords
        )
        result = again.run(resume=resume)
        assert result.baseline_error == reference.baseline_error
        assert result.settings["loss_empty"] == reference.settings["loss_empty"] is not None
        np.testing.assert_array_equal(result.importances, reference.importances)
        np.testing.assert_array_equal(result.extras["se"], reference.extras["se"])
        assert result.complete


def test_a_cap_whose_estimates_cannot_fit_memory_is_refused_at_construction():
    # Issue 21, item 7: n_permutations=10**9 used to fail inside numpy with MemoryError.
    model = _Counting(_float32_ae(6))
    with pytest.raises(ValueError, match=r"n_permutations=1,000,000,000 for 6 features .* GiB"):
        aefi.ShapleyImportance(model, correlated_data(30, 6), n_permutations=10**9)
    assert model.calls == 0


def test_the_first_column_streams_an_interim_estimate_that_covers_the_exact_values(monkeypatch):
    # Issue 23, item 3: values with an interval before a whole ordering per sample is done, with
    # the settings' keys fixed from the first snapshot. X's rows are sorted: the samples walked
    # first are a shuffle of all of them, so their mean is not biased by X's row order.
    from aefi_widget.widget.payload import decode_summary, encode_result

    monkeypatch.setattr(shapley_module, "_TARGET_CHUNK_SECONDS", 0.0)  # a snapshot per step
    X = correlated_data(60, 5, seed=21)
    X = X[np.argsort(X[:, 0])]
    background = X[::12].copy()
    exact, _ = exact_shapley(_float32_ae(5).double(), X, background, [[j] for j in range(5)])
    engine = aefi.ShapleyImportance(_float32_ae(5), X, background=background, n_permutations=3,
                                    seed=4, tol=1e-9, batch_size=8 * 16 * 2)  # fmt: skip
    snapshots = [engine.empty_result(), *engine.increments()]
    keys = set(snapshots[0].settings)
    assert all(set(s.settings) == keys for s in snapshots)
    shown = [s for s in snapshots if "interim" in s.extras]
    first = shown[0]
    assert first.settings["permutations_done"] == 0 and first.settings["samples_walked"] == 24
    assert np.isnan(first.importances).all()  # the estimates proper: finished columns only
    covered = []
    for snapshot in shown:
        mean, se, half, walked = snapshot.extras["interim"]
        assert np.all(se > 0) and np.all(half > 1.9 * se)
        covered.append(np.abs(mean - exact) <= half)
        done = snapshot.settings["permutations_done"]
        assert walked[0] == done + snapshot.settings["samples_walked"] / 60
        rows = decode_summary(encode_result(snapshot, top_n=5).summary, 5)
        np.testing.assert_allclose(rows["mean"], mean, rtol=1e-6)
        np.testing.assert_allclose(rows["ci_high"] - rows["ci_low"], 2 * half, rtol=1e-5)
        np.testing.assert_allclose(rows["n_done"], walked, rtol=1e-6)
    assert np.mean(covered) >= 0.9
    assert {s.settings["permutations_done"] for s in shown} == {0, 1}
    final = snapshots[-1]
    assert "interim" not in final.extras and final.importances.shape == (5, 3)
    # The same numbers with one call per step (batches only change which walks share a call).
    other = aefi.ShapleyImportance(_float32_ae(5), X, background=background, n_permutations=3,
                                   seed=4, tol=1e-9, batch_size=10**6).run()  # fmt: skip
    np.testing.assert_array_equal(other.importances, final.importances)


# ---------------------------------------------------------------------------- input checks
class _Counting:
    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, x):
        self.calls += 1
        return self.model(x)


@pytest.mark.parametrize(
    ("keywords", "error", "match"),
    [
        ({"background": np.zeros((4, 5))}, ValueError, r"shape \(rows, 6\)"),
        ({"background": np.full((4, 6), np.nan)}, ValueError, "NaN"),
        (
            {"background": pd.DataFrame(np.zeros((4, 6)), columns=list("abcdef"))},
            ValueError,
            "X's columns",
        ),
        ({"background": 0}, ValueError, "background must be >= 1"),
        ({"background": 10**6}, ValueError, "background must be >= 1 and <= 30"),
        ({"background": "rows"}, TypeError, "background must be None"),
        ({"tol": 0}, ValueError, "tol must be a positive"),
        ({"tol": -0.1}, ValueError, "tol must be a positive"),
        ({"n_permutations": 0}, ValueError, "n_permutations must be >= 1"),
        ({"n_permutations": -3}, ValueError, "n_permutations must be >= 1"),
        ({"n_permutations": "many"}, TypeError, "n_permutations must be an integer, 'all'"),
        ({"n_permutations": 2.5}, TypeError, "n_permutations must be an integer"),
        ({"antithetic": "yes"}, TypeError, "antithetic"),
        ({"groups": "everything"}, ValueError, "groups must be"),
        ({"metric": "huber"}, ValueError, "unknown metric"),
    ],
)
def test_bad_input_fails_before_any_model_call(keywords, error, match):
    model = _Counting(_float32_ae(6))
    with pytest.raises(error, match=match):
        aefi.ShapleyImportance(model, correlated_data(30, 6), **keywords)
    assert model.calls == 0


def test_all_orderings_need_few_units():
    X = correlated_data(20, 9)
    with pytest.raises(ValueError, match="up to 8 units"):
        aefi.ShapleyImportance(_Counting(_float32_ae(9)), X, n_permutations="all")


# ---------------------------------------------------------------------------- sage-importance
def test_agrees_with_sage_importance():
    sage = pytest.importorskip("sage")
    X = correlated_data(48, 5, seed=14).astype(np.float32)
    model = _float32_ae(5, seed=3)
    background = X[:12]

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(x, dtype=torch.float32)).numpy()

    estimator = sage.PermutationEstimator(sage.MarginalImputer(predict, background), "mse",
                                          random_state=0)  # fmt: skip
    theirs = estimator(X, X, batch_size=256, thresh=0.02, bar=False)
    ours = aefi.shapley_importance(model, X, background=background, tol=0.01)
    d = X.shape[1]  # sage's "mse" sums over outputs, ours averages
    difference = ours.importances_mean.to_numpy() * d - theirs.values
    se = np.hypot(ours.extras["se"] * d, theirs.std)
    assert np.all(np.abs(difference) <= 4 * se), difference / se


def test_benchmark_script_runs_on_a_tiny_problem(capsys):
    pytest.importorskip("sage")
    bench = load_benchmark("bench_shapley")
    threads = torch.get_num_threads()
    try:
        rows = bench.main(["--d", "6", "--n", "24", "--epochs", "1", "--tol", "0.1",
                           "--design-columns", "2", "--big-d", "24", "--big-walks", "2",
                           "--big-steps", "2"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert rows[0]["aefi_columns"] >= 2 and rows[0]["sage_orderings"] > 0
    for text in ("Time to convergence", "Estimator design", "Seconds per ordering", "rank1"):
        assert text in out


def test_peers_benchmark_runs_on_a_tiny_problem(capsys):
    pytest.importorskip("shapiq")
    bench = load_benchmark("bench_shapley_peers")
    threads = torch.get_num_threads()
    try:
        results = bench.main(["--d", "5", "--n", "8", "--background", "4", "--columns", "2",
                              "--seeds", "2", "--epochs", "1"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    table = results[5, 2]
    assert {"aefi", "KernelSHAP"} <= set(table) and table["aefi"]["rmse"] > 0
    assert "the best peer" in capsys.readouterr().out
