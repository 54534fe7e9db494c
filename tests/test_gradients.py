"""Gradient attributions of the per-sample reconstruction error (integrated gradients and
gradient x input), against captum's IntegratedGradients, hand-written autograd and exact identities.

The captum reference wraps the model in a per-sample loss ``metric(model(z), target)`` and passes
X as ``additional_forward_args``: captum expands it alongside the interpolated inputs, so every
path point is compared with its own unperturbed sample.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from bench_scripts import load_benchmark
from captum.attr import IntegratedGradients
from reference import EncoderDecoderAE, SkipAE, correlated_data, cube_metric, sequential_ae
from torch import nn

import aefi_widget as aefi
from aefi_widget.engine.gradients import GradientImportance
from aefi_widget.job import Job
from aefi_widget.result import ImportanceResult

pytestmark = pytest.mark.timeout(120)

METRICS = {
    "mse": lambda r, t: ((r - t) ** 2).mean(dim=1),
    "mae": lambda r, t: (r - t).abs().mean(dim=1),
    "cube": cube_metric,
}


def _captum_ig(model, X, baseline, metric, steps, quadrature="gausslegendre"):
    """(n, d) captum attributions and convergence deltas of the per-sample loss wrapper."""
    error = METRICS[metric]

    def loss(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = model(z)
        return error(out[0] if isinstance(out, tuple) else out, target)

    X = torch.as_tensor(X)
    if not isinstance(baseline, torch.Tensor):
        baseline = torch.tensor(np.array(baseline))  # a copy: result arrays are read-only
    baseline = baseline.to(X.dtype)[None, :]
    attributions, delta = IntegratedGradients(loss).attribute(
        X, baselines=baseline, additional_forward_args=(X,), n_steps=steps, method=quadrature,
        return_convergence_delta=True,
    )  # fmt: skip
    return attributions.detach().numpy().astype(np.float64), delta.detach().numpy()


def _metric_arg(metric: str):
    return cube_metric if metric == "cube" else metric


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4) -> None:
    """Equal to ``rtol`` relative, elementwise or of the largest value (near-zero entries)."""
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _rows(X: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(X, dtype=dtype)


@pytest.fixture
def data() -> np.ndarray:
    return correlated_data(n=40, d=6)


# ---------------------------------------------------------------------------- against captum
@pytest.mark.parametrize("metric", ["mse", "mae", "cube"])
@pytest.mark.parametrize("baseline", ["zeros", "mean", "given"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_integrated_gradients_equal_captum(data, metric, baseline, dtype) -> None:
    model = sequential_ae(6, hidden=7, dtype=dtype)
    X = _rows(data, dtype)
    if baseline == "given":
        row = np.linspace(-1.0, 1.0, 6)
        expected_row = torch.tensor(row, dtype=dtype)
    elif baseline == "mean":
        row, expected_row = "mean", X.to(torch.float64).mean(dim=0).to(dtype)
    else:
        row, expected_row = "zeros", torch.zeros(6, dtype=dtype)
    result = aefi.gradient_importance(model, X, baseline=row, steps=16, metric=_metric_arg(metric))
    np.testing.assert_allclose(result.extras["baseline_row"], expected_row.numpy(), rtol=1e-6)
    expected, _ = _captum_ig(model, X, expected_row, metric, steps=16)
    _close(result.extras["per_sample"], expected)
    _close(result.importances, np.abs(expected).T)


@pytest.mark.parametrize("model_kind", ["skip", "encoder_decoder"])
@pytest.mark.parametrize("quadrature", ["gausslegendre", "riemann_middle", "riemann_left"])
def test_both_forward_paths_and_quadratures_equal_captum(data, model_kind, quadrature) -> None:
    # SkipAE cannot be split at its first Linear (plain path); EncoderDecoderAE can (rank-1 path).
    model = SkipAE(6) if model_kind == "skip" else EncoderDecoderAE(6)
    engine = GradientImportance(model, data, baseline="zeros", steps=12, quadrature=quadrature)
    assert engine.session.path.kind == ("plain" if model_kind == "skip" else "rank1")
    expected, _ = _captum_ig(model, data, torch.zeros(6, dtype=torch.float64), "mse", 12,
                             quadrature)  # fmt: skip
    _close(engine.run().extras["per_sample"], expected)


# ---------------------------------------------------------------------------- exact identities
class SmoothAE(nn.Module):
    """Softplus and Tanh: a smooth path integrand, so Gauss-Legendre converges fast."""

    def __init__(self, d: int, ignored: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.encoder = nn.Sequential(nn.Linear(d, 8), nn.Softplus(), nn.Linear(8, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, d))
        self.double().eval()
        if ignored is not None:
            with torch.no_grad():
                self.encoder[0].weight[:, ignored] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class MaskedInputAE(SmoothAE):
    """Multiplies the input by a mask first: not splittable (plain path), feature 2 unused."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(x.shape[1], dtype=x.dtype)
        mask[2] = 0.0
        return self.decoder(self.encoder(x * mask))


