#!/usr/bin/env bash
# `avskit gpu-bench` from a plain checkout, for a CUDA machine where avskit is not installed (it
# needs only torch, torchvision, typer and rich there). Installed, run `avskit gpu-bench OUT` itself.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m avskit gpu-bench "$@"
