#!/usr/bin/env bash
# The trained columns of Tables 4, 5 (and 7) for the committed report (issue #16 item 4):
# avesformer-r18's variants trained on synthetic S4 with the ablation recipe (docs/training.md:
# 600 steps, warmup 30, validation every 100, batch 8, lr 2e-4, 64x64, 3000 videos), seeds 0, 1, 2,
# each checkpoint probed on 32 test frames, and the base's audio-blind control per seed.
#
# One `avskit compare` per (variant, seed), so that the log holds each run's minutes with the GEMM
# probe before and after it. Everything lands in the record store; a finished (variant, seed) is read
# back, an interrupted run resumes from its checkpoint: run the script again to go on.
# The order puts the paper's two claims first: dissipation against cross-attention (Table 5), then
# PQG against BQG and none (Table 4); QG's runs, twice as long as the others, come last in each seed.
#
# GRID=1 runs the grid as three `compare` commands (one per axis, every seed), for LAUNCH to run side by side.
# Usage: [GRID=1] [SUBSET=ms3] [SEEDS="1 2"] [VARIANTS="fusion:tpavi qg:qg"] [AUDIO_BLIND=0] [TABLE7=1] [BASE_CHECKPOINT=0] [LAUNCH="--launcher local --local-jobs 2 --job-threads 1"] scripts/ablation-sweep.sh [STORE]   (default runs/report-store.jsonl); log: STORE's folder/ablation-sweep.log
# A fresh checkout has no runs/: the store then starts as a copy of the committed reports/records.jsonl,
# whose finished runs are read back (checkpoints do not travel: run SEEDS="1 2" there, since seed 0's
# base checkpoint, for the figures, would be retrained).
# Then: avskit report --no-measure --results STORE --out reports
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-runs/report-store.jsonl}
log="$(dirname "$store")/ablation-sweep.log"
if [ ! -e "$store" ]; then mkdir -p "$(dirname "$store")"; cp reports/records.jsonl "$store"; fi
seeds=${SEEDS:-0 1 2}
subset=${SUBSET:-s4}  # synthetic:s4 (Tables 4, 5, 7) or synthetic:ms3 (issue #33: where the paper's effects are largest)
# LAUNCH: where each run goes (default here, one after another); e.g. --launcher local --local-jobs 2 --job-threads 1
read -r -a launch <<< "${LAUNCH:-}"
# AXIS:VALUE pairs; QG last: its runs take twice as long. VARIANTS=... and AUDIO_BLIND=0 run a part of the sweep
variants=${VARIANTS:-fusion:dissipation qg:bqg qg:none fusion:tpavi fusion:cha fusion:sigmoid qg:qg}
probe() {  # avsbench_kit.profiling.env.gemm_probe: the GEMM probe every training record carries
  .venv/bin/python -c "from avsbench_kit.profiling.env import gemm_probe; print(f'{gemm_probe():.0f}')"; }
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
run() {  # AXIS VALUE SEED [extra compare flags]
  local axis=$1 value=$2 seed=$3; shift 3
  local before start
  before=$(probe); start=$(date +%s)
  .venv/bin/avskit compare "--$axis" "$value" --base avesformer-r18 --train "synthetic:$subset" --steps 600 --train-warmup 30 \
    --val-every 100 --seeds "$seed" --probe-frames 32 --measure none --results "$store" "${launch[@]}" "$@" --json > /dev/null
  echo "$(date -Is) $subset $axis=$value seed $seed $*: $(( ($(date +%s) - start) / 60 )) min, probe $before -> $(probe) GMAC/s, $cpu" | tee -a "$log"
}
# seed 0 of every variant first (the figures draw each variant's seed-0 checkpoint), then seeds 1, 2
base_checkpoint() {  # the base's seed-0 checkpoint, for the figures and its trained-attention probe
  # (the recipe study kept its records, not its checkpoints; training is deterministic, so this
  # run's J must equal the study's seed 0: the log shows both)
  local folder="$(dirname "$store")/train/avesformer-r18-synthetic-$subset-600-warmup30"
  [ -s "$folder.json" ] && return 0  # finished (an interrupted run resumes from its last.pt)
  local before start
  before=$(probe); start=$(date +%s)
  .venv/bin/avskit train avesformer-r18 --data "synthetic:$subset" --size 64 --videos 3000 --steps 600 --batch 8 --lr 2e-4 \
    --warmup 30 --val-every 100 --seed 0 --out "$folder" --results "$store" --json > "$folder.json"
  echo "$(date -Is) $subset base seed 0 (checkpoint): $(( ($(date +%s) - start) / 60 )) min, probe $before -> $(probe) GMAC/s, $cpu" | tee -a "$log"
  run fusion cross_attention 0  # probes it
}
if [ -n "${GRID:-}" ]; then  # the whole grid in three commands, so that a launcher (LAUNCH) can run its jobs side by side
  csv=$(echo $seeds | tr ' ' ,)
  run qg none,qg,bqg,pqg "$csv" --audio-blind-control
  run fusion dissipation,tpavi,cha,sigmoid,cross_attention "$csv"
  if [ -n "${TABLE7:-}" ]; then run stages TCT,TTC,TTT,CTT "$csv"; fi
  echo "sweep done: $store" | tee -a "$log"
  exit 0
fi
for seed in $seeds; do
  # BASE_CHECKPOINT=0: seed 0 without retraining the base's checkpoint (a fresh checkout that only adds rows)
  if [ "$seed" = 0 ] && [ "${BASE_CHECKPOINT:-1}" = 1 ]; then base_checkpoint; fi
  for variant in $variants; do
    run "${variant%%:*}" "${variant#*:}" "$seed"
  done
  if [ "$seed" = 0 ]; then run stages TTT 0; fi  # Figure 7's trained decoder layers
done
if [ "${AUDIO_BLIND:-1}" = 1 ]; then for seed in $seeds; do run fusion cross_attention "$seed" --audio-blind-control; done; fi
if [ -n "${TABLE7:-}" ]; then  # seed by seed, so that a sweep stopped part-way leaves every row with as many seeds as it could
  for seed in $seeds; do for stages in TCT TTC TTT; do run stages "$stages" "$seed"; done; done
fi
echo "sweep done: $store" | tee -a "$log"
