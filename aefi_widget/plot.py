"""Paper-ready matplotlib figures of results, without a widget (like scanpy's ``sc.pl.*``).

Each function draws into ``ax`` (a new figure when None) and returns the Axes, so a figure can
be composed and saved with matplotlib's own tools. Styled like the dashboard: bars of the mean
with the 95 % interval as whiskers, boxes over the estimates, a group labelled with its member
count, and a result that cannot rank yet (one estimate per unit: no interval) marked as a first
look in the title. Results are read, never changed.

Needs matplotlib: ``pip install 'aefi_widget[plots]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["compare", "heatmap", "importance"]

# The dashboard's colours (js/widget.css, JupyterLab's light theme defaults).
BAR = "#1976d2"
BOX_FILL = "#90caf9"
BOX_EDGE = "#0d47a1"
WHISKER = "#212121"
_CYCLE = ("#1976d2", "#ef6c00", "#388e3c", "#7b1fa2", "#c62828", "#00838f")
# Matrices a heatmap can show, in the order "auto" picks them.
_MATRICES = ("delta_recon", "latent_shift", "latent_map")


def importance(result: Any, kind: str = "bar", top: int = 20, ax: Any = None) -> Any:
    """The ``top`` most important units of ``result``, most important at the top.

    Parameters
    ----------
    result : ImportanceResult
        Any method's result, partial or complete.
    kind : {"bar", "box"}, default "bar"
        "bar": the mean per unit with its 95 % Student-t interval (``summary()``'s ``ci_low`` /
        ``ci_high``) as whiskers; "box": a box plot of the unit's estimates (repeats,
        permutations or samples: ``labels["axis"]``), whiskers at 1.5 IQR.
    top : int, default 20
        How many units to show (ranked by mean, as ``result.top``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, with x labelled in ``labels["value"]`` units and one y tick per unit (a group
        reads ``name (k)``, k its members).
    """
    if kind not in ("bar", "box"):
        raise ValueError(f'kind must be "bar" or "box", got {kind!r}')
    top = _check_top(top)
    ax = _axes(ax, n_rows=min(top, result.n_features))
    names = result.top(top)[::-1]  # barh draws bottom-up: most important at the top
    summary = result.summary(sort=False).loc[names] if names else result.summary().iloc[:0]
    positions = np.arange(len(names))
    if kind == "bar":
        mean = summary["mean"].to_numpy(dtype=np.float64)
        ax.barh(positions, mean, color=BAR, height=0.7)
        has_interval = summary["n_done"].to_numpy() > 1  # one estimate: no interval to draw
        whiskers = np.vstack([mean - summary["ci_low"], summary["ci_high"] - mean])
        ax.errorbar(mean[has_interval], positions[has_interval], xerr=whiskers[:, has_interval],
                    fmt="none", ecolor=WHISKER, capsize=2, lw=1)  # fmt: skip
    else:
        rows = [result.feature_names.index(name) for name in names]
        estimates = [_finite(result.importances[row]) for row in rows]
        ax.boxplot(
            estimates, positions=positions, **_horizontal(), widths=0.6, patch_artist=True,
            boxprops={"facecolor": BOX_FILL, "edgecolor": BOX_EDGE},
            medianprops={"color": BOX_EDGE, "linewidth": 2}, flierprops={"markersize": 3},
        )  # fmt: skip
    ax.set_yticks(positions, [_unit_label(result, name) for name in names])
    ax.axvline(0.0, color="#9e9e9e", lw=0.8, zorder=0)
    ax.set_xlabel(result.labels["value"])
    ax.set_title(_title(result, summary["n_done"].to_numpy()))
    return ax


def compare(results: Mapping[str, Any] | Sequence[Any], top: int = 20, ax: Any = None) -> Any:
    """Several methods side by side on the units the first ranks highest.

    Methods measure in different units, so each is shown as its share of its own total
    positive mean importance (``summary()``'s ``normalized`` for positive means; a negative
    mean stays negative), its interval scaled by the same factor.

    Parameters
    ----------
    results : mapping of str -> ImportanceResult, or sequence of ImportanceResult
        The methods' results on the same features; a sequence is named by ``labels["title"]``.
    top : int, default 20
        How many units, taken from the first result's ranking.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        Grouped horizontal bars, one colour per method, with a legend.
    """
    named = _named(results)
    top = _check_top(top)
    first = next(iter(named.values()))
    names = first.top(top)
    for label, result in named.items():
        missing = [n for n in names if n not in result.feature_names]
        if missing:
            raise ValueError(
                f"result {label!r} has no unit {missing[0]!r} (of the first result's top "
                f"{len(names)}); compare results computed on the same features"
            )
    names = names[::-1]  # barh draws bottom-up: most important at the top
    ax = _axes(ax, n_rows=len(names) * max(1, len(named)) // 2 + 1)
    height = 0.8 / len(named)
    positions = np.arange(len(names))
    for index, (label, result) in enumerate(named.items()):
        summary = result.summary(sort=False).loc[names]
        share, low, high = _shares(summary)
        offset = positions + 0.4 - height * (index + 0.5)  # the first method on top
        color = _CYCLE[index % len(_CYCLE)]
        ax.barh(offset, share, height=height, color=color, label=label)
        ax.errorbar(share, offset, xerr=np.vstack([share - low, high - share]), fmt="none",
                    ecolor=WHISKER, capsize=1.5, lw=0.8)  # fmt: skip
    ax.set_yticks(positions, [_unit_label(first, name) for name in names])
    ax.axvline(0.0, color="#9e9e9e", lw=0.8, zorder=0)
    ax.set_xlabel("share of the method's total importance")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def heatmap(result: Any, matrix: str = "auto", top: int = 20, ax: Any = None) -> Any:
    """A unit x column matrix of ``result`` for its ``top`` units, as an image with a colour bar.

    Parameters
    ----------
    result : ImportanceResult
        A result with a matrix: ``delta_recon`` (permutation with ``per_output``: which outputs
        move when a unit is shuffled, columns = outputs), ``latent_shift`` or ``latent_map``
        (latent lenses, columns = latent dimensions).
    matrix : {"auto", "delta_recon", "latent_shift", "latent_map"}, default "auto"
        Which one; "auto" takes the first the result has, in that order.
    top : int, default 20
        Rows shown: the ``top`` units by mean importance, most important first.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax`` with the image (NaN, not computed yet, left blank).
    """
    name = _pick_matrix(result, matrix)
    top = _check_top(top)
    names = result.top(top)
    rows = [result.feature_names.index(n) for n in names]
    if name == "delta_recon":
        values = result.delta_recon.to_numpy(dtype=np.float64)[rows]
        columns, xlabel = list(result.output_names), "output"
    else:
        values = np.asarray(result.extras[name], dtype=np.float64)[rows]
        columns, xlabel = [f"z{j}" for j in range(values.shape[1])], "latent dimension"
    ax = _axes(ax, n_rows=len(names))
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis",
                      interpolation="nearest")  # fmt: skip
    ax.figure.colorbar(image, ax=ax, label=name.replace("_", " "))
    ax.set_yticks(np.arange(len(names)), [_unit_label(result, n) for n in names])
    if len(columns) <= 40:  # beyond that the tick labels overlap: the axis label says what
        ax.set_xticks(np.arange(len(columns)), columns, rotation=90)
    ax.set_xlabel(xlabel)
    ax.set_title(result.labels["title"])
    return ax


# ---------------------------------------------------------------------------- helpers
def _pyplot() -> Any:
    """matplotlib.pyplot; ImportError with the install command when matplotlib is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "aefi_widget.plot needs matplotlib: pip install 'aefi_widget[plots]'"
        ) from None
    return plt


