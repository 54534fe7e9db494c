"""Hypothesis fuzz of the public API: a valid result or a ValueError/TypeError, nothing else.

~200 examples by default; set AEFI_FUZZ_EXAMPLES for more (e.g. AEFI_FUZZ_EXAMPLES=5000).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reference import TinyVAE, cube_metric, sequential_ae

import aefi_widget as aefi

EXAMPLES = int(os.environ.get("AEFI_FUZZ_EXAMPLES", "200"))
DTYPES = ["float64", "float32", "float16", "int64", "int32", "uint8", "bool"]
# Each knob is mostly valid, so that a good share of examples runs the whole engine.
MODELS = ["seq32"] * 4 + ["seq64"] * 3 + ["seq16", "identity", "identity", "vae", "vae"]
MODELS += ["wrong_shape", "raises", "nan_out"]
METRICS = ["mse", "mse", "mae", "rmse_pct", "custom", "bogus"]


def _mostly(valid, invalid):
    """A strategy drawing from ``valid`` about 9 times in 10."""
    return st.integers(0, 9).flatmap(lambda i: invalid if i == 9 else valid)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Thousands of tiny forward calls: thread synchronisation would dominate the run time.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(kind: str, d: int):
    if kind == "seq32":
        return sequential_ae(d, hidden=3, dtype=torch.float32)
    if kind == "seq64":
        return sequential_ae(d, hidden=3, dtype=torch.float64)
    if kind == "seq16":
        return sequential_ae(d, hidden=3, dtype=torch.float16)
    if kind == "vae":
        return TinyVAE(d, dtype=torch.float32)
    if kind == "wrong_shape":
        return lambda x: x[:, :1] if x.shape[1] > 1 else x[:1]
    if kind == "raises":
        return lambda x: (_ for _ in ()).throw(RuntimeError("model failed"))
    if kind == "nan_out":
        return lambda x: x * float("nan")
    return lambda x: x


def _X(draw, n: int, d: int, ndim: int, dtype: str, container: str):
    shape = {1: (n,), 2: (n, d), 3: (n, d, 2)}[ndim]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 1e-3, 1e4, 1e300]))
    values = rng.normal(size=shape) * scale
    if dtype == "bool":
        values = values > 0
    elif dtype in ("int64", "int32", "uint8"):
        values = np.clip(np.abs(values), 0, 200).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            values = values.astype(dtype)
        for _ in range(draw(st.sampled_from([0] * 8 + [1, 2]))):
            if values.size:
                flat = draw(st.integers(0, values.size - 1))
                values.flat[flat] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if container == "tensor":
        return torch.from_numpy(np.ascontiguousarray(values))
    if container == "frame" and ndim == 2:
        return pd.DataFrame(values, columns=[f"c{j}" for j in range(d)])
    return values


@st.composite
def calls(draw):
    n = draw(_mostly(st.integers(2, 9), st.integers(0, 1)))
    d = draw(st.integers(1, 5))
    ndim = draw(_mostly(st.just(2), st.sampled_from([1, 3])))
    container = draw(st.sampled_from(["ndarray", "tensor", "frame"]))
    X = _X(draw, n, d, ndim, draw(st.sampled_from(DTYPES)), container)
    names = [f"c{j}" for j in range(d)] if container == "frame" else [f"x{j}" for j in range(d)]
    member = st.one_of(st.sampled_from(names), st.integers(-1, d), st.just("nope"))
    valid_groups = st.dictionaries(
        st.sampled_from(["g1", "g2"]),
        st.lists(
            st.sampled_from(names) | st.integers(0, d - 1),
            min_size=1,
            max_size=2,
            unique_by=lambda m: m if isinstance(m, int) else names.index(m),
        ),
        max_size=1,
    )
    any_groups = st.dictionaries(
        st.sampled_from(["g1", "g2", "x0"]), st.lists(member, max_size=3), max_size=2
    )
    groups = draw(st.none() | _mostly(valid_groups, any_groups))
    max_samples = draw(
        st.none()
        | _mostly(st.integers(2, max(2, n)), st.integers(-1, n + 2))
        | _mostly(st.floats(0.3, 1.0), st.floats(-0.5, 1.5, allow_nan=False))
    )
    metric = draw(st.sampled_from(METRICS))
    keywords = {
        "n_repeats": draw(_mostly(st.integers(1, 3), st.sampled_from([0, -1, 1.5]))),
        "metric": cube_metric if metric == "custom" else metric,
        "target": draw(_mostly(st.sampled_from(["original", "permuted"]), st.just("other"))),
        "groups": groups,
        "max_samples": max_samples,
        "seed": draw(_mostly(st.integers(-(2**63), 2**64 - 1), st.integers() | st.none())),
        "batch_size": draw(st.none() | _mostly(st.integers(1, 40), st.integers(-1, 0))),
        "per_output": draw(st.sampled_from([True, False, "always"])),
    }
    if draw(st.booleans()) and container != "frame":
        wrong = [names[:-1], [*names[:-1], names[0]]]
        keywords["feature_names"] = draw(_mostly(st.just(names), st.sampled_from(wrong)))
    return _model(draw(st.sampled_from(MODELS)), d), X, keywords


def _check_valid(result: aefi.ImportanceResult, X, keywords) -> None:
    F, R = result.n_features, keywords["n_repeats"]
    assert result.importances.shape == (F, R)
    assert result.complete and result.rounds_done == R
    assert np.isfinite(result.importances).all(), result.importances
    assert np.isfinite(result.baseline_error)
    assert len(set(result.feature_names)) == F
    d = len(result.output_names)
    assert d == X.shape[1]
    if keywords["per_output"]:
        assert result.delta_recon.shape == (F, d)
        assert np.isfinite(result.delta_recon.to_numpy()).all()
    else:
        assert result.delta_recon is None
    summary = result.summary()
    assert not summary["mean"].isna().any()
    assert result.evaluations_done == result.evaluations_total


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(calls())
def test_public_api_returns_a_valid_result_or_a_clear_error(call):
    model, X, keywords = call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = aefi.permutation_importance(model, X, **keywords)
        except (ValueError, TypeError) as error:
            assert str(error).strip(), f"{type(error).__name__} without a message"
            event(f"refused: {type(error).__name__}: {str(error)[:30]}")
            return
    event("valid result")
    _check_valid(result, X, keywords)
