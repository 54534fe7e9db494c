"""correlated_groups: average-linkage clusters of correlated features, as dense scipy finds them.

The reference clusters all features at once, the obvious way (every rho from scipy.stats, one
average linkage over the d x d distances), so it checks the component decomposition, the float32
screen and the blocking of the fast path.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from bench_scripts import load_benchmark
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from aefi_widget.engine.correlated_groups import correlated_groups

# import_module, not attribute access: the package may export the function under the same name.
module = importlib.import_module("aefi_widget.engine.correlated_groups")


def dense_reference(X: np.ndarray, threshold: float, method: str) -> list[list[int]]:
    """Column indices of each cluster of 2+: average linkage on all d features, rho from scipy."""
    rho = spearmanr(X).statistic if method == "spearman" else np.corrcoef(X, rowvar=False)
    distance = np.maximum(1.0 - np.abs(rho), 0.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - threshold + 1e-9, criterion="distance")
    clusters = [np.flatnonzero(labels == label).tolist() for label in np.unique(labels)]
    return sorted((c for c in clusters if len(c) > 1), key=lambda c: c[0])


def columns_of(groups: dict[str, list[str]]) -> list[list[int]]:
    """Groups of default-named features ("x12") as lists of column indices."""
    return [[int(name[1:]) for name in members] for members in groups.values()]


def planted_blocks(seed: int, n: int = 60, d: int = 60) -> np.ndarray:
    """(n, d): six latent factors, each measured by a random subset of columns, the rest noise.

    Loadings in [0.75, 1] put within-block correlations on both sides of 0.8; scales differ.
    """
    rng = np.random.default_rng(seed)
    block = rng.integers(-1, 6, d)  # -1: a column of pure noise
    loading = rng.uniform(0.75, 1.0, d)
    noise = rng.standard_normal((n, d))
    factors = rng.standard_normal((n, 6))
    measured = factors[:, block] * loading + np.sqrt(1.0 - loading**2) * noise
    return np.where(block >= 0, measured, noise) * rng.uniform(0.5, 3.0, d)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("seed", range(6))
def test_equals_dense_average_linkage_on_planted_blocks(seed: int, method: str) -> None:
    X = planted_blocks(seed)
    for threshold in (0.6, 0.8, 0.9):
        got = columns_of(correlated_groups(X, threshold=threshold, method=method))
        assert got == dense_reference(X, threshold, method)
    assert got, "the data should contain groups at 0.9"


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_small_blocks_fold_components_across_blocks(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny blocks: the screen runs in 8-column blocks and the distances in 2-row blocks.
    monkeypatch.setattr(module, "_BLOCK_ENTRIES", 500)
    for seed in range(3):
        X = planted_blocks(seed)
        got = columns_of(correlated_groups(X, threshold=0.7, method=method))
        assert got == dense_reference(X, 0.7, method)


def test_a_chain_is_split_by_average_linkage_where_single_linkage_joins_it() -> None:
    # Moving sums of 10 shocks: neighbours correlate 0.9, lag 2 0.8, lag 5 0.5.
    rng = np.random.default_rng(1)
    shocks = rng.standard_normal((400, 40))
    X = np.stack([shocks[:, k : k + 10].sum(axis=1) for k in range(30)], axis=1)
    rho = np.abs(spearmanr(X).statistic)
    n_components, _ = connected_components(rho >= 0.8, directed=False)
    got = columns_of(correlated_groups(X))
    assert n_components == 1 and len(got) > 1
    assert got == dense_reference(X, 0.8, "spearman")


def test_spearman_groups_monotone_copies_pearson_only_linear_ones() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(300)
    X = np.stack([x, np.exp(3 * x), rng.standard_normal(300), 2 * x + 1], axis=1)
    assert columns_of(correlated_groups(X, threshold=1.0)) == [[0, 1, 3]]
    assert columns_of(correlated_groups(X, threshold=1.0, method="pearson")) == [[0, 3]]
    assert columns_of(correlated_groups(X, threshold=0.8, method="pearson")) == [[0, 3]]


def test_threshold_one_groups_only_perfect_correlation() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 200))
    near = x + 1e-3 * rng.standard_normal(200)  # |rho| about 1 - 5e-7: not perfect
    X = np.stack([x, y, -x, near, 0.5 * x - 4, y.copy(), x**3], axis=1)
    assert columns_of(correlated_groups(X, threshold=1.0, method="pearson")) == [[0, 2, 4], [1, 5]]
    assert columns_of(correlated_groups(X, threshold=1.0)) == [[0, 2, 4, 6], [1, 5]]


@pytest.mark.parametrize("seed", range(3))
def test_pairs_a_hair_either_side_of_the_threshold_despite_float32_screening(seed: int) -> None:
    # x and y with Pearson rho = c to float64 accuracy; in float32 it comes out about 1e-7 off.
    rng = np.random.default_rng(seed)
    x, e = rng.standard_normal((2, 2000))
    x = (x - x.mean()) / np.linalg.norm(x - x.mean())
    e -= e.mean() + (e @ x) * x
    e /= np.linalg.norm(e)
    c = 0.8123456
    X = np.stack([x, c * x + np.sqrt(1 - c**2) * e, rng.standard_normal(2000)], axis=1)
    assert columns_of(correlated_groups(X, threshold=c - 1e-8, method="pearson")) == [[0, 1]]
    assert correlated_groups(X, threshold=c + 1e-8, method="pearson") == {}


def test_constant_columns_stay_singletons_without_nan_warnings() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(50)
    X = np.stack([np.full(50, 5.0), x, np.full(50, 0.1), 3 * x, np.full(50, 5.0)], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero spread, no NaN in the linkage
        for method in ("spearman", "pearson"):
            for threshold in (1.0, 0.5, 1e-6):
                assert columns_of(correlated_groups(X, threshold=threshold, method=method)) == [
                    [1, 3]
                ]
        assert correlated_groups(np.ones((10, 4))) == {}
        assert correlated_groups(x[:, None]) == {}


def test_a_tiny_threshold_joins_every_varying_feature() -> None:
    X = np.random.default_rng(6).standard_normal((30, 8))
    assert columns_of(correlated_groups(X, threshold=1e-6)) == [list(range(8))]


def test_groups_and_members_follow_column_order_and_names_follow_variance() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 100))
    scale = [1.0, 1.0, 5.0, 2.0, 1.0]
    X = pd.DataFrame(np.stack([b, a, a, b, rng.standard_normal(100)], axis=1) * scale,
                     columns=["CD74", "ACTB", "HLA-DRA", "B2M", "GAPDH"])  # fmt: skip
    groups = correlated_groups(X, threshold=1.0)
    assert list(groups.items()) == [
        ("B2M +1", ["CD74", "B2M"]),
        ("HLA-DRA +1", ["ACTB", "HLA-DRA"]),
    ]
    assert type(groups) is dict and all(type(m) is list for m in groups.values())
    # Equal variances: the first member in column order names the group.
    assert list(correlated_groups(np.stack([a, a, a], axis=1), threshold=1.0)) == ["x0 +2"]


def test_a_group_name_already_taken_by_a_feature_gets_a_numbered_suffix() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((2, 40))
    X = np.stack([a, a, b, rng.standard_normal(40), rng.standard_normal(40)], axis=1)
    names = ["g", "h", "z", "g +1", "g +1 (2)"]
    assert correlated_groups(X, threshold=1.0, feature_names=names) == {"g +1 (3)": ["g", "h"]}


def test_arrays_tensors_and_frames_give_the_same_groups() -> None:
    X = planted_blocks(9)
    names = [f"gene{j}" for j in range(X.shape[1])]
    expected = correlated_groups(X, feature_names=names)
    assert expected
    readonly = X.copy()
    readonly.flags.writeable = False
    for variant in (pd.DataFrame(X, columns=names), np.asfortranarray(X), readonly,
                    torch.from_numpy(X), torch.from_numpy(X).float().numpy()):  # fmt: skip
        names_given = None if isinstance(variant, pd.DataFrame) else names
        assert correlated_groups(variant, feature_names=names_given) == expected
    rounded = np.round(X * 1000).astype(np.int64)  # integers are cast, not refused
    assert correlated_groups(rounded) == correlated_groups(rounded.astype(np.float64))


def test_the_input_is_not_modified() -> None:
    X = planted_blocks(10)
    frame = pd.DataFrame(X.astype(np.float32), columns=[f"g{j}" for j in range(X.shape[1])])
    tensor = torch.from_numpy(X.copy())
    before = (X.copy(), frame.copy(), tensor.clone())
    for data in (X, frame, tensor):
        for method in ("spearman", "pearson"):
            correlated_groups(data, method=method)
    np.testing.assert_array_equal(X, before[0])
    pd.testing.assert_frame_equal(frame, before[1])
    assert torch.equal(tensor, before[2])


def test_a_component_too_large_to_cluster_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "_MAX_COMPONENT", 3)
    x = np.random.default_rng(11).standard_normal(20)
    with pytest.raises(ValueError, match=r"4 features are linked into one component.*threshold"):
        correlated_groups(np.stack([x, 2 * x, x + 1, -x], axis=1))


GOOD = np.random.default_rng(12).standard_normal((10, 3))
WITH_NAN = GOOD.copy()
WITH_NAN[2, 1] = np.nan
WITH_INF = GOOD.copy()
WITH_INF[0, 2] = -np.inf


@pytest.mark.parametrize(
    ("X", "keywords", "error", "match"),
    [
        (GOOD, {"threshold": 0.0}, ValueError, r"threshold must be in \(0, 1\].*got 0.0"),
        (GOOD, {"threshold": 1.5}, ValueError, r"threshold must be in \(0, 1\]"),
        (GOOD, {"threshold": -0.2}, ValueError, r"threshold must be in \(0, 1\]"),
        (GOOD, {"threshold": float("nan")}, ValueError, r"threshold must be in \(0, 1\]"),
        (GOOD, {"threshold": "0.8"}, TypeError, "threshold must be a number"),
        (GOOD, {"threshold": True}, TypeError, "threshold must be a number"),
        (GOOD, {"method": "spearmann"}, ValueError, "unknown method.*Did you mean 'spearman'"),
        (GOOD, {"method": "Pearson"}, ValueError, "Did you mean 'pearson'"),
        (GOOD, {"method": "kendall"}, ValueError, "unknown method 'kendall'"),
        (GOOD, {"method": None}, TypeError, "method must be one of"),
        (GOOD[:, 0], {}, ValueError, "must be 2-D"),
        (GOOD[None], {}, ValueError, "must be 2-D"),
        (GOOD.tolist(), {}, TypeError, "numpy.ndarray or pandas.DataFrame"),
        (GOOD[:2], {}, ValueError, "at least 3 samples.*got 2"),
        (torch.zeros(0, 3), {}, ValueError, "at least 3 samples.*got 0"),
        (GOOD[:, :0], {}, ValueError, "no feature columns"),
        (WITH_NAN, {}, ValueError, "NaN or infinite values in 1 column.*'x1'"),
        (WITH_INF, {}, ValueError, "NaN or infinite values in 1 column.*'x2'"),
        (GOOD.astype(complex), {}, TypeError, "complex"),
        (GOOD.astype(str), {}, TypeError, "not numeric"),
        (GOOD, {"feature_names": ["a", "b"]}, ValueError, "has 2 names but X has 3 columns"),
        (GOOD, {"feature_names": ["a", "b", "a"]}, ValueError, "unique; duplicated: 'a'"),
        (GOOD, {"feature_names": "abc"}, TypeError, "sequence of strings"),
        (pd.DataFrame(GOOD, columns=list("abc")), {"feature_names": list("xyz")}, ValueError,
         "disagree with the DataFrame"),
        (pd.DataFrame({"a": [1.0, 2, 3], "s": list("pqr")}), {}, TypeError, "non-numeric.*'s'"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_clear_message(X, keywords, error, match) -> None:
    with pytest.raises(error, match=match):
        correlated_groups(X, **keywords)


def test_the_benchmark_runs_on_a_tiny_problem() -> None:
    bench = load_benchmark("bench_groups")
    row = bench.measure(d=120, n=50, threshold=0.8, repeats=1, dense=True)
    assert row["groups"] > 0 and row["seconds"] > 0 and row["peak_gb"] > 0
    assert row["dense_same"]
