#!/bin/bash
# Speed of the 160 px pilot's fold-0 model against the shipped recipe's 192 px fold-0 model, both with the shipped
# model's inference settings: one bench run of each (each beside the stock pipeline), trainings paused. The
# committed bench-*-run{1,2}.json are two invocations of it (run 2 with the graphs already cached).
set -e
cd "$(dirname "$0")/../../.."  # the repository
rm -rf /tmp/m160 /tmp/m192 && cp -r runs/cv-size160/fold0 /tmp/m160 && cp -r runs/cv/fold0 /tmp/m192
for m in /tmp/m160 /tmp/m192; do
python - "$m" <<'PY'
import json, sys
p = sys.argv[1] + '/metadata.json'
m = json.load(open(p)); shipped = json.load(open('neuroseg/weights/metadata.json'))
m['inference'] = dict(shipped['inference'], chosen_by='speed comparison only: the shipped settings')
json.dump(m, open(p, 'w'), indent=2)
PY
done
python benchmarks/bench.py --batch-size 20 --model-dir /tmp/m160 --json docs/results/pilot-size160/bench-160px-fold0.json > /tmp/bench-160.out 2>&1
python benchmarks/bench.py --batch-size 20 --model-dir /tmp/m192 --json docs/results/pilot-size160/bench-192px-fold0.json > /tmp/bench-192.out 2>&1
