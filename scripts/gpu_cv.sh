#!/usr/bin/env bash
# For a lent GPU (device tool): the v2 recipe's 5-fold CV and its all-data model in one run,
# the five folds side by side on one GPU, then the all-data model; everything lands in $OUT.
# The slice cache travels with the working tree (../shared does not), e.g.:
#   cp lgg192.npz gpu-cache.npz   (36 MB; carry it: run(carry=["gpu-cache.npz"]))
#   bash scripts/gpu_cv.sh gpu-cache.npz EPOCHS FOLD_MINUTES ALL_MINUTES
# Evaluation on the original grids needs ../shared: run `neuroseg evaluate` on the fold models
# back on the CPU machine (scripts/cv_table.py pools them).
set -u
cache=${1:-gpu-cache.npz}
epochs=${2:-60}
fold_minutes=${3:-5}
all_minutes=${4:-4}
out=${OUT:-gpu-out}
mkdir -p "$out/cv"
python3 -m pip install -q torch==2.13.0 2>/dev/null || true
python3 -m pip install -q -e . >/dev/null 2>&1 || true
nvidia-smi -L > "$out/device.txt" 2>&1
for k in 0 1 2 3 4; do
  OMP_NUM_THREADS=3 python3 -m neuroseg train "$cache" -o "$out/cv/fold$k" --folds 5 --fold "$k" \
    --epochs "$epochs" --max-minutes "$fold_minutes" --device cuda > "$out/cv/fold$k.log" 2>&1 &
done
wait
# the all-data model: the epochs the folds reached (their median), on every patient
folds_epochs=$(python3 - "$out/cv" <<'PY'
import json, statistics, sys
from pathlib import Path
reached = [json.loads((p / "metadata.json").read_text())["training"]["history"][-1]["epoch"]
           for p in Path(sys.argv[1]).glob("fold*") if (p / "metadata.json").exists()]
print(int(statistics.median(reached)) if reached else 0)
PY
)
[ "$folds_epochs" -gt 0 ] && python3 -m neuroseg train "$cache" -o "$out/all-data" --folds 1 --epochs "$folds_epochs" \
  --max-minutes "$all_minutes" --device cuda > "$out/all-data.log" 2>&1
ls -la "$out" "$out/cv" > "$out/listing.txt"
