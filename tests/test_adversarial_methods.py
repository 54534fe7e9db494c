"""Adversarial sweep, round three (issue 21), the methods: the latent gradient lens independent
of batch size and clear about a non-differentiable encoder, absurd sizes refused at
construction, and clear words for a closed Dask client, a NaN metric and all-zero gradients.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import aefi_widget as aefi
from aefi_widget.engine.gradient_paths import NotDifferentiableError

pytestmark = pytest.mark.timeout(60)

N, D = 40, 8


def _data() -> torch.Tensor:
    return torch.randn(N, D, generator=torch.Generator().manual_seed(1)) * 3


def _autoencoder(middle: torch.nn.Module | None = None) -> tuple[torch.nn.Module, torch.nn.Module]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [torch.nn.Linear(D, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh()]
        encoder = torch.nn.Sequential(*layers, *([middle] if middle else []),
                                      torch.nn.Linear(16, 3))  # fmt: skip
        return encoder, torch.nn.Sequential(encoder, torch.nn.Linear(3, D))


def test_the_latent_gradient_map_does_not_depend_on_batch_size() -> None:
    encoder, model = _autoencoder()
    X = _data()
    results = [
        aefi.latent_importance(model, X, encoder=encoder, method="gradient", batch_size=b)
        for b in (None, 1, 7, 16, N)
    ]
    for result in results[1:]:
        np.testing.assert_array_equal(result.extras["latent_map"], results[0].extras["latent_map"])
        np.testing.assert_array_equal(result.importances, results[0].importances)


class Detached(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


class NoGrad(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return x * 2


@pytest.mark.parametrize("middle", [Detached(), NoGrad()], ids=["detach", "no_grad"])
@pytest.mark.parametrize("plain", [False, True], ids=["sequential", "wrapped"])
def test_latent_gradient_on_a_non_differentiable_encoder_is_a_clear_error(middle, plain) -> None:
    encoder, model = _autoencoder(middle)
    if plain:  # not a Sequential ending in a Linear: the one-hot backward path

        class Wrapped(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)

        encoder = Wrapped(encoder)
    with pytest.raises(NotDifferentiableError, match="method='permutation'"):
        aefi.latent_importance(model, _data(), encoder=encoder, method="gradient")


@pytest.mark.parametrize(
    ("quadrature", "steps", "match"),
    [
        ("gausslegendre", 10**9, "steps must be <= 1,000"),
        ("riemann_middle", 10**9, "steps must be <= 100,000"),
        ("gausslegendre", 0, "steps must be >= 1"),
    ],
)
def test_absurd_integrated_gradient_steps_are_refused_at_construction(
    quadrature, steps, match
) -> None:
    _, model = _autoencoder()
    with pytest.raises(ValueError, match=match):
        aefi.GradientImportance(
            model, _data(), method="integrated_gradients", steps=steps, quadrature=quadrature
        )


def test_a_closed_dask_client_is_a_clear_error_at_construction_and_at_run() -> None:
    distributed = pytest.importorskip("distributed")
    _, model = _autoencoder()
    X = _data()
    client = distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                                dashboard_address=None)  # fmt: skip
    engine = aefi.PermutationImportance(model, X, n_repeats=2, client=client)
    client.close()
    with pytest.raises(ValueError, match="Dask client is closed"):
        aefi.PermutationImportance(model, X, n_repeats=2, client=client)
    with pytest.raises(ValueError, match="Dask client is closed"):
        engine.run()  # closed after the engine was built


def test_a_custom_metric_returning_nan_is_told_so_not_blamed_on_overflow() -> None:
    _, model = _autoencoder()

    def nan_metric(recon, target):
        errors = ((recon - target) ** 2).mean(dim=1)
        errors[0] = float("nan")  # e.g. a 0/0 in the user's code
        return errors

    with pytest.raises(ValueError, match="custom metric returned NaN or inf") as caught:
        aefi.PermutationImportance(model, _data(), n_repeats=2, metric=nan_metric)
    assert "overflow" not in str(caught.value)


class Rounded(torch.nn.Module):
    """A quantising layer: autograd follows torch.round with a zero derivative everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input"])
def test_a_model_with_a_step_inside_warns_that_gradients_are_all_zero(method) -> None:
    _, model = _autoencoder(Rounded())
    with pytest.warns(UserWarning, match="exactly zero.*torch.round.*permutation_importance"):
        result = aefi.gradient_importance(model, _data(), method=method, steps=4)
    assert not np.any(result.importances)  # the warning's claim holds: every attribution is 0
    # A differentiable model of the same shape gives non-zero attributions and no such warning.
    _, smooth = _autoencoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert np.any(aefi.gradient_importance(smooth, _data(), method=method, steps=4).importances)
