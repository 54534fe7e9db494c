#!/usr/bin/env bash
# Build the wheel and the sdist, check both carry the built front end, check the sdist builds a
# wheel without npm, then install the wheel (not editable) into a fresh virtual environment and
# use it: import, render an Explorer headless, run a short permutation run. A missing asset or
# dependency fails here, before a release does.
#
#   bash scripts/check_wheel.sh          # from anywhere; writes build/wheel-check/ (git-ignored)
#
# The venv reuses the system site packages (torch, numpy, ... are not installed again: seconds,
# not minutes), and the wheel is installed with --no-deps; the script then checks that
# aefi_widget resolves to the venv, not to this checkout or an editable install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || PYTHON=python
export PIP_BREAK_SYSTEM_PACKAGES=1
WORK=build/wheel-check
rm -rf "$WORK" && mkdir -p "$WORK/dist"
step() { printf '\n--- %s (at %ds)\n' "$*" "$SECONDS"; }

step "python -m build: wheel and sdist"
# --no-isolation when the build backend is already here (fast, offline); otherwise pip fetches it.
isolation=()
"$PYTHON" -c 'import hatchling, hatch_jupyter_builder, jupyterlab' 2>/dev/null && isolation=(--no-isolation)
"$PYTHON" -m build "${isolation[@]}" -o "$WORK/dist" . >"$WORK/build.log" 2>&1 \
  || { tail -n 30 "$WORK/build.log"; exit 1; }
