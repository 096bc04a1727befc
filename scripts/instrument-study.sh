#!/usr/bin/env bash
# Issue #28's trained checkpoints, kept for the probes (pathways, selected-query localisation; later the
# report's mean maps): the positive control's seeds 1 and 2, then the seed-0 run of every Table 4 and
# Table 5 variant with the audio-blind control, on synthetic S4 with the ablation recipe. Resumable:
# `avskit compare` reuses every run its store already holds and resumes an interrupted one from its
# last.pt; checkpoints stay under OUT/*/train/. Usage: scripts/instrument-study.sh [OUT_DIR] (default
# runs/instruments); then `avskit pathways ... --set weights=OUT/.../last.pt` on each checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/instruments}
mkdir -p "$out/positive" "$out/ablation"
avskit=.venv/bin/avskit
common=(--base avesformer-r18 --train synthetic:s4 --probe-frames 32 --measure none --json)
$avskit compare "${common[@]}" --models avesformer-r18 --seeds "${POSITIVE_SEEDS:-1,2}" \
  --supervise-attention 'decoder.stages.2.layers.1.fusion*' --results "$out/positive/records.jsonl" > "$out/positive.json"
$avskit compare "${common[@]}" --qg pqg,none,qg,bqg --seeds 0 --audio-blind-control \
  --results "$out/ablation/records.jsonl" > "$out/table4.json"
$avskit compare "${common[@]}" --fusion cross_attention,dissipation,tpavi,cha,sigmoid --seeds 0 \
  --results "$out/ablation/records.jsonl" > "$out/table5.json"
echo "instrument study done: $out"
