"""Two recipes' fold models averaged: do their mistakes cancel? (the shipped recipe and +-2 context slices)

    python docs/results/pilot-ctx2/ensemble.py runs/cv,runs/cv-ctx2 0,1 OUT.json

For each fold given, every fold model segments the fold's validation patients (bf16, flip TTA, every slice);
each member alone and the mean of their probabilities and slice-head outputs are then gated, thresholded,
cleaned (components under 1 mL dropped, holes filled) and scored on the original grid.
"""
import json, sys, numpy as np, torch
from neuroseg.inference import Segmenter
from neuroseg.io.datasets import find_labelled_cases
from neuroseg.training.evaluate import dice
torch.set_num_threads(2)
loaders = dict(find_labelled_cases('../shared/data/lgg-flair'))
dirs = sys.argv[1].split(',')  # e.g. runs/cv,runs/cv-ctx2
folds = [int(k) for k in sys.argv[2].split(',')]
out = {}
for k in folds:
    segs = [Segmenter(f'{d}/fold{k}', device='cpu', precision='bf16') for d in dirs]
    for cid in segs[0].model.metadata['training']['validation_cases']:
        case = loaders[cid]()
        preds, works = [], []
        for s in segs:
            s.flip_tta, s.gate = True, False
            p = s.predict(case.image); preds.append(p); works.append(p.crop.invert(p.probabilities))
        truth = case.label.array > 0
        row = {}
        for name, w, c in [(f'm{i}', works[i], preds[i].classifier) for i in range(len(segs))] + [('mean', np.mean(works, 0), np.mean([p.classifier for p in preds], 0))]:
            for gate in (0.1, 0.25):
                for t in (0.4, 0.5):
                    m = segs[0].mask_on_input_grid(case.image, preds[0], w, c >= gate, 1.0, t, True)
                    row[f'{name}_g{gate}_t{t}'] = dice(m, truth)
        row['ml'] = float(truth.sum()) * case.image.voxel_volume_ml
        out[cid] = row
        print(k, cid, ' '.join(f'{a}={b:.3f}' for a, b in row.items() if a.endswith('g0.1_t0.4')), flush=True)
json.dump(out, open(sys.argv[3], 'w'))
