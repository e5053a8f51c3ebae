"""What the model finds on tumour-free input, and whether the input checks warned when it found something.

    python scripts/false_tumour.py [--model MODELDIR] [--data ../shared/data] [--device auto]
                                   [--cases all|validation] [-o docs/results/false-tumour.json]

Runs against whatever model ``--model`` names (default: the shipped weights) and records that model's
weights sha256, so the numbers can be redone for a new model. Inputs:
- the Trio T1 MPRAGE (a healthy head, not FLAIR);
- the healthy slices of every lgg-flair patient: slices whose label holds no tumour, counted as a false
  positive when the mask has a voxel there (per patient; the model's training patients marked);
- synthetic worst cases: a head-shaped phantom with FLAIR-like tissue contrast, pure noise inside a head
  mask, and the phantom under a strong bias field.
Every input runs with force_input=True (a refusal is recorded, not obeyed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests/real_scans.py

from tests.real_scans import TRIO_T1_UID, default_data  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "false-tumour.json"


def phantom(shape=(200, 230, 26), spacing=(0.9, 0.9, 5.5), seed=0) -> np.ndarray:
    """A head-shaped phantom with FLAIR-like contrast: bright scalp, dark skull, dark CSF rim and
    ventricles, grey matter brighter than white, mild noise. No lesion."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)],
                                indexing="ij"))
    def ellipsoid(a, b, c, dz=0.0):
        return (grid[0] / a) ** 2 + (grid[1] / b) ** 2 + ((grid[2] - dz) / c) ** 2
    image = np.zeros(shape, dtype=np.float32)
    image[ellipsoid(75, 95, 80) < 1] = 300  # scalp
    image[ellipsoid(70, 90, 75) < 1] = 40  # skull
    image[ellipsoid(66, 86, 71) < 1] = 60  # CSF around the brain
    image[ellipsoid(64, 84, 69) < 1] = 260  # cortex
    image[ellipsoid(58, 78, 63) < 1] = 200  # white matter
    ventricles = ((np.abs(grid[0]) - 8) / 7) ** 2 + (grid[1] / 30) ** 2 + (grid[2] / 20) ** 2 < 1
    image[ventricles] = 50
    image += rng.normal(0, 8, shape).astype(np.float32)
    image[ellipsoid(75, 95, 80) >= 1] = np.abs(rng.normal(0, 5, (ellipsoid(75, 95, 80) >= 1).sum()))
    return image.astype(np.float32)


def noise_in_head(shape=(200, 230, 26), spacing=(0.9, 0.9, 5.5), seed=1) -> np.ndarray:
    from scipy import ndimage

    base = phantom(shape, spacing, seed)
    head = base > 100
    head = np.stack([ndimage.binary_fill_holes(head[:, :, k]) for k in range(shape[2])], axis=-1)
    rng = np.random.default_rng(seed)
    return np.where(head, rng.uniform(0, 300, shape), 0).astype(np.float32)


def bias_field(shape=(200, 230, 26), spacing=(0.9, 0.9, 5.5), seed=2, strength=0.6) -> np.ndarray:
    """The phantom times a smooth field from 1 - strength to 1 + strength across the head."""
    base = phantom(shape, spacing, seed)
    x = np.linspace(-1, 1, shape[0])[:, None, None]
    y = np.linspace(-1, 1, shape[1])[None, :, None]
    z = np.linspace(-1, 1, shape[2])[None, None, :]
    field = 1 + strength * np.clip(0.6 * x + 0.5 * y + 0.3 * z + 0.3 * x * y, -1, 1)
    return (base * field).astype(np.float32)


