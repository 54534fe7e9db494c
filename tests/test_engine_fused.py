"""Fused oneDNN chains: same function as the modules, row- and thread-independent, safe fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import correlated_data
from torch import nn

import aefi_widget as aefi
from aefi_widget.demo import seed_like_autoencoder
from aefi_widget.engine import fused
from aefi_widget.engine.fused import fuse_chain

pytestmark = pytest.mark.skipif(
    not fused.kernels_available(), reason="this torch build has no oneDNN kernels"
)
CPU = torch.device("cpu")


def _layers(*modules: nn.Module) -> list[nn.Module]:
    torch.manual_seed(0)
    return [m.float().eval() for m in modules]


CHAINS = {
    "relu_linear": lambda: _layers(nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 24)),
    "tanh_sigmoid": lambda: _layers(nn.Linear(24, 16), nn.Tanh(), nn.Linear(16, 9), nn.Sigmoid()),
    "leaky_gelu": lambda: _layers(
        nn.Linear(24, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.GELU(approximate="tanh")
    ),
    "gelu_exact_no_bias": lambda: _layers(nn.Linear(24, 16, bias=False), nn.GELU()),
    "identity_dropout_double_activation": lambda: _layers(
        nn.Linear(24, 16), nn.Dropout(0.5), nn.ReLU(), nn.Tanh(), nn.Identity(), nn.Linear(16, 3)
    ),
}


def _modules_output(layers: list[nn.Module], h: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        for layer in layers:
            h = layer(h)
    return h


@pytest.mark.parametrize("name", list(CHAINS))
def test_fused_chain_computes_the_modules(name):
    layers = CHAINS[name]()
    chain = fuse_chain(layers, torch.float32, CPU)
    assert chain is not None
    h = torch.randn(64, 24)
    with torch.inference_mode():
        got = chain(h)
    expected = _modules_output(layers, h)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_each_row_depends_only_on_itself_and_not_on_threads():
    """The property the engine's batch-size determinism rests on (calls have >= 16 rows)."""
    torch.manual_seed(1)
    layers = _layers(nn.Linear(300, 200), nn.ReLU(), nn.Linear(200, 500), nn.Tanh())
    chain = fuse_chain(layers, torch.float32, CPU)
    h = torch.randn(2048, 300)
    threads = torch.get_num_threads()
    with torch.inference_mode():
        whole = chain(h)
        for rows, offset in [(16, 0), (16, 48), (37, 5), (400, 16), (1024, 1024)]:
            part = chain(h[offset : offset + rows].clone())
            assert torch.equal(part, whole[offset : offset + rows]), (rows, offset)
        try:
            torch.set_num_threads(1)
            single = chain(h)
        finally:
            torch.set_num_threads(threads)
    assert torch.equal(single, whole)


def test_packed_and_unpacked_weights_give_identical_numbers(monkeypatch):
    layers = CHAINS["relu_linear"]()
    h = torch.randn(64, 24)
    with torch.inference_mode():
        packed = fuse_chain(layers, torch.float32, CPU)(h)
        monkeypatch.setattr(fused, "_PACKED_BYTES_BUDGET", 0)
        plain = fuse_chain(layers, torch.float32, CPU)(h)
    assert torch.equal(packed, plain)


def test_a_changed_weight_is_repacked():
    layers = CHAINS["relu_linear"]()
    chain = fuse_chain(layers, torch.float32, CPU)
    h = torch.randn(32, 24)
    with torch.inference_mode():
        before = chain(h)
    with torch.no_grad():
        layers[1].weight.mul_(2.0)  # in place, as an optimizer step does
    with torch.inference_mode():
        after = chain(h)
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, _modules_output(layers, h), rtol=1e-5, atol=1e-5)


class _MyLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


REFUSED = {
    "unknown_layer": lambda: (_layers(nn.Linear(4, 4), nn.BatchNorm1d(4)), torch.float32),
    "linear_subclass": lambda: (_layers(_MyLinear(4, 4)), torch.float32),
    "activations_only": lambda: (_layers(nn.ReLU()), torch.float32),
    "float64": lambda: ([m.double() for m in _layers(nn.Linear(4, 4))], torch.float64),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_unknown_layers_and_dtypes_are_not_fused(name):
    layers, dtype = REFUSED[name]()
    assert fuse_chain(layers, dtype, CPU) is None


def test_hooks_keep_the_modules():
    layers = CHAINS["relu_linear"]()
    handle = layers[3].register_forward_hook(lambda module, args, out: out + 1)
    assert fuse_chain(layers, torch.float32, CPU) is None
    handle.remove()
    handle = nn.modules.module.register_module_forward_hook(lambda module, args, out: None)
    try:
        assert fuse_chain(layers, torch.float32, CPU) is None
    finally:
        handle.remove()
    assert fuse_chain(layers, torch.float32, CPU) is not None


def test_engine_uses_fused_kernels_on_the_seed_like_autoencoder():
    """Fused, module and plain paths agree; the fused numbers are exact for an ignored feature.

    The model is narrow, where fused kernels are slower than the modules, so "auto" keeps the
    modules (shape rule) and "fused" forces them."""
    model = seed_like_autoencoder(12, seed=3).eval()
    with torch.no_grad():
        model.encoder[0].weight[:, 4] = 0.0  # the model ignores feature 4
    X = correlated_data(40, 12).astype(np.float32)
    runs = {
        path: aefi.PermutationImportance(model, X, n_repeats=3, seed=2, _forward_path=path)
        for path in ("fused", "auto", "rank1", "plain")
    }
    assert runs["fused"].settings["fused_kernels"] is fused.kernels_available()
    assert runs["auto"].settings["fused_kernels"] is False  # 9..12 wide: modules are faster
    assert runs["rank1"].settings["fused_kernels"] is False
    results = {path: engine.run() for path, engine in runs.items()}
    for path in ("auto", "rank1", "plain"):
        np.testing.assert_allclose(
            results["fused"].importances, results[path].importances, rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(
            results["fused"].delta_recon, results[path].delta_recon, rtol=1e-4, atol=1e-6
        )
    assert np.all(results["fused"].importances[4] == 0.0)
    assert np.all(results["fused"].delta_recon.iloc[4].to_numpy() == 0.0)


@pytest.mark.parametrize(
    ("d", "expect_fused"), [(64, False), (100, False), (128, True), (256, True)]
)
def test_fused_kernels_only_where_every_layer_is_wide(d, expect_fused):
    """The shape rule: every Linear of the rest at least FUSED_MIN_WIDTH wide (d = 128: 96/64)."""
    from aefi_widget.engine.forward import FUSED_MIN_WIDTH

    model = seed_like_autoencoder(d, seed=0).eval()
    assert (int(0.5 * d) >= FUSED_MIN_WIDTH) == expect_fused
    engine = aefi.PermutationImportance(model, correlated_data(20, d).astype(np.float32))
    assert engine.settings["fused_kernels"] is (expect_fused and fused.kernels_available())


def test_a_subclassed_decoder_is_not_fused():
    """A decoder with its own forward is not the composition of its layers: keep the modules."""

    class DoubledDecoder(nn.Sequential):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x)

    model = seed_like_autoencoder(8, seed=0).eval()
    model.decoder = DoubledDecoder(*model.decoder)
    engine = aefi.PermutationImportance(model, correlated_data(20, 8).astype(np.float32))
    assert engine.forward_path == "rank1"
    assert engine.settings["fused_kernels"] is False
