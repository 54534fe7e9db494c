"""Writes notebooks/quickstart.ipynb (kept as code so the notebook's source diffs cleanly)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    new_markdown_cell(
        "# aefi_widget quickstart\n\n"
        "**Which input features does my autoencoder rely on?** This notebook trains a small "
        "autoencoder on generated gene-like data (correlated blocks of features, each block "
        "driven by one clearly important feature), then watches permutation importance stream "
        "into a live explorer. Everything runs on the CPU in well under a minute."
    ),
    new_code_cell(
        "import aefi_widget as aefi\n"
        "from aefi_widget.demo import make_correlated_data, seed_like_autoencoder, "
        "train_autoencoder\n\n"
        "data = make_correlated_data(n_samples=950, n_features=200, seed=0)\n"
        "train, held_out = data.iloc[:700], data.iloc[700:]\n"
        "model = train_autoencoder(seed_like_autoencoder(data.shape[1], seed=0), train, "
        "epochs=30, seed=0)\n"
        'print("drivers of the blocks:", data.attrs["informative"])'
    ),
    new_markdown_cell(
        "## The explorer\n\n"
        "`aefi.Explorer` starts the computation on a background thread and returns at once: the "
        "kernel stays free for other cells while results stream in (at most 10 updates a "
        "second).\n\n"
        "- **Header**: settings, rounds done (one round = one shuffle of every feature), elapsed "
        "time, ETA, and pause / resume / stop.\n"
        "- **Bars**: each feature's share of the total positive importance, with 95 % confidence "
        "whiskers over the repeats, top features first. The search box finds any feature.\n"
        "- **Boxes**: the distribution over repeats of Δerror = error(shuffled) - error(original) "
        "for each top feature, one point per repeat. A box that straddles 0 is noise.\n"
        "- **Drilldown**: click a bar or a box. You see the feature's original vs reconstructed "
        "values for every held-out sample, with the reconstruction after shuffling the feature "
        "on top; the outputs that move most when it is shuffled; and the per-sample increase of "
        "the error, sorted. Click a sample there to see its profile across the most affected "
        "outputs."
    ),
    new_code_cell("explorer = aefi.Explorer(model, held_out, n_repeats=10, seed=0)\nexplorer"),
    new_markdown_cell(
        "## Which target: original or permuted?\n\n"
        'With the default `target="original"`, the reconstruction of the shuffled data is '
        "compared with the **unshuffled** samples: a feature is important when the model needs "
        "it to reconstruct the data, including the feature itself. This is standard permutation "
        'importance. With `target="permuted"`, the reconstruction is compared with the '
        "**shuffled** input, as the common DataLoader recipe does (it feeds the permuted batch "
        "as its own target): it measures how badly the model copes with an implausible input, "
        "and a model that copies a feature straight through scores it 0."
    ),
    new_code_cell(
        "explorer.job.wait()  # the job runs in the background; wait before reading final numbers\n"
        "explorer.result.summary().head(10)"
    ),
    new_markdown_cell(
        "## Headless\n\nThe same numbers without a widget, for scripts and papers (pandas "
        "objects, saved as plain `.npz`):"
    ),
    new_code_cell(
        "result = aefi.permutation_importance(model, held_out, n_repeats=10, seed=0)\n"
        "top = result.top(10)\n"
        'print("drivers found in the top 10:", sorted(set(top) & set(data.attrs["informative"])))\n'
        "# Same seed, same numbers as the explorer's background job:\n"
        "assert (result.importances == explorer.result.importances).all()\n"
        'result.save("quickstart-result.npz")\n'
        'aefi.ImportanceResult.load("quickstart-result.npz").summary().head(5)'
    ),
    new_code_cell(
        "# Click a feature in the explorer, or select one from Python:\n"
        "explorer.selected_feature = top[0]\n"
        "explorer.selected_feature"
    ),
]


def main() -> None:
    notebook = new_notebook(cells=CELLS)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = Path(__file__).with_name("quickstart.ipynb")
    nbformat.write(notebook, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
