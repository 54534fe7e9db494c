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
