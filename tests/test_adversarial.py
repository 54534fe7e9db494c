"""Adversarial sweep (issue 14): every input, file and fault an adversarial user tried, each under
a timeout, so a hang fails instead of stalling CI.

Each case ends in a clear ``ValueError``/``TypeError`` (``OSError`` for file-system problems)
before any model call beyond the probes, or in the correct numbers; the user's X and model are
compared before and after. The cases that used to hang also run in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

import aefi_widget as aefi
from aefi_widget.engine.probes import PROBE_CALLS, RowCouplingWarning
from aefi_widget.result_file import sealed

# signal-based: interrupts a Python loop that would spin forever (a crafted resume position).
pytestmark = pytest.mark.timeout(30)

D, N = 6, 40


def data(n: int = N, d: int = D, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def autoencoder(seed: int = 0) -> torch.nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(D, 4), torch.nn.ReLU(), torch.nn.Linear(4, D))


class Counting(torch.nn.Module):
    """Counts forward calls, to prove an error came before any work."""

    def __init__(self, inner: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.inner = inner if inner is not None else autoencoder()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


class Untouched:
    """Copies of a model's state and of X, compared with the originals on ``check()``."""

    def __init__(self, model, X) -> None:
        self.model, self.X = model, X
        self.state = (
            {k: v.clone() for k, v in model.state_dict().items()}
            if hasattr(model, "state_dict")
            else None
        )
        self.training = [m.training for m in model.modules()] if hasattr(model, "modules") else []
        self.X_copy = _comparable(X)

    def check(self) -> None:
        if self.state is not None:
            now = self.model.state_dict()
            assert now.keys() == self.state.keys()
            for key, value in self.state.items():
                assert _same(now[key], value), key
        if self.training:
            assert [m.training for m in self.model.modules()] == self.training
        if isinstance(self.X, torch.Tensor):
            assert _same(_comparable(self.X), self.X_copy)
        else:
            np.testing.assert_array_equal(self.X, self.X_copy)


def _comparable(X):
    if isinstance(X, torch.Tensor):
        return X.to_dense() if X.layout != torch.strided else X.clone()
    return np.array(X, copy=True)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.is_meta or b.is_meta:  # no values to compare
        return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
    return torch.equal(a, b)


def first_snapshot(model, X, chunks: int = 1, **keywords) -> aefi.ImportanceResult:
    """The snapshot after ``chunks`` chunks of 16 samples (2 repeats)."""
    engine = aefi.PermutationImportance(model, X, n_repeats=2, batch_size=16, **keywords)
    increments = engine.increments()
    for _ in range(chunks):
        snapshot = next(increments)
    increments.close()
    assert 0 < snapshot.evaluations_done < engine.evaluations_total
    return snapshot


def rewrite(path: Path, change_header=None, change_arrays=None, reseal: bool = True,
            raw: tuple[bytes, bytes] | None = None) -> None:  # fmt: skip
    """Edit a saved file's header and arrays; ``reseal`` recomputes its checksum, as a
    deliberate crafter would (so the deeper checks are what refuses it); ``raw`` replaces
    bytes in the header's JSON text last."""
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    header = json.loads(arrays.pop("header").tobytes())
    if change_header is not None:
        change_header(header)
    if change_arrays is not None:
        change_arrays(arrays)
    if reseal:
        members = sealed({k: v for k, v in header.items() if k != "checksum"}, arrays)
    else:
        members = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays}
    if raw is not None:
        text = members["header"].tobytes().replace(*raw)
        members["header"] = np.frombuffer(text, np.uint8)
    path.unlink()
    np.savez(path, **members)