def _errors_by_hand(model, X: np.ndarray, points: np.ndarray, metric: str) -> np.ndarray:
    """metric(model(point_i), x_i) per sample, float64."""
    with torch.no_grad():
        recon = model(torch.tensor(points))
    return METRICS[metric](recon, torch.tensor(X)).numpy()


@pytest.mark.parametrize("metric", ["mse", "cube"])
def test_completeness_per_sample(data, metric) -> None:
    model = SmoothAE(6)
    result = aefi.gradient_importance(model, data, steps=32, metric=_metric_arg(metric))
    row = result.extras["baseline_row"]
    delta = _errors_by_hand(model, data, data, metric) - _errors_by_hand(
        model, data, np.broadcast_to(row, data.shape), metric
    )
    np.testing.assert_allclose(result.extras["error_delta"], delta, rtol=1e-12, atol=1e-14)
    sums = result.extras["per_sample"].sum(axis=1)
    # Smooth model, 32 Gauss-Legendre nodes: exact to float64 rounding for mse; |.|**3 is only
    # twice differentiable where recon crosses target, which costs a few more digits (mae, with
    # kinks there, would cost percents).
    tolerance = {"mse": 1e-9, "cube": 1e-7}[metric]
    np.testing.assert_allclose(sums, delta, rtol=0, atol=tolerance * np.abs(delta).max())
    assert result.settings["completeness_gap"] < 10 * tolerance


def test_completeness_gap_shrinks_with_steps_on_relu(data) -> None:
    model = sequential_ae(6, hidden=7)  # ReLU: kinks, so the quadrature error is visible
    gaps = []
    for steps in (4, 64, 512):
        result = aefi.gradient_importance(model, data, steps=steps, quadrature="riemann_middle")
        sums = result.extras["per_sample"].sum(axis=1)
        delta = result.extras["error_delta"]
        expected = np.abs(sums - delta).max() / np.abs(delta).mean()
        assert result.settings["completeness_gap"] == pytest.approx(expected, rel=1e-12)
        _, captum_delta = _captum_ig(model, data, result.extras["baseline_row"], "mse", steps,
                                     "riemann_middle")  # fmt: skip
        np.testing.assert_allclose(sums - delta, captum_delta, atol=1e-9)
        gaps.append(result.settings["completeness_gap"])
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 5e-3


@pytest.mark.parametrize("model_class", [SmoothAE, MaskedInputAE])
@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input"])
def test_ignored_feature_gets_exactly_zero(data, model_class, method) -> None:
    model = model_class(6, ignored=2) if model_class is SmoothAE else model_class(6)
    engine = GradientImportance(model, data, method=method, steps=8)
    result = engine.run()
    assert np.all(result.per_sample["x2"].to_numpy() == 0.0)
    assert np.all(result.importances[2] == 0.0)
    assert np.all(result.importances[[0, 1, 3, 4, 5]].max(axis=1) > 0)


@pytest.mark.parametrize("metric", ["mse", "mae", "cube"])
@pytest.mark.parametrize("model_kind", ["sequential", "skip"])
def test_gradient_x_input_equals_autograd_by_hand(data, metric, model_kind) -> None:
    model = sequential_ae(6, hidden=7) if model_kind == "sequential" else SkipAE(6)
    result = aefi.gradient_importance(
        model, data, method="gradient_x_input", metric=_metric_arg(metric)
    )
    expected = np.empty_like(data)
    for i in range(len(data)):  # one sample at a time, plain autograd
        x = torch.tensor(data[i : i + 1], requires_grad=True)
        loss = METRICS[metric](model(x), torch.tensor(data[i : i + 1])).sum()
        (gradient,) = torch.autograd.grad(loss, x)
        expected[i] = (x * gradient).detach().numpy()[0]
    np.testing.assert_allclose(result.extras["per_sample"], expected, rtol=1e-10, atol=1e-14)
    assert result.settings["steps"] == 1 and result.settings["baseline"] is None
    assert "error_delta" not in result.extras
    assert result.labels["title"] == "Gradient × input"


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("model_kind", ["sequential", "skip"])
def test_same_numbers_for_any_batch_size(model_kind) -> None:
    data = correlated_data(n=53, d=6)
    model = sequential_ae(6, hidden=7, dtype=torch.float32)
    if model_kind == "skip":
        model = SkipAE(6, dtype=torch.float32)
    X = _rows(data, torch.float32)
    results = [
        aefi.gradient_importance(model, X, steps=5, batch_size=size)
        for size in (None, 1, 7, 16, 53)
    ]
    for other in results[1:]:
        np.testing.assert_array_equal(other.extras["per_sample"], results[0].extras["per_sample"])
        np.testing.assert_array_equal(other.importances, results[0].importances)