def _axes(ax: Any, n_rows: int) -> Any:
    """``ax``, or the Axes of a new figure tall enough for ``n_rows`` labelled rows."""
    plt = _pyplot()
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=(6.0, 1.0 + 0.25 * max(n_rows, 4)), layout="constrained")
    return new


def _horizontal() -> dict[str, Any]:
    """boxplot's keyword for horizontal boxes (``orientation`` from matplotlib 3.10, where
    ``vert`` became deprecated)."""
    import matplotlib

    major, minor = (int(part) for part in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _check_top(top: Any) -> int:
    """``top`` as a positive int; ValueError otherwise."""
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    return int(top)


def _finite(values: np.ndarray) -> np.ndarray:
    """The finished estimates (NaN = not computed yet dropped)."""
    return values[~np.isnan(values)]


def _unit_label(result: Any, name: str) -> str:
    """A unit's tick label: a group says how many members it has."""
    members = result.groups.get(name)
    return name if members is None else f"{name} ({len(members)})"


def _title(result: Any, n_done: np.ndarray) -> str:
    """The method's title; a result whose shown units have < 2 estimates is a first look."""
    title = result.labels["title"]
    if len(n_done) and int(n_done.min()) < 2:
        return f"{title}: first look, no interval yet"
    if not result.complete:
        return f"{title} ({result.progress:.0%} done)"
    return title


def _named(results: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    """``results`` as label -> result, labels unique."""
    if isinstance(results, Mapping):
        named = {str(k): v for k, v in results.items()}
    else:
        named = {}
        for result in results:
            label = result.labels["title"]
            while label in named:
                label += "'"
            named[label] = result
    if not named:
        raise ValueError("compare needs at least one result")
    return named


def _shares(summary: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(share, low, high): mean and interval divided by the total positive mean (a negative
    mean stays negative, where ``normalized`` clips it to 0)."""
    mean = summary["mean"].to_numpy(dtype=np.float64)
    share = summary["normalized"].to_numpy(dtype=np.float64)
    positive = mean > 0  # normalized = mean / total for these: one factor for every unit
    factor = float(share[positive][0] / mean[positive][0]) if positive.any() else 0.0
    low = summary["ci_low"].to_numpy(dtype=np.float64) * factor
    return mean * factor, low, summary["ci_high"].to_numpy(dtype=np.float64) * factor


def _pick_matrix(result: Any, matrix: str) -> str:
    """The matrix ``heatmap`` draws; ValueError naming what the result has."""
    available = [
        name for name in _MATRICES
        if (result.delta_sum is not None if name == "delta_recon" else name in result.extras)
    ]  # fmt: skip
    if matrix == "auto":
        if not available:
            raise ValueError(
                f"this {result.method} result has no matrix to draw (heatmap draws "
                f"{', '.join(_MATRICES)}); run permutation importance with per_output=True or a "
                "latent lens"
            )
        return available[0]
    if matrix not in available:
        raise ValueError(f"matrix {matrix!r} is not in this result; it has {available or 'none'}")
    return matrix
