#!/usr/bin/env bash
# The prepared GPU check: `scripts/gpu-bench.sh OUTDIR` on a bare CUDA machine with PyTorch installed.
# Needs nothing beyond torch and torchvision; see scripts/gpu_bench.py.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: scripts/gpu-bench.sh OUTDIR [--device cuda|cpu] [--quick]" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c "import torch, torchvision; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'devices', torch.cuda.device_count())"
"$PYTHON" -c "import fvcore" 2>/dev/null || echo "fvcore not installed: FLOPs and utilization will be missing"
exec "$PYTHON" scripts/gpu_bench.py "$@"
