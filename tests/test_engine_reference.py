"""The engine equals an independent brute-force reference (tests/reference.py) on every path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from reference import (
    EncoderDecoderAE,
    SkipAE,
    TinyVAE,
    correlated_data,
    cube_metric,
    reference_importance,
    sequential_ae,
)
from torch import nn

import aefi_widget as aefi
from aefi_widget.engine.forward import FUSED_MIN_WIDTH
from aefi_widget.engine.fused import kernels_available

N, D = 24, 6
RTOL = 1e-5


def _data() -> np.ndarray:
    return correlated_data(N, D)


def _lambda_model(d: int = D):
    """A plain callable (no parameters; the engine computes in float32)."""
    weight = torch.from_numpy(np.random.default_rng(7).normal(size=(d, 3)) / 2)

    return lambda x: torch.tanh(x @ weight.to(x.dtype)) @ weight.to(x.dtype).T


# name -> (factory, engine keywords, expected forward path, engine computes in float64)
MODELS = {
    "sequential": (lambda: sequential_ae(D), {}, "rank1", True),
    "encoder_decoder": (lambda: EncoderDecoderAE(D), {}, "rank1", True),
    "sequential_forced_plain": (
        lambda: sequential_ae(D),
        {"_forward_path": "plain"},
        "plain",
        True,
    ),
    "lambda": (_lambda_model, {}, "plain", False),
    "vae_tuple": (lambda: TinyVAE(D), {}, "plain", True),
    "skip_connection": (lambda: SkipAE(D), {}, "plain", True),
    "sequential_float32": (lambda: sequential_ae(D, dtype=torch.float32), {}, "rank1", False),
    "encoder_decoder_float32": (
        lambda: EncoderDecoderAE(D, dtype=torch.float32),
        {},
        "rank1",
        False,
    ),
    "sequential_float32_fused": (
        lambda: sequential_ae(D, dtype=torch.float32),
        {"_forward_path": "fused"},
        "rank1",
        False,
    ),
    "encoder_decoder_float32_fused": (
        lambda: EncoderDecoderAE(D, dtype=torch.float32),
        {"_forward_path": "fused"},
        "rank1",
        False,
    ),
    "sequential_float32_modules": (
        lambda: sequential_ae(D, dtype=torch.float32),
        {"_forward_path": "rank1"},
        "rank1",
        False,
    ),
}
METRICS = {"mse": "mse", "mae": "mae", "rmse_pct": "rmse_pct", "custom": cube_metric}


def _assert_matches(result, ref, float64: bool) -> None:
    assert list(result.feature_names) == ref.feature_names
    assert result.complete
    scale = max(abs(ref.baseline_error), float(np.abs(ref.importances).max()))
    # float64: only summation order differs; float32: one rounding per operation of the model.
    atol = (1e-10 if float64 else 2e-6) * scale
    rtol = RTOL if float64 else 1e-4
    np.testing.assert_allclose(result.importances, ref.importances, rtol=rtol, atol=atol)
    np.testing.assert_allclose(result.baseline_error, ref.baseline_error, rtol=rtol, atol=atol)
    if result.delta_recon is not None:
        delta_scale = max(float(np.abs(ref.delta_recon).max()), 1e-300)
        np.testing.assert_allclose(
            result.delta_recon.to_numpy(),
            ref.delta_recon,
            rtol=rtol,
            atol=(1e-10 if float64 else 2e-6) * delta_scale,
        )


def _min_width(model: nn.Module) -> int:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)][1:]  # the rest
    return min((min(m.in_features, m.out_features) for m in linears), default=0)


def _compare(model_name: str, **keywords) -> aefi.ImportanceResult:
    keywords.setdefault("n_repeats", 3)
    factory, extra, path, float64 = MODELS[model_name]
    model = factory()
    X = _data()
    pi = aefi.PermutationImportance(model, X, **extra, **keywords)
    assert pi.forward_path == path
    # float32 CPU rank-1 models run the rest as fused oneDNN kernels (where the build has them)
    # when every layer is wide enough for them to be faster, unless told otherwise.
    forced = extra.get("_forward_path")
    fused = path == "rank1" and not float64 and forced in (None, "fused")
    fused = fused and (forced == "fused" or _min_width(model) >= FUSED_MIN_WIDTH)
    fused = fused and kernels_available()
    assert pi.settings["fused_kernels"] == fused
    result = pi.run()
    reference_keywords = {
        k: v for k, v in keywords.items() if k not in ("per_output", "batch_size")
    }
    ref = reference_importance(model, X, **reference_keywords)
    _assert_matches(result, ref, float64)
    return result


@pytest.mark.parametrize("target", ["original", "permuted"])
@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_equals_reference_for_every_metric_and_target(model_name, metric, target):
    result = _compare(model_name, metric=METRICS[metric], target=target, n_repeats=2, seed=3)
    assert result.delta_recon is not None
    assert result.settings["metric"] == (metric if metric != "custom" else "cube_metric")


GROUPINGS = {
    "names_and_indices": {"g13": ["x3", "x1"], "tail": [5, 4]},
    "single_member": {"only": ["x2"]},
    "everything": {"all": list(range(D))},
}


@pytest.mark.parametrize("groups", list(GROUPINGS))
@pytest.mark.parametrize("model_name", ["sequential", "encoder_decoder", "lambda", "vae_tuple"])
def test_groups_equal_reference(model_name, groups):
    result = _compare(model_name, groups=GROUPINGS[groups], n_repeats=2, metric="mae")
    for name, members in GROUPINGS[groups].items():
        assert name in result.feature_names
        assert len(result.groups[name]) == len(members)


@pytest.mark.parametrize(
    "max_samples", [10, 2, N, 0.5, 0.3, 1.0], ids=["int10", "int2", "intN", "f05", "f03", "f1"]
)
@pytest.mark.parametrize("model_name", ["sequential", "sequential_forced_plain", "vae_tuple"])
def test_max_samples_equal_reference(model_name, max_samples):
    result = _compare(model_name, max_samples=max_samples, n_repeats=3, target="permuted", seed=11)
    expected_m = max_samples if isinstance(max_samples, int) else round(max_samples * N)
    assert result.settings["samples_per_repeat"] == expected_m
    assert result.evaluations_total == result.n_features * 3 * expected_m


@pytest.mark.parametrize("model_name", ["sequential", "encoder_decoder", "lambda"])
def test_groups_with_max_samples_and_custom_metric(model_name):
    _compare(
        model_name,
        groups={"pair": ["x0", "x5"]},
        max_samples=0.75,
        metric=cube_metric,
        target="permuted",
        n_repeats=3,
        seed=-5,
    )


@pytest.mark.parametrize("batch_size", [1, 5, 17, 10**6])
def test_small_and_odd_batches_equal_reference(batch_size):
    _compare("sequential", batch_size=batch_size, groups={"g": [1, 2]}, max_samples=13)


def test_per_output_off_gives_no_delta_but_same_importances():
    on = _compare("sequential", n_repeats=2)
    off = _compare("sequential", n_repeats=2, per_output=False)
    assert off.delta_recon is None and off.delta_sum is None
    np.testing.assert_array_equal(on.importances, off.importances)


def test_dataframe_names_and_tensor_input_equal_reference():
    X = _data()
    frame = pd.DataFrame(X, columns=[f"gene_{j}" for j in range(D)])
    model = sequential_ae(D)
    groups = {"pathway": ["gene_4", "gene_1"]}
    ref = reference_importance(model, X, feature_names=list(frame.columns), groups=groups)
    from_frame = aefi.permutation_importance(model, frame, groups=groups, n_repeats=3)
    _assert_matches(from_frame, ref, float64=True)
    from_tensor = aefi.permutation_importance(
        model, torch.from_numpy(X), feature_names=list(frame.columns), groups=groups, n_repeats=3
    )
    # Not bitwise: DataFrame.to_numpy() is column-major and the engine keeps that layout.
    np.testing.assert_allclose(from_tensor.importances, from_frame.importances, rtol=1e-12)
    assert from_frame.feature_names == ("gene_0", "pathway", "gene_2", "gene_3", "gene_5")


def test_rank1_and_plain_paths_agree_exactly_enough():
    model, X = sequential_ae(D), _data()
    for keywords in ({}, {"groups": {"g": [0, 3]}, "target": "permuted", "metric": "rmse_pct"}):
        rank1 = aefi.PermutationImportance(model, X, n_repeats=3, **keywords)
        plain = aefi.PermutationImportance(model, X, n_repeats=3, _forward_path="plain", **keywords)
        assert (rank1.forward_path, plain.forward_path) == ("rank1", "plain")
        a, b = rank1.run(), plain.run()
        np.testing.assert_allclose(a.importances, b.importances, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.delta_sum, b.delta_sum, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------- path detection
def _nested_sequential():
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(D, 4), nn.ReLU())
    return nn.Sequential(inner, nn.Linear(4, D)).double().eval()


class _SequentialWithSkip(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + x


class _EncoderDecoderOtherOrder(EncoderDecoderAE):
    """Has encoder/decoder, but its forward scales the code: the split would be wrong."""

    def forward(self, x):
        return self.decoder(2.0 * self.encoder(x))


def _hooked(where: str):
    model = sequential_ae(D)
    calls = []
    if where == "first_layer":
        model[0].register_forward_hook(lambda module, args, out: calls.append(1))
    elif where == "model":
        model.register_forward_hook(lambda module, args, out: calls.append(1))
    elif where == "model_pre":
        model.register_forward_pre_hook(lambda module, args: calls.append(1))
    elif where == "modifying":
        model.register_forward_hook(lambda module, args, out: out * 2.0)
    return model


PATHS = {
    "nested_sequential": (_nested_sequential, "rank1"),
    "sequential_subclass_with_skip": (
        lambda: _SequentialWithSkip(nn.Linear(D, D)).double().eval(),
        "plain",
    ),
    "encoder_decoder_scaled_code": (lambda: _EncoderDecoderOtherOrder(D), "plain"),
    "skip_connection": (lambda: SkipAE(D), "plain"),
    "vae_tuple": (lambda: TinyVAE(D), "plain"),
    "first_op_not_linear": (
        lambda: nn.Sequential(nn.Tanh(), nn.Linear(D, D)).double().eval(),
        "plain",
    ),
    "hook_on_first_layer": (lambda: _hooked("first_layer"), "plain"),
    "hook_on_model": (lambda: _hooked("model"), "plain"),
    "pre_hook_on_model": (lambda: _hooked("model_pre"), "plain"),
    "output_changing_hook_on_model": (lambda: _hooked("modifying"), "plain"),
}


@pytest.mark.parametrize("name", list(PATHS))
def test_forward_path_detection(name):
    factory, expected = PATHS[name]
    model, X = factory(), _data()
    pi = aefi.PermutationImportance(model, X, n_repeats=2)
    assert pi.forward_path == expected
    assert pi.settings["forward_path"] == expected
    _assert_matches(pi.run(), reference_importance(model, X, n_repeats=2), float64=True)


@pytest.mark.parametrize("where", ["first_layer", "model"])
def test_hooks_run_on_every_forward_call(where):
    calls = []
    model = sequential_ae(D)
    hooked = model[0] if where == "first_layer" else model
    hooked.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    pi = aefi.PermutationImportance(model, _data(), n_repeats=2, batch_size=N)
    before = len(calls)
    pi.run()
    # One hooked call for the baseline plus one per (unit, repeat) with batch_size = n.
    assert len(calls) - before == 1 + D * 2


def test_sequential_left_in_train_mode_still_takes_rank1():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, D)).double()
    model.train()
    pi = aefi.PermutationImportance(model, _data(), n_repeats=2)
    assert pi.forward_path == "rank1"
    _assert_matches(pi.run(), reference_importance(model, _data(), n_repeats=2), float64=True)
    assert model.training and model[1].training
