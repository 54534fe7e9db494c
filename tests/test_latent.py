"""Latent-code importance: permutation, gradient and mutual-information lenses against independent
references (plain loops, torch.autograd.functional.jacobian, closed forms, scikit-learn), encoder
detection, streaming and resume, and the user's model and data left untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from reference import EncoderDecoderAE, correlated_data, sequential_ae
from scipy.special import digamma, ndtri
from scipy.stats import spearmanr
from sklearn.feature_selection import mutual_info_regression
from torch import nn

import aefi_widget as aefi
from aefi_widget.demo import seed_like_autoencoder
from aefi_widget.engine.latent_mi import MAX_NATS, gaussian_copula_mi
from aefi_widget.engine.permutations import permutation

N, D = 40, 6


class TupleVAE(nn.Module):
    """A VAE whose encoder returns ``(mu, logvar)``; the model returns ``(recon, mu, logvar)``."""

    class Encoder(nn.Module):
        def __init__(self, d: int, latent: int) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(d, 7), nn.Tanh())
            self.mu, self.logvar = nn.Linear(7, latent), nn.Linear(7, latent)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.body(x)
            return self.mu(h), self.logvar(h)

    def __init__(self, d: int, latent: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = self.Encoder(d, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, 7), nn.ReLU(), nn.Linear(7, d))
        self.double().eval()

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encoder(x)
        return self.decoder(mu), mu, logvar


class NoEncoder(nn.Module):
    """An autoencoder with a custom forward and no ``encoder`` attribute."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.down, self.up = nn.Linear(d, 2), nn.Linear(2, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(x)))


def _data(n: int = N, d: int = D, seed: int = 1) -> np.ndarray:
    return correlated_data(n, d, seed)


def _float64_codes(encoder, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = encoder(torch.from_numpy(np.ascontiguousarray(x)))
    out = out[0] if isinstance(out, tuple) else out
    return out.to(torch.float64).numpy()


def _reference_permutation(encoder, X: np.ndarray, n_repeats: int, seed: int):
    """Plain loop over features and repeats, the whole shuffled data set in one call."""
    X = X.astype(np.float64)
    n, d = X.shape
    code = _float64_codes(encoder, X)
    shifts = np.zeros((d, n_repeats, code.shape[1]))
    for j in range(d):
        for r in range(n_repeats):
            shuffled = X.copy()
            shuffled[:, j] = X[permutation(seed, r, j, n), j]
            shifts[j, r] = np.abs(_float64_codes(encoder, shuffled) - code).mean(axis=0)
    return shifts.mean(axis=2), shifts.mean(axis=1)


# ---------------------------------------------------------------------------- permutation
@pytest.mark.parametrize("path", ["rank1", "plain"])
def test_permutation_gives_exactly_zero_for_an_input_the_code_ignores(path):
    torch.manual_seed(0)
    k = 2
    first = nn.Linear(D, 8)
    with torch.no_grad():
        first.weight[:, k] = 0.0
    encoder = nn.Sequential(first, nn.Tanh(), nn.Linear(8, 3))  # float32: fused kernels too
    if path == "plain":
        keep = torch.tensor([j for j in range(D) if j != k])
        inner = nn.Sequential(nn.Linear(D - 1, 8), nn.ReLU(), nn.Linear(8, 3))

        def encoder(x):  # a callable that never reads column k
            return inner(x[:, keep])

    res = aefi.latent_importance(None, _data().astype(np.float32), encoder=encoder, n_repeats=4)
    assert res.settings["forward_path"] == path
    assert np.all(res.importances[k] == 0.0)
    assert np.all(res.extras["latent_shift"][k] == 0.0)
    others = np.delete(res.importances, k, axis=0)
    assert np.all(others > 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (EncoderDecoderAE(D), None),
        lambda: (sequential_ae(D, hidden=6), None),
        lambda: (TupleVAE(D), None),
        lambda: (NoEncoder(D).double(), "callable"),
    ],
    ids=["model.encoder", "sequential_split", "vae_tuple", "given_callable"],
)
def test_permutation_equals_a_plain_reference_loop(make):
    model, given = make()
    encoder = None
    if given == "callable":

        def encoder(x):
            return torch.relu(model.down(x))

    X = _data()
    res = aefi.latent_importance(model, X, encoder=encoder, n_repeats=3, seed=7)
    reference_encoder = encoder
    if reference_encoder is None:
        reference_encoder = model.encoder if hasattr(model, "encoder") else model[:4]
    importances, latent_shift = _reference_permutation(reference_encoder, X, 3, seed=7)
    np.testing.assert_allclose(res.importances, importances, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(res.extras["latent_shift"], latent_shift, rtol=1e-5, atol=1e-12)
    assert res.settings["method"] == "latent" and res.settings["latent_method"] == "permutation"
    assert res.labels["title"] == "Latent-code importance (permutation)"
    summary = res.summary()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["n_done"] == 3).all()


