"""ImportanceResult: summary statistics, tidy frames, save/load, immutability, partial results."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from reference import correlated_data, sequential_ae

import aefi_widget as aefi
from aefi_widget.result import ImportanceResult, ResumeState

try:
    from scipy.stats import t as student_t

    def t975(df: int) -> float:
        return float(student_t.ppf(0.975, df))
except ImportError:  # pragma: no cover - scipy is optional
    _TABLE = {1: 12.7062047, 2: 4.3026527, 4: 2.7764451, 9: 2.2621572, 39: 2.0226909}

    def t975(df: int) -> float:
        return _TABLE[df]


NAMES = ("a", "b", "c", "d", "e")


def _result(importances, delta=True, **keywords) -> ImportanceResult:
    importances = np.asarray(importances, dtype=np.float64)
    F = importances.shape[0]
    names = NAMES[:F]
    rng = np.random.default_rng(0)
    fields = {
        "feature_names": names,
        "output_names": ("o1", "o2", "o3"),
        "importances": importances,
        "baseline_error": 0.5,
        "delta_sum": rng.random((F, 3)) if delta else None,
        "settings": {"metric": "mse", "seed": 3, "max_samples": None, "nested": {"k": [1, 2]}},
        "groups": {"e": ("x7", "x8")} if F == 5 else {},
        "evaluations_done": 7,
        "evaluations_total": 10,
        "elapsed_s": 1.25,
    }
    fields.update(keywords)
    return ImportanceResult(**fields)


def _random_complete(F: int = 5, R: int = 10) -> ImportanceResult:
    rng = np.random.default_rng(42)
    values = rng.normal(loc=[[0.5], [-0.2], [0.1], [2.0], [0.0]][:F], scale=0.3, size=(F, R))
    return _result(values)


@pytest.mark.parametrize("R", [2, 3, 5, 10, 40])
def test_summary_matches_numpy_and_student_t(R):
    result = _random_complete(R=R)
    values = result.importances
    summary = result.summary()
    assert list(summary.columns) == [
        "mean",
        "std",
        "ci_low",
        "ci_high",
        "normalized",
        "rank",
        "n_done",
    ]
    assert summary.index.name == "feature"
    table = summary.loc[list(NAMES)]
    mean, std = values.mean(axis=1), values.std(axis=1, ddof=1)
    np.testing.assert_allclose(table["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(table["std"], std, rtol=1e-12)
    half = t975(R - 1) * std / np.sqrt(R)
    np.testing.assert_allclose(table["ci_low"], mean - half, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(table["ci_high"], mean + half, rtol=1e-6, atol=1e-12)
    positive = np.clip(mean, 0, None)
    np.testing.assert_allclose(table["normalized"], positive / positive.sum(), rtol=1e-12)
    assert table["normalized"].sum() == pytest.approx(1.0)
    assert (table.loc[mean <= 0, "normalized"] == 0).all()
    expected_rank = (-mean).argsort(kind="stable").argsort() + 1
    np.testing.assert_array_equal(table["rank"], expected_rank)
    assert list(summary["rank"]) == list(range(1, 6))  # sorted by rank
    assert (table["n_done"] == R).all()
    pd.testing.assert_series_equal(
        result.importances_mean,
        pd.Series(mean, index=summary.loc[list(NAMES)].index, name="importances_mean"),
    )
    np.testing.assert_allclose(result.importances_std.to_numpy(), std, rtol=1e-12)
    assert result.top(2) == ["d", "a"]


def test_t_quantiles_beyond_the_table():
    from aefi_widget._stats import t_quantile_975

    for df in (1, 2, 10, 30, 31, 45, 100, 1000):
        assert t_quantile_975(df) == pytest.approx(t975(df), rel=1e-5)


def test_summary_single_repeat_ties_and_all_negative():
    one = _result([[0.3], [0.3], [-0.1], [0.0], [0.7]])
    summary = one.summary()
    assert (summary["ci_low"] == summary["mean"]).all() and summary["std"].isna().all()
    assert list(summary.index) == ["e", "a", "b", "d", "c"]  # ties broken by column order
    negative = _result([[-0.3, -0.2], [-0.1, -0.4]]).summary()
    assert (negative["normalized"] == 0).all()


def test_partial_result_counts_and_views():
    nan = np.nan
    values = [[1.0, 2.0, nan], [0.5, nan, nan], [nan, nan, nan], [3.0, 1.0, 2.0], [0.1, 0.2, nan]]
    result = _result(values)
    assert list(result.n_done) == [2, 1, 0, 3, 2]
    assert result.n_done.index.tolist() == list(NAMES)
    assert result.rounds_done == 0 and not result.complete
    assert result.progress == pytest.approx(0.7)
    np.testing.assert_allclose(result.importances_mean.to_numpy(), [1.5, 0.5, nan, 2.0, 0.15])
    assert np.isnan(result.importances_std["b"]) and np.isnan(result.importances_std["c"])
    summary = result.summary()
    assert summary.index[-1] == "c" and summary.loc["c"].drop("rank").drop("n_done").isna().all()
    assert summary.loc["b", "ci_low"] == summary.loc["b", "ci_high"] == 0.5
    expected_delta = result.delta_sum / np.array([2, 1, np.nan, 3, 2])[:, None]
    np.testing.assert_allclose(result.delta_recon.to_numpy(), expected_delta)
    assert result.delta_recon.loc["c"].isna().all()
    frame = result.to_frame()
    assert list(frame.columns) == ["feature", "repeat", "delta_error"]
    assert len(frame) == 8
    assert frame[frame.feature == "a"].repeat.tolist() == [0, 1]
    np.testing.assert_array_equal(
        frame.delta_error, np.asarray(values)[~np.isnan(np.asarray(values))]
    )
    full = _result(np.ones((5, 3)))
    assert full.complete and full.rounds_done == 3


def test_arrays_are_read_only_and_the_snapshot_frozen():
    result = _random_complete()
    for array in (result.importances, result.delta_sum):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.baseline_error = 1.0
    with pytest.raises(ValueError, match="shape"):
        _result(np.ones((4, 2)), feature_names=NAMES)
    with pytest.raises(ValueError, match="delta_sum"):
        _result(np.ones((5, 2)), delta_sum=np.ones((5, 2)))


def _assert_round_trip(result: ImportanceResult, loaded: ImportanceResult) -> None:
    assert loaded == result
    np.testing.assert_array_equal(loaded.importances, result.importances)
    if result.delta_sum is None:
        assert loaded.delta_sum is None
    else:
        np.testing.assert_array_equal(loaded.delta_sum, result.delta_sum)
    assert loaded.feature_names == result.feature_names
    assert loaded.output_names == result.output_names
    assert loaded.settings == result.settings and loaded.groups == result.groups
    assert loaded.baseline_error == result.baseline_error
    assert (loaded.evaluations_done, loaded.evaluations_total, loaded.elapsed_s) == (
        result.evaluations_done,
        result.evaluations_total,
        result.elapsed_s,
    )
    if result.resume is None:
        assert loaded.resume is None
        return
    assert loaded.resume == result.resume
    assert loaded.resume.position == result.resume.position
    assert loaded.resume.identity == result.resume.identity
    for name, array in result.resume.arrays.items():
        np.testing.assert_array_equal(loaded.resume.arrays[name], array)
    assert loaded.resume.arrays.keys() == result.resume.arrays.keys()
    assert not loaded.importances.flags.writeable


def test_save_load_round_trip(tmp_path):
    partial = _result(
        [[1.0, np.nan], [2.0, 3.0], [np.nan, np.nan], [0.5, 0.25], [-1.0, np.nan]],
        resume=ResumeState(
            "permutation",
            {"round": 1, "chunk": 3, "batch_rows": 17, "partial_error_sum": 0.125},
            {"partial_delta_sum": np.array([0.5, 1.5, -2.0])},
            {"model": "m", "data": "d"},
        ),
    )
    path = partial.save(tmp_path / "partial")
    assert path.suffix == ".npz" and path.exists()
    _assert_round_trip(partial, ImportanceResult.load(path))
    plain = _result(
        np.ones((3, 2)),
        delta=False,
        resume=ResumeState("permutation", {"round": 2, "chunk": 0, "batch_rows": 5}),
    )
    _assert_round_trip(plain, ImportanceResult.load(plain.save(tmp_path / "sub" / "x.npz")))
    # No pickle anywhere in the file.
    with np.load(path, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)


def test_engine_result_round_trip(tmp_path):
    model = sequential_ae(5, dtype=torch.float32)
    pi = aefi.PermutationImportance(
        model, correlated_data(20, 5), n_repeats=2, batch_size=7, groups={"g": ["x1", "x3"]}
    )
    snapshots = list(pi.increments())
    for snapshot in (snapshots[1], snapshots[-1]):
        loaded = ImportanceResult.load(snapshot.save(tmp_path / "run.npz"))
        _assert_round_trip(snapshot, loaded)
        assert loaded.summary().equals(snapshot.summary())


def test_engine_result_with_numpy_max_samples_can_be_saved(tmp_path):
    result = aefi.permutation_importance(
        sequential_ae(5), correlated_data(20, 5), n_repeats=1, max_samples=np.int64(10)
    )
    loaded = ImportanceResult.load(result.save(tmp_path / "r.npz"))
    assert loaded.settings["samples_per_repeat"] == 10


def test_results_compare_equal_without_raising(tmp_path):
    result = _random_complete()
    loaded = ImportanceResult.load(result.save(tmp_path / "r.npz"))
    assert loaded == result
    assert loaded != _result(np.zeros((5, 10)))


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def test_load_refuses_truncated_and_corrupt_files(tmp_path):
    good = _random_complete().save(tmp_path / "good.npz")
    raw = good.read_bytes()
    bad_files = {
        "truncated": raw[: len(raw) // 2],
        "truncated_tail": raw[:-10],
        "garbage": b"not a zip file at all" * 10,
        "empty": b"",
        "flipped": raw[:60] + bytes(b ^ 0xFF for b in raw[60:400]) + raw[400:],
    }
    for name, data in bad_files.items():
        with pytest.raises(ValueError):
            ImportanceResult.load(_write_bytes(tmp_path / f"{name}.npz", data))
    arrays = _random_complete().to_arrays()
    header = json.loads(bytes(arrays["header"]).decode())
    variants = {
        "no_header": {k: v for k, v in arrays.items() if k != "header"},
        "other_format": {**arrays, "header": _json({**header, "format": "something else"})},
        "newer_version": {**arrays, "header": _json({**header, "version": 99})},
        "bad_json": {**arrays, "header": np.frombuffer(b"{not json", dtype=np.uint8)},
        "no_names": {
            **arrays,
            "header": _json({k: v for k, v in header.items() if k != "feature_names"}),
        },
        "wrong_shape": {**arrays, "importances": np.ones((2, 2))},
        "object_array": {**arrays, "importances": np.array([object()] * 3, dtype=object)},
    }
    for name, variant in variants.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **variant, allow_pickle=True) if name == "object_array" else np.savez(
            path, **variant
        )
        with pytest.raises(ValueError):
            ImportanceResult.load(path)
    with pytest.raises(FileNotFoundError):
        ImportanceResult.load(tmp_path / "missing.npz")


def _json(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


def test_empty_result_and_repr():
    model = sequential_ae(4, dtype=torch.float32)
    pi = aefi.PermutationImportance(model, correlated_data(10, 4), n_repeats=3)
    empty = pi.empty_result()
    assert np.isnan(empty.importances).all() and empty.importances.shape == (4, 3)
    assert (empty.n_done == 0).all() and empty.rounds_done == 0 and not empty.complete
    assert empty.to_frame().empty
    assert empty.summary()["mean"].isna().all()
    assert "0% done" in repr(empty)
    assert "complete" in repr(pi.run())
