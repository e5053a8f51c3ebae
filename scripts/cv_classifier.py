"""Patient-level cross-validation of the slice classifier alone (cheap enough for a CPU).

    python scripts/cv_classifier.py CACHE_OR_DATA --epochs 40 --pool avgmax -o cv.json
    python scripts/cv_classifier.py --merge part1.json part2.json -o cv.json   # one run made in parts

Each fold trains a fresh classifier with ``neuroseg``'s own training loop on the other
folds' patients (same split as ``neuroseg train --folds 5 --fold k``) and measures slice
accuracy and ROC AUC on the held-out patients; the segmenter is not trained.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from neuroseg.training.run import load_or_build_cache, split_cases
from neuroseg.training.train import TrainConfig, train_networks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--merge", nargs="+", metavar="PART",
                        help="instead of training: join the folds of one run made in parts (this script's outputs)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-folds", type=int, nargs="*", help="run these folds only")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--pool", default="avg")
    parser.add_argument("--no-stem-max-pool", action="store_true", help="finer feature maps, ~1.7x slower")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient split (and of training)")
    parser.add_argument("--train-seed", type=int, help="another training seed on the same split (run-to-run noise)")
    args = parser.parse_args()
    if args.merge:
        return _finish(_merged(args.merge), args.output)
    if args.data is None:
        parser.error("the data argument is required (or --merge)")

    config = TrainConfig(size=args.size, network="resunet", epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         cls_features=args.features, cls_pool=args.pool,
                         cls_stem_max_pool=not args.no_stem_max_pool, validate_dice=False,
                         seed=args.seed if args.train_seed is None else args.train_seed)
    cache = load_or_build_cache(args.data, config.size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {"config": dict(vars(args)), "folds": {}}
    for fold in args.only_folds if args.only_folds is not None else range(args.folds):
        train_ids, val_ids = split_cases(cache.case_ids, args.folds, fold, args.seed)
        started = time.perf_counter()
        _, classifier, history = train_networks(cache, train_ids, val_ids, config, device,
                                                log=lambda r: print(fold, r, flush=True),
                                                segmenter=torch.nn.Identity())
        last = history[-1]
        results["folds"][fold] = {"accuracy": last["val_slice_accuracy"], "auc": last["val_slice_auc"],
                                  "slices": sum(_count(cache.case_slices(c)) for c in val_ids),
                                  "minutes": round((time.perf_counter() - started) / 60, 1), "history": history,
                                  **_scores(classifier, cache, val_ids, config, device)}
        with open(args.output, "w") as handle:  # after every fold: a long run can be read while it goes
            json.dump(results, handle, indent=2)
    _finish(results, args.output)


def _finish(results: dict, output) -> None:
    """Add the accuracy over the folds (mean, sd, pooled by slices) and write the results."""
    accuracies = [f["accuracy"] for f in results["folds"].values()]
    slices = [f["slices"] for f in results["folds"].values()]
    results["accuracy_mean"], results["accuracy_sd"] = float(np.mean(accuracies)), float(np.std(accuracies))
    results["accuracy_pooled"] = float(np.average(accuracies, weights=slices))
    with open(output, "w") as handle:
        json.dump(results, handle, indent=2)
    print(json.dumps({k: v for k, v in results.items() if k != "folds"}, indent=2))


def _merged(paths) -> dict:
    """One run's folds from the files of its parts (e.g. folds 1-2 and 3-4 run side by side)."""
    parts = [json.load(open(path)) for path in paths]
    merged = {"config": parts[0]["config"], "folds": {}}
    for part in parts:
        merged["folds"].update(part["folds"])
    merged["config"]["only_folds"] = sorted(int(k) for k in merged["folds"])
    return merged


@torch.no_grad()
def _scores(classifier, cache, val_ids, config, device) -> dict:
    """Per-slice logits, plain and averaged with the left-right flip, for later comparisons
    (flip averaging, ensembles of runs) without retraining."""
    from monai.metrics import compute_roc_auc

    from neuroseg.training.train import SliceSampler

    val = SliceSampler(cache, val_ids, config.context, device)
    plain, flipped, truths = [], [], []
    for chunk in val.rows.split(64):
        images, _, labels = val.batch(chunk)
        plain.append(classifier(images).float()[:, 0])
        flipped.append(classifier(images.flip(-2)).float()[:, 0])  # -2: left-right, as in the engine
        truths.append(labels)
    plain, flipped, truths = torch.cat(plain), torch.cat(flipped), torch.cat(truths)
    both = (plain + flipped) / 2
    return {"accuracy_flip": float(((both > 0).float() == truths).float().mean()),
            "auc_flip": float(compute_roc_auc(both.cpu(), truths.cpu())),
            "logits": plain.cpu().numpy().round(3).tolist(), "logits_flipped": flipped.cpu().numpy().round(3).tolist(),
            "labels": truths.cpu().numpy().astype(int).tolist(), "cases": [c for c in cache.case_ids if c in set(val_ids)]}  # the rows' order


def _count(rows: slice) -> int:
    return rows.stop - rows.start


if __name__ == "__main__":
    main()