def test_permutation_float32_fused_path_matches_the_reference():
    model = seed_like_autoencoder(12, seed=3)
    X = _data(64, 12).astype(np.float32)
    res = aefi.latent_importance(model, X, n_repeats=2, seed=1)
    assert res.settings["forward_path"] == "rank1"
    importances, latent_shift = _reference_permutation(copy.deepcopy(model.encoder).double(),
                                                       X, 2, seed=1)  # fmt: skip
    np.testing.assert_allclose(res.importances, importances, rtol=1e-4)
    np.testing.assert_allclose(res.extras["latent_shift"], latent_shift, rtol=1e-4, atol=1e-7)


def test_permutation_numbers_do_not_depend_on_batch_size():
    model, X = EncoderDecoderAE(D, dtype=torch.float32), _data().astype(np.float32)
    results = [
        aefi.latent_importance(model, X, n_repeats=3, batch_size=b) for b in (None, 7, 50, 333)
    ]
    for other in results[1:]:
        np.testing.assert_array_equal(other.importances, results[0].importances)
        np.testing.assert_array_equal(
            other.extras["latent_shift"], results[0].extras["latent_shift"]
        )


def test_permutation_streams_and_resumes_exactly():
    model, X = EncoderDecoderAE(D), _data()
    full = aefi.latent_importance(model, X, n_repeats=4, batch_size=30)
    engine = aefi.LatentPermutation(model, X, n_repeats=4, batch_size=30)
    snapshots = []
    for snapshot in engine.increments():
        snapshots.append(snapshot)
        if len(snapshots) == 3:
            break
    assert not snapshots[-1].complete and snapshots[-1].evaluations_done == 90
    resumed = aefi.LatentPermutation(model, X, n_repeats=4, batch_size=30).run(snapshots[-1])
    assert resumed == full
    saved_then_loaded = aefi.ImportanceResult.from_arrays(full.to_arrays())
    assert saved_then_loaded == full
    other_seed = aefi.LatentPermutation(model, X, n_repeats=4, batch_size=30, seed=1)
    with pytest.raises(ValueError, match="another run"):
        other_seed.run(snapshots[-1])


def test_permutation_checkpoint_resumes_and_grows_n_repeats(tmp_path):
    model, X = EncoderDecoderAE(D), _data()
    full = aefi.latent_importance(model, X, n_repeats=4, batch_size=30)
    path = tmp_path / "latent.npz"
    keywords = {"batch_size": 30, "checkpoint": path}
    engine = aefi.LatentPermutation(model, X, n_repeats=4, checkpoint_every=0, **keywords)
    snapshots = engine.increments()
    for _ in range(3):
        next(snapshots)
    snapshots.close()  # as a cancelled Job does: the checkpoint keeps the finished chunks
    assert path.exists()
    assert aefi.LatentPermutation(model, X, n_repeats=4, **keywords).run() == full
    grown = aefi.LatentPermutation(model, X, n_repeats=6, **keywords).run()
    np.testing.assert_array_equal(grown.importances[:, :4], full.importances)
    assert grown.complete


