"""Evaluation through the full inference pipeline, on the original grids of labelled cases."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuroseg.errors import InputError
from neuroseg.volume import Volume

# Post-processing choices compared from one prediction per case: the classifier gate's
# threshold (None: every slice segmented) and the smallest 3D component kept.
GATE_CHOICES = (None, 0.1, 0.25, 0.5)
MIN_COMPONENT_CHOICES_ML = (0.0, 0.25, 1.0)
THRESHOLD_CHOICES = (0.3, 0.4, 0.5)


def select_cases(all_ids, metadata: dict, cases: str) -> list[str]:
    if cases == "validation":
        chosen = metadata.get("training", {}).get("validation_cases")
        if not chosen:
            raise InputError("The model records no validation cases; pass --cases all or a comma list")
    elif cases == "all":
        chosen = list(all_ids)
    else:
        chosen = [c.strip() for c in cases.split(",") if c.strip()]
    missing = sorted(set(chosen) - set(all_ids))
    if missing:
        raise InputError(f"Cases not found in the data: {', '.join(missing[:5])}")
    return list(chosen)


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    from monai.metrics import compute_dice

    if not truth.any() and not prediction.any():
        return 1.0
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
    return float(compute_dice(as_tensor(prediction), as_tensor(truth), include_background=True)[0, 0])


def per_slice(mask: np.ndarray, slice_axis: int) -> np.ndarray:
    return mask.any(axis=tuple(a for a in range(3) if a != slice_axis))


def evaluate_case(segmenter, image: Volume, label: Volume, flip_tta: bool = False) -> dict:
    """Dice and slice-level outcomes of every post-processing variant, from one prediction."""
    started = time.perf_counter()
    segmenter.flip_tta = flip_tta
    segmenter.gate = False  # segment every slice; gating is applied below as a variant
    prediction = segmenter.predict(image)
    working = prediction.crop.invert(prediction.probabilities)
    axis = prediction.reorientation.slice_axis
    truth = label.array > 0
    truth_slices = per_slice(truth, axis)
    variants = {}
    for gate, min_ml, threshold, filled in itertools.product(GATE_CHOICES, MIN_COMPONENT_CHOICES_ML,
                                                              THRESHOLD_CHOICES, (False, True)):
        keep = None if gate is None else prediction.classifier >= gate
        mask = segmenter.mask_on_input_grid(image, prediction, working, keep, min_ml, threshold, filled)
        name = variant_name(gate, min_ml, flip_tta, threshold, filled)
        variants[name] = {"dice": dice(mask, truth), "slices_pred": per_slice(mask, axis).tolist(),
                          "volume_ml": float(mask.sum()) * image.voxel_volume_ml}
    return {"slices_true": truth_slices.tolist(), "volume_ml_true": float(truth.sum()) * image.voxel_volume_ml,
            "variants": variants, "seconds": round(time.perf_counter() - started, 2)}


def evaluate_model(data, model=None, cases: str = "validation", device: str = "auto", flip_tta: bool = True,
                   progress=None, precision: str | None = None) -> dict:
    from neuroseg.inference import Segmenter
    from neuroseg.io.datasets import find_labelled_cases

    segmenter = Segmenter(model, device=device, precision=precision)
    loaders = dict(find_labelled_cases(data))
    chosen = select_cases(loaders, segmenter.model.metadata, cases)
    warnings = _seen_in_training(chosen, segmenter.model.metadata)
    results = {}
    for case_id in (progress(chosen) if progress else chosen):
        case = loaders[case_id]()
        result = evaluate_case(segmenter, case.image, case.label)
        # the classifier alone, both ways, once per case (the flip-averaged segmenter pass does not change it)
        plain, flipped = segmenter.classifier_probabilities(case.image)
        result.update(classifier=plain.round(4).tolist(), classifier_flip=flipped.round(4).tolist())
        if flip_tta:
            result["variants"].update(evaluate_case(segmenter, case.image, case.label, True)["variants"])
        results[case_id] = result
    return {"model": str(segmenter.model.path), "data": str(data), "precision": "bf16" if segmenter.bf16 else "fp32",
            "cases": results, "warnings": warnings,
            "summary": summarise(results), "default_variant": default_variant(segmenter.model.metadata)}


def _seen_in_training(chosen, metadata: dict) -> list[str]:
    """Scores on patients the model learnt from are optimistic: say so."""
    trained_on = set(metadata.get("training", {}).get("train_cases") or [])
    seen = [case for case in chosen if case in trained_on]
    if not seen:
        return []
    return [f"{len(seen)} of the {len(chosen)} cases were among the model's training patients "
            f"({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''}): their scores are optimistic"]


def variant_name(gate: float | None, min_ml: float, flip_tta: bool, threshold: float = 0.5,
                 filled: bool = False) -> str:
    gating = "ungated" if gate is None else f"gated{gate:g}"
    return (f"{gating}_min{min_ml:g}ml" + ("" if threshold == 0.5 else f"_t{threshold:g}")
            + ("_filled" if filled else "") + ("_tta" if flip_tta else ""))


def default_variant(metadata: dict) -> str:
    settings = metadata.get("inference", {})
    gate = float(settings.get("gate_threshold", 0.5)) if settings.get("gate", True) else None
    return variant_name(gate, float(settings.get("min_component_ml", 0)), bool(settings.get("flip_tta")),
                        float(settings.get("threshold", 0.5)), bool(settings.get("fill_holes", False)))


def summarise(results: dict) -> dict:
    """Per variant: Dice mean/median and slice detection; the classifier's own slice metrics."""
    from monai.metrics import compute_roc_auc

    truth = np.concatenate([r["slices_true"] for r in results.values()]).astype(bool)
    summary = {"cases": len(results), "slices": int(truth.size), "variants": {}}
    for key in ("classifier", "classifier_flip"):  # the classifier alone at 0.5, without and with flip averaging
        if all(key in r for r in results.values()):
            scores = np.concatenate([r[key] for r in results.values()])
            both_classes = 0 < truth.sum() < truth.size
            auc = compute_roc_auc(torch.from_numpy(scores), torch.from_numpy(truth)) if both_classes else None
            summary[key] = {**_detection(scores >= 0.5, truth), "roc_auc": None if auc is None else float(auc)}
    for name in next(iter(results.values()))["variants"]:
        dices = np.array([r["variants"][name]["dice"] for r in results.values()])
        predicted = np.concatenate([r["variants"][name]["slices_pred"] for r in results.values()]).astype(bool)
        summary["variants"][name] = {"dice_mean": float(dices.mean()), "dice_median": float(np.median(dices)),
                                     "dice_sd": float(dices.std()), "dice_min": float(dices.min()),
                                     "slices": _detection(predicted, truth)}
    return summary


