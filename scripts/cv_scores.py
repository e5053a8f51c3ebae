"""Slice accuracy and ROC AUC from the per-slice logits that scripts/cv_classifier.py keeps.

    python scripts/cv_scores.py seed0.json [seed1.json ...]

For each run, and for the ensemble of all runs (their mean logit, which needs the same folds),
with and without left-right flip averaging; pooled over the folds the runs share.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    runs = [json.load(open(path))["folds"] for path in args.runs]
    folds = sorted(set.intersection(*(set(run) for run in runs)), key=int)
    labels = np.concatenate([runs[0][k]["labels"] for k in folds]).astype(bool)
    for run in runs[1:]:  # an ensemble is only meaningful over the same slices
        if not np.array_equal(np.concatenate([run[k]["labels"] for k in folds]).astype(bool), labels):
            raise SystemExit("the runs do not hold the same validation slices")
    table = {}
    for flip in (False, True):
        logits = [np.concatenate([_logits(run[k], flip) for k in folds]) for run in runs]
        for path, values in zip(args.runs, logits):
            table[f"{path}{' flip' if flip else ''}"] = _metrics(values, labels)
        if len(runs) > 1:
            table[f"ensemble of {len(runs)}{' flip' if flip else ''}"] = _metrics(np.mean(logits, axis=0), labels)
    print(f"folds {', '.join(folds)}; {labels.size} slices, {int(labels.sum())} with tumour")
    for name, (accuracy, auc) in table.items():
        print(f"{name:40s} accuracy {accuracy:.4f}  ROC AUC {auc:.4f}")


def _logits(fold: dict, flip: bool) -> np.ndarray:
    plain = np.asarray(fold["logits"])
    return (plain + np.asarray(fold["logits_flipped"])) / 2 if flip else plain


def _metrics(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from monai.metrics import compute_roc_auc

    accuracy = float(((logits > 0) == labels).mean())
    return accuracy, float(compute_roc_auc(torch.from_numpy(logits), torch.from_numpy(labels.astype(np.float32))))


if __name__ == "__main__":
    main()