def test_job_runs_the_latent_permutation_engine():
    from aefi_widget.job import Job

    model, X = EncoderDecoderAE(D), _data()
    job = Job(aefi.LatentPermutation(model, X, n_repeats=2)).start()
    assert job.result(timeout=60) == aefi.latent_importance(model, X, n_repeats=2)
    assert job.status == "done"


# ---------------------------------------------------------------------------- gradient
def _reference_gradient(encoder, X: np.ndarray):
    """Per-sample Jacobians from torch.autograd.functional.jacobian, one sample at a time."""
    per_sample, latent = [], []
    for x in torch.from_numpy(X):

        def f(v):
            out = encoder(v.unsqueeze(0))
            return (out[0] if isinstance(out, tuple) else out).squeeze(0)

        jac = torch.autograd.functional.jacobian(f, x).numpy()  # (L, d)
        terms = np.abs(jac * x.numpy()[None, :])
        per_sample.append(terms.mean(axis=0))
        latent.append(terms.T)
    return np.array(per_sample).T, np.mean(latent, axis=0)


@pytest.mark.parametrize(
    "make",
    [lambda: EncoderDecoderAE(D), lambda: sequential_ae(D, hidden=6), lambda: TupleVAE(D)],
    ids=["model.encoder", "sequential_split", "vae_tuple"],
)
def test_gradient_equals_autograd_jacobian(make):
    model, X = make(), _data()
    res = aefi.latent_importance(model, X, method="gradient", batch_size=16)
    encoder = model.encoder if hasattr(model, "encoder") else model[:4]
    per_sample, latent_map = _reference_gradient(encoder, X)
    assert res.importances.shape == (D, N) and res.labels["axis"] == "sample"
    np.testing.assert_allclose(res.importances, per_sample, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.extras["latent_map"], latent_map, rtol=1e-10, atol=1e-14)
    again = aefi.latent_importance(model, X, method="gradient")  # one batch
    np.testing.assert_allclose(again.importances, res.importances, rtol=1e-12, atol=1e-15)


