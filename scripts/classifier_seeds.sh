#!/usr/bin/env bash
# More training seeds of the shipped classifier recipe on folds 1-4, side by side on one GPU.
# Each seed's folds are split over two processes (about 1.3 minutes a fold on an H100 with six
# runs sharing it); the folds are then merged (cv_classifier.py --merge) into OUTDIR/seedS.json, the layout that
# scripts/cv_scores.py reads. A process stopped by LIMIT leaves the folds it finished.
# Usage: scripts/classifier_seeds.sh CACHE OUTDIR SEED...   (EPOCHS=40, LIMIT=420 s in all)
set -u
data=$1
out=$2
shift 2
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
mkdir -p "$out"
for seed in "$@"; do
  for folds in "1 2" "3 4"; do
    part="$out/seed$seed-folds${folds// /}"
    # shellcheck disable=SC2086
    timeout "${LIMIT:-420}" python3 scripts/cv_classifier.py "$data" -o "$part.json" --pool avgmax \
      --epochs "${EPOCHS:-40}" --train-seed "$seed" --only-folds $folds >"$part.log" 2>&1 &
  done
done
wait
for seed in "$@"; do
  parts=("$out/seed$seed"-folds*.json)
  if [ -e "${parts[0]}" ]; then  # no part at all when both processes failed
    echo "seed $seed: $(python3 scripts/cv_classifier.py --merge "${parts[@]}" -o "$out/seed$seed.json" | grep pooled)"
  fi
done
