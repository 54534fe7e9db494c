"""AnnData as X: dense, sparse and layer= inputs give the numbers of the equivalent arrays bit for
bit; gene names and cell labels flow through; result.to_anndata round-trips through h5ad."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from reference import sequential_ae

import aefi_widget as aefi
from aefi_widget.engine import anndata_input
from aefi_widget.result_anndata import SUMMARY_COLUMNS, json_safe

anndata = pytest.importorskip("anndata")

pytestmark = pytest.mark.timeout(120)

N, D = 40, 6
GENES = ["CD3E", "MS4A1", "LYZ", "NKG7", "GNLY", "PPBP"]
CELLS = [f"cell-{i:02d}" for i in range(N)]


def expression() -> np.ndarray:
    """(N, D) float32, about half zeros (like log-normalized expression), correlated columns."""
    rng = np.random.default_rng(3)
    factor = rng.standard_normal((N, 2))
    values = factor @ rng.standard_normal((2, D)) + 0.5 * rng.standard_normal((N, D))
    return np.where(values > 0, values, 0.0).astype(np.float32)


def annotated(matrix, layers=None):
    """An AnnData with named cells and genes (and the given layers)."""
    adata = anndata.AnnData(
        matrix, obs=pd.DataFrame(index=CELLS), var=pd.DataFrame(index=GENES), layers=layers
    )
    return adata


@pytest.fixture(scope="module")
def model():
    return sequential_ae(D, hidden=4, seed=2, dtype=torch.float32)


def _inputs():
    """The three AnnData forms of expression() (dense X, sparse X, a layer) and keywords."""
    values = expression()
    scaled = (values - values.mean(0)) / values.std(0)  # a different X: layer= must not read it
    return {
        "dense": (annotated(values.copy()), {}),
        "sparse": (annotated(scipy.sparse.csr_matrix(values)), {}),
        "layer": (annotated(scaled, layers={"lognorm": scipy.sparse.csr_matrix(values)}),
                  {"layer": "lognorm"}),
    }  # fmt: skip


RUNS = {
    "permutation": lambda m, X, **k: aefi.permutation_importance(m, X, n_repeats=3, **k),
    "gradient": lambda m, X, **k: aefi.gradient_importance(m, X, steps=4, **k),
    "gradient_x_input": lambda m, X, **k: aefi.gradient_importance(
        m, X, method="gradient_x_input", **k
    ),
    "shapley": lambda m, X, **k: aefi.shapley_importance(m, X, n_permutations=2, background=8, **k),
    "latent_permutation": lambda m, X, **k: aefi.latent_importance(m, X, n_repeats=2, **k),
    "latent_gradient": lambda m, X, **k: aefi.latent_importance(m, X, method="gradient", **k),
    "latent_mi": lambda m, X, **k: aefi.latent_importance(m, X, method="mutual_information", **k),
    "latent_engine": lambda m, X, **k: aefi.LatentPermutation(m, X, n_repeats=2, **k).run(),
}


def _same_numbers(a, b) -> None:
    assert a.feature_names == b.feature_names
    assert a.output_names == b.output_names
    assert np.array_equal(a.importances, b.importances, equal_nan=True)
    assert a.extras.keys() == b.extras.keys()
    for name, values in a.extras.items():
        assert np.array_equal(values, b.extras[name], equal_nan=True), name


@pytest.mark.parametrize("method", list(RUNS))
def test_anndata_dense_sparse_and_layer_equal_the_array_bit_for_bit(model, method) -> None:
    run = RUNS[method]
    expected = run(model, expression(), feature_names=GENES)
    for form, (adata, keywords) in _inputs().items():
        before = adata.copy()
        result = run(model, adata, **keywords)
        _same_numbers(result, expected)
        assert result.feature_names == tuple(GENES), form
        # The user's AnnData is never written.
        assert np.array_equal(_dense(adata.X), _dense(before.X)), form


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)


def test_cell_labels_label_the_gradient_samples(model) -> None:
    adata, _ = _inputs()["sparse"]
    result = aefi.gradient_importance(model, adata, steps=4)
    assert list(result.per_sample.index) == CELLS
    assert list(result.per_sample.columns) == GENES
    frame = pd.DataFrame(expression(), index=CELLS, columns=GENES)
    from_frame = aefi.gradient_importance(model, frame, steps=4)
    pd.testing.assert_frame_equal(result.per_sample, from_frame.per_sample)


def test_permutation_groups_name_genes_of_the_anndata(model) -> None:
    adata, _ = _inputs()["dense"]
    result = aefi.permutation_importance(model, adata, n_repeats=2, groups={"T": ["CD3E", "NKG7"]})
    assert "T" in result.feature_names
    assert result.groups == {"T": ("CD3E", "NKG7")}


def test_correlated_groups_read_the_layer_and_name_genes() -> None:
    expected = aefi.correlated_groups(expression(), threshold=0.5, feature_names=GENES)
    assert expected  # the data has correlated genes
    for adata, keywords in _inputs().values():
        assert aefi.correlated_groups(adata, threshold=0.5, **keywords) == expected


def test_layer_errors_come_before_any_model_call() -> None:
    calls = []

    def model(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return x

    adata = annotated(expression(), layers={"counts": expression(), "lognorm": expression()})
    with pytest.raises(ValueError, match=r"no layer 'count'; its layers: 'counts', 'lognorm'"):
        aefi.permutation_importance(model, adata, layer="count")
    with pytest.raises(TypeError, match=r"layer='counts' is only for an anndata.AnnData X"):
        aefi.gradient_importance(model, expression(), layer="counts")
    with pytest.raises(TypeError, match="layer must be the name of a layer"):
        aefi.shapley_importance(model, adata, layer=0)
    with pytest.raises(ValueError, match="its layers: none"):
        aefi.latent_importance(model, annotated(expression()), encoder=model, layer="counts")
    with pytest.raises(ValueError, match=r"disagree with .*var_names"):
        aefi.permutation_importance(model, adata, feature_names=list("abcdef"))
    assert calls == []


def test_a_too_large_sparse_matrix_is_refused_with_the_size_and_a_fix(monkeypatch) -> None:
    monkeypatch.setattr(anndata_input, "machine_memory_bytes", lambda: 1000.0)
    adata = annotated(scipy.sparse.csr_matrix(expression()))
    with pytest.raises(MemoryError, match=r"sparse 40 x 6 matrix.*960 bytes in float32.*fewer"):
        aefi.permutation_importance(lambda x: x, adata)


def test_adata_raw_gets_a_hint() -> None:
    adata = annotated(expression())
    adata.raw = adata
    with pytest.raises(TypeError, match=r"adata.raw.to_adata\(\)"):
        aefi.permutation_importance(lambda x: x, adata.raw)


def test_the_engine_imports_without_anndata() -> None:
    """anndata is looked up in sys.modules, never imported by the engine."""
    code = (
        "import sys; sys.modules['anndata'] = None\n"
        "import numpy as np, torch, aefi_widget as aefi\n"
        "X = np.random.default_rng(0).standard_normal((8, 3)).astype('float32')\n"
        "m = torch.nn.Linear(3, 3)\n"
        "print(aefi.permutation_importance(m, X, n_repeats=1).feature_names)\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "('x0', 'x1', 'x2')" in out.stdout


# ---------------------------------------------------------------------- to_anndata


def _uns_equal(written, read) -> None:
    """h5ad reads lists back as numpy arrays; compare values."""
    if isinstance(written, dict):
        assert set(written) == set(read)
        for name in written:
            _uns_equal(written[name], read[name])
    elif isinstance(written, list):
        assert list(np.asarray(read).tolist()) == written
    elif isinstance(written, float) and np.isnan(written):
        assert np.isnan(read)
    else:
        assert written == read


def test_to_anndata_writes_var_and_uns_and_round_trips_through_h5ad(model, tmp_path) -> None:
    adata, _ = _inputs()["sparse"]
    result = aefi.permutation_importance(model, adata, n_repeats=3, groups={"T": ["CD3E", "NKG7"]})
    assert result.to_anndata(adata) is None  # in place, like scanpy's tools
    summary = result.summary(sort=False)
    for gene in GENES:
        unit = "T" if gene in ("CD3E", "NKG7") else gene
        for column in SUMMARY_COLUMNS:
            assert adata.var.loc[gene, f"aefi_{column}"] == summary.loc[unit, column]
    assert list(adata.var["aefi_group"].astype(object).fillna("")) == [
        "T" if g in ("CD3E", "NKG7") else "" for g in GENES
    ]
    assert adata.var["aefi_rank"].dtype == "Int64"
    uns = adata.uns["aefi"]
    assert uns["method"] == "permutation"
    assert uns["settings"]["n_repeats"] == 3
    assert uns["groups"] == {"T": ["CD3E", "NKG7"]}
    assert uns["columns"] == [f"aefi_{c}" for c in (*SUMMARY_COLUMNS, "group")]

    path = tmp_path / "genes.h5ad"
    adata.write_h5ad(path)
    read = anndata.read_h5ad(path)
    pd.testing.assert_frame_equal(read.var, adata.var)
    _uns_equal(uns, read.uns["aefi"])


@pytest.mark.parametrize("method", list(RUNS))
def test_every_method_result_round_trips_through_h5ad(model, method, tmp_path) -> None:
    adata, _ = _inputs()["dense"]
    result = RUNS[method](model, adata)
    result.to_anndata(adata, key=method)
    path = tmp_path / f"{method}.h5ad"
    adata.write_h5ad(path)
    read = anndata.read_h5ad(path)
    pd.testing.assert_frame_equal(read.var, adata.var)
    _uns_equal(adata.uns[method], read.uns[method])
    ranks = result.summary(sort=False)["rank"]
    assert list(read.var[f"{method}_rank"]) == list(ranks)


def test_to_anndata_of_a_gene_subset_leaves_the_other_genes_empty(model, tmp_path) -> None:
    values = expression()
    wide = anndata.AnnData(
        np.hstack([values, values[:, :2]]),
        var=pd.DataFrame(index=[*GENES, "MT-CO1", "MALAT1"]),
    )
    result = aefi.gradient_importance(model, wide[:, GENES], steps=4)
    result.to_anndata(wide, key="ig")
    assert wide.var["ig_mean"].iloc[-2:].isna().all()
    assert wide.var["ig_rank"].iloc[-2:].isna().all()
    assert list(wide.var["ig_rank"].iloc[:D]) == list(result.summary(sort=False)["rank"])
    # per-sample labels are the obs_names already: not copied into uns
    assert "sample_index" not in wide.uns["ig"]["settings"]
    path = tmp_path / "wide.h5ad"
    wide.write_h5ad(path)
    pd.testing.assert_frame_equal(anndata.read_h5ad(path).var, wide.var)


def test_to_anndata_refuses_genes_it_does_not_have_and_non_anndata(model) -> None:
    result = aefi.permutation_importance(model, expression(), n_repeats=1)  # x0..x5
    adata = annotated(expression())
    with pytest.raises(ValueError, match=r"6 of the result's 6 features are not in adata\.var"):
        result.to_anndata(adata)
    with pytest.raises(TypeError, match=r"needs an anndata\.AnnData"):
        result.to_anndata(pd.DataFrame(expression()))
    with pytest.raises(ValueError, match="key must be"):
        aefi.permutation_importance(model, adata, n_repeats=1).to_anndata(adata, key="")


def test_to_anndata_without_anndata_says_what_to_install(model, monkeypatch) -> None:
    result = aefi.permutation_importance(model, expression(), n_repeats=1)
    monkeypatch.setitem(sys.modules, "anndata", None)
    with pytest.raises(ImportError, match=r"pip install 'aefi_widget\[anndata\]'"):
        result.to_anndata(object())


def test_json_safe_keeps_what_h5ad_stores_and_encodes_the_rest() -> None:
    assert json_safe({"a": (1, 2), "b": None, "c": np.float32(0.5), "d": ["x", "y"]}) == {
        "a": [1, 2], "b": None, "c": 0.5, "d": ["x", "y"],
    }  # fmt: skip
    assert json_safe([1, None]) == "[1, null]"
    assert json_safe([[1], [2, 3]]) == "[[1], [2, 3]]"


# ---------------------------------------------------------------------- the explorer


def _send(widget, content) -> None:
    """Deliver a custom message the way ipywidgets does when it arrives over the comm."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})  # fmt: skip


