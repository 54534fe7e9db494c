"""The user's model and data are left exactly as they were; no global torch state leaks."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from reference import EncoderDecoderAE, correlated_data, sequential_ae
from torch import nn

import aefi_widget as aefi

N, D = 20, 6


def _state(model: nn.Module) -> dict:
    return {
        "values": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "training": {k: m.training for k, m in model.named_modules()},
        "devices": {k: p.device for k, p in model.named_parameters()},
        "dtypes": {k: p.dtype for k, p in model.named_parameters()},
    }


def _assert_state(model: nn.Module, before: dict) -> None:
    after = _state(model)
    for key in ("requires_grad", "training", "devices", "dtypes"):
        assert after[key] == before[key], key
    assert after["values"].keys() == before["values"].keys()
    for name, value in before["values"].items():
        assert torch.equal(after["values"][name], value), name


def _train_mode_dropout_model(encoder_decoder: bool) -> nn.Module:
    torch.manual_seed(0)
    if encoder_decoder:
        model = EncoderDecoderAE(D, dtype=torch.float32)
        model.encoder.insert(1, nn.Dropout(0.3))
        model.train()
        model.decoder[1].eval()  # a submodule deliberately left in eval while the parent trains
        return model
    model = nn.Sequential(nn.Linear(D, 8), nn.Dropout(0.3), nn.ReLU(), nn.Linear(8, D))
    model.train()
    model[1].eval()
    model[0].weight.requires_grad_(False)  # a frozen layer stays frozen
    return model


@pytest.mark.parametrize("encoder_decoder", [False, True])
def test_training_flags_restored_between_increments_and_after(encoder_decoder):
    model = _train_mode_dropout_model(encoder_decoder)
    before = _state(model)
    pi = aefi.PermutationImportance(model, correlated_data(N, D), n_repeats=2, batch_size=9)
    _assert_state(model, before)
    count = 0
    for _snapshot in pi.increments():
        count += 1
        assert not torch.is_inference_mode_enabled()
        assert torch.is_grad_enabled()
        _assert_state(model, before)
    assert count > 2
    _assert_state(model, before)
    # A consumer that stops early (closes the generator) leaves the model as it was too.
    generator = pi.increments()
    next(generator)
    generator.close()
    _assert_state(model, before)
    pi.drilldown("x1", 1)
    _assert_state(model, before)


def test_train_mode_dropout_does_not_change_the_numbers():
    model = _train_mode_dropout_model(encoder_decoder=False)
    X = correlated_data(N, D)
    trained = aefi.permutation_importance(model, X, n_repeats=2)
    evaluated = aefi.permutation_importance(copy.deepcopy(model).eval(), X, n_repeats=2)
    np.testing.assert_allclose(trained.importances, evaluated.importances, rtol=1e-5, atol=1e-7)
    assert np.isfinite(trained.importances).all()


def test_batchnorm_in_train_mode_buffers_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, D))
    model.train()
    before = _state(model)
    aefi.permutation_importance(model, correlated_data(N, D), n_repeats=1)
    _assert_state(model, before)


def test_eval_model_parameters_buffers_and_rng_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, D)).eval()
    model[3].bias.requires_grad_(False)
    before = _state(model)
    rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    aefi.permutation_importance(model, correlated_data(N, D), n_repeats=2, device="cpu")
    _assert_state(model, before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("requires_grad", [False, True])
def test_tensor_input_unchanged(requires_grad):
    model = sequential_ae(D, dtype=torch.float32)
    X = torch.from_numpy(correlated_data(N, D)).float().requires_grad_(requires_grad)
    copy_of_X = X.detach().clone()
    result = aefi.permutation_importance(model, X, n_repeats=2, groups={"g": [1, 2]})
    assert X.requires_grad == requires_grad
    assert X.grad is None and X.dtype == torch.float32 and X.device.type == "cpu"
    assert torch.equal(X.detach(), copy_of_X)
    assert result.complete
    # float64 input for a float32 model: cast privately, the user's tensor stays float64
    X64 = torch.from_numpy(correlated_data(N, D))
    aefi.permutation_importance(model, X64, n_repeats=1)
    assert X64.dtype == torch.float64


def test_ndarray_input_unchanged_even_when_read_only():
    model = sequential_ae(D)
    X = correlated_data(N, D)
    copy_of_X = X.copy()
    aefi.permutation_importance(model, X, n_repeats=2, max_samples=0.5)
    np.testing.assert_array_equal(X, copy_of_X)
    assert X.flags.writeable
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "not writable" warning would alarm the user
        result = aefi.permutation_importance(model, X, n_repeats=1)
    assert not X.flags.writeable and result.complete
    np.testing.assert_array_equal(X, copy_of_X)


def test_dataframe_input_unchanged():
    model = sequential_ae(D)
    values = correlated_data(N, D)
    frame = pd.DataFrame(values, columns=[f"g{j}" for j in range(D)])
    frame["g2"] = np.arange(N, dtype=np.int64)  # an integer column
    frame.index = pd.Index([f"s{i}" for i in range(N)], name="sample")
    copy_of_frame = frame.copy(deep=True)
    result = aefi.permutation_importance(model, frame, n_repeats=2, groups={"pair": ["g0", "g5"]})
    pd.testing.assert_frame_equal(frame, copy_of_frame)
    assert result.feature_names == ("pair", "g1", "g2", "g3", "g4")


def test_user_can_change_X_after_construction_without_changing_results():
    model = sequential_ae(D)
    X = correlated_data(N, D)
    expected = aefi.permutation_importance(model, X, n_repeats=2)
    pi = aefi.PermutationImportance(model, X, n_repeats=2)
    X[:] = 0.0
    np.testing.assert_array_equal(pi.run().importances, expected.importances)