def test_model_and_data_untouched_training_mode_restored() -> None:
    data = correlated_data(n=30, d=6)
    model = nn.Sequential(nn.Linear(6, 5), nn.Dropout(0.5), nn.ReLU(), nn.Linear(5, 6)).double()
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    flags = [m.training for m in model.modules()]
    state = copy.deepcopy(model.state_dict())
    X = data.copy()
    first = aefi.gradient_importance(model, X, steps=4)
    second = aefi.gradient_importance(model, X, steps=4)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    np.testing.assert_array_equal(X, data)
    # Eval mode during the run: dropout off, so two runs agree exactly.
    assert first == second


# ---------------------------------------------------------------------------- bad input
class CountingModel(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.layer = nn.Linear(d, d).double()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.layer(x)


@pytest.mark.parametrize(
    ("keywords", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": 2.5}, TypeError, "steps must be an integer"),
        ({"method": "saliency"}, ValueError, "unknown method 'saliency'"),
        ({"quadrature": "simpson"}, ValueError, "unknown quadrature"),
        ({"baseline": "median"}, ValueError, "unknown baseline 'median'"),
        ({"baseline": np.zeros(5)}, ValueError, r"shape \(6,\).*got shape \(5,\)"),
        ({"baseline": np.zeros((2, 6))}, ValueError, r"got shape \(2, 6\)"),
        ({"method": "gradient_x_input", "baseline": np.ones(7)}, ValueError, "got shape"),
        ({"baseline": [0, 0, np.nan, 0, 0, 0]}, ValueError, "NaN or inf at 1 feature.*'x2'"),
        ({"baseline": ["a"] * 6}, TypeError, "baseline must be"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"metric": "huber"}, ValueError, "unknown metric"),
        ({"groups": {"g": ["nope"]}}, ValueError, "unknown feature 'nope'"),
    ],
)
def test_bad_input_fails_before_any_model_call(data, keywords, error, match) -> None:
    model = CountingModel(6)
    with pytest.raises(error, match=match):
        GradientImportance(model, data, **keywords)
    assert model.calls == 0


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = sequential_ae(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).detach()


class ThroughNumpy(Detached):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            values = self.inner(x).numpy()
        return torch.from_numpy(values) + 0.0 * self.inner[0].bias.sum()


@pytest.mark.parametrize("model", [Detached(), ThroughNumpy()], ids=["detached", "numpy"])
def test_model_autograd_cannot_follow_gets_a_clear_error(data, model) -> None:
    with pytest.raises(ValueError, match=r"cannot be differentiated.*permutation_importance"):
        GradientImportance(model, data)


# ---------------------------------------------------------------------------- streaming, resume
def test_snapshots_stream_and_resume_exactly(tmp_path, data) -> None:
    model = sequential_ae(6)
    engine = GradientImportance(model, data, steps=4, batch_size=8)
    full = engine.run()
    snapshots = []
    for snapshot in engine.increments():
        snapshots.append(snapshot)
        if len(snapshots) == 2:
            break
    partial = snapshots[-1]
    assert partial.evaluations_done == 16 * 4 and partial.evaluations_total == 40 * 4
    assert np.isnan(partial.importances[:, 16:]).all()
    assert not np.isnan(partial.importances[:, :16]).any()
    assert np.isnan(partial.per_sample.iloc[16:]).all().all()
    assert (partial.n_done == 16).all()
    # Another batch size continues the same run: numbers never depend on it.
    resumed = list(GradientImportance(model, data, steps=4, batch_size=5).increments(partial))
    assert resumed[-1] == full
    # Through a checkpoint file.
    path = tmp_path / "run.npz"
    first = GradientImportance(model, data, steps=4, batch_size=8, checkpoint=path)
    for i, _ in enumerate(first.increments()):
        if i == 1:
            break
    assert GradientImportance(model, data, steps=4, checkpoint=path).run() == full


