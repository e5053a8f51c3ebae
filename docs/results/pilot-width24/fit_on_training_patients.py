"""How well does a fold model fit its own training patients? Per-patient Dice on its training and its
validation patients, the shipped post-processing, on the original grids.

    python docs/results/pilot-width24/fit_on_training_patients.py ../shared/data/lgg-flair runs/cv 0 1 \
        -o docs/results/pilot-width24/fit-on-training-patients.json

A model that fits its training patients far better than its validation patients generalises poorly; one
that fits them not much better has room to fit more (capacity), which is what the width pilot tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from choose_variant import settings_of  # noqa: E402
from cv_components import SHIPPED, evaluate_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("folds", type=int, nargs="+")
    parser.add_argument("-o", "--output", type=Path)
    options = parser.parse_args()
    import torch

    from neuroseg.inference import Segmenter
    from neuroseg.io.datasets import find_labelled_cases

    torch.set_num_threads(1)
    settings = settings_of(SHIPPED)
    loaders = dict(find_labelled_cases(options.data))
    result = {"command": "python docs/results/pilot-width24/fit_on_training_patients.py " + " ".join(sys.argv[1:]),
              "variant": SHIPPED, "precision": "bf16", "folds": {}}
    for k in options.folds:
        segmenter = Segmenter(options.models_dir / f"fold{k}", device="cpu", precision="bf16")
        training = segmenter.model.metadata["training"]
        fold = {}
        for group in ("train_cases", "validation_cases"):
            dices = {}
            for case_id in training[group]:
                case = loaders[case_id]()
                dices[case_id] = evaluate_case(segmenter, case.image, case.label, settings)["dice"]["none"]
            values = np.array(list(dices.values()))
            fold[group] = {"patients": len(dices), "dice_mean": round(float(values.mean()), 4),
                           "dice_median": round(float(np.median(values)), 4), "dice": dices}
            print(f"fold {k} {group}: {len(dices)} patients, mean {values.mean():.4f}, "
                  f"median {np.median(values):.4f}", flush=True)
        result["folds"][str(k)] = fold
    if options.output:
        options.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
