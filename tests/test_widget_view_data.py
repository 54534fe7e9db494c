"""Kernel-side aggregates of the compare, outputs and latent views (widget/view_data.py) against
independent references: scipy.stats.spearmanr on the means, top-k sets by sorting, plain-loop
column unions; sizes at 20,000 features; real permutation and latent runs on tiny autoencoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference import correlated_data, sequential_ae
from scipy.stats import spearmanr

import aefi_widget as aefi
from aefi_widget.result import ImportanceResult
from aefi_widget.widget.view_data import compare_table, latent_map, latent_top, output_map


def _result(importances, outputs=3, delta=None, extras=None, names=None) -> ImportanceResult:
    importances = np.asarray(importances, dtype=np.float64)
    F = importances.shape[0]
    return ImportanceResult(
        feature_names=names or [f"f{i}" for i in range(F)],
        output_names=[f"z{i}" for i in range(outputs)],
        importances=importances,
        baseline_error=0.5,
        delta_sum=delta,
        extras=extras,
    )


def _random_results(F: int, keys: str, seed: int = 0, R: int = 3) -> dict[str, ImportanceResult]:
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(F, 1))  # correlated methods, so rho and overlap are not trivial
    return {key: _result(shared + rng.normal(scale=0.7, size=(F, R))) for key in keys}


def _top_set(mean: np.ndarray, usable: np.ndarray, k: int) -> set[int]:
    """Brute force: the k largest means among usable units, ties by index."""
    candidates = sorted((i for i in range(len(mean)) if usable[i]), key=lambda i: (-mean[i], i))
    return set(candidates[:k])


def _points(buffer: bytes, F: int) -> np.ndarray:
    return np.frombuffer(buffer, dtype="<f4").reshape(2, F)


# ---------------------------------------------------------------------------- compare_table
@pytest.mark.parametrize("k", [1, 5, 12, 40])
def test_compare_rho_is_spearmanr_and_overlap_is_top_k_set_intersection(k):
    results = _random_results(40, "abcd")
    # Ties in the means: the ranking's tie rule (by index) decides the top-k sets.
    tied = results["a"].importances.copy()
    tied[5:9] = tied[4]
    results["a"] = _result(tied)
    names = results["a"].feature_names
    compare, points = compare_table(results, {"a": "A"}, k, None, None, names)
    assert compare["keys"] == list("abcd")
    assert compare["titles"] == ["A"] + ["Permutation importance"] * 3
    assert compare["k"] == k and compare["note"] == ""
    means = {key: r.importances.mean(axis=1) for key, r in results.items()}
    everywhere = np.ones(40, dtype=bool)
    for i, a in enumerate("abcd"):
        for j, b in enumerate("abcd"):
            expected = spearmanr(means[a], means[b]).statistic
            assert compare["rho"][i][j] == pytest.approx(expected, abs=1e-12)
            top_a, top_b = _top_set(means[a], everywhere, k), _top_set(means[b], everywhere, k)
            assert compare["overlap"][i][j] == len(top_a & top_b)
    assert (compare["x"], compare["y"]) == ("a", "b")
    np.testing.assert_array_equal(_points(points, 40), np.float32([means["a"], means["b"]]))
    json.dumps(compare)  # plain JSON for the trait


def test_compare_partial_results_use_units_with_values_in_both():
    results = _random_results(30, "abc", seed=1)
    for key, missing in (("a", [0, 3, 7, 8]), ("b", [3, 20, 21])):
        values = results[key].importances.copy()
        values[missing] = np.nan
        results[key] = _result(values)
    names = results["a"].feature_names
    compare, points = compare_table(results, {}, 6, "b", "a", names)
    means = {key: r.importances_mean.to_numpy() for key, r in results.items()}
    for i, a in enumerate("abc"):
        for j, b in enumerate("abc"):
            both = ~np.isnan(means[a]) & ~np.isnan(means[b])
            expected = spearmanr(means[a][both], means[b][both]).statistic
            assert compare["rho"][i][j] == pytest.approx(expected, abs=1e-12)
            overlap = _top_set(means[a], both, 6) & _top_set(means[b], both, 6)
            assert compare["overlap"][i][j] == len(overlap)
    assert "a 26" in compare["note"] and "b 27" in compare["note"] and "c " not in compare["note"]
    assert "b vs a: 24 units in both" in compare["note"]
    xy = _points(points, 30)
    np.testing.assert_array_equal(np.isnan(xy), np.isnan(np.stack([means["b"], means["a"]])))


def test_compare_rho_is_none_when_undefined():
    F = 10
    few = np.full((F, 1), np.nan)
    few[:2, 0] = [1.0, 2.0]  # only 2 units with values
    constant = np.ones((F, 1))
    results = {"few": _result(few), "flat": _result(constant), "ok": _result(np.arange(F)[:, None])}
    compare, _ = compare_table(results, {}, 3, None, None, results["ok"].feature_names)
    rho = dict(zip(compare["keys"], compare["rho"], strict=True))
    assert rho["few"] == [None, None, None]
    assert rho["flat"] == [None, None, None]
    assert rho["ok"][2] == pytest.approx(1.0)
    # The 2 units of "few" rank 1, 0; "ok" ranks 9, 8, 7 first: among units 0 and 1, its top 2
    # are both, so the overlap over units in both is 2.
    assert compare["overlap"][0][2] == 2


def test_compare_skips_results_over_other_units_and_says_so():
    results = _random_results(8, "ab")
    results["grouped"] = _result(np.ones((3, 2)), names=["g0", "g1", "g2"])
    compare, _ = compare_table(results, {}, 50, None, None, results["a"].feature_names)
    assert compare["keys"] == ["a", "b"] and compare["k"] == 8  # k clamped to F
    assert "grouped" in compare["note"] and "other units" in compare["note"]
    none, empty = compare_table({"grouped": results["grouped"]}, {}, 5, None, None, ["f0"])
    assert none["keys"] == [] and none["x"] is None and empty == b""
    one, single = compare_table({"a": results["a"]}, {}, 5, None, None, results["a"].feature_names)
    assert one["x"] == one["y"] == "a" and len(single) == 2 * 8 * 4


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 2.5}, TypeError, "k must be an int"),
        ({"k": True}, TypeError, "k must be an int"),
        ({"x": "nope"}, ValueError, "x='nope' is not among the compared methods"),
        ({"y": "nope"}, ValueError, "y='nope'"),
        ({"results": {"a": "not a result"}}, TypeError, "results\\['a'\\] must be an Import"),
        ({"results": [1, 2]}, TypeError, "mappings"),
        ({"feature_names": "f0"}, TypeError, "sequence of unit names"),
    ],
)
def test_compare_bad_input_raises_clear_errors(arguments, error, match):
    results = _random_results(5, "ab")
    call = {"results": results, "titles": {}, "k": 3, "x": None, "y": None,
            "feature_names": results["a"].feature_names, **arguments}  # fmt: skip
    with pytest.raises(error, match=match):
        compare_table(**call)


# ---------------------------------------------------------------------------- heat maps
def _round_robin_columns(rows: np.ndarray, cap: int) -> list[int]:
    """Plain loops: round r adds each row's r-th largest |value| column (stable ties), <= cap."""
    ranked = [
        sorted(range(rows.shape[1]), key=lambda c, row=row: (-abs(row[c]), c)) for row in rows
    ]
    chosen: list[int] = []
    for position in range(rows.shape[1]):
        for ranking in ranked:
            if ranking[position] not in chosen and len(chosen) < cap:
                chosen.append(ranking[position])
    return chosen


