"""Groups of strongly correlated features, to be shuffled together by permutation importance.

Permuting one member of a block of correlated genes costs little, because the autoencoder
reconstructs it from the others; shuffling the block as one unit measures what the block carries.
:func:`correlated_groups` finds such blocks: average-linkage hierarchical clustering on the
distance ``1 - |rho|``, cut at ``1 - threshold``.

Scaling to 20,000 features without the dense 20,000 x 20,000 matrix rests on one fact: an
average-linkage merge at height ``h`` is the mean of the merged clusters' pairwise distances, so
``h <= t`` needs at least one pair at distance ``<= t``. Every flat cluster at the cut is therefore
connected in the graph whose edges are the pairs with ``|rho| >= threshold``, and lies inside one
connected component. The distance between two clusters depends only on their own members, so the
merges at heights ``<= t`` inside a component are the same whether the linkage runs on all
features or on that component alone (or on any union of whole components). Hence: screen all
pairs in float32 blocks (with a margin covering float32 rounding, so the candidate components are
unions of the exact ones), then run scipy's average linkage on each candidate component with
float64 distances.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from scipy.stats import rankdata

from aefi_widget.engine.inputs import as_feature_matrix, did_you_mean

__all__ = ["correlated_groups"]

_METHODS = ("spearman", "pearson")
# Pairs within this of the threshold count as at it: the float64 correlation of two perfectly
# correlated columns can come out as 1 - 1e-16, and threshold=1 must still group them.
_SLACK = 1e-9
# Largest connected component clustered: its condensed float64 distances (4 m^2 bytes) are held
# twice (scipy's linkage works on a copy), 3.2 GB at m = 20,000.
_MAX_COMPONENT = 20_000
# Entries of one float32 block of correlations (64 MB): bounds the screen's working memory.
_BLOCK_ENTRIES = 2**24


def correlated_groups(
    X: Any,
    *,
    threshold: float = 0.8,
    method: str = "spearman",
    feature_names: Sequence[str] | None = None,
    layer: str | None = None,
) -> dict[str, list[str]]:
    """Clusters of features whose absolute correlation links them at or above ``threshold``.

    Average-linkage hierarchical clustering of the features on the distance ``1 - |rho|``, cut at
    ``1 - threshold``: two clusters merge when the mean of ``|rho|`` over their pairs of members
    is at least ``threshold``. Only clusters of two or more features are returned; the result can
    be passed as ``groups=`` to the permutation-importance functions.

    Exact and scalable: clusters at the cut never cross a connected component of the graph of
    pairs with ``|rho| >= threshold`` (see the module docstring), so all pairs are screened in
    float32 blocks of columns and the linkage runs on each component alone. Time grows as
    ``n d^2`` for the screen; memory as ``n d`` plus the largest component's condensed distances.

    Parameters
    ----------
    X : numpy.ndarray, torch.Tensor, pandas.DataFrame or anndata.AnnData, shape (n, d)
        Numeric data, e.g. cells x genes, without NaN or inf, at least 3 rows. Not modified.
    threshold : float, default 0.8
        In (0, 1]. ``threshold=1`` groups only perfectly correlated features (duplicates and
        exact linear or, for Spearman, monotone copies, up to 1e-9 of rounding).
    method : {"spearman", "pearson"}, default "spearman"
        Correlation coefficient: Spearman's rank correlation (average ranks for ties, as
        :func:`scipy.stats.spearmanr`) or Pearson's.
    feature_names : sequence of str, optional
        One unique name per column; default the DataFrame's columns, else ``"x0"``, ``"x1"``, ...
        (the names the permutation-importance engine uses).
    layer : str, optional
        With an ``anndata.AnnData`` X (genes from ``var_names``): correlate
        ``adata.layers[layer]`` instead of ``adata.X``.

    Returns
    -------
    dict[str, list[str]]
        ``{group name: member names}``, members in column order, groups ordered by their first
        member's column. A group is named after its member with the largest variance (the first
        such in column order on ties) plus the count of the others, e.g. ``"CD74 +3"``. A name
        already taken by a feature or an earlier group gets `` (2)``, `` (3)``, ... appended.

    Raises
    ------
    TypeError
        X is not an array, tensor or DataFrame, or not numeric; threshold is not a number;
        method is not a string.
    ValueError
        X is not 2-D, has fewer than 3 rows, NaN or inf; threshold outside (0, 1]; unknown method;
        feature names of the wrong count, duplicated or disagreeing with the DataFrame; or more
        than 20,000 features linked into one component (its linkage would need over 3.2 GB).

    Notes
    -----
    Constant columns have no defined correlation: they are never grouped (not even with each
    other) and never put NaN into the clustering.

    References
    ----------
    Mullner, D. "Modern hierarchical, agglomerative clustering algorithms", arXiv:1109.2378
    (2011): average linkage is reducible, so its dendrogram has no inversions.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> base = rng.standard_normal(200)
    >>> genes = pd.DataFrame({
    ...     "CD74": 2 * base + 0.2 * rng.standard_normal(200),
    ...     "ACTB": rng.standard_normal(200),
    ...     "HLA-DRA": base + 0.1 * rng.standard_normal(200),
    ... })
    >>> correlated_groups(genes)
    {'CD74 +1': ['CD74', 'HLA-DRA']}
    """
    threshold = _checked_threshold(threshold)
    method = _checked_method(method)
    _check_rows(X)
    tensor, names = as_feature_matrix(X, feature_names, torch.float64, torch.device("cpu"), layer)
    values = tensor.numpy()  # a private float64 copy: safe to overwrite
    del tensor
    variances = values.var(axis=0)
    varying = np.flatnonzero(np.ptp(values, axis=0) > 0)
    # Index only when needed: a copy of a 20,000-gene matrix is 150 MB.
    units = _unit_columns(values if len(varying) == len(names) else values[:, varying], method)
    del values
    clusters = _clusters(units, threshold)
    return _named_groups([varying[c] for c in clusters], names, variances)


def _checked_threshold(threshold: Any) -> float:
    """``threshold`` as a float in (0, 1], else TypeError/ValueError."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number in (0, 1], got {threshold!r}")
    value = float(threshold)
    if not 0.0 < value <= 1.0:  # also refuses NaN
        raise ValueError(
            f"threshold must be in (0, 1] (the smallest |correlation| that links two features), "
            f"got {value}"
        )
    return value