def run_isolated(script: str, timeout: float = 60) -> str:
    """Run ``script`` in a fresh interpreter; a hang fails the test after ``timeout`` seconds."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


# ---------------------------------------------------------------------------- hangs
def test_resume_from_a_run_without_max_samples_is_refused_in_a_fresh_process():
    out = run_isolated(
        """
        import torch, aefi_widget as aefi
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 6))
        X = torch.randn(100, 6)
        g = aefi.PermutationImportance(m, X, n_repeats=2, batch_size=48).increments()
        s = next(g); g.close()
        try:
            aefi.PermutationImportance(m, X, n_repeats=2, max_samples=10, batch_size=48).run(
                resume=s)
        except ValueError as error:
            print("refused:", error)
        """
    )
    assert "refused:" in out and "max_samples" in out


@pytest.mark.parametrize("position", [{"chunk": 1_000_000}, {"batch_rows": -5},
                                      {"batch_rows": 0}, {"round": 10**12}])  # fmt: skip
@pytest.mark.parametrize("reseal", [False, True])
def test_checkpoint_with_a_crafted_position_is_refused_not_looped(tmp_path, position, reseal):
    model, X, path = autoencoder(), data(), tmp_path / "run.npz"
    engine = aefi.PermutationImportance(model, X, n_repeats=3, batch_size=16, checkpoint=path)
    increments = engine.increments()
    next(increments)
    increments.close()
    rewrite(path, lambda h: h["resume"]["position"].update(position), reseal=reseal)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"checkpoint|position|batch_rows|chunk|round"):
        aefi.PermutationImportance(
            model, X, n_repeats=3, batch_size=16, checkpoint=path, checkpoint_every=0
        ).run()
    assert path.read_bytes() == before  # not rewritten every second, not rewritten at all


# ---------------------------------------------------------------------------- mixed numbers
def _scaled(k: float) -> torch.nn.Module:
    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.k = k  # a plain attribute: not a parameter or buffer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.k * x

    return Scaled()


def _buffered(shift: float) -> torch.nn.Module:
    class Buffered(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("shift", torch.full((D,), shift))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x + self.shift

    return Buffered()


OTHER_RUNS = {
    "seed": ({}, {"seed": 1}),
    "max_samples": ({}, {"max_samples": 20}),
    "metric": ({}, {"metric": "mae"}),
    "target": ({}, {"target": "permuted"}),
    "groups": ({}, {"groups": {"g": ["x0", "x1"]}}),
    "lambda_metric": ({"metric": lambda r, t: ((r - t) ** 2).mean(1)},
                      {"metric": lambda r, t: (r - t).abs().mean(1)}),
}  # fmt: skip
OTHER_MODELS = {
    "parameters": (lambda: autoencoder(0), lambda: autoencoder(1)),
    "attribute": (lambda: _scaled(0.5), lambda: _scaled(0.9)),
    "buffer": (lambda: _buffered(0.0), lambda: _buffered(0.1)),
    "plain_callable": (lambda: lambda x: 0.5 * x, lambda: lambda x: 0.9 * x),
}


@pytest.mark.parametrize("how", ["snapshot", "checkpoint", "job"])
@pytest.mark.parametrize("change", sorted(OTHER_RUNS) + sorted(OTHER_MODELS) + ["data"])
def test_resume_of_another_run_is_refused(tmp_path, change, how):
    X, other_X = data(), data()
    make, make_other = OTHER_MODELS.get(change, (autoencoder, autoencoder))
    first, second = OTHER_RUNS.get(change, ({}, {}))
    if change == "data":
        other_X = data(seed=2)
    model, other_model = make(), make_other()
    snapshot = first_snapshot(model, X, **first)
    guard = Untouched(other_model, other_X) if change in OTHER_MODELS else None
    engine = aefi.PermutationImportance(other_model, other_X, n_repeats=2, batch_size=16,
                                        **second)  # fmt: skip
    with pytest.raises(ValueError, match=r"another run|does not belong|other features"):
        if how == "snapshot":
            engine.run(resume=snapshot)
        elif how == "checkpoint":
            path = tmp_path / "run.npz"
            snapshot.save(path)
            engine.run() if engine.checkpoint else engine.increments(checkpoint=path).__next__()
        else:
            aefi.Job(engine, resume=snapshot).start().result(timeout=20)
    if guard is not None:
        guard.check()


def test_more_repeats_continue_bit_for_bit(tmp_path):
    model, X = autoencoder(), data()
    full = aefi.permutation_importance(model, X, n_repeats=5, batch_size=16)
    snapshot = first_snapshot(model, X)
    more = aefi.PermutationImportance(model, X, n_repeats=5, batch_size=16).run(resume=snapshot)
    np.testing.assert_array_equal(more.importances, full.importances)
    np.testing.assert_array_equal(more.delta_sum, full.delta_sum)
    path = tmp_path / "run.npz"
    aefi.permutation_importance(model, X, n_repeats=2, batch_size=16, checkpoint=path)
    resumed = aefi.permutation_importance(model, X, n_repeats=5, batch_size=16, checkpoint=path)
    np.testing.assert_array_equal(resumed.importances, full.importances)


# ---------------------------------------------------------------------------- crafted files
def _saved(tmp_path: Path, resume: bool = True) -> tuple[Path, aefi.ImportanceResult]:
    model, X = autoencoder(), data()
    result = (
        first_snapshot(model, X, chunks=7)
        if resume
        else aefi.permutation_importance(model, X, n_repeats=2)
    )
    path = tmp_path / "result.npz"
    result.save(path)
    return path, result


CRAFTED = {
    "version_1e400": lambda h: h.update(version=1e400),
    "header_a_list": None,  # handled below: the whole header is a JSON list
    "identity_a_list": lambda h: h["resume"].update(identity=["a", "b"]),
    "groups_a_list": lambda h: h.update(groups=[]),
    "batch_rows_0": lambda h: h["resume"]["position"].update(batch_rows=0),
    "partial_infinite": lambda h: h["resume"]["position"].update(partial_error_sum=1e400),
    "chunk_minus_1": lambda h: h["resume"]["position"].update(chunk=-1),
    "chunk_shifted": lambda h: h["resume"]["position"].update(chunk=2),
    "evaluations_done": lambda h: h.update(evaluations_done=h["evaluations_done"] + 16),
    "huge_integer": lambda h: h.update(evaluations_total="HUGE"),  # 5,000 digits, see below
}


@pytest.mark.parametrize("reseal", [False, True])
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_header_is_refused_with_a_value_error(tmp_path, name, reseal):
    path, _ = _saved(tmp_path)
    if name == "header_a_list":
        with np.load(path) as stored:
            arrays = {k: stored[k] for k in stored.files}
        arrays["header"] = np.frombuffer(b"[1, 2]", np.uint8)
        np.savez(path, **arrays)
    else:
        raw = (b'"HUGE"', b"1" + b"0" * 5000) if name == "huge_integer" else None
        rewrite(path, CRAFTED[name], reseal=reseal, raw=raw)
    try:
        loaded = aefi.ImportanceResult.load(path)
    except ValueError as error:
        assert path.name in str(error) and "delete" not in str(error)
        assert type(error).__name__ in ("ValueError", "FileProblem")
        return
    assert reseal  # without a matching checksum every edit is refused by load
    # An edit that keeps the file consistent on its own must fail when it is resumed.
    with pytest.raises(ValueError, match=r"resume|position|evaluations_done|partial"):
        aefi.PermutationImportance(autoencoder(), data(), n_repeats=2, batch_size=16).run(
            resume=loaded
        )


def test_finished_column_set_to_nan_is_refused(tmp_path):
    path, _ = _saved(tmp_path)

    def blank(arrays):
        importances = arrays["importances"].copy()
        importances[0, 0] = np.nan
        arrays["importances"] = importances

    rewrite(path, change_arrays=blank, reseal=False)
    with pytest.raises(ValueError, match="checksum"):
        aefi.ImportanceResult.load(path)
    rewrite(path, change_arrays=blank, reseal=True)
    loaded = aefi.ImportanceResult.load(path)  # a NaN is a legal value in a file ...
    with pytest.raises(ValueError, match="resume position"):  # ... not where work is finished
        aefi.PermutationImportance(autoencoder(), data(), n_repeats=2, batch_size=16).run(
            resume=loaded
        )


def test_wrong_shaped_resume_array_is_refused_clearly(tmp_path):
    path, _ = _saved(tmp_path)

    def widen(arrays):
        arrays["resume.partial_delta_sum"] = np.zeros(D + 3)

    rewrite(path, change_arrays=widen, reseal=True)
    with pytest.raises(ValueError, match="shape") as caught:
        aefi.ImportanceResult.load(path)
    assert "broadcast" not in str(caught.value)


def test_unused_and_oversized_members_are_never_read(tmp_path):
    path, result = _saved(tmp_path, resume=False)
    # An extra member claiming 10^8 float64s (800 MB) holding 16 bytes: reading it would fail.
    with zipfile.ZipFile(path, "a") as archive, archive.open("unused.npy", "w") as stream:
        np.lib.format.write_array_header_1_0(
            stream, {"descr": "<f8", "fortran_order": False, "shape": (10**8,)}
        )
        stream.write(b"\0" * 16)
    assert aefi.ImportanceResult.load(path) == result
    # The same lie in a member that is read: refused from its header, before any allocation.
    with np.load(path) as stored:
        members = {k: stored[k] for k in stored.files if k != "unused"}
    np.savez(path, **{k: v for k, v in members.items() if k != "importances"})
    with zipfile.ZipFile(path, "a") as archive, archive.open("importances.npy", "w") as stream:
        np.lib.format.write_array_header_1_0(
            stream, {"descr": "<f8", "fortran_order": False, "shape": (10**8,)}
        )
        stream.write(b"\0" * 16)
    with pytest.raises(ValueError, match="importances"):
        aefi.ImportanceResult.load(path)


# ---------------------------------------------------------------------------- silent wrong numbers
class SubtractsInPlace(torch.nn.Module):
    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.inner, self.in_place = autoencoder(), in_place

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.sub_(1.0) if self.in_place else x - 1.0)


@pytest.mark.parametrize("target", ["original", "permuted"])
def test_a_model_writing_into_its_input_gets_the_right_numbers(target):
    X = data()
    cases = [(lambda x: x.mul_(2.0), lambda x: x * 2.0),
             (SubtractsInPlace(True), SubtractsInPlace(False))]  # fmt: skip
    for writer, clean in cases:
        guard = Untouched(writer, X)
        got = aefi.permutation_importance(writer, X, n_repeats=2, target=target, batch_size=16)
        want = aefi.permutation_importance(clean, X, n_repeats=2, target=target, batch_size=16)
        assert got.baseline_error == want.baseline_error > 0
        np.testing.assert_array_equal(got.importances, want.importances)
        np.testing.assert_array_equal(got.delta_sum, want.delta_sum)
        guard.check()


@pytest.mark.parametrize("path", ["auto", "rank1"])
def test_in_place_activation_after_the_first_layer_does_not_corrupt_the_rank1_path(path):
    def model(in_place: bool) -> torch.nn.Sequential:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(D, 4), torch.nn.ReLU(inplace=in_place),
                                       torch.nn.Linear(4, D))  # fmt: skip

    X = data()
    reference = aefi.permutation_importance(model(False), X, n_repeats=2, _forward_path="plain")
    engine = aefi.PermutationImportance(model(True), X, n_repeats=2, _forward_path=path)
    assert engine.forward_path == "rank1"
    np.testing.assert_allclose(engine.run().importances, reference.importances, rtol=1e-5,
                               atol=1e-7)  # fmt: skip


def test_a_model_coupling_rows_warns_that_results_depend_on_batch_size():
    X = data()
    with pytest.warns(RowCouplingWarning, match="batch_size"):
        aefi.PermutationImportance(lambda x: x - x.mean(0), X, n_repeats=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RowCouplingWarning)
        aefi.PermutationImportance(autoencoder(), X, n_repeats=2)  # an ordinary model: silent


class Drifting(torch.nn.Module):
    """Changes its weights on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = autoencoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.inner[0].weight.mul_(1.01)
        return self.inner(x)


