#!/usr/bin/env bash
# Train the five patient-level cross-validation fold models side by side on one GPU.
# Fold 0 is the shipped default model. Usage: scripts/train_folds.sh DATA_OR_CACHE OUTDIR [MAX_MINUTES]
set -u
data=$1
out=$2
minutes=${3:-6}
mkdir -p "$out"
for k in 0 1 2 3 4; do
  OMP_NUM_THREADS=3 python3 -m neuroseg train "$data" -o "$out/fold$k" --folds 5 --fold "$k" \
    --epochs 200 --max-minutes "$minutes" --device cuda >"$out/fold$k.log" 2>&1 &
done
wait