def _checked_method(method: Any) -> str:
    """``method`` if it names a known correlation, else TypeError/ValueError with a hint."""
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {_METHODS}, got {type(method).__name__}")
    if method not in _METHODS:
        raise ValueError(
            f"unknown method {method!r}; use 'spearman' or 'pearson'."
            f"{did_you_mean(method.lower(), _METHODS)}"
        )
    return method


def _check_rows(X: Any) -> None:
    """Refuse fewer than 3 rows: with 2 every correlation is +-1 (other checks follow)."""
    if isinstance(X, np.ndarray | torch.Tensor | pd.DataFrame) and len(X.shape) == 2:
        if X.shape[0] < 3:
            raise ValueError(f"X needs at least 3 samples (rows) to correlate, got {X.shape[0]}")


def _unit_columns(values: np.ndarray, method: str) -> np.ndarray:
    """(n, m) non-constant columns -> float64 columns of zero mean and unit norm.

    Dot products of these columns are the correlations (Spearman: of the ranks).
    """
    if method == "spearman":
        values = rankdata(values, axis=0)
    else:
        # Scale first so that centring very large values cannot overflow.
        values /= np.abs(values).max(axis=0)
    values -= values.mean(axis=0)
    norms = np.linalg.norm(values, axis=0)
    # Distinct values can in principle round to one after scaling: such a column becomes zero
    # (correlation 0 with everything, a singleton) rather than NaN.
    norms[norms == 0] = 1.0
    values /= norms
    return values


