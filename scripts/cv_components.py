"""Would a rule on the mask's 3D components raise the CV's Dice? Measured on the fold models' own patients.

    python scripts/cv_components.py DATA MODELS_DIR [--folds 5] [--variant NAME] [-o OUT.json]
    e.g. python scripts/cv_components.py ../shared/data/lgg-flair runs/cv -o docs/results/cv5-v2-crops/components.json

Each fold model ``MODELS_DIR/fold<k>`` segments its validation patients with the post-processing that
``--variant`` names (default: the shipped one); the mask's 26-connected components are then kept or dropped
by each rule below, and Dice is measured on the original grid. Rules: only the largest component; components
under a fraction of the largest dropped; components whose highest (or mean) probability is under a bound
dropped. Writes every patient's components (size, peak and mean probability, share inside the label) and
each rule's Dice, with the pooled means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # choose_variant.py: a variant name's settings

from choose_variant import settings_of  # noqa: E402

SHIPPED = "gated0.1_min1ml_t0.4_filled_tta"
RELATIVE = (0.05, 0.1, 0.2, 0.5)
PEAK = (0.6, 0.7, 0.8, 0.9)
MEAN = (0.5, 0.6, 0.7)


def rules(sizes: np.ndarray, peaks: np.ndarray, means: np.ndarray) -> dict[str, np.ndarray]:
    """Which components each rule keeps (bool per component)."""
    kept = {"none": np.ones(sizes.size, bool)}
    if sizes.size == 0:
        return kept
    kept["largest"] = sizes == sizes.max()
    kept.update({f"relative{f:g}": sizes >= f * sizes.max() for f in RELATIVE})
    kept.update({f"peak{p:g}": peaks >= p for p in PEAK})
    kept.update({f"mean{m:g}": means >= m for m in MEAN})
    return kept


def evaluate_case(segmenter, image, label, settings: dict) -> dict:
    from scipy import ndimage

    from neuroseg.training.evaluate import dice

    segmenter.flip_tta, segmenter.gate = settings["flip_tta"], False
    prediction = segmenter.predict(image)
    working = prediction.crop.invert(prediction.probabilities)
    keep = prediction.classifier >= settings["gate_threshold"] if settings["gate"] else None
    mask = segmenter.mask_on_input_grid(image, prediction, working, keep, settings["min_component_ml"],
                                        settings["threshold"], settings["fill_holes"])
    probabilities = prediction.reorientation.invert(working)
    truth = label.array > 0
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    index = np.arange(1, count + 1)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    peaks = np.asarray(ndimage.maximum(probabilities, labels, index)) if count else np.zeros(0)
    means = np.asarray(ndimage.mean(probabilities, labels, index)) if count else np.zeros(0)
    inside = np.asarray(ndimage.mean(truth, labels, index)) if count else np.zeros(0)
    ml = image.voxel_volume_ml
    return {"volume_ml_true": float(truth.sum()) * ml,
            "components": [{"ml": float(s) * ml, "peak": float(p), "mean": float(m), "inside_label": float(i)}
                           for s, p, m, i in zip(sizes, peaks, means, inside)],
            "dice": {name: dice(np.concatenate([[False], kept])[labels], truth)
                     for name, kept in rules(sizes, peaks, means).items()}}


def pooled(cases: dict) -> dict:
    """Per rule: mean and median Dice, and the mean over tumours under 5 mL (a rule absent for a case with
    no component is that case's unchanged Dice)."""
    names = {name for case in cases.values() for name in case["dice"]}
    out = {}
    for name in sorted(names):
        dices = np.array([c["dice"].get(name, c["dice"]["none"]) for c in cases.values()])
        small = np.array([c["dice"].get(name, c["dice"]["none"]) for c in cases.values() if c["volume_ml_true"] < 5])
        out[name] = {"dice_mean": round(float(dices.mean()), 4), "dice_median": round(float(np.median(dices)), 4),
                     "dice_min": round(float(dices.min()), 4),
                     "under_5ml_mean": round(float(small.mean()), 4) if small.size else None}
    return out


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--variant", default=SHIPPED)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("-o", "--output", type=Path)
    options = parser.parse_args(args)
    import torch

    from neuroseg.inference import Segmenter
    from neuroseg.io.datasets import find_labelled_cases

    torch.set_num_threads(1)
    settings = settings_of(options.variant)
    loaders = dict(find_labelled_cases(options.data))
    cases = {}
    for k in range(options.folds):
        segmenter = Segmenter(options.models_dir / f"fold{k}", device="cpu", precision=options.precision)
        for case_id in segmenter.model.metadata["training"]["validation_cases"]:
            case = loaders[case_id]()
            cases[case_id] = {"fold": k, **evaluate_case(segmenter, case.image, case.label, settings)}
            print(k, case_id, " ".join(f"{n}={d:.3f}" for n, d in cases[case_id]["dice"].items()), flush=True)
    result = {"command": "python scripts/cv_components.py " + " ".join(sys.argv[1:] if args is None else args),
              "variant": options.variant, "precision": options.precision, "pooled": pooled(cases), "cases": cases}
    print(json.dumps(result["pooled"], indent=1))
    if options.output:
        options.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
