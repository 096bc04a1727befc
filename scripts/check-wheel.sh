#!/usr/bin/env bash
# The wheel as a user gets it: built from this checkout, installed with --no-deps into a fresh venv
# that sees the project venv's dependencies (but not its editable avskit: a path in a .pth file
# runs none of that folder's .pth files), then run from outside the checkout. Fails on any
# installed top-level name other than avsbench_kit and avskit*. `make test` runs it before pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" "$ROOT/build"' EXIT
start=$SECONDS

rm -rf "$ROOT/build"  # setuptools builds in the tree: a stale build/ would put deleted modules in the wheel
"$PY" -m pip wheel --no-deps --no-build-isolation --disable-pip-version-check -q -w "$WORK/dist" "$ROOT" 2>&1 | { grep -v "^WARNING: Location" || true; }
"$PY" -m venv --without-pip "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' >"$("$VPY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/project-deps.pth"
"$PY" -m pip --python "$VPY" install --no-deps --disable-pip-version-check -q "$WORK"/dist/*.whl 2>&1 | { grep -v "^WARNING: Location" || true; }

cd "$WORK"  # nothing of the checkout on sys.path from here on
"$VPY" - <<'PYEOF'
import sys
from importlib.metadata import distribution
from pathlib import Path

import avskit.baselines
import avskit.cli

dist = distribution("avskit")
site = Path(sys.prefix).resolve()
for module in (avskit.cli, avskit.baselines):  # the wheel's copies, not the checkout's
    assert site in Path(module.__file__).resolve().parents, f"{module.__name__} imported from {module.__file__}"
top = sorted({f.parts[0] for f in dist.files if f.parts[0] != ".." and not f.parts[0].endswith(".dist-info")})
print("wheel: installed top-level names:", ", ".join(top))
outside = [name for name in top if name != "avsbench_kit" and not name.startswith("avskit")]
if outside:
    sys.exit(f"wheel: names outside avskit's namespace: {', '.join(outside)}")
PYEOF
"$WORK/venv/bin/avskit" --help >/dev/null
"$VPY" -m avskit --help >/dev/null
"$WORK/venv/bin/avskit" gpu-bench --help >/dev/null
"$WORK/venv/bin/avskit" params avesformer-r18 --size 64 --json 2>/dev/null | "$VPY" -c 'import json, sys; r = json.load(sys.stdin); assert r["live"] > 0, r; print("wheel: params avesformer-r18:", r["live"], "live parameters")'
"$WORK/venv/bin/avskit" gpu-bench "$WORK/gpu" --device cpu --quick >/dev/null 2>"$WORK/gpu.log" || { cat "$WORK/gpu.log"; exit 1; }
test -s "$WORK/gpu/gpu-bench.md"
echo "wheel: avskit --help, python -m avskit, params, gpu-bench --device cpu --quick and gpu-bench --help ran from the installed wheel ($((SECONDS - start)) s)"
