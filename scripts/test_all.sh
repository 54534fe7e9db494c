#!/usr/bin/env bash
# Install everything aefi_widget needs and run every test: lint, JS unit tests, Python tests
# (browser tests included). Meant for a fresh Debian machine, as root, with Python >= 3.10,
# Node 20 and apt; idempotent, and fast when everything is already installed.
#
#   bash scripts/test_all.sh          # what .ci/run calls (CI=true makes browser tests mandatory)
#
# Exits non-zero when any install step or any check fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || PYTHON=python
# Exported: the lab extension's build (scripts/build_labextension.mjs) asks this interpreter.
export PYTHON
# Stamps that let a re-run skip installs whose inputs did not change (build/ is git-ignored).
STAMPS=build/.test-all-stamps
mkdir -p "$STAMPS" test-artifacts
# Debian's own python3 refuses root-wide pip installs (PEP 668); this machine exists to run tests.
export PIP_BREAK_SYSTEM_PACKAGES=1

section() { printf '\n==================== %s (at %ds) ====================\n' "$*" "$SECONDS"; }
# hash_of FILE...: a fingerprint of the files (and the interpreter) an install step depends on.
hash_of() { { "$PYTHON" --version; cat "$@" 2>/dev/null; } | sha256sum | cut -d' ' -f1; }

section "Python: torch (CPU, pinned)"
# Pinned first: an unpinned torch would pull a multi-GB CUDA build; this version is a local CPU wheel.
if "$PYTHON" -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
  echo "torch 2.13.0 already installed"
else
  "$PYTHON" -m pip install "torch==2.13.0"
fi

section "Node: npm ci (esbuild for the front end, vitest)"
# Before the Python install: its npm build then finds the lockfile's exact packages in place.
if [[ -f package-lock.json ]]; then
  npm_hash=$(hash_of package-lock.json)
  if [[ -d node_modules && "$(cat "$STAMPS/npm" 2>/dev/null)" == "$npm_hash" ]]; then
    echo "node_modules up to date"
  else
    npm ci
    echo "$npm_hash" >"$STAMPS/npm"
  fi
else
  echo "no package-lock.json: nothing to install"
fi

section "Python: aefi_widget[test] (editable; builds the front end with npm)"
# The editable build runs the npm build through hatch-jupyter-builder every time, so it is repeated
# only when the packaging changed; otherwise the front end is rebuilt directly (much faster).
py_hash=$(hash_of pyproject.toml)
# Where the installed package lives, asked from / so this folder's own copy does not answer.
installed_at=$(cd / && "$PYTHON" -c 'import aefi_widget, os; print(os.path.dirname(aefi_widget.__file__))' 2>/dev/null || true)
# Where the server looks for the lab extension (linked to this checkout below).
labext_dest=$("$PYTHON" -c 'import os, sys; print(os.path.join(sys.prefix, "share", "jupyter", "labextensions", "aefi-widget"))')
if [[ "$(cat "$STAMPS/pip" 2>/dev/null)" == "$py_hash" && "$installed_at" == "$PWD/aefi_widget" \
      && -f package.json ]]; then
  echo "aefi_widget[test] already installed; rebuilding the front end and the lab extension"
  npm run build:all
else
  # A link left by an earlier run (below) must not take pip's copy: pip would write through it.
  [[ -L "$labext_dest" ]] && rm "$labext_dest"
  "$PYTHON" -m pip install -e ".[test]"
  echo "$py_hash" >"$STAMPS/pip"
fi

section "JupyterLab: the lab extension linked into sys.prefix (what jupyter labextension develop does)"
# The editable install copied the prebuilt extension into sys.prefix/share/jupyter/labextensions;
# a link to aefi_widget/labextension instead keeps what the server loads equal to this checkout's
# build after every npm run build:lab. (`jupyter labextension develop` would do the same, but it
# hands over to the first jupyter-builder script on PATH, possibly another interpreter's.)
mkdir -p "$(dirname "$labext_dest")"
rm -rf "$labext_dest"
ln -s "$PWD/aefi_widget/labextension" "$labext_dest"
"$PYTHON" -m jupyterlab.labextensions list 2>&1 | grep -F "aefi-widget" \
  || { echo "aefi-widget is not listed by jupyter labextension list"; exit 1; }

section "Chromium (for the browser tests)"
if [[ -x /usr/bin/chromium ]]; then
  echo "found /usr/bin/chromium"
else
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
/usr/bin/chromium --version || true

# Checks: each runs even when an earlier one failed, so one run reports every problem.
failed=()

section "ruff check"
"$PYTHON" -m ruff check . || failed+=("ruff check")

section "wheel check (build, fresh venv, import, headless Explorer, short run)"
bash scripts/check_wheel.sh || failed+=("wheel check")

section "vitest"
# Only when the front end has unit tests (js/ is written by the widget engineers).
if [[ -n "$(find js tests -name node_modules -prune -o -type f \
             \( -name '*.test.ts' -o -name '*.test.js' \) -print 2>/dev/null | head -n1)" ]]; then
  npx vitest run || failed+=("vitest")
else
  echo "no JS tests found"
fi

section "pytest (all tests, browser included)"
# Exit code 5 (no tests collected) is a failure too: a run that tests nothing must not pass.
set +e
# Two workers (pytest-xdist): the browser tests wait on pages and kernels, so two share the
# 2-core machine well; PYTEST_WORKERS=0 runs everything in this process.
"$PYTHON" -m pytest -ra --durations=10 -n "${PYTEST_WORKERS:-2}"
pytest_rc=$?
set -e
if [[ $pytest_rc -ne 0 ]]; then
  [[ $pytest_rc -eq 5 ]] && echo "pytest collected no tests"
  failed+=("pytest (exit $pytest_rc)")
fi

section "Summary"
if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all checks passed"