wheel=$(ls "$WORK"/dist/*.whl)
sdist=$(ls "$WORK"/dist/*.tar.gz)
echo "built $(basename "$wheel") and $(basename "$sdist")"

step "the front end is inside both"
for asset in aefi_widget/static/widget.js aefi_widget/static/widget.css; do
  "$PYTHON" - "$wheel" "$sdist" "$asset" <<'PY'
import sys, tarfile, zipfile
wheel, sdist, asset = sys.argv[1:]
in_wheel = zipfile.ZipFile(wheel).getinfo(asset).file_size
members = {m.name.split("/", 1)[1]: m.size for m in tarfile.open(sdist).getmembers() if "/" in m.name}
assert in_wheel > 1000, f"{asset} in the wheel is {in_wheel} bytes"
assert members.get(asset, 0) > 1000, f"{asset} missing from the sdist"
print(f"{asset}: wheel {in_wheel} B, sdist {members[asset]} B")
PY
done

step "the prebuilt lab extension is inside both (wheel: as shared data)"
check_labextension() {  # check_labextension WHEEL [SDIST]
  "$PYTHON" - "$@" <<'PY'
import json, sys, tarfile, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
names = set(wheel.namelist())
data = next((n.split("/")[0] for n in names if n.split("/")[0].endswith(".data")), None)
assert data, f"{sys.argv[1]} has no .data/ folder: the lab extension is not shipped as shared data"
root = f"{data}/data/share/jupyter/labextensions/aefi-widget"
package = json.loads(wheel.read(f"{root}/package.json"))
assert package["name"] == "aefi-widget", package["name"]
entry = f"{root}/{package['jupyterlab']['_build']['load']}"  # what the server loads first
assert entry in names and wheel.getinfo(entry).file_size > 1000, f"{entry} missing or empty"
install = json.loads(wheel.read(f"{root}/install.json"))
assert install["packageName"] == "aefi_widget", install
shipped = [n for n in names if n.startswith(root + "/static/") and n.endswith(".js")]
assert len(shipped) >= 2, shipped  # the entry and the plugin's chunk
print(f"wheel: {root}/ with {len(shipped)} scripts, entry {entry.rsplit('/', 1)[1]}")
if len(sys.argv) > 2:
    members = {m.name.split("/", 1)[1] for m in tarfile.open(sys.argv[2]).getmembers() if "/" in m.name}
    for needed in ("aefi_widget/labextension/package.json", "install.json"):
        assert needed in members, f"{needed} missing from the sdist"
    print("sdist: aefi_widget/labextension/ and install.json")
PY
}
check_labextension "$wheel" "$sdist"

step "the sdist builds a wheel without npm"
mkdir -p "$WORK/no-npm/bin" "$WORK/from-sdist"
printf '#!/bin/sh\necho "npm was called while building from the sdist" >&2\nexit 1\n' \
  >"$WORK/no-npm/bin/npm"
chmod +x "$WORK/no-npm/bin/npm"
tar xzf "$sdist" -C "$WORK/from-sdist"
( cd "$WORK"/from-sdist/aefi_widget-* \
  && PATH="$PWD/../../no-npm/bin:$PATH" "$PYTHON" -m build "${isolation[@]}" --wheel -o ../dist . \
     >../build.log 2>&1 ) || { tail -n 30 "$WORK/from-sdist/build.log"; exit 1; }
echo "built $(ls "$WORK"/from-sdist/dist)"
check_labextension "$(ls "$WORK"/from-sdist/dist/*.whl)"

step "a fresh venv with the wheel installed (not editable)"
# Without its own pip (seconds saved); this interpreter's pip installs into it (pip >= 22.3).
"$PYTHON" -m venv --system-site-packages --without-pip "$WORK/venv"
"$PYTHON" -m pip --python "$WORK/venv/bin/python" install --quiet --no-deps --no-index "$wheel"

step "jupyter labextension list (the venv's server) shows aefi-widget enabled and OK"
# JUPYTER_PATH unset: only what the wheel installed into the venv's share/jupyter may answer.
# "-m jupyterlab.labextensions", not "-m jupyter labextension": the latter runs the first
# jupyter-labextension script on PATH, another interpreter's, which does not look in the venv.
listed=$(env -u PYTHONPATH -u JUPYTER_PATH "$WORK/venv/bin/python" -m jupyterlab.labextensions list 2>&1 \
  | sed 's/\x1b\[[0-9;]*m//g')
echo "$listed" | grep -E "^\s+aefi-widget v[0-9.]+ enabled OK" \
  || { echo "$listed"; echo "aefi-widget is not listed enabled and OK"; exit 1; }
echo "$listed" | grep -F "$(realpath "$WORK/venv")/share/jupyter/labextensions" >/dev/null \
  || { echo "$listed"; echo "the venv's share/jupyter/labextensions is not searched"; exit 1; }

step "import, render an Explorer headless, run a short permutation run"
# From an empty folder, without PYTHONPATH: nothing from this checkout can be imported.
mkdir -p "$WORK/run"
( cd "$WORK/run" && env -u PYTHONPATH MPLBACKEND=Agg ../venv/bin/python - "$PWD/../venv" <<'PY'
import importlib.metadata, os, sys
venv = os.path.realpath(sys.argv[1])
import numpy as np, torch
import aefi_widget as aefi
where = os.path.realpath(aefi.__file__)
assert where.startswith(venv + os.sep), f"aefi_widget imported from {where}, not the venv {venv}"
assert aefi.__version__ == importlib.metadata.version("aefi_widget"), "two versions disagree"
X = np.random.default_rng(0).standard_normal((64, 6)).astype(np.float32)
model = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.ReLU(), torch.nn.Linear(3, 6))
result = aefi.permutation_importance(model, X, n_repeats=2)
assert result.complete and np.isfinite(result.importances).all(), result
explorer = aefi.Explorer(model, X, autostart=False)
bundle = explorer._repr_mimebundle_()  # what a notebook front end is sent to display it
bundle = bundle[0] if isinstance(bundle, tuple) else bundle
assert "application/vnd.jupyter.widget-view+json" in bundle, bundle
import anywidget
def widgets(w):
    yield w
    for child in getattr(w, "children", ()):
        yield from widgets(child)
dashboards = [w for w in widgets(explorer) if isinstance(w, anywidget.AnyWidget)]
assert dashboards, "no anywidget inside the Explorer"
esm = str(dashboards[0]._esm)
assert len(esm) > 10_000 and "export" in esm, f"the front end bundle is {len(esm)} characters"
explorer.close()
html = aefi.write_html(result, os.path.join(os.getcwd(), "snapshot.html"))
print(f"ok: aefi_widget {aefi.__version__} from {where}; {len(dashboards)} dashboard(s), "
      f"bundle {len(esm)} chars; {result!r}")
PY
)
step "wheel check passed"
