"""Samples in the drilldown go by their labels (DataFrame index, AnnData obs_names), hover
shows them, and a group's drilldown lists its members."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from reference import sequential_ae

from aefi_widget.engine import PermutationImportance
from aefi_widget.engine.drilldown import Drilldown

pytestmark = pytest.mark.timeout(120)

N, D = 30, 5
GENES = ["CD3E", "MS4A1", "LYZ", "NKG7", "GNLY"]
CELLS = [f"AAAC{i:03d}-1" for i in range(N)]


def values() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((N, D)).astype(np.float32)


def model():
    return sequential_ae(D, hidden=3, seed=1, dtype=torch.float32)


def test_drilldown_samples_carry_the_frame_index_in_row_order() -> None:
    frame = pd.DataFrame(values(), index=CELLS, columns=GENES)
    engine = PermutationImportance(model(), frame, n_repeats=2, max_samples=12, seed=3)
    drill = engine.drilldown("LYZ", repeat=1)
    assert len(drill.sample_index) == 12
    assert drill.sample_labels == tuple(CELLS[int(i)] for i in drill.sample_index)
    assert drill.labels() == drill.sample_labels


def test_drilldown_samples_carry_obs_names() -> None:
    anndata = pytest.importorskip("anndata")
    adata = anndata.AnnData(values(), obs=pd.DataFrame(index=CELLS), var=pd.DataFrame(index=GENES))
    drill = PermutationImportance(model(), adata, n_repeats=1).drilldown("NKG7")
    assert drill.sample_labels == tuple(CELLS[int(i)] for i in drill.sample_index)


def test_unlabelled_rows_are_named_by_their_row_number() -> None:
    drill = PermutationImportance(model(), values(), n_repeats=1).drilldown("x1")
    assert drill.sample_labels == tuple(str(int(i)) for i in drill.sample_index)
    integer_index = pd.DataFrame(values(), index=np.arange(100, 100 + N))
    drill = PermutationImportance(model(), integer_index, n_repeats=1).drilldown("0")
    assert drill.sample_labels[:2] == tuple(str(100 + int(i)) for i in drill.sample_index[:2])


def test_a_drilldown_without_labels_falls_back_to_row_numbers() -> None:
    """Engines written before labels existed build Drilldown without them."""
    m = 3
    drill = Drilldown(
        feature="a", columns=("a",), shown_column="a", repeat=0, sample_index=np.array([4, 0, 2]),
        original=np.zeros(m), reconstructed=np.zeros(m), shuffled_reconstruction=np.zeros(m),
        error_increase=np.zeros(m), top_outputs=("a",), output_shift=np.zeros(1),
        profile_original=np.zeros((m, 1)), profile_reconstructed=np.zeros((m, 1)),
        profile_shuffled=np.zeros((m, 1)),
    )  # fmt: skip
    assert drill.labels() == ("4", "0", "2")


def test_the_view_hovers_and_titles_samples_by_label_and_lists_group_members() -> None:
    pytest.importorskip("bqplot")
    from aefi_widget.widget.drilldown_view import DrilldownView

    frame = pd.DataFrame(values(), index=CELLS, columns=GENES)
    engine = PermutationImportance(
        model(), frame, n_repeats=1, groups={"T cells": ["CD3E", "NKG7"]}, seed=0
    )
    warnings: list[str] = []
    view = DrilldownView(engine, engine.empty_result, warnings.append)
    try:
        view.show("T cells")
        assert view.flush(30)
        drill = view.drilldown
        labels = drill.labels()
        # Panel (c): one point per sample, sorted by error increase; hover names the sample.
        order = np.argsort(drill.error_increase, kind="stable")
        assert list(view._errors.names) == [labels[i] for i in order]
        assert "name" in view._errors.tooltip.fields
        # Panel (a): both series name their samples on hover, with both values.
        assert list(view._recon.names) == list(labels)
        assert list(view._shuffled.names) == list(labels)
        assert view._recon.tooltip.fields == ["name", "x", "y"]
        # Panel (d) starts at the most affected sample, titled by its label.
        worst = labels[int(np.argmax(drill.error_increase))]
        assert f"(d) sample {worst}:" in view.profile_figure.title
        # The caption lists the group's members on a line of its own.
        assert "group of 2, shuffled together: CD3E, NKG7" in view.message.value
        view.show("LYZ")
        assert view.flush(30)
        assert "group of" not in view.message.value
        assert warnings == []
    finally:
        view.close()


def test_a_large_group_caption_lists_the_first_members_and_counts_the_rest() -> None:
    from aefi_widget.widget.drilldown_view import MAX_MEMBERS, _caption

    members = tuple(f"g{i}" for i in range(MAX_MEMBERS + 5))
    drill = Drilldown(
        feature="module <b>", columns=members, shown_column="g0", repeat=0,
        sample_index=np.arange(2), original=np.zeros(2), reconstructed=np.zeros(2),
        shuffled_reconstruction=np.zeros(2), error_increase=np.zeros(2), top_outputs=("g0",),
        output_shift=np.zeros(1), profile_original=np.zeros((2, 1)),
        profile_reconstructed=np.zeros((2, 1)), profile_shuffled=np.zeros((2, 1)),
    )  # fmt: skip
    caption = _caption(drill)
    assert "module &lt;b&gt;" in caption  # names are escaped
    assert f"group of {MAX_MEMBERS + 5}" in caption and "and 5 more" in caption
    assert f"g{MAX_MEMBERS - 1}," not in caption and f"g{MAX_MEMBERS}" not in caption