def summary(result) -> dict:
    report = result.report
    checks = report["input_checks"]
    return {"tumour_found": report["tumour_found"], "volume_ml": report["tumour_volume_ml"],
            "tumour_slices": len(report["tumour_slices"]), "input_check_level": checks["level"],
            "flagged": checks["flagged"],
            "max_slice_probability": round(max(s["classifier_probability"] for s in report["slices"]), 4)}


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cases", choices=("all", "validation"), default="all",
                        help="lgg-flair patients: all 88, or the model's validation patients only (faster)")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS)
    options = parser.parse_args(args)

    from neuroseg.inference import Segmenter
    from neuroseg.io import load_volume
    from neuroseg.io.datasets import find_labelled_cases
    from neuroseg.volume import Volume

    segmenter = Segmenter(options.model, device=options.device)
    metadata = segmenter.model.metadata
    training = set(metadata.get("training", {}).get("train_cases", []))
    begin = time.perf_counter()
    out = {"command": "python scripts/false_tumour.py" + (f" --model {options.model}" if options.model else ""),
           "model": {"name": metadata.get("name"), "created": metadata.get("created"),
                     "path": str(segmenter.model.path),
                     "weights_sha256": {k: v["sha256"] for k, v in metadata.get("weights", {}).items()}},
           "device": str(segmenter.device), "lgg_cases": options.cases}

    def save():  # after each part, so an interrupted run keeps what it measured
        out["seconds"] = round(time.perf_counter() - begin, 1)
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(out, indent=1) + "\n")

    affine = np.diag([-0.9, 0.9, 5.5, 1.0])
    out["synthetic"] = {}
    for name, make in (("head_phantom", phantom), ("noise_in_head_mask", noise_in_head), ("bias_field", bias_field)):
        out["synthetic"][name] = summary(segmenter.segment(Volume(make(), affine, {"format": "nifti"}),
                                                           force_input=True))
        print(name, out["synthetic"][name], flush=True)
    save()

    trio = load_volume(options.data / "dicom" / "study-trio-b17", series_uid=TRIO_T1_UID)
    out["trio_t1"] = summary(segmenter.segment(trio, force_input=True))
    print("trio", out["trio_t1"], flush=True)
    save()

    patients = []
    validation = set(metadata.get("training", {}).get("validation_cases", []))
    # the model's validation patients first: were the run cut short, the unseen patients are done
    cases = sorted(find_labelled_cases(options.data / "lgg-flair"), key=lambda item: item[0] in training)
    for case_id, load in cases:
        if options.cases == "validation" and case_id not in validation:
            continue
        case = load()
        result = segmenter.segment(case.image, force_input=True)
        axis = result.slice_axis
        other = tuple(a for a in range(3) if a != axis)
        healthy = ~case.label.array.astype(bool).any(axis=other)
        found = result.mask.array.astype(bool).any(axis=other)
        false_voxels = int(result.mask.array.sum(axis=other, dtype=np.int64)[healthy].sum())
        patients.append({"case": case_id, "training_patient": case_id in training,
                         "healthy_slices": int(healthy.sum()),
                         "false_positive_slices": int((found & healthy).sum()),
                         "slices_from_labelled_tumour": slice_gaps(found & healthy, ~healthy),
                         "false_positive_ml": round(false_voxels * result.mask.voxel_volume_ml, 3),
                         "input_check_level": result.report["input_checks"]["level"]})
        print(patients[-1], flush=True)
        out["lgg_flair_healthy_slices"] = {"per_patient": patients, "totals": _totals(patients)}
        save()
    print(json.dumps(out["lgg_flair_healthy_slices"]["totals"], indent=1))
    print(f"wrote {options.output}")
    return 0


def slice_gaps(false_slices: np.ndarray, tumour_slices: np.ndarray) -> list[int]:
    """For each false-positive slice, how many slices away the nearest labelled tumour slice lies
    (1: next to the tumour, an overshoot of its extent; large: a finding elsewhere in the head)."""
    tumour = np.flatnonzero(tumour_slices)
    if tumour.size == 0:
        return [-1 for _ in np.flatnonzero(false_slices)]
    return [int(np.abs(tumour - k).min()) for k in np.flatnonzero(false_slices)]


def _totals(patients) -> dict:
    def part(rows):
        healthy = sum(r["healthy_slices"] for r in rows)
        false = sum(r["false_positive_slices"] for r in rows)
        return {"patients": len(rows), "healthy_slices": healthy, "false_positive_slices": false,
                "slice_false_positive_rate": round(false / healthy, 4) if healthy else None,
                "patients_with_any_false_positive_slice": sum(r["false_positive_slices"] > 0 for r in rows),
                "false_positive_slices_next_to_tumour": sum(g == 1 for r in rows for g in r["slices_from_labelled_tumour"]),
                "false_positive_slices_over_2_from_tumour": sum(g > 2 for r in rows for g in r["slices_from_labelled_tumour"]),
                "false_positive_ml_median": float(np.median([r["false_positive_ml"] for r in rows])) if rows else None}
    return {"all": part(patients), "validation_patients": part([r for r in patients if not r["training_patient"]]),
            "training_patients": part([r for r in patients if r["training_patient"]])}


if __name__ == "__main__":
    raise SystemExit(main())
