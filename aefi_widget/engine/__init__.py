"""The attribution engine: pure torch/numpy, no Jupyter imports.

Methods are generators that yield immutable :class:`~aefi_widget.result.ImportanceResult`
snapshots as work proceeds, in large batched tensor operations.
"""

from aefi_widget.engine.drilldown import Drilldown
from aefi_widget.engine.gradients import GradientImportance, gradient_importance
from aefi_widget.engine.latent import latent_importance
from aefi_widget.engine.latent_permutation import LatentPermutation
from aefi_widget.engine.permutation import PermutationImportance, permutation_importance
from aefi_widget.engine.shapley import ShapleyImportance, shapley_importance
from aefi_widget.engine.weights import weight_importance

__all__ = [
    "Drilldown",
    "GradientImportance",
    "LatentPermutation",
    "PermutationImportance",
    "ShapleyImportance",
    "gradient_importance",
    "latent_importance",
    "permutation_importance",
    "shapley_importance",
    "weight_importance",
]
