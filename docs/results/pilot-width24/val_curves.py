"""Validation Dice over training, from the fold models' committed metadata (each fold's history holds the
model-grid validation Dice every 5 epochs: the moving average of the weights, slice gate 0.5).

    python docs/results/pilot-width24/val_curves.py -o docs/results/pilot-width24/val-curves.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1]
RECIPES = {"192px-features16-150ep": RESULTS / "cv5-v2-crops", "160px-features16-150ep": RESULTS / "pilot-size160"}
EPOCHS = (50, 75, 100, 125, 150)


def curves(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.glob("fold*-metadata.json")):
        history = json.loads(path.read_text())["training"]["history"]
        out[path.name.split("-")[0]] = {r["epoch"]: round(r["val_dice_mean"], 4) for r in history
                                        if r["epoch"] in EPOCHS and "val_dice_mean" in r}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path)
    options = parser.parse_args()
    result = {}
    for name, folder in RECIPES.items():
        folds = curves(folder)
        mean = {e: round(float(np.mean([f[e] for f in folds.values()])), 4) for e in EPOCHS}
        result[name] = {"folds": folds, "mean_over_folds": mean}
        print(name, "mean over", len(folds), "folds:", " ".join(f"{e}:{v:.4f}" for e, v in mean.items()))
    if options.output:
        options.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