def _decode(view: dict, buffer: bytes) -> np.ndarray:
    return np.frombuffer(buffer, dtype="<f4").reshape(len(view["rows"]), len(view["columns"]))


@pytest.mark.parametrize(("F", "d", "top_n"), [(100, 150, 50), (12, 7, 5), (3, 2, 20)])
def test_output_map_shows_the_top_units_and_the_outputs_they_move_most(F, d, top_n):
    rng = np.random.default_rng(F)
    result = _result(rng.random((F, 4)), outputs=d, delta=rng.random((F, d)) * 4)
    view, buffer = output_map(result, top_n)
    mean = result.importances.mean(axis=1)
    n_rows = min(top_n, 40, F)
    top = sorted(range(F), key=lambda i: (-mean[i], i))[:n_rows]
    assert sorted(view["rows"]) == sorted(top)  # the top units, reordered (a permutation)
    delta = result.delta_recon
    expected_columns = _round_robin_columns(delta.to_numpy()[top], 60)
    column_index = [result.output_names.index(c) for c in view["columns"]]
    assert view["column_indices"] == column_index  # where each shown column sits in the outputs
    assert sorted(column_index) == sorted(expected_columns)
    assert len(view["columns"]) == min(60, d)
    for row in top:  # every row's strongest output is shown
        assert result.output_names[int(np.argmax(delta.to_numpy()[row]))] in view["columns"]
    expected = delta.to_numpy()[np.ix_(view["rows"], column_index)].astype(np.float32)
    np.testing.assert_array_equal(_decode(view, buffer), expected)
    assert view["kind"] == "outputs" and view["column_axis"] == "output"
    assert output_map(result, top_n) == (view, buffer)  # deterministic
    json.dumps(view)


