"""Two runs sharing one model at once give the same numbers as each alone."""

from __future__ import annotations

import numpy as np
import torch

import aefi_widget as aefi


def test_two_jobs_on_one_model_in_train_mode_match_each_alone():
    torch.manual_seed(0)
    d = 10
    # Left in train mode with dropout: each engine switches to eval per forward call, and the
    # per-model lock keeps one engine from restoring train mode during the other's call.
    model = torch.nn.Sequential(
        torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(8, d)
    ).train()
    X = torch.randn(120, d, generator=torch.Generator().manual_seed(1))
    settings = [{"seed": 0, "metric": "mse"}, {"seed": 7, "metric": "mae"}]
    alone = [
        aefi.permutation_importance(model, X, n_repeats=6, batch_size=40, **s) for s in settings
    ]
    jobs = [
        aefi.Job(aefi.PermutationImportance(model, X, n_repeats=6, batch_size=40, **s)).start()
        for s in settings
    ]
    together = [job.result(timeout=120) for job in jobs]
    for one, both in zip(alone, together, strict=True):
        np.testing.assert_array_equal(both.importances, one.importances)
    assert model.training and all(m.training for m in model.modules())


def test_job_checkpoint_keeps_a_cancelled_run_and_a_new_job_finishes_it(tmp_path):
    torch.manual_seed(0)
    d = 10
    model = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Linear(8, d))
    X = torch.randn(120, d, generator=torch.Generator().manual_seed(1))
    keywords = {"n_repeats": 6, "batch_size": 40}
    reference = aefi.permutation_importance(model, X, **keywords)
    path = tmp_path / "job.npz"
    first = aefi.Job(aefi.PermutationImportance(model, X, **keywords), checkpoint=path)
    first.subscribe(lambda job: job.cancel() if job.snapshot().evaluations_done >= 400 else None)
    partial = first.start().result(timeout=60)
    assert first.status == "cancelled" and path.exists()
    saved = aefi.ImportanceResult.load(path)
    assert saved.evaluations_done == partial.evaluations_done < saved.evaluations_total
    second = aefi.Job(aefi.PermutationImportance(model, X, **keywords), checkpoint=path)
    final = second.start().result(timeout=60)
    assert second.status == "done"
    np.testing.assert_array_equal(final.importances, reference.importances)


def test_two_explorers_on_one_model_match_each_alone():
    torch.manual_seed(0)
    d = 10
    model = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Linear(8, d))
    X = torch.randn(120, d, generator=torch.Generator().manual_seed(1))
    settings = [{"seed": 0}, {"seed": 3, "target": "permuted"}]
    alone = [
        aefi.permutation_importance(model, X, n_repeats=6, batch_size=40, **s) for s in settings
    ]
    explorers = [aefi.Explorer(model, X, n_repeats=6, batch_size=40, **s) for s in settings]
    try:
        for explorer in explorers:
            assert explorer.job.wait(timeout=60)
        explorers[0].selected_feature = "x3"  # a drilldown while the other explorer's job ran
        for explorer, expected in zip(explorers, alone, strict=True):
            np.testing.assert_array_equal(explorer.result.importances, expected.importances)
    finally:
        for explorer in explorers:
            explorer.close()
