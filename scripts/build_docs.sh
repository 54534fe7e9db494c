#!/usr/bin/env bash
# Build the documentation site with warnings as errors (mkdocs.yml sets strict: true; --strict
# repeats it so an edit of the YAML cannot turn it off). Notebooks are rendered with their saved
# outputs, not executed: tests/test_notebooks.py executes them in CI.
#
#   bash scripts/build_docs.sh [SITE_DIR]     # default build/site; then open SITE_DIR/index.html
#
# Needs the docs extra: pip install -e ".[docs]".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || PYTHON=python
site="${1:-build/site}"
# mkdocstrings imports this checkout's aefi_widget (the API pages are its docstrings).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" NO_MKDOCS_2_WARNING=1
"$PYTHON" -m mkdocs build --strict --site-dir "$site"
echo "built $site/index.html"
