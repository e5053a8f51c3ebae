"""Pool per-fold evaluations (``neuroseg evaluate --model FOLD -o FOLD.json``) into one CV table.

    python scripts/cv_table.py RECIPE=fold0.json,fold1.json,... [RECIPE=...] -o docs/results/cv.json

For each recipe and post-processing variant: per-patient Dice (mean, median), tumours over 1 mL
missed entirely (Dice 0), the mean Dice of tumours under 5 mL, and slice sensitivity/specificity,
pooled over the patients of every fold given. The issue's goals are printed beside them.
Works with some folds only: the table says which folds it pools.
Two recipes over the same patients are also compared pair-wise (``paired``): for every variant both
have, the difference of the pooled mean Dice and the largest per-patient difference (e.g. bf16
against fp32 inference of the same fold models).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

GOALS = "goal: Dice mean >= 0.85, median >= 0.88; no tumour > 1 mL missed; < 5 mL mean >= 0.60; sens >= 0.93, spec >= 0.95"


def _read(path: Path) -> dict:
    """A fold's evaluation, plain or gzipped (every variant of every case: megabytes as plain JSON)."""
    import gzip

    return json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text())


def pooled(files: list[Path]) -> dict:
    cases, folds = {}, []
    for path in files:
        result = _read(Path(path))
        cases.update(result["cases"])
        folds.append({"file": Path(path).name, "model": result["model"], "default_variant": result["default_variant"],
                      "cases": len(result["cases"])})
    return {"folds": folds, "cases": cases}


def variant_row(cases: dict, name: str) -> dict:
    dice = np.array([c["variants"][name]["dice"] for c in cases.values()])
    volume = np.array([c["volume_ml_true"] for c in cases.values()])
    truth = np.concatenate([c["slices_true"] for c in cases.values()]).astype(bool)
    pred = np.concatenate([c["variants"][name]["slices_pred"] for c in cases.values()]).astype(bool)
    small = volume < 5
    return {"dice_mean": round(float(dice.mean()), 4), "dice_median": round(float(np.median(dice)), 4),
            "missed_over_1ml": int(((dice == 0) & (volume > 1)).sum()),
            "small_under_5ml": int(small.sum()),
            "small_dice_mean": round(float(dice[small].mean()), 4) if small.any() else None,
            "slice_sensitivity": round(float((pred & truth).sum() / max(truth.sum(), 1)), 4),
            "slice_specificity": round(float((~pred & ~truth).sum() / max((~truth).sum(), 1)), 4)}


def table(recipes: dict[str, list[Path]]) -> dict:
    out = {"goals": GOALS, "recipes": {}}
    for recipe, files in recipes.items():
        data = pooled(files)
        names = next(iter(data["cases"].values()))["variants"].keys()
        rows = {name: variant_row(data["cases"], name) for name in names}
        default = data["folds"][0]["default_variant"]
        best = max(rows, key=lambda n: rows[n]["dice_mean"])
        per_patient = {case: round(c["variants"][default]["dice"], 4) for case, c in sorted(data["cases"].items())}
        out["recipes"][recipe] = {"folds": data["folds"], "patients": len(data["cases"]), "default_variant": default,
                                  "default": rows[default], "best_variant": best, "best": rows[best],
                                  "variants": rows, "per_patient_dice_default": per_patient,
                                  "tumour_volume_ml": {case: round(c["volume_ml_true"], 2)
                                                       for case, c in sorted(data["cases"].items())}}
    return out


def paired(first: dict, second: dict) -> dict | None:
    """``second`` minus ``first`` per shared variant, when both cover the same patients."""
    if set(first) != set(second):
        return None
    names = sorted(set.intersection(*(set(c["variants"]) for c in (*first.values(), *second.values()))))
    rows = {}
    for name in names:
        a = np.array([first[case]["variants"][name]["dice"] for case in sorted(first)])
        b = np.array([second[case]["variants"][name]["dice"] for case in sorted(first)])
        rows[name] = {"mean_difference": round(float(b.mean() - a.mean()), 4),
                      "largest_patient_difference": round(float(np.abs(b - a).max()), 4)}
    means = [row["mean_difference"] for row in rows.values()]
    return {"variants": len(rows), "mean_difference_range": [min(means), max(means)],
            "largest_patient_difference": max(row["largest_patient_difference"] for row in rows.values()),
            "per_variant": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+", help="NAME=fold0.json,fold1.json,...")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    recipes = {}
    for item in args.recipes:
        name, _, files = item.partition("=")
        recipes[name] = [Path(f) for f in files.split(",") if f]
    result = table(recipes)
    if len(recipes) == 2:
        first, second = (pooled(files)["cases"] for files in recipes.values())
        result["paired"] = paired(first, second)
    print(GOALS)
    for name, recipe in result["recipes"].items():
        for label in ("default", "best"):
            row = recipe[label]
            print(f"{name:12s} {label:7s} {recipe[label + '_variant'] if label == 'best' else recipe['default_variant']:32s} "
                  f"{recipe['patients']:3d} patients  Dice {row['dice_mean']:.3f}/{row['dice_median']:.3f}  "
                  f"missed>1mL {row['missed_over_1ml']}  <5mL {row['small_dice_mean']}  "
                  f"sens {row['slice_sensitivity']:.3f} spec {row['slice_specificity']:.3f}")
    if result.get("paired"):
        pair = result["paired"]
        low, high = pair["mean_difference_range"]
        print(f"paired ({' - '.join(reversed(list(recipes)))}) over {pair['variants']} shared variants: pooled mean Dice "
              f"difference {low:+.4f} to {high:+.4f}; largest per-patient difference {pair['largest_patient_difference']:.4f}")
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