class SamplingVAE(torch.nn.Module):
    """Samples z in forward even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.decoder = torch.nn.Linear(D, 4), torch.nn.Linear(2, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        return self.decoder(mu + torch.randn_like(mu) * (0.5 * log_var).exp())


def test_a_random_or_self_changing_model_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"VAE.*decode|decode.*mean|mean"):
        aefi.PermutationImportance(SamplingVAE(), data(), n_repeats=2)
    with pytest.raises(ValueError, match="changes its own state"):
        aefi.PermutationImportance(Drifting(), data(), n_repeats=2)


def test_a_custom_metric_writing_into_the_reconstruction_is_refused():
    def metric(recon, target):
        return recon.sub_(target).pow_(2).mean(1)

    with pytest.raises(ValueError, match="writes into its first argument"):
        aefi.PermutationImportance(autoencoder(), data(), n_repeats=2, metric=metric)


# ---------------------------------------------------------------------------- deep errors
def _refused_before_work(error, match, model=None, X=None, **keywords):
    model = Counting() if model is None else model
    X = data() if X is None else X
    guard = Untouched(model, X) if isinstance(X, torch.Tensor | np.ndarray) else None
    keywords.setdefault("n_repeats", 2)
    with pytest.raises(error, match=match) as caught:
        aefi.PermutationImportance(model, X, **keywords)
    if isinstance(model, Counting):
        assert model.calls == 0
    if guard is not None:
        guard.check()
    return caught.value


@pytest.mark.parametrize("device, match", [
    ("cuda", "needs a CUDA GPU"), ("cuda:7", "CUDA"), ("mps", "mps"), ("gpu0", "not a device"),
    ("meta", "meta"), (3.5, "device must be"),
])  # fmt: skip
def test_unusable_devices_fail_clearly_at_construction(device, match):
    if isinstance(device, str) and device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    error = TypeError if isinstance(device, float) else ValueError
    _refused_before_work(error, match, device=device)


def test_meta_model_and_meta_X_fail_clearly():
    _refused_before_work(ValueError, "meta device", model=autoencoder().to("meta"))
    _refused_before_work(ValueError, "meta device", X=data().to("meta"))


class AnnData:
    """Stands in for anndata.AnnData (not installed here): what the check looks at."""

    __module__ = "anndata._core.anndata"

    def __init__(self, X) -> None:
        self.X = X


@pytest.mark.parametrize("kind, match", [
    ("coo", "to_dense"), ("csr", "to_dense"), ("scipy", r"toarray\(\)"), ("anndata", "to_df"),
])  # fmt: skip
def test_sparse_and_annotated_data_say_how_to_convert(kind, match):
    dense = data()
    X = {
        "coo": lambda: dense.to_sparse(),
        "csr": lambda: dense.to_sparse_csr(),
        "scipy": lambda: scipy.sparse.csr_matrix(dense.numpy()),
        "anndata": lambda: AnnData(scipy.sparse.csr_matrix(dense.numpy())),
    }[kind]()
    assert "numpy.asarray" not in str(_refused_before_work(TypeError, match, X=X))


def test_output_shape_changing_after_the_probe_fails_clearly():
    class Shrinking(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return x if self.calls <= PROBE_CALLS else x[:, :-1]

    with pytest.raises(ValueError, match=r"returned shape \(\d+, 5\)"):
        aefi.permutation_importance(Shrinking(), data(), n_repeats=2)


def test_absurd_n_repeats_is_refused_at_construction():
    _refused_before_work(ValueError, "GiB", n_repeats=10**9)
    _refused_before_work(ValueError, "GiB", n_repeats=10**30)


def test_uint64_values_near_2_to_64_fail_clearly():
    X = np.full((N, D), 2**64 - 5, dtype=np.uint64)
    X[::2] -= np.uint64(2**40)
    _refused_before_work(ValueError, "too large for the model's dtype", X=X)


@pytest.mark.parametrize("engine", [None, 3, "engine", object()])
def test_job_of_something_that_is_not_an_engine_is_a_type_error(engine):
    with pytest.raises(TypeError, match="Job needs an engine"):
        aefi.Job(engine)


# ---------------------------------------------------------------------------- files harmed or lost
def test_checkpoint_paths_that_cannot_work_fail_at_construction(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    model = Counting()
    for path, error in [(a_file / "run.npz", NotADirectoryError), (tmp_path, IsADirectoryError),
                        (tmp_path / "missing" / "run.npz", NotADirectoryError)]:  # fmt: skip
        with pytest.raises(error):
            aefi.PermutationImportance(model, data(), n_repeats=2, checkpoint=path)
    assert model.calls == 0 and a_file.read_text() == "mine"


def test_rewriting_a_checkpoint_keeps_its_mode_and_a_read_only_one_is_never_replaced(tmp_path):
    model, X, path = autoencoder(), data(), tmp_path / "run.npz"
    aefi.permutation_importance(model, X, n_repeats=2, checkpoint=path)
    os.chmod(path, 0o640)
    aefi.permutation_importance(model, X, n_repeats=3, checkpoint=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    os.chmod(path, 0o440)
    before = path.read_bytes()
    with pytest.raises(PermissionError, match="read-only"):
        aefi.PermutationImportance(model, X, n_repeats=4, checkpoint=path)
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o440


@pytest.mark.parametrize("content", ["unrelated_npz", "saved_result", "text", "other_run"])
def test_a_users_file_at_the_checkpoint_path_is_refused_untouched_and_never_to_be_deleted(
    tmp_path, content
):
    path, model, X = tmp_path / "mine.npz", autoencoder(), data()
    if content == "unrelated_npz":
        np.savez(path, weights=np.arange(5.0))
    elif content == "saved_result":  # a result without a resume state
        done = aefi.permutation_importance(model, X, n_repeats=2)
        aefi.ImportanceResult(done.feature_names, done.output_names, done.importances,
                              done.baseline_error, settings=done.settings).save(path)  # fmt: skip
    elif content == "text":
        path.write_text("my notes")
    else:
        first_snapshot(model, X, seed=7).save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="checkpoint") as caught:
        aefi.permutation_importance(model, X, n_repeats=2, checkpoint=path)
    assert "delete" not in str(caught.value).lower()
    assert "untouched" in str(caught.value)
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------- unclear
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # its __del__
def test_explorer_top_must_be_an_int_in_range():
    pytest.importorskip("anywidget")
    for top in ("abc", "5", 2.7, 0, 10**6):
        with pytest.raises((TypeError, ValueError), match="top"):
            aefi.Explorer(autoencoder(), data(), n_repeats=2, top=top, autostart=False)


def test_a_saved_result_of_this_very_run_is_a_finished_checkpoint(tmp_path):
    path, model, X = tmp_path / "done.npz", Counting(), data()
    done = aefi.permutation_importance(model, X, n_repeats=2)
    done.save(path)
    before, calls = path.read_bytes(), model.calls
    again = aefi.permutation_importance(model, X, n_repeats=2, checkpoint=path)
    np.testing.assert_array_equal(again.importances, done.importances)
    assert path.read_bytes() == before
    assert model.calls - calls == PROBE_CALLS + 1  # the probes and the baseline, no permutation