class _NumpyTanh(torch.autograd.Function):
    """tanh whose backward leaves torch (no batching rule: forces one backward per dimension)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * torch.from_numpy(1.0 - y.detach().numpy() ** 2)


def test_gradient_falls_back_to_one_backward_per_dimension():
    torch.manual_seed(0)
    inner = nn.Linear(D, 3).double()

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return _NumpyTanh.apply(self.inner(x))

    X = _data()
    res = aefi.latent_importance(None, X, encoder=Encoder(), method="gradient")
    per_sample, latent_map = _reference_gradient(lambda v: torch.tanh(inner(v)), X)
    np.testing.assert_allclose(res.importances, per_sample, rtol=1e-10)
    np.testing.assert_allclose(res.extras["latent_map"], latent_map, rtol=1e-10)


# ---------------------------------------------------------------------------- mutual information
def _pick(*columns: int):
    index = torch.tensor(columns)
    return lambda x: x[:, index]


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8, 0.95])
def test_mutual_information_matches_the_gaussian_closed_form(rho):
    n = 20_000
    rng = np.random.default_rng(int(rho * 100))
    a = rng.standard_normal(n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    # The code is a monotone (non-Gaussian) function of b: the copula keeps the MI.
    X = np.column_stack([a, b])
    res = aefi.latent_importance(
        None, X, encoder=lambda x: torch.exp(x[:, 1:2]), method="mutual_information"
    )
    truth = -0.5 * np.log(1 - rho**2)
    # Documented: unbiased for Gaussian pairs; standard error of the estimate ~ rho / sqrt(n).
    assert res.extras["latent_map"][0, 0] == pytest.approx(truth, abs=4 * rho / np.sqrt(n) + 2e-4)
    assert 8.0 < res.extras["latent_map"][1, 0] <= MAX_NATS  # the code is b itself (float32 ties)
    assert res.importances.shape == (2, 1) and res.labels["value"] == "MI (nats)"


def test_mutual_information_of_independent_columns_is_about_zero():
    n, d = 4000, 60
    X = np.random.default_rng(3).standard_normal((n, d))
    res = aefi.latent_importance(
        None, X, encoder=lambda x: torch.tanh(x[:, :2] @ torch.ones(2, 3, dtype=x.dtype)),
        method="mutual_information",
    )  # fmt: skip
    unused = res.extras["latent_map"][2:]
    assert abs(unused.mean()) < 2e-4  # bias-corrected: centred on 0
    assert np.abs(unused).max() < 4e-3  # chi-square(1) / (2 n) tail over 174 pairs
    assert (res.extras["latent_map"][:2] > 0.05).all()


def test_mutual_information_equals_ince_per_pair_estimator():
    """Ince's gcmi ``mi_gg`` written out per pair (Cholesky of the 2x2 covariance, entropies
    with the psi bias terms) on copula-normalised columns."""
    rng = np.random.default_rng(0)
    X, Z = rng.standard_normal((300, 4)), rng.standard_normal((300, 3))
    Z[:, 0] += X[:, 0] ** 3
    n = len(X)

    def copnorm(v):
        return ndtri((np.argsort(np.argsort(v)) + 1) / (n + 1))

    expected = np.zeros((4, 3))
    for j in range(4):
        for dim in range(3):
            xy = np.vstack([copnorm(X[:, j]), copnorm(Z[:, dim])])
            xy -= xy.mean(axis=1, keepdims=True)
            c = xy @ xy.T / (n - 1)
            hx, hy = np.log(np.sqrt(c[0, 0])), np.log(np.sqrt(c[1, 1]))
            hxy = np.sum(np.log(np.diagonal(np.linalg.cholesky(c))))
            psi = digamma((n - np.arange(1, 3)) / 2) / 2
            dterm = (np.log(2) - np.log(n - 1)) / 2
            hxy, hx, hy = hxy - 2 * dterm - psi.sum(), hx - dterm - psi[0], hy - dterm - psi[0]
            expected[j, dim] = hx + hy - hxy
    np.testing.assert_allclose(gaussian_copula_mi(X, Z), expected, rtol=1e-9, atol=1e-12)


def test_mutual_information_constant_columns_give_zero():
    X = np.random.default_rng(0).standard_normal((50, 3))
    X[:, 1] = 2.5
    mi = gaussian_copula_mi(X, X[:, :1] ** 3)
    assert mi[1, 0] == 0.0
    assert mi[0, 0] == pytest.approx(MAX_NATS, abs=1 / 50)  # same ranks: the ceiling, not inf


def test_mutual_information_ranking_agrees_with_sklearn_on_a_nonlinear_toy():
    rng = np.random.default_rng(0)
    n, d, L = 2000, 8, 4
    X = rng.standard_normal((n, d))
    strength = np.linspace(2.0, 0.3, d)  # x0 drives the code most (Spearman >= 0.95, seeds 0-7)
    mix = torch.from_numpy(strength[:, None] * rng.uniform(0.5, 1.5, (d, L)))

    def encoder(x):
        s = (torch.sign(x) * x.abs() ** 1.5) @ mix.to(x.dtype)
        return torch.tanh(s / 3) + 0.1 * s

    res = aefi.latent_importance(None, X, encoder=encoder, method="mutual_information")
    code = _float64_codes(encoder, X)
    knn = np.mean(
        [mutual_info_regression(X, code[:, dim], random_state=0) for dim in range(L)], axis=0
    )
    assert spearmanr(res.importances[:, 0], knn).statistic >= 0.9


# ---------------------------------------------------------------------------- encoder detection
def test_encoder_detection_model_encoder_sequential_split_and_vae():
    X = _data()
    ae = EncoderDecoderAE(D)
    res = aefi.latent_importance(ae, X, method="mutual_information")
    assert res.settings["encoder"] == "model.encoder" and res.output_names == ("z0", "z1", "z2")

    seq = sequential_ae(D, hidden=6)  # Linear(6) ReLU Linear(4) Tanh Linear(D)
    res = aefi.latent_importance(seq, X, method="gradient")
    assert "bottleneck: layer 2" in res.settings["encoder"] and res.settings["n_latent"] == 4
    manual = aefi.latent_importance(seq, X, method="gradient", encoder=seq[:4])
    np.testing.assert_array_equal(res.importances, manual.importances)

    vae = TupleVAE(D)
    res = aefi.latent_importance(vae, X, n_repeats=2)
    mu_only = aefi.latent_importance(vae, X, n_repeats=2, encoder=lambda x: vae.encoder(x)[0])
    np.testing.assert_allclose(res.importances, mu_only.importances, rtol=1e-12)
    assert res.settings["n_latent"] == 3


def test_nested_sequential_is_flattened_before_the_split():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(D, 5), nn.ReLU(), nn.Linear(5, 2))
    dec = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, D))
    model = nn.Sequential(enc, dec).double()
    res = aefi.latent_importance(model, _data(), method="gradient")
    expected = aefi.latent_importance(model, _data(), method="gradient", encoder=enc)
    np.testing.assert_array_equal(res.importances, expected.importances)


@pytest.mark.parametrize(
    "model",
    [NoEncoder(D), nn.Sequential(nn.Linear(D, D)), nn.Sequential(nn.ReLU())],
    ids=["custom_forward", "one_linear", "no_linear"],
)
def test_a_model_without_an_encoder_asks_for_encoder(model):
    with pytest.raises(ValueError, match="encoder="):
        aefi.latent_importance(model, _data().astype(np.float32))


class _CountingEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.layer = nn.Linear(D, 2).double()

    def forward(self, x):
        self.calls += 1
        return self.layer(x)


@pytest.mark.parametrize(
    ("keywords", "error", "match"),
    [
        ({"method": "shap"}, ValueError, "method must be one of"),
        ({"n_repeats": 0}, ValueError, "n_repeats"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"batch_size": 0, "method": "gradient"}, ValueError, "batch_size"),
        ({"feature_names": ["a"]}, ValueError, "feature_names has 1 names"),
        ({"encoder": 3}, TypeError, "encoder must be"),
    ],
)
def test_bad_input_fails_before_any_encoder_call(keywords, error, match):
    counting = _CountingEncoder()
    keywords = {"encoder": counting, **keywords}
    with pytest.raises(error, match=match):
        aefi.latent_importance(None, _data(), **keywords)
    assert counting.calls == 0


def test_an_encoder_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"must return \(16, L\) codes"):
        aefi.latent_importance(None, _data(), encoder=lambda x: x.sum())


# ---------------------------------------------------------------------------- the user's objects
@pytest.mark.parametrize("method", ["permutation", "gradient", "mutual_information"])
def test_model_and_data_are_untouched_and_training_flags_restored(method):
    model = EncoderDecoderAE(D, dtype=torch.float32)
    model.encoder.insert(1, nn.Dropout(0.3))
    model.train()
    model.decoder.eval()
    before = copy.deepcopy(model.state_dict())
    flags = {name: m.training for name, m in model.named_modules()}
    X = _data().astype(np.float32)
    X.flags.writeable = False
    X_before = X.copy()
    res = aefi.latent_importance(model, X, method=method, n_repeats=2)
    again = aefi.latent_importance(model, X, method=method, n_repeats=2)
    np.testing.assert_array_equal(res.importances, again.importances)  # dropout was off
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    np.testing.assert_array_equal(X, X_before)


# ---------------------------------------------------------------------------- benchmark script
def test_bench_lenses_runs_on_a_tiny_problem(monkeypatch, capsys):
    """benchmarks/bench_lenses.py runs end to end (and its captum cross-check holds)."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_lenses

    threads = torch.get_num_threads()
    try:
        argv = "--d 16 --n 40 --epochs 1 --repeats 1 --sklearn-dims 2 --captum-dims 2"
        rows = bench_lenses.main([*argv.split(), "--ig-steps", "2", "--matmul-size", "64"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "sklearn mutual_info_regression loop over L dims" in out and "target:" in out
    assert rows["sklearn_mi"].extrapolated and not rows["mi"].extrapolated