def test_heat_map_ordering_puts_blocks_together():
    """Two groups of units that move two disjoint sets of outputs, interleaved in the input:
    after ordering, each group's rows and columns are contiguous."""
    rng = np.random.default_rng(3)
    F, d = 10, 8
    delta = np.full((F, d), 0.01)
    odd_units, even_units = np.arange(1, F, 2), np.arange(0, F, 2)
    delta[np.ix_(odd_units, [0, 2, 4, 6])] = 1 + rng.random((5, 4))
    delta[np.ix_(even_units, [1, 3, 5, 7])] = 1 + rng.random((5, 4))
    result = _result(rng.random((F, 2)), outputs=d, delta=delta)
    view, _ = output_map(result, 20)
    row_parity = [r % 2 for r in view["rows"]]
    assert row_parity in ([0] * 5 + [1] * 5, [1] * 5 + [0] * 5)
    column_parity = [int(c[1:]) % 2 for c in view["columns"]]
    assert column_parity in ([0] * 4 + [1] * 4, [1] * 4 + [0] * 4)


def test_output_map_leaves_out_units_without_values_and_says_why_when_empty():
    values = np.arange(6.0)[:, None] * np.ones((1, 2))
    values[5] = np.nan  # the largest unit has not started
    result = _result(values, outputs=3, delta=np.ones((6, 3)))
    view, buffer = output_map(result, 3)
    assert sorted(view["rows"]) == [2, 3, 4] and "1 units without values" in view["note"]
    assert len(buffer) == 3 * 3 * 4
    bare = _result(values, outputs=3)
    view, buffer = output_map(bare, 3)
    assert view["rows"] == [] and buffer == b"" and "per_output" in view["note"]
    nothing = _result(np.full((4, 2), np.nan), outputs=3, delta=np.zeros((4, 3)))
    view, buffer = output_map(nothing, 3)
    assert view["rows"] == [] and buffer == b"" and "No unit" in view["note"]


def test_heat_map_bad_input_raises_clear_errors():
    result = _result(np.ones((4, 2)), delta=np.ones((4, 3)))
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        output_map(result, 0)
    with pytest.raises(TypeError, match="top_n must be an int"):
        latent_map(result, "5")
    with pytest.raises(TypeError, match="result must be an ImportanceResult"):
        output_map(result.importances, 5)
    wrong = _result(np.ones((4, 2)), outputs=3, extras={"latent_map": np.ones((4, 2))})
    with pytest.raises(ValueError, match=r"latent_map.*shape"):
        latent_map(wrong, 5)