def _finished(explorer, key: str):
    run = explorer.run_for(key)
    assert run is not None and run.job.wait(60), f"{key} did not finish"
    assert explorer.publisher.flush(10)
    return explorer.results[key]


def test_the_explorer_reads_the_layer_for_every_method_and_names_genes(model) -> None:
    from aefi_widget.widget import Explorer

    adata, keywords = _inputs()["layer"]
    values = expression()
    explorer = Explorer(model, adata, n_repeats=2, seed=0, **keywords)
    try:
        first = _finished(explorer, "first_look")
        permutation = _finished(explorer, "permutation")
        assert explorer.dashboard.feature_names[: len(GENES)] == GENES
        expected = aefi.permutation_importance(model, values, n_repeats=2, seed=0,
                                               feature_names=GENES)  # fmt: skip
        _same_numbers(permutation, expected)
        samples = first.settings["samples_per_repeat"]
        _same_numbers(first, aefi.permutation_importance(
            model, values, n_repeats=first.settings["n_repeats"], max_samples=samples, seed=0,
                feature_names=GENES,
        ))  # fmt: skip
        _send(explorer.dashboard, {"type": "groups", "mode": "auto", "threshold": 0.5})
        grouped = _finished(explorer, "permutation")
        groups = aefi.correlated_groups(values, threshold=0.5, feature_names=GENES)
        _same_numbers(grouped, aefi.permutation_importance(
            model, values, n_repeats=2, seed=0, feature_names=GENES, groups=groups))  # fmt: skip
        _send(explorer.dashboard, {"type": "groups", "mode": "none"})
        explorer.method = "latent_mi"
        latent = _finished(explorer, "latent_mi")
        _same_numbers(latent, aefi.latent_importance(model, values, method="mutual_information",
                                                     feature_names=GENES))  # fmt: skip
        explorer.method = "latent"  # the permutation lens: its engine reads the layer too
        _same_numbers(_finished(explorer, "latent"), aefi.latent_importance(
            model, values, seed=0, feature_names=GENES))  # fmt: skip
    finally:
        explorer.close()


