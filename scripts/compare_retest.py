"""Test-retest of ``neuroseg compare`` on real scans: each scan against itself, its head turned 10 degrees and
shifted 8 mm and resampled onto a 1 x 1 x 5 mm grid (a thick slice averages what it spans). Reports the
registration error at the tumour, the volume and SPD changes (which should be near zero) and the category;
then pairs of different patients, which must be flagged (head Dice, correlation inside the head).

    python scripts/compare_retest.py -o docs/results/compare-retest.json [--cases 7]
    python scripts/compare_retest.py -o du7014.json --case TCGA_DU_7014_19860618 --pairs 0 --reprocessed-pixels

Same-head limits on real data: the retest pairs (one head, moved and resampled), one patient's raw clinical
scan against the same scan as the lgg-flair release processed it (another grid, field of view and intensity
scale), and pairs of different lgg-flair patients; each pair's head Dice and correlation are written, with the
margins to the limits of ``neuroseg.longitudinal.register``.

Needs ../shared/data/lgg-flair (the tumour of an lgg-flair case is its label; of the sample, its mask).
The lgg-flair release records no voxel size (its header's 1 mm is nominal): each case is given 0.9 mm pixels
and slices of 143 mm / its slice count, as the sample scan of the same data has (26 slices of 5.5 mm), so
that a head is head-shaped before it is resampled to 5 mm slices.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LGG = REPO.parent / "shared" / "data" / "lgg-flair"
CASES = ("TCGA_CS_4941_19960909", "TCGA_DU_7014_19860618", "TCGA_FG_6692_20020606", "TCGA_HT_7602_19951103",
         "TCGA_EZ_7264_20010816", "TCGA_DU_5851_19950428", "TCGA_HT_7684_19950816")
SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"
CLINICAL = REPO.parent / "shared" / "data" / "clinical" / "tcga-fg-6692" / "flair.nii.gz"
PATIENT_PAIRS = (("TCGA_CS_4941_19960909", "TCGA_CS_4942_19970222"),
                 ("TCGA_DU_7014_19860618", "TCGA_HT_7602_19951103"),
                 ("TCGA_FG_6692_20020606", "TCGA_EZ_7264_20010816"),
                 ("TCGA_DU_5851_19950428", "TCGA_HT_7684_19950816"),
                 ("TCGA_CS_5395_19981004", "TCGA_DU_6400_19830518"),
                 ("TCGA_FG_7634_20000128", "TCGA_HT_8018_19970411"),
                 ("TCGA_DU_A5TP_19970614", "TCGA_FG_A60K_20040224"),
                 ("TCGA_HT_A61A_20000127", "TCGA_CS_6186_20000601"))


HEAD_HEIGHT_MM = 143.0


def lgg_scan(case: str, folder: Path, pixel_mm: float = 0.9) -> tuple[Path, Path]:
    """An lgg-flair case and its label with a plausible voxel size (see the docstring), as NIfTI files."""
    import nibabel as nib

    out = []
    for kind in ("imagesTr", "labelsTr"):
        image = nib.load(str(LGG / kind / f"{case}.nii.gz"))
        thickness = round(HEAD_HEIGHT_MM / image.shape[2], 2)
        affine = np.diag([-pixel_mm, -pixel_mm, thickness, 1.0])
        path = folder / f"{case}_{pixel_mm}_{kind}.nii.gz"
        nib.Nifti1Image(np.asarray(image.dataobj), affine).to_filename(str(path))
        out.append(path)
    return out[0], out[1]


def retest(path: Path, label: Path | None, n: int, segmenter, folder: Path) -> dict:
    from neuroseg.export.nifti import write_nifti
    from neuroseg.io import load_volume
    from neuroseg.longitudinal.compare import compare
    from neuroseg.longitudinal.register import head_mask, rotation_angle
    from neuroseg.longitudinal.simulate import moved_copy, rigid_matrix

    baseline = load_volume(path)
    centre = (baseline.affine @ np.r_[np.argwhere(head_mask(baseline)).mean(axis=0), 1.0])[:3]
    degrees, shift = np.zeros(3), np.zeros(3)
    degrees[n % 3], shift[(n + 1) % 3] = 10.0, 8.0  # each case turned about another axis
    motion = rigid_matrix(degrees, shift, centre)
    followup = write_nifti(moved_copy(baseline, motion), folder / "followup.nii.gz", np.float32)
    begin = time.perf_counter()
    comparison, _ = compare(path, followup, folder / "out", segmenter=segmenter, force=True)
    seconds = time.perf_counter() - begin
    tumour = load_volume(label).array > 0 if label else comparison.baseline.mask.array > 0
    points = np.c_[np.argwhere(tumour), np.ones(int(tumour.sum()))] @ baseline.affine.T
    found = comparison.registration.matrix_ras()
    error = np.linalg.norm((points @ found.T - points @ motion.T)[:, :3], axis=1)
    return {"scan": path.name, "motion_degrees": degrees.tolist(), "motion_mm": shift.tolist(),
            "error_at_tumour_mm_max": round(float(error.max()), 3), "error_at_tumour_mm_mean": round(float(error.mean()), 3),
            "rotation_error_degrees": round(rotation_angle(np.linalg.inv(motion) @ found), 3),
            "head_dice": round(comparison.registration.head_dice, 4),
            "head_correlation": round(comparison.registration.correlation, 4), "method": comparison.registration.method,
            "flagged": not comparison.registration.trusted,
            "volume_ml": [comparison.volumetric["volume_baseline_ml"], comparison.volumetric["volume_followup_ml"]],
            "volume_change_percent": comparison.volumetric["change_percent"],
            "spd_change_percent": comparison.rano["change_percent"], "rano_lgg": comparison.rano["category"],
            "seconds": round(seconds, 1)}


def different(a: str, b: str, folder: Path) -> dict:
    return registered(lgg_scan(a, folder)[0], lgg_scan(b, folder)[0], a, b)


def registered(a: Path, b: Path, name_a: str, name_b: str) -> dict:
    """The same-head verdict of one pair, registration only (no segmentation)."""
    from neuroseg.io import load_volume
    from neuroseg.longitudinal.register import register

    registration = register(load_volume(a), load_volume(b))
    return {"baseline": name_a, "followup": name_b, "head_dice": round(registration.head_dice, 4),
            "head_correlation": round(registration.correlation, 4), "extent_ratio": round(registration.extent_ratio, 3),
            "method": registration.method, "flagged": not registration.trusted, "problems": registration.problems}


def summarise(rows: list, same: list, pairs: list) -> dict:
    """The spread of the retest changes, and each group's head Dice and correlation beside the same-head limits."""
    from neuroseg.longitudinal.register import MIN_HEAD_CORRELATION, MIN_HEAD_DICE
    from neuroseg.longitudinal.response import STABLE

    out = {}
    for key in ("volume_change_percent", "spd_change_percent"):
        change = np.array([r[key] for r in rows if r[key] is not None], dtype=float)
        if len(change):
            out[key] = {"n": len(change), "mean": round(float(change.mean()), 2),
                        "sd": round(float(change.std(ddof=1)), 2) if len(change) > 1 else None,
                        "range": [round(float(change.min()), 2), round(float(change.max()), 2)],
                        "max_abs": round(float(np.abs(change).max()), 2)}
    if rows:
        out["error_at_tumour_mm_max"] = max(r["error_at_tumour_mm_max"] for r in rows)
        out["rotation_error_degrees_max"] = max(r["rotation_error_degrees"] for r in rows)
        out["categories"] = [r["rano_lgg"] for r in rows]
        out["stable"] = f"{sum(r['rano_lgg'] == STABLE for r in rows)}/{len(rows)}"
    for name, group in (("retest", rows), ("same_patient", same), ("different_patients", pairs)):
        if group:
            dice, correlation = [r["head_dice"] for r in group], [r["head_correlation"] for r in group]
            out[name + "_verdict"] = {"n": len(group), "head_dice_range": [min(dice), max(dice)],
                                      "head_correlation_range": [min(correlation), max(correlation)],
                                      "flagged": sum(r["flagged"] for r in group)}
    out["limits"] = {"min_head_dice": MIN_HEAD_DICE, "min_head_correlation": MIN_HEAD_CORRELATION}
    return out