def test_sizes_stay_under_200_kb_at_20000_features():
    F = 20_000
    rng = np.random.default_rng(0)
    keys = ("first_look", "permutation", "shapley", "gradient", "latent", "latent_mi", "weights")
    results = {key: _result(rng.random((F, 2))) for key in keys}
    compare, points = compare_table(results, {}, 20, None, None, results["weights"].feature_names)
    assert len(compare["keys"]) == 7 and len(points) == 2 * F * 4
    outputs = _result(rng.random((F, 2)), outputs=100, delta=rng.random((F, 100)))
    heatmap, values = output_map(outputs, 500)
    assert (len(heatmap["rows"]), len(heatmap["columns"])) == (40, 60)
    latent = _result(rng.random((F, 2)), outputs=200, extras={"latent_shift": rng.random((F, 200))})
    latent_view, latent_values = latent_map(latent, 500)
    assert len(latent_view["columns"]) == 60
    top = latent_top(latent, 199)
    total = sum(len(json.dumps(part).encode()) for part in (compare, heatmap, latent_view, top))
    total += len(points) + len(values) + len(latent_values)
    assert total < 200_000, total


# ---------------------------------------------------------------------------- real runs
def test_output_map_of_a_real_permutation_run_with_per_output():
    X = correlated_data(n=24, d=6)
    result = aefi.permutation_importance(sequential_ae(6), X, n_repeats=3, seed=0,
                                         per_output=True)  # fmt: skip
    view, buffer = output_map(result, 4)
    assert sorted(view["rows"]) == sorted(result.feature_names.index(n) for n in result.top(4))
    assert sorted(view["columns"]) == sorted(result.output_names)  # 6 outputs, all fit
    expected = result.delta_recon.loc[[result.feature_names[i] for i in view["rows"]],
                                      view["columns"]].to_numpy(np.float32)  # fmt: skip
    np.testing.assert_array_equal(_decode(view, buffer), expected)


@pytest.mark.parametrize(("method", "extra"), [("permutation", "latent_shift"),
                                               ("gradient", "latent_map")])  # fmt: skip
def test_latent_views_of_a_real_latent_run(method, extra):
    d = 8
    X = correlated_data(n=30, d=d)
    model = sequential_ae(d, hidden=6)  # bottleneck of 4 latent dimensions
    result = aefi.latent_importance(model, X, method=method, n_repeats=3, seed=0)
    matrix = result.extras[extra]
    assert matrix.shape == (d, 4)
    view, buffer = latent_map(result, 5)
    assert view["kind"] == "latent" and view["column_axis"] == "latent dimension"
    assert view["value_label"] == result.labels["value"]
    assert sorted(view["rows"]) == sorted(result.feature_names.index(n) for n in result.top(5))
    assert sorted(view["columns"]) == ["z0", "z1", "z2", "z3"]
    columns = [result.output_names.index(c) for c in view["columns"]]
    assert view["column_indices"] == columns
    expected = matrix[np.ix_(view["rows"], columns)].astype(np.float32)
    np.testing.assert_array_equal(_decode(view, buffer), expected)
    for dimension in range(4):
        top = latent_top(result, dimension, n=3)
        brute = sorted(range(d), key=lambda i: (-matrix[i, dimension], i))[:3]
        assert top["dimension"] == dimension and top["name"] == f"z{dimension}"
        assert top["features"] == [[i, pytest.approx(matrix[i, dimension])] for i in brute]
    assert len(latent_top(result, 0)["features"]) == d  # n=20 > d: all units
    for bad in (-1, 4, 1.5, True, "0"):
        with pytest.raises(ValueError, match=r"dimension must be an int in \[0, 4\)"):
            latent_top(result, bad)


def test_latent_views_of_a_result_without_latent_dimensions():
    result = _result(np.ones((4, 2)), delta=np.ones((4, 3)))
    view, buffer = latent_map(result, 5)
    assert view["rows"] == [] and buffer == b"" and "latent" in view["note"]
    with pytest.raises(ValueError, match="no latent dimensions"):
        latent_top(result, 0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        latent_top(result, 0, n=0)