def _detection(predicted: np.ndarray, truth: np.ndarray) -> dict:
    tp, tn = int((predicted & truth).sum()), int((~predicted & ~truth).sum())
    fp, fn = int((predicted & ~truth).sum()), int((~predicted & truth).sum())
    return {"accuracy": (tp + tn) / max(truth.size, 1), "sensitivity": tp / max(tp + fn, 1),
            "specificity": tn / max(tn + fp, 1), "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def format_summary(results: dict, all_variants: bool = False) -> str:
    """The classifier, the model's own post-processing (marked *) and each case's Dice; other
    post-processing variants only with ``all_variants`` (they are all in the JSON)."""
    summary = results["summary"]
    lines = [f"{summary['cases']} cases, {summary['slices']} slices; model {results['model']}"]
    for key, label in (("classifier", "classifier"), ("classifier_flip", "classifier, flip-averaged")):
        if key in summary:
            c = summary[key]
            auc = f"{c['roc_auc']:.3f}" if c["roc_auc"] is not None else "n/a"
            lines.append(f"{label}: accuracy {c['accuracy']:.3f} sensitivity {c['sensitivity']:.3f} "
                         f"specificity {c['specificity']:.3f} ROC AUC {auc}")
    default = results.get("default_variant")
    variants = summary["variants"]
    shown = variants if all_variants or default not in variants else {default: variants[default]}
    for name, v in shown.items():
        marker = "*" if name == default else " "
        s = v["slices"]
        lines.append(f"{marker} {name:26s} Dice mean {v['dice_mean']:.3f} median {v['dice_median']:.3f} "
                     f"min {v['dice_min']:.3f} | slices sens {s['sensitivity']:.3f} spec {s['specificity']:.3f} "
                     f"acc {s['accuracy']:.3f}")
    if default in variants:
        if "fold_means" in variants[default]:
            lines.append("  Dice mean per fold: " + " ".join(f"{m:.3f}" for m in variants[default]["fold_means"])
                         + f" (sd {variants[default]['fold_mean_sd']:.3f})")
        lines.append(f"per case ({default}): " + ", ".join(
            f"{cid} {r['variants'][default]['dice']:.3f}" for cid, r in sorted(results["cases"].items())))
    if len(shown) < len(variants):
        lines.append(f"* the model's own post-processing; {len(variants) - len(shown)} other variants with "
                     "--variants (all in the JSON)")
    return "\n".join(lines)


def cross_validate(data, models_dir, folds: int = 5, device: str = "auto", train=None, progress=None,
                   flip_tta: bool = True, precision: str | None = None) -> dict:
    """Evaluate fold models ``models_dir/fold<k>`` on their own validation patients.

    ``train(fold, folder)`` is called for a fold whose model folder is missing, so the
    whole cross-validation can be reproduced from nothing.
    """
    models_dir = Path(models_dir)
    per_fold, pooled, split_seeds, defaults = [], {}, set(), set()
    for k in range(folds):
        folder = models_dir / f"fold{k}"
        if not (folder / "metadata.json").is_file():
            if train is None:
                raise InputError(f"Missing fold model {folder}")
            train(k, folder)
        split_seeds.add(_check_fold_model(folder, k, folds))
        if len(split_seeds) > 1:
            raise InputError(f"{models_dir}: the fold models were split with different seeds ({sorted(split_seeds)})")
        result = evaluate_model(data, folder, "validation", device, flip_tta=flip_tta, progress=progress,
                                precision=precision)
        defaults.add(result["default_variant"])
        per_fold.append(result["summary"])
        pooled.update(result["cases"])
    summary = summarise(pooled)
    for name, values in summary["variants"].items():
        means = [f["variants"][name]["dice_mean"] for f in per_fold]
        values["fold_means"] = means
        values["fold_mean_sd"] = float(np.std(means))
    return {"folds": folds, "models_dir": str(models_dir), "model": str(models_dir), "summary": summary,
            "per_fold": per_fold, "default_variant": defaults.pop() if len(defaults) == 1 else None,
            "cases": pooled}


def _check_fold_model(folder: Path, fold: int, folds: int) -> int:
    """A fold model made for another split would score patients it trained on; returns its split seed."""
    training = json.loads((folder / "metadata.json").read_text()).get("training", {})
    made_for = (training.get("fold"), training.get("folds"))
    if made_for != (fold, folds):
        raise InputError(f"{folder} was trained as fold {made_for[0]} of {made_for[1]}, not fold {fold} of {folds}: "
                         "use another --models-dir for this cross-validation")
    return training.get("split_seed")


def write_json(path, payload: dict) -> None:
    from neuroseg.io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
