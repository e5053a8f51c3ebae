#!/usr/bin/env bash
# The five fold models evaluated through their traced graphs (cache warmed first), to compare with
# runs/cv-recheck (the same code, eager network): every variant's Dice should be equal.
cd /work/main
export NEUROSEG_CACHE_DIR=/work/main/runs/cv-recheck-graph/cache
for k in 0 1 2 3 4; do
  OMP_NUM_THREADS=1 python3 -c "from neuroseg.inference import Segmenter; Segmenter('runs/cv/fold$k', device='cpu', precision='bf16')"
  OMP_NUM_THREADS=1 python3 -m neuroseg evaluate ../shared/data/lgg-flair --model runs/cv/fold$k --device cpu --force \
    --precision bf16 -o runs/cv-recheck-graph/fold$k-bf16.json > runs/cv-recheck-graph/fold$k.log 2>&1
done
