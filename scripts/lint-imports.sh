#!/usr/bin/env bash
# import-linter's contracts (pyproject.toml, [tool.importlinter]) over the package as installed: a checkout
# keeps cli.py, analyses/ and baselines/ beside avskit/ (avskit/__init__.py reaches them at run time), and
# import-linter reads folders, so they are linked into one avskit/ tree under build/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=build/import-graph
rm -rf "$stage" && mkdir -p "$stage/avskit"
for entry in avskit/* cli.py analyses baselines; do ln -s "$PWD/$entry" "$stage/avskit/$(basename "$entry")"; done
root=$PWD
cd "$stage"  # lint-imports puts its working folder first on the import path
PYTHONPATH="$root" "${LINT_IMPORTS:-$root/.venv/bin/lint-imports}" "$root/pyproject.toml" --no-cache
