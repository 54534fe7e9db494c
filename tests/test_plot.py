"""aefi_widget.plot: figures compared with reference PNGs (matplotlib's compare_images, an RMS
tolerance), the Axes returned, bad input refused, and results left unchanged."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import aefi_widget as aefi
from aefi_widget import plot

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402

BASELINES = Path(__file__).parent / "baseline_images" / "plot"
# Set to rewrite the references after a deliberate change of style (then look at them).
UPDATE = os.environ.get("AEFI_UPDATE_PLOT_BASELINES") == "1"
# RMS over pixels (0-255): text rendering noise stays below 1; a missing whisker, bar, box,
# legend or group label moves it above (checked by test_the_tolerance_sees_a_missing_whisker).
TOLERANCE = 1.0
NAMES = ["CD3E", "MS4A1", "LYZ", "NKG7", "T"]


def _result(seed: int = 0, title: str = "Permutation importance", repeats: int = 6):
    """A hand-built result: 5 units (one group), known estimates, per-output and latent matrices."""
    rng = np.random.default_rng(seed)
    means = np.array([0.8, 0.3, 1.5, -0.2, 1.0])
    importances = means[:, None] + 0.2 * rng.standard_normal((5, repeats))
    return aefi.ImportanceResult(
        NAMES, ["CD3E", "MS4A1", "LYZ", "NKG7", "GNLY", "PPBP"], importances, 2.0,
        delta_sum=np.abs(rng.standard_normal((5, 6))) * repeats,
        groups={"T": ("GNLY", "PPBP")}, labels={"title": title},
        extras={"latent_shift": np.abs(rng.standard_normal((5, 3)))},
    )  # fmt: skip


FIGURES = {
    "bar": lambda ax: plot.importance(_result(), ax=ax),
    "box": lambda ax: plot.importance(_result(), kind="box", top=4, ax=ax),
    "first_look": lambda ax: plot.importance(_result(repeats=1), ax=ax),
    "compare": lambda ax: plot.compare([_result(), _result(seed=1, title="Shapley values")], ax=ax),
    "heatmap": lambda ax: plot.heatmap(_result(), ax=ax),
    "heatmap_latent": lambda ax: plot.heatmap(_result(), matrix="latent_shift", ax=ax),
}


def _draw(name: str, path: Path, draw=None) -> None:
    fig, ax = plt.subplots(figsize=(4, 3), dpi=50, layout="constrained")
    returned = (draw or FIGURES[name])(ax)
    assert returned is ax
    fig.savefig(path)
    plt.close(fig)


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_matches_its_reference(name, tmp_path) -> None:
    actual = tmp_path / f"{name}.png"
    _draw(name, actual)
    expected = BASELINES / f"{name}.png"
    if UPDATE:
        shutil.copy(actual, expected)
    failure = compare_images(str(expected), str(actual), tol=TOLERANCE)
    assert failure is None, failure


def test_the_tolerance_sees_a_missing_whisker(tmp_path, monkeypatch) -> None:
    """The same bar chart without its error bars fails the comparison."""
    monkeypatch.setattr(plt.Axes, "errorbar", lambda self, *a, **k: None)
    actual = tmp_path / "bar.png"
    _draw("bar", actual)
    assert compare_images(str(BASELINES / "bar.png"), str(actual), tol=TOLERANCE) is not None


def test_bar_shows_the_top_units_with_their_interval() -> None:
    result = _result()
    ax = plot.importance(result, top=3)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["CD3E", "T (2)", "LYZ"]  # most important at the top (drawn last)
    summary = result.summary(sort=False)
    widths = [bar.get_width() for bar in ax.patches]
    np.testing.assert_array_equal(widths, summary.loc[["CD3E", "T", "LYZ"], "mean"])
    (errorbar,) = ax.containers[1:]  # BarContainer, then the ErrorbarContainer
    segments = errorbar.lines[2][0].get_segments()
    bounds = summary.loc[["CD3E", "T", "LYZ"], ["ci_low", "ci_high"]]
    np.testing.assert_allclose([s[:, 0] for s in segments], bounds)
    assert ax.get_xlabel() == "Δ error"
    plt.close("all")


def test_plots_do_not_change_results() -> None:
    results = [_result(), _result(seed=1)]
    before = [r.to_arrays() for r in results]
    plot.importance(results[0])
    plot.importance(results[0], kind="box")
    plot.compare(results)
    plot.heatmap(results[0])
    for result, arrays in zip(results, before, strict=True):
        after = result.to_arrays()
        assert all(np.array_equal(arrays[k], after[k], equal_nan=True) for k in arrays)
    plt.close("all")


def test_bad_input_gets_a_clear_error() -> None:
    result = _result()
    with pytest.raises(ValueError, match='kind must be "bar" or "box"'):
        plot.importance(result, kind="violin")
    with pytest.raises(ValueError, match="top must be a positive integer"):
        plot.importance(result, top=0)
    with pytest.raises(ValueError, match="compare needs at least one result"):
        plot.compare([])
    other = aefi.ImportanceResult(["a", "b"], ["a", "b"], np.ones((2, 2)), 1.0)
    with pytest.raises(ValueError, match="has no unit 'LYZ'"):
        plot.compare({"mine": result, "other": other})
    with pytest.raises(ValueError, match="no matrix to draw"):
        plot.heatmap(other)
    with pytest.raises(ValueError, match="'latent_map' is not in this result"):
        plot.heatmap(result, matrix="latent_map")


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'aefi_widget\[plots\]'"):
        plot.importance(_result())
