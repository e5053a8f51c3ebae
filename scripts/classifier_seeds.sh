#!/usr/bin/env bash
# More training seeds of the shipped classifier recipe on folds 1-4, side by side on one GPU.
# Each seed's folds are split over two processes (about 1.3 minutes a fold on an H100 with six
# runs sharing it); the folds are then merged into OUTDIR/seedS.json, the layout that
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
python3 - "$out" "$@" <<'PY'
import glob, json, sys

import numpy as np

out, seeds = sys.argv[1], sys.argv[2:]
for seed in seeds:
    parts = [json.load(open(path)) for path in sorted(glob.glob(f"{out}/seed{seed}-folds*.json"))]
    if not parts:
        continue
    merged = {"config": parts[0]["config"], "folds": {}}
    for part in parts:
        merged["folds"].update(part["folds"])
    merged["config"]["only_folds"] = sorted(int(k) for k in merged["folds"])
    accuracies = [f["accuracy"] for f in merged["folds"].values()]
    slices = [f["slices"] for f in merged["folds"].values()]
    merged["accuracy_mean"], merged["accuracy_sd"] = float(np.mean(accuracies)), float(np.std(accuracies))
    merged["accuracy_pooled"] = float(np.average(accuracies, weights=slices))
    json.dump(merged, open(f"{out}/seed{seed}.json", "w"), indent=2)
    print(f"seed {seed}: folds {merged['config']['only_folds']}, pooled accuracy {merged['accuracy_pooled']:.4f}")
PY
