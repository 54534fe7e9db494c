"""groups="auto": correlated blocks found by correlated_groups are shuffled together."""

from __future__ import annotations

import numpy as np
import torch

import aefi_widget as aefi


def _planted(n: int = 300, seed: int = 0) -> np.ndarray:
    """Columns 0-2 are one factor plus small noise (|rho| ~ 0.99), 3-5 another; 6-7 independent."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))
    block_a = a + 0.1 * rng.normal(size=(n, 3))
    block_b = b + 0.1 * rng.normal(size=(n, 3))
    return np.hstack([block_a, block_b, rng.normal(size=(n, 2))]).astype(np.float32)


class RedundantBlocks(torch.nn.Module):
    """Reconstructs each block from its members' mean: every member is redundant with the others."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x[:, 0:3].mean(dim=1, keepdim=True).expand(-1, 3)
        b = x[:, 3:6].mean(dim=1, keepdim=True).expand(-1, 3)
        return torch.cat([a, b, x[:, 6:8]], dim=1)


def test_auto_groups_recover_the_planted_blocks_exactly():
    X = _planted()
    names = [f"g{j}" for j in range(8)]
    groups = aefi.correlated_groups(X, feature_names=names)
    assert sorted(sorted(members) for members in groups.values()) == [
        ["g0", "g1", "g2"],
        ["g3", "g4", "g5"],
    ]
    result = aefi.permutation_importance(
        RedundantBlocks(), X, n_repeats=3, feature_names=names, groups="auto"
    )
    assert {tuple(m) for m in result.groups.values()} == {("g0", "g1", "g2"), ("g3", "g4", "g5")}
    assert set(result.feature_names) == set(groups) | {"g6", "g7"}


def test_a_redundantly_used_block_outweighs_every_member_alone():
    X = _planted()
    single = aefi.permutation_importance(RedundantBlocks(), X, n_repeats=5).importances_mean
    result = aefi.permutation_importance(RedundantBlocks(), X, n_repeats=5, groups="auto")
    grouped = result.importances_mean
    for block, members in result.groups.items():
        assert grouped[block] > 3 * single[list(members)].max()


def test_an_unknown_groups_string_is_refused_before_work():
    import pytest

    with pytest.raises(ValueError, match="'auto'"):
        aefi.PermutationImportance(RedundantBlocks(), _planted(), groups="automatic")