# ---------------------------------------------------------------------- matrices and overwrite


def _gene_rows(result, genes):
    """The result row carrying each gene (its group's row for members)."""
    unit = {m: g for g, members in result.groups.items() for m in members}
    return [result.feature_names.index(unit.get(gene, gene)) for gene in genes]


def test_to_anndata_writes_varp_varm_and_layers_equal_to_the_result(model, tmp_path) -> None:
    adata, _ = _inputs()["dense"]
    groups = {"T": ["CD3E", "NKG7"]}
    permutation = aefi.permutation_importance(model, adata, n_repeats=2, groups=groups)
    permutation.to_anndata(adata, key="perm")
    rows = _gene_rows(permutation, GENES)
    delta = permutation.delta_recon.to_numpy()
    np.testing.assert_array_equal(adata.varp["perm_delta_recon"], delta[rows])  # outputs = genes

    latent = aefi.latent_importance(model, adata, method="gradient")
    latent.to_anndata(adata, key="lat")
    assert adata.varm["lat_latent_map"].shape == (D, latent.extras["latent_map"].shape[1])
    np.testing.assert_array_equal(adata.varm["lat_latent_map"], latent.extras["latent_map"])

    gradient = aefi.gradient_importance(model, adata, steps=4)
    gradient.to_anndata(adata, key="ig")
    np.testing.assert_array_equal(adata.layers["ig_per_sample"], gradient.per_sample.to_numpy())
    assert adata.uns["ig"]["matrices"] == ["layers/ig_per_sample"]

    path = tmp_path / "matrices.h5ad"
    adata.write_h5ad(path)
    read = anndata.read_h5ad(path)
    for slot, name in (("varp", "perm_delta_recon"), ("varm", "lat_latent_map"),
                       ("layers", "ig_per_sample")):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(getattr(read, slot)[name]),
                                      getattr(adata, slot)[name])  # fmt: skip


