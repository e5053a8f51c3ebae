#!/usr/bin/env bash
# 5-fold patient-level CV of two recipes on the same folds and the same CPU budget, on a 2-core CPU:
# each fold trains the v2 recipe (neuroseg train's defaults) and the v1 recipe side by side, one
# thread each, for MINUTES each; then both fold models are evaluated on their validation patients.
# Usage: scripts/cv_cpu.sh DATA CACHE OUTDIR [MINUTES] [FOLDS...]   (CACHE: a --cache file, made if missing)
# Afterwards: neuroseg evaluate DATA --folds 5 --models-dir OUTDIR/v2 (and OUTDIR/v1).
set -u
data=$1
cache=$2
out=$3
minutes=${4:-14}
shift 4 2>/dev/null || shift $#
[ -f "$cache" ] || python3 -c "from neuroseg.training.cache import build_cache as b; b('$data', 192).save('$cache')"
folds=${*:-0 1 2 3 4}
v1="--network resunet --loss dice-ce --ema 0 --small-boost 0 --classifier-pool avgmax"
mkdir -p "$out/v2" "$out/v1"
for k in $folds; do
  for recipe in v2 v1; do
    options=""; [ "$recipe" = v1 ] && options=$v1
    OMP_NUM_THREADS=1 python3 -m neuroseg train "$cache" -o "$out/$recipe/fold$k" --folds 5 --fold "$k" \
      --epochs 200 --max-minutes "$minutes" --batch-size 16 --threads 1 --device cpu $options \
      >"$out/$recipe/fold$k.log" 2>&1 &
  done
  wait
  for recipe in v2 v1; do
    python3 -m neuroseg evaluate "$data" --model "$out/$recipe/fold$k" --device cpu --force \
      -o "$out/$recipe/fold$k-evaluation.json" >"$out/$recipe/fold$k-evaluation.log" 2>&1 &
  done
  wait
done
