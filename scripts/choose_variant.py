"""Apply docs/results/cv5-v2-crops/decision-rule.md to a pooled CV table: the post-processing, the
precision, and whether the model ships; prints the model's ``inference`` settings.

    python scripts/choose_variant.py TABLE.json [--paired FP32_VS_BF16.json] [--recipe NAME] [--write MODELDIR]

TABLE: ``scripts/cv_table.py``'s output (fp32 evaluations, every variant). --paired: its output for
``fp32=... bf16=...`` over the same folds (the bf16 check, rule 3). --write: set MODELDIR's
``metadata.json`` ``inference`` to the chosen settings (with ``chosen_by``) and record the CV under
``metrics.cross_validation`` (the weights are not touched, so their sha256s stay right).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

EQUAL_WITHIN = 0.005  # rule 2
BF16_WITHIN = 0.002  # rule 3
V1_CV_MEAN = 0.790  # rule 4
RULE = "docs/results/cv5-v2-crops/decision-rule.md"
NAME = re.compile(r"(?:ungated|gated(?P<gate>[\d.]+))_min(?P<min>[\d.]+)ml(?:_t(?P<t>[\d.]+))?"
                  r"(?P<filled>_filled)?(?P<tta>_tta)?$")


def settings_of(name: str) -> dict:
    """The ``inference`` settings a variant name stands for (training/evaluate.py's variant_name)."""
    found = NAME.match(name)
    if found is None:
        raise ValueError(f"not a variant name: {name}")
    gate = found["gate"]
    return {"gate": gate is not None, "gate_threshold": float(gate) if gate else 0.5,
            "threshold": float(found["t"] or 0.5), "min_component_ml": float(found["min"]),
            "fill_holes": bool(found["filled"]), "flip_tta": bool(found["tta"])}


def cost(name: str) -> tuple:
    """Cheaper first: no TTA, gated, a higher gate threshold (rule 2)."""
    s = settings_of(name)
    return (s["flip_tta"], not s["gate"], -s["gate_threshold"] if s["gate"] else 0.0)


def choose(variants: dict) -> tuple[str, list[str]]:
    """Rule 2 over rule 1's eligible variants: the chosen name and the ones that counted as equal."""
    eligible = {n: v for n, v in variants.items() if v["missed_over_1ml"] == 0}
    best = max(v["dice_mean"] for v in eligible.values())
    equal = [n for n, v in eligible.items() if v["dice_mean"] >= best - EQUAL_WITHIN]
    chosen = min(equal, key=lambda n: (cost(n), -eligible[n]["dice_mean"]))
    return chosen, sorted(equal, key=lambda n: -eligible[n]["dice_mean"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path)
    parser.add_argument("--paired", type=Path)
    parser.add_argument("--recipe")
    parser.add_argument("--write", type=Path, metavar="MODELDIR")
    args = parser.parse_args()
    recipes = json.loads(args.table.read_text())["recipes"]
    recipe = recipes[args.recipe or next(iter(recipes))]
    chosen, equal = choose(recipe["variants"])
    row = recipe["variants"][chosen]
    settings = settings_of(chosen)
    print(f"{recipe['patients']} patients; best pooled mean {max(v['dice_mean'] for v in recipe['variants'].values()):.4f}; "
          f"{len(equal)} variants within {EQUAL_WITHIN}")
    print(f"chosen: {chosen}  Dice mean {row['dice_mean']:.4f} median {row['dice_median']:.4f}  "
          f"missed>1mL {row['missed_over_1ml']}  <5mL {row['small_dice_mean']}  "
          f"sens {row['slice_sensitivity']:.3f} spec {row['slice_specificity']:.3f}")
    settings["precision"] = "fp32"
    difference = None
    if args.paired:
        pair = json.loads(args.paired.read_text()).get("paired") or {}
        difference = (pair.get("per_variant") or {}).get(chosen, {}).get("mean_difference")
        if difference is not None and abs(difference) <= BF16_WITHIN:
            settings["precision"] = "auto"
        print(f"bf16 - fp32 for {chosen}: {difference}")
    ships = row["dice_mean"] > V1_CV_MEAN and row["missed_over_1ml"] == 0
    print(f"ships (mean > {V1_CV_MEAN}, no tumour > 1 mL missed): {'yes' if ships else 'no'}")
    print(json.dumps(settings))
    if args.write:
        write_choice(args.write, settings, chosen, row, recipe, args, difference)
        print(f"wrote {args.write / 'metadata.json'}")


def write_choice(model_dir: Path, settings: dict, chosen: str, row: dict, recipe: dict, args,
                 bf16_difference) -> None:
    from neuroseg.io.atomic import atomic_write_text

    path = model_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    if bf16_difference is None:
        precision = "fp32 (bf16 not measured for this variant)"
    else:
        precision = (f"{'auto (bf16 where native)' if settings['precision'] == 'auto' else 'fp32'}: paired "
                     f"bf16 - fp32 mean Dice {bf16_difference:+.4f} for this variant over the patients of {args.paired} "
                     f"(rule: within {BF16_WITHIN})")
    metadata["inference"] = dict(settings, chosen_by=(
        f"{RULE} applied by `python scripts/choose_variant.py {args.table}"
        + (f" --paired {args.paired}" if args.paired else "") + "` to the pooled "
        f"{len(recipe['folds'])}-fold CV ({recipe['patients']} patients): variant {chosen}, pooled Dice mean "
        f"{row['dice_mean']:.4f}, median {row['dice_median']:.4f}; precision {precision}."))
    metadata.setdefault("metrics", {})["cross_validation"] = {
        "table": str(args.table), "rule": RULE,
        "folds": len(recipe["folds"]), "patients": recipe["patients"], "variant": chosen, **row,
        "note": f"the recipe's {len(recipe['folds'])}-fold patient-level CV (each fold model trained like this one "
                "on the other folds' patients); this model itself trained on all of them and has no validation "
                "patients of its own"}
    atomic_write_text(path, json.dumps(metadata, indent=2) + "\n")


if __name__ == "__main__":
    main()
