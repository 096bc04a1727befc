#!/usr/bin/env bash
# The ablation recipe's seed study (issue #16 item 3): avesformer-r18 on synthetic S4, five seeds with
# audio and three audio-blind, one run after another, each with its validation curve. Resumable: a
# finished run (its JSON report exists) is skipped, an interrupted one resumes from its checkpoint.
# Usage: [SUBSET=ms3] [STEPS=600] [KEEP_LAST=1] [SEEDS="0 1 2 3 4"] [BLIND_SEEDS="0 1 2"] scripts/recipe-study.sh [OUT_DIR]   (default runs/recipe); the GEMM
# probe, the wall time and the CPU are written into each run's JSON report. SEEDS=0 BLIND_SEEDS= reruns
# one seed, e.g. on another CPU kind, to check that runs agree across machines.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/recipe}
mkdir -p "$out"
steps=${STEPS:-600}
subset=${SUBSET:-s4}  # synthetic:s4 (the ablation recipe's study) or synthetic:ms3 (issue #33)
probe() {  # avsbench_kit.profiling.env.gemm_probe: the GEMM probe every training record carries
  .venv/bin/python -c "from avsbench_kit.profiling.env import gemm_probe; print(f'{gemm_probe():.0f}')"; }
run() {  # NAME SEED [--audio-blind]
  local name=$1 seed=$2; shift 2
  [ -s "$out/$name.json" ] && return 0
  local before; before=$(probe)
  local start; start=$(date +%s)
  .venv/bin/avskit train avesformer-r18 --data "synthetic:$subset" --size 64 --videos 3000 --steps "$steps" --batch 8 --lr 2e-4 \
    --warmup 30 --val-every 100 --seed "$seed" "$@" --out "$out/ckpt-$name" --results "$out/records.jsonl" --json > "$out/$name.partial"
  local end; end=$(date +%s)
  .venv/bin/python - "$out/$name.partial" "$before" "$(probe)" "$((end - start))" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import json, sys
path, before, after, seconds, cpu = sys.argv[1:]
report = json.load(open(path))
import torch
report["study"] = {"probe_before_gmacs": float(before), "probe_after_gmacs": float(after), "wall_seconds": int(seconds), "cpu": cpu,
                   "threads": torch.get_num_threads()}
json.dump(report, open(path, "w"), indent=1)
PY
  mv "$out/$name.partial" "$out/$name.json"
  # 108 MB each; the report and the records keep what the study needs. KEEP_LAST=1 keeps it (pathways, probes)
  [ -n "${KEEP_LAST:-}" ] || rm -f "$out/ckpt-$name/last.pt"
}
for seed in ${SEEDS-0 1 2 3 4}; do run "s$seed" "$seed"; done
for seed in ${BLIND_SEEDS-0 1 2}; do run "s$seed-audio-blind" "$seed" --audio-blind; done
echo "study done: $out"
