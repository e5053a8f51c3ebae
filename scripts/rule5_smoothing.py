"""Rule 5 of docs/results/classifier-decision-rules.txt: slice-axis smoothing of the kept folds 1-4 logits (seeds 4-7).

    python scripts/rule5_smoothing.py   # needs .cache/lgg192.npz (the case offsets)
"""
import json, numpy as np, sys
sys.path.insert(0, "scripts")
from cv_scores import _logits, _metrics
data = np.load(".cache/lgg192.npz")
ids = [str(c) for c in data["case_ids"]]; offsets = data["offsets"]
count = {c: int(offsets[i + 1] - offsets[i]) for i, c in enumerate(ids)}
runs = [json.load(open(f"docs/results/classifier-cv-logits-seed{s}.json"))["folds"] for s in (4, 5, 6, 7)]
folds = ["1", "2", "3", "4"]
plain, smooth, labels = [], [], []
for k in folds:
    mean = np.mean([_logits(run[k], True) for run in runs], axis=0)
    lab = np.asarray(runs[0][k]["labels"], bool)
    start = 0
    for case in runs[0][k]["cases"]:
        n = count[case]; l = mean[start:start + n]
        padded = np.concatenate([l[:1], l, l[-1:]])
        smooth.append((padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4)
        plain.append(l); labels.append(lab[start:start + n]); start += n
    assert start == len(mean), (start, len(mean))
# order check: tumour slices of a case should form few runs
runs_per_case = [int(np.sum(np.diff(np.r_[0, x.astype(int), 0]) == 1)) for x in labels]
print("cases", len(labels), "tumour runs per case (median, max)", np.median(runs_per_case), max(runs_per_case))
y = np.concatenate(labels)
for name, v in (("flip ensemble", plain), ("smoothed", smooth)):
    acc, auc = _metrics(np.concatenate(v), y)
    print(f"{name:15s} accuracy {acc:.4f} ROC AUC {auc:.4f}  ({y.size} slices)")