def retest_scans(names: list | None, count: int, folder: Path) -> list:
    """(index, scan, label) of the cases to retest: the first ``count`` and the sample scan, or the cases
    named. The index picks the motion (the axis turned about), so a case named alone moves as in the full run."""
    order = CASES + ("sample",)
    chosen = names if names is not None else list(CASES[:count]) + (["sample"] if count else [])
    return [(order.index(name),) + ((SAMPLE, None) if name == "sample" else lgg_scan(name, folder))
            for name in sorted(set(chosen), key=order.index)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", type=int, default=len(CASES),
                        help=f"lgg-flair cases to retest, at most {len(CASES)}, then the sample scan; 0: no retest")
    parser.add_argument("--case", action="append", choices=CASES + ("sample",), default=None,
                        help="retest only this case (repeatable), moved as in the full run; overrides --cases")
    parser.add_argument("--pairs", type=int, default=len(PATIENT_PAIRS), help="pairs of different patients")
    parser.add_argument("--reprocessed-pixels", type=float, nargs="*", default=[0.9],
                        help="pixel sizes (mm) to try for the release's copy of FG-6692 against its raw clinical scan: "
                             "the release resized its slices and kept no voxel size")
    args = parser.parse_args()
    from neuroseg.longitudinal.compare import LazySegmenter

    segmenter = LazySegmenter(device=args.device)
    command = " ".join(["python scripts/compare_retest.py"] + sys.argv[1:])
    rows, same, pairs = [], [], []

    def save() -> None:  # after every pair: a run cut short still leaves what it measured
        summary = summarise(rows, same, pairs)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"command": command, "retest": rows, "same_patient": same,
                                           "different_patients": pairs, "summary": summary}, indent=1) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        scans = retest_scans(args.case, args.cases, Path(tmp))
        for pixel in args.reprocessed_pixels if CLINICAL.is_file() else ():
            same.append(registered(CLINICAL, lgg_scan("TCGA_FG_6692_20020606", Path(tmp), pixel)[0],
                                   "clinical/tcga-fg-6692/flair.nii.gz",
                                   f"TCGA_FG_6692_20020606 (lgg-flair, {pixel} mm pixels)"))
            print(json.dumps(same[-1]), flush=True)
            save()
        for a, b in PATIENT_PAIRS[:args.pairs]:
            pairs.append(different(a, b, Path(tmp)))
            print(json.dumps(pairs[-1]), flush=True)
            save()
        # the slow part last (two segmentations a scan): the same-head verdicts above come out first
        for n, path, label in scans:
            rows.append(retest(path, label, n, segmenter, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
            save()
    print(json.dumps(summarise(rows, same, pairs), indent=1))


if __name__ == "__main__":
    main()