def test_resume_of_another_run_or_altered_result_is_refused(data) -> None:
    model = sequential_ae(6)
    partial = next(iter(GradientImportance(model, data, steps=4, batch_size=8).increments()))
    with pytest.raises(ValueError, match="settings that fix the numbers"):
        next(iter(GradientImportance(model, data, steps=5).increments(partial)))
    with pytest.raises(ValueError, match="the model's parameters"):
        next(iter(GradientImportance(sequential_ae(6, seed=1), data, steps=4).increments(partial)))
    extras = dict(partial.extras)
    extras["per_sample"] = np.where(np.isnan(extras["per_sample"]), 0.0, extras["per_sample"])
    fields = {f: getattr(partial, f) for f in ("feature_names", "output_names", "importances",
              "baseline_error", "settings", "groups", "resume", "labels")}  # fmt: skip
    altered = ImportanceResult(**fields, extras=extras, evaluations_done=32)
    with pytest.raises(ValueError, match="does not match its resume position"):
        next(iter(GradientImportance(model, data, steps=4).increments(altered)))
    permutation = aefi.PermutationImportance(model, data, n_repeats=1).run()
    with pytest.raises(ValueError, match=r"belongs to another run|'permutation' method"):
        next(iter(GradientImportance(model, data, steps=4).increments(permutation)))


def test_job_runs_the_method(data) -> None:
    engine = GradientImportance(sequential_ae(6), data, steps=4, batch_size=8)
    job = Job(engine).start()
    result = job.result(timeout=60)
    assert job.status == "done"
    assert result == engine.run()


# ---------------------------------------------------------------------------- the result
def test_result_summary_is_over_samples_and_per_sample_is_labelled(tmp_path, data) -> None:
    index = pd.Index([f"s{i}" for i in range(len(data))], name="donor")
    frame = pd.DataFrame(data, columns=list("abcdef"), index=index)
    result = aefi.gradient_importance(sequential_ae(6), frame, steps=8)
    assert result.method == "gradient" and result.labels == {
        "title": "Integrated gradients", "value": "|attribution| (mse units)", "axis": "sample",
    }  # fmt: skip
    per_sample = result.per_sample
    assert per_sample.shape == (40, 6) and list(per_sample.columns) == list("abcdef")
    assert list(per_sample.index) == list(index)
    summary = result.summary(sort=False)
    np.testing.assert_allclose(summary["mean"], per_sample.abs().mean(axis=0), rtol=1e-12)
    assert (summary["n_done"] == 40).all()
    half = 2.0226909 * per_sample.abs().std(axis=0) / np.sqrt(40)
    np.testing.assert_allclose(summary["ci_high"] - summary["mean"], half, rtol=1e-6)
    loaded = ImportanceResult.load(result.save(tmp_path / "g.npz"))
    assert loaded == result
    pd.testing.assert_frame_equal(loaded.per_sample, per_sample)
    integer_index = frame.set_index(pd.Index(range(100, 140)))
    labels = aefi.gradient_importance(sequential_ae(6), integer_index, steps=2).per_sample.index
    assert list(labels) == list(range(100, 140))
    assert aefi.PermutationImportance(sequential_ae(6), data, n_repeats=1).run().per_sample is None


def test_groups_sum_their_members_per_sample(data) -> None:
    model = sequential_ae(6)
    single = aefi.gradient_importance(model, data, steps=8).per_sample
    grouped = aefi.gradient_importance(
        model, data, steps=8, groups={"g": ["x4", "x1"], "h": [5]}
    ).per_sample
    assert list(grouped.columns) == ["x0", "g", "x2", "x3", "h"]
    np.testing.assert_allclose(grouped["g"], single["x1"] + single["x4"], rtol=1e-12)
    np.testing.assert_array_equal(grouped["x3"], single["x3"])
    np.testing.assert_array_equal(grouped["h"], single["x5"])


def test_benchmark_script_runs_on_a_tiny_problem(capsys) -> None:
    bench = load_benchmark("bench_gradients")
    threads = torch.get_num_threads()
    try:
        medians = bench.main(["--d", "16", "--n", "40", "--rounds", "1", "--epochs", "1",
                              "--matmul-size", "64"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "captum IntegratedGradients" in out and "First looks" in out
    assert set(medians) >= {"aefi", "captum", "IG 4 steps, all samples"}
