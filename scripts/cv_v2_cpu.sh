#!/usr/bin/env bash
# The v2 recipe's patient-level 5-fold CV on a 2-core CPU, over as many sittings as it takes:
# two folds side by side, one thread each, a fixed number of epochs (the all-data model is then
# trained for the same number). A fold whose run was interrupted continues from its checkpoint
# (neuroseg train --resume); a finished fold (metadata.json present) is not trained again. Each
# finished fold is evaluated on its own validation patients on the original grids, in fp32 and again
# with bf16 inference, so that scripts/cv_table.py can compare the two pair-wise.
# Usage: [SIZE=px] [TRAIN_ARGS="..."] scripts/cv_v2_cpu.sh DATA CACHE OUTDIR EPOCHS FOLD [FOLD]
#   SIZE: the model's input size (default 192); the cache is built at it when CACHE is missing
#   TRAIN_ARGS: more `neuroseg train` options, for a variant of the recipe (e.g. "--context-slices 2")
#   e.g. scripts/cv_v2_cpu.sh ../shared/data/lgg-flair runs/cache192.npz runs/cv 150 0 1
# Then:  python scripts/cv_table.py v2=OUTDIR/fold0-evaluation.json,OUTDIR/fold1-evaluation.json,... -o TABLE.json
#        python scripts/cv_table.py fp32=OUTDIR/fold0-evaluation.json,... bf16=OUTDIR/fold0-evaluation-bf16.json,...
set -u
data=$1 cache=$2 out=$3 epochs=$4
shift 4
size=${SIZE:-192}
[ -f "$cache" ] || python3 -c "from neuroseg.training.cache import build_cache as b; b('$data', $size).save('$cache')"
mkdir -p "$out"
for k in "$@"; do
  (
    folder="$out/fold$k"
    if [ ! -f "$folder/metadata.json" ]; then
      resume=""; [ -f "$folder/checkpoint.pt" ] && resume="--resume"
      OMP_NUM_THREADS=1 python3 -m neuroseg train "$cache" -o "$folder" --folds 5 --fold "$k" --epochs "$epochs" \
        --size "$size" --threads 1 --device cpu $resume ${TRAIN_ARGS:-} >>"$out/fold$k.log" 2>&1 || exit 1
    fi
    OMP_NUM_THREADS=1 python3 -m neuroseg evaluate "$data" --model "$folder" --device cpu --force \
      -o "$out/fold$k-evaluation.json" >"$out/fold$k-evaluation.log" 2>&1
    OMP_NUM_THREADS=1 python3 -m neuroseg evaluate "$data" --model "$folder" --device cpu --force \
      --precision bf16 -o "$out/fold$k-evaluation-bf16.json" >"$out/fold$k-evaluation-bf16.log" 2>&1
  ) &
done
wait
