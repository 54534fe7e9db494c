"""aefi_widget: which input features does my autoencoder rely on?

Headless use::

    import aefi_widget as aefi
    res = aefi.permutation_importance(model, X, n_repeats=10)
    res.summary().head(20)

In a notebook, ``aefi.Explorer(model, X)`` streams the same numbers into a live dashboard.
"""

import sys
import warnings
from typing import Any

from aefi_widget.engine import Drilldown, PermutationImportance, permutation_importance
from aefi_widget.engine.correlated_groups import correlated_groups
from aefi_widget.engine.gradients import GradientImportance, gradient_importance
from aefi_widget.engine.latent import latent_importance
from aefi_widget.engine.latent_permutation import LatentPermutation
from aefi_widget.engine.probes import RowCouplingWarning
from aefi_widget.engine.shapley import ShapleyImportance, shapley_importance
from aefi_widget.engine.weights import weight_importance
from aefi_widget.result import ImportanceResult
from aefi_widget.rich_display import result_html
from aefi_widget.snapshot_html import write_html

__all__ = [
    "Drilldown",
    "Explorer",
    "GradientImportance",
    "ImportanceResult",
    "Job",
    "LatentPermutation",
    "PermutationImportance",
    "RowCouplingWarning",
    "ShapleyImportance",
    "correlated_groups",
    "gradient_importance",
    "latent_importance",
    "permutation_importance",
    "shapley_importance",
    "weight_importance",
    "write_html",
]
__version__ = "0.1.0"

ImportanceResult.html_renderer = result_html  # results draw themselves in notebooks


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext aefi_widget``: register the ``%aefi`` line magic (``%aefi --help``) and, in
    a Jupyter kernel, the ``aefi.jobs`` comm target that lists running jobs to the page."""
    from aefi_widget.ipython_magic import register  # IPython and the widgets load only here

    register(ipython)
    if getattr(ipython, "kernel", None) is not None:  # a Jupyter kernel, not a terminal
        from aefi_widget.job_feed import register_target

        register_target()  # the page's list of running jobs (aefi.jobs comm target)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt lab extension lies, for ``jupyter labextension develop``: a checkout
    links ``aefi_widget/labextension`` into ``sys.prefix/share/jupyter/labextensions``."""
    return [{"src": "labextension", "dest": "aefi-widget"}]


def __getattr__(name: str) -> Any:
    # Job and Explorer load lazily: the engine must import without Jupyter installed.
    if name == "Job":
        from aefi_widget.job import Job

        return Job
    if name == "Explorer":
        from aefi_widget.widget import Explorer

        return Explorer
    if name == "plot":  # matplotlib is optional: aefi.plot loads it when first used
        import aefi_widget.plot

        return aefi_widget.plot
    raise AttributeError(f"module 'aefi_widget' has no attribute {name!r}")


def _follow_jobs_from_the_page() -> None:
    """In a Jupyter kernel, register the ``aefi.jobs`` comm target at import, so the lab
    extension's status-bar item follows jobs without ``%load_ext`` (the ``%aefi`` magic still
    needs it: IPython loads an extension only when asked or configured). Elsewhere: nothing."""
    ipython = sys.modules.get("IPython")  # never imported here: only a running IPython has it
    shell = getattr(ipython, "get_ipython", lambda: None)()
    if getattr(shell, "kernel", None) is None:
        return
    try:
        from aefi_widget.job_feed import register_target

        register_target()
    except Exception as error:  # an unusual kernel must not make the import fail
        warnings.warn(
            f"aefi_widget: the status bar cannot follow jobs in this kernel ({error!r})",
            RuntimeWarning,
            stacklevel=2,
        )


_follow_jobs_from_the_page()