def test_per_sample_layer_of_a_cell_subset_matches_cells_by_name(model) -> None:
    adata = annotated(expression())
    subset = adata[::3].copy()
    result = aefi.gradient_importance(model, subset, steps=2)
    result.to_anndata(adata, key="ig")
    layer = adata.layers["ig_per_sample"]
    np.testing.assert_array_equal(layer[::3], result.per_sample.to_numpy())
    keep = np.ones(N, dtype=bool)
    keep[::3] = False
    assert np.isnan(layer[keep]).all()


def test_to_anndata_never_overwrites_a_user_key_without_overwrite(model) -> None:
    adata = annotated(expression())
    adata.var["aefi_mean"] = 7.0  # the user's own column
    before = adata.var.copy()
    result = aefi.gradient_importance(model, adata, steps=2)
    with pytest.raises(ValueError, match=r"adata\.var\['aefi_mean'\].*overwrite=True"):
        result.to_anndata(adata)
    pd.testing.assert_frame_equal(adata.var, before)  # nothing written
    assert "aefi" not in adata.uns and "aefi_per_sample" not in adata.layers
    result.to_anndata(adata, key="ig")  # another key: fine
    with pytest.raises(ValueError, match=r"adata\.layers\['ig_per_sample'\].*uns\['ig'\]"):
        result.to_anndata(adata, key="ig")  # again: its own keys are taken now


def test_overwrite_replaces_and_drops_the_earlier_writes_matrices(model) -> None:
    adata = annotated(expression())
    aefi.gradient_importance(model, adata, steps=2).to_anndata(adata)
    permutation = aefi.permutation_importance(model, adata, n_repeats=1, per_output=False)
    permutation.to_anndata(adata, overwrite=True)
    assert "aefi_per_sample" not in adata.layers  # the gradient run's layer does not linger
    assert adata.uns["aefi"]["method"] == "permutation"
    assert list(adata.var["aefi_rank"]) == list(permutation.summary(sort=False)["rank"])


def test_varp_is_left_out_when_the_outputs_are_not_the_genes() -> None:
    adata = annotated(expression())
    result = aefi.ImportanceResult(  # a model with 3 outputs o0..o2 that are not genes
        GENES, ["o0", "o1", "o2"], np.ones((D, 1)), 0.5, delta_sum=np.ones((D, 3))
    )
    result.to_anndata(adata)
    assert len(adata.varp) == 0 and adata.uns["aefi"]["matrices"] == []