def _clusters(units: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Column indices (into ``units``) of each average-linkage cluster of 2 or more."""
    labels = _candidate_components(units, threshold)
    sizes = np.bincount(labels)
    if sizes.max(initial=0) > _MAX_COMPONENT:
        raise ValueError(
            f"{sizes.max()} features are linked into one component at threshold={threshold}; "
            f"clustering it would need {8 * sizes.max() ** 2 / 1e9:.1f} GB. Raise the threshold"
        )
    cut = 1.0 - threshold + _SLACK
    # Members of each component in column order, without one pass over all labels per component.
    by_component = np.split(np.argsort(labels, kind="stable"), np.cumsum(sizes)[:-1])
    clusters: list[np.ndarray] = []
    for members in by_component:
        if len(members) < 2:
            continue
        tree = linkage(_condensed_distances(units[:, members]), method="average")
        flat = fcluster(tree, t=cut, criterion="distance")
        for label in np.unique(flat):
            cluster = members[flat == label]
            if len(cluster) > 1:
                clusters.append(cluster)
    return clusters


def _candidate_components(units: np.ndarray, threshold: float) -> np.ndarray:
    """(m,) component label of each column in the graph of pairs with float32 |rho| >= screen.

    The screen sits below the threshold by a bound on float32 rounding of a dot product of unit
    vectors of length n (about n * 2**-24 for the sum, plus the cast), so no pair at or above the
    threshold in float64 is missed: components are unions of the exact ones, which is all the
    linkage needs. Edges are folded into a spanning forest after each block, so memory stays
    bounded even when most pairs are linked.
    """
    n, m = units.shape
    screen = threshold - _SLACK - 2.0 * (n + 4) * 2.0**-24
    if m < 2:
        return np.arange(m)
    single = units.astype(np.float32)
    block = max(1, min(_BLOCK_ENTRIES // m, 4096))
    forest = (np.empty(0, np.int64), np.empty(0, np.int64))
    labels = np.arange(m)
    for start in range(0, m, block):
        stop = min(start + block, m)
        correlations = single[:, start:stop].T @ single[:, start:]
        linked = np.abs(correlations, out=correlations) >= screen
        del correlations
        rows, cols = np.nonzero(linked)
        del linked
        upper = cols > rows  # the block's first columns are its own rows: keep each pair once
        rows, cols = rows[upper] + start, cols[upper] + start
        labels = _component_labels(
            m, np.concatenate([forest[0], rows]), np.concatenate([forest[1], cols])
        )
        forest = _spanning_forest(labels)
    return labels


def _component_labels(m: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(m,) connected-component label of each node of the undirected graph (rows, cols)."""
    graph = coo_array((np.ones(len(rows), np.int8), (rows, cols)), shape=(m, m))
    return connected_components(graph, directed=False)[1]


def _spanning_forest(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining every node to its component's first node: the components, in m edges."""
    _, first = np.unique(labels, return_index=True)  # labels are 0..k-1, each present
    nodes = np.arange(len(labels))
    roots = first[labels]
    keep = roots != nodes
    return nodes[keep], roots[keep]


def _condensed_distances(units: np.ndarray) -> np.ndarray:
    """(k (k-1) / 2,) condensed float64 ``1 - |rho|`` among the k unit columns, in row blocks.

    Row blocks avoid the dense k x k matrix next to the condensed one for large components.
    """
    k = units.shape[1]
    condensed = np.empty(k * (k - 1) // 2)
    rows_per_block = max(1, _BLOCK_ENTRIES // 4 // max(k, 1))
    offset = 0
    for start in range(0, k - 1, rows_per_block):
        stop = min(start + rows_per_block, k - 1)
        correlations = units[:, start:stop].T @ units[:, start:]
        # Entries right of the diagonal, row-major: exactly this block's slice of the condensed.
        upper = correlations[np.triu_indices(stop - start, k=1, m=k - start)]
        condensed[offset : offset + len(upper)] = np.maximum(1.0 - np.abs(upper), 0.0)
        offset += len(upper)
    return condensed


def _named_groups(
    clusters: list[np.ndarray], names: tuple[str, ...], variances: np.ndarray
) -> dict[str, list[str]]:
    """``{name: members}`` ordered by first column, each named by its largest-variance member."""
    taken = set(names)
    groups: dict[str, list[str]] = {}
    for columns in sorted((np.sort(c) for c in clusters), key=lambda c: int(c[0])):
        top = int(columns[np.argmax(variances[columns])])  # argmax: the first on ties
        base = f"{names[top]} +{len(columns) - 1}"
        name, suffix = base, 2
        while name in taken:  # a feature (or an earlier group) already has this name
            name, suffix = f"{base} ({suffix})", suffix + 1
        taken.add(name)
        groups[name] = [names[c] for c in columns]
    return groups
