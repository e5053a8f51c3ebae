"""``neuroseg compare``: two visits of one patient, registered, segmented, measured and compared.

Each visit is a NIfTI file, a DICOM series or study folder, or an earlier run's output folder (its mask is
reused). Each is segmented and measured on its own grid (volumes from its own voxel size); the follow-up's
lesions are then brought onto the baseline grid, nearest neighbour, for the matching and the change map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.volume import Volume

COMPARE_FILE = "compare.json"
CHANGE_FILE = "change.nii.gz"
PICTURE_FILE = "compare.png"
TRANSFORM_FILE = "transform.tfm"
CHANGE_SEG_FILE = "change.dcm"  # DICOM input only: the change map as a SEG over the baseline series
VIEWER_FILE = "compare.html"
OUTPUT_NAMES = (COMPARE_FILE, CHANGE_FILE, CHANGE_SEG_FILE, PICTURE_FILE, VIEWER_FILE, TRANSFORM_FILE)


@dataclass
class TimePoint:
    """One visit: the scan, its mask on the scan's own grid, and where both came from."""

    image: Volume
    mask: Volume
    source: dict  # path, format, series, and whether the mask was made now or reused
    warnings: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.source.get("path"))


class LazySegmenter:
    """The model, loaded on the first scan that needs it (an output folder needs none), then kept."""

    def __init__(self, model=None, device: str = "auto", force_input: bool = False):
        self.model, self.device, self.force_input = model, device, force_input
        self._segmenter = None

    def segment(self, volume: Volume):
        if self._segmenter is None:
            from neuroseg.inference import Segmenter

            self._segmenter = self.model if hasattr(self.model, "segment") else Segmenter(self.model, device=self.device)
        return self._segmenter.segment(volume, force_input=self.force_input)


def read_time_point(path, segmenter: LazySegmenter, exclude=()) -> TimePoint:
    """A visit from a NIfTI file, a DICOM folder, or a neuroseg output folder (whose mask is reused)."""
    from neuroseg.io import load_volume
    from neuroseg.io.outputs import is_output_folder

    path = Path(path)
    if not path.exists():
        raise InputError(f"Input not found: {path}")
    if path.is_dir() and is_output_folder(path):
        return _from_output_folder(path)
    volume = load_volume(path, exclude=exclude)
    result = segmenter.segment(volume)
    report = result.report
    warnings = list(report.get("warnings", []))
    flagged = (report.get("input_checks") or {}).get("flagged")
    if flagged:
        warnings.append(f"input checks flagged {', '.join(flagged)}")
    return TimePoint(result.image, result.mask, _source(result.image, mask="segmented now",
                                                         model=report.get("model")), warnings)


def _source(image: Volume, **extra) -> dict:
    meta = image.meta
    keys = ("path", "format", "series_uid", "series_description", "study_uid", "frame_of_reference_uid")
    return {**{k: meta[k] for k in keys if meta.get(k) not in (None, "")},
            "shape": list(image.shape), "spacing_mm": np.round(image.spacing, 4).tolist(),
            "axis_codes": "".join(image.axcodes), "affine_ras": np.round(image.affine, 6).tolist(), **extra}


def _from_output_folder(folder: Path) -> TimePoint:
    """An earlier run's mask and the scan it names in report.json (the scan is needed for the registration)."""
    from neuroseg.export.writer import MASK_FILE
    from neuroseg.io import load_volume
    from neuroseg.io.nifti import load_nifti
    from neuroseg.io.outputs import REPORT_FILE

    report = json.loads((folder / REPORT_FILE).read_text())
    if not (folder / MASK_FILE).is_file():
        raise InputError(f"{folder}: an output folder without {MASK_FILE} (rerun it with --format both)")
    source = report.get("input", {}).get("path")
    if not source or not Path(source).exists():
        raise InputError(f"{folder}: its report names the scan {source!r}, which is not there; "
                         "the registration needs the scan itself")
    image = load_volume(source, series_uid=report["input"].get("series_uid"))
    mask = load_nifti(folder / MASK_FILE)
    if not image.same_grid(mask):
        raise InputError(f"{folder / MASK_FILE} does not lie on the grid of {source}")
    mask = image.with_array((mask.array > 0).astype(np.uint8))
    return TimePoint(image, mask, _source(image, mask=f"reused from {folder}", model=report.get("model")),
                     list(report.get("warnings", [])))


@dataclass
class Comparison:
    """Everything ``compare.json``, the change map and the picture are made of."""

    baseline: TimePoint
    followup: TimePoint
    registration: object  # neuroseg.longitudinal.register.Registration
    measurements: tuple  # (baseline, follow-up) LesionMeasurements, each on its own grid
    matching: object  # neuroseg.longitudinal.response.Matching
    change: Volume  # baseline grid, uint8: 1 stable, 2 new, 3 resolved
    followup_on_baseline: Volume  # the follow-up scan on the baseline grid (linear), for the picture
    rano: dict
    volumetric: dict

    @property
    def category(self) -> str | None:
        return self.rano["category"]

    @property
    def warnings(self) -> list[str]:
        out = []
        if not self.registration.trusted:
            out.append("NOT COMPARED: the scans may not be the same head, or are not aligned: " +
                       "; ".join(self.registration.problems) + ". No response category is given.")
        out += [f"baseline: {w}" for w in self.baseline.warnings]
        out += [f"follow-up: {w}" for w in self.followup.warnings]
        return out

    def to_json(self, files=()) -> dict:
        from neuroseg._version import __version__
        from neuroseg.longitudinal.response import CAVEAT, NEW_LABEL, RESOLVED_LABEL, STABLE_LABEL

        before, after = self.measurements
        counts = np.bincount(self.change.array.ravel(), minlength=4)
        voxel_ml = self.change.voxel_volume_ml
        return {
            "neuroseg_version": __version__,
            "caveat": CAVEAT,
            "coordinates": "RAS+ mm (nibabel) unless a key says LPS (DICOM, ITK)",
            "baseline": {"source": self.baseline.source, "measurements": before.to_json()},
            "followup": {"source": self.followup.source, "measurements": after.to_json()},
            "registration": self.registration.summary(),
            "matching": self.matching.to_json(),
            "change_map": {"file": CHANGE_FILE, "grid": "baseline",
                           "labels": {str(STABLE_LABEL): "tumour at both visits",
                                      str(NEW_LABEL): "tumour at follow-up only (new or grown)",
                                      str(RESOLVED_LABEL): "tumour at baseline only (resolved or shrunk)"},
                           "ml_baseline_grid": {str(n): round(float(counts[n]) * voxel_ml, 3) for n in (1, 2, 3)}},
            "response": {"suggested": True, "from": "FLAIR alone", "caveat": CAVEAT,
                         "rano_lgg": self.rano, "volumetric": self.volumetric},
            "warnings": self.warnings,
            "files": list(files),
        }


def compare_time_points(baseline: TimePoint, followup: TimePoint) -> Comparison:
    """Register the follow-up onto the baseline, match lesions, and suggest a category."""
    import SimpleITK as sitk

    from neuroseg.longitudinal import response
    from neuroseg.longitudinal.register import from_sitk, register, resample_onto, to_sitk
    from neuroseg.measure import measure_lesions

    registration = register(baseline.image, followup.image)
    before, after = measure_lesions(baseline.mask), measure_lesions(followup.mask)
    fixed = to_sitk(baseline.mask)
    labels_f = response.lesion_labels(followup.mask.array)
    moved_labels = resample_onto(to_sitk(followup.mask.with_array(labels_f.astype(np.int32))), fixed,
                                 registration.transform, nearest=True)
    labels_on_baseline = from_sitk(moved_labels, baseline.mask).array
    matching = response.match_lesions(response.lesion_labels(baseline.mask.array), labels_on_baseline, after.foci)
    change = baseline.mask.with_array(response.change_map(baseline.mask.array, labels_on_baseline > 0))
    image_on_baseline = from_sitk(resample_onto(sitk.Cast(to_sitk(followup.image), sitk.sitkFloat32),
                                                to_sitk(baseline.image), registration.transform, nearest=False),
                                  baseline.image)
    rano = response.rano_category(before, after, matching)
    volumetric = response.volumetric_category(before.total_volume_ml, after.total_volume_ml)
    if not registration.trusted:
        rano = response.withheld(rano, registration.problems)
        volumetric = response.withheld(volumetric, registration.problems)
    return Comparison(baseline, followup, registration, (before, after), matching, change, image_on_baseline,
                      rano, volumetric)


def write_comparison(comparison: Comparison, folder, force: bool = False) -> list[Path]:
    """compare.json, change.nii.gz (and change.dcm for a DICOM baseline), compare.png, compare.html and
    transform.tfm into ``folder``, all or nothing. With ``force``, what an earlier compare wrote there and
    this one does not (change.dcm after NIfTI inputs) is removed, so the folder holds one comparison."""
    from neuroseg.export.files import prepare_output_dir
    from neuroseg.io.atomic import all_or_nothing, atomic_write_text, remove
    from neuroseg.export.nifti import write_nifti
    from neuroseg.longitudinal.change_seg import is_dicom, write_change_seg
    from neuroseg.longitudinal.picture import render_comparison
    from neuroseg.longitudinal.register import write_transform
    from neuroseg.longitudinal.viewer import write_compare_viewer

    folder = prepare_output_dir(folder, OUTPUT_NAMES, force)
    with all_or_nothing():
        written = [write_nifti(comparison.change, folder / CHANGE_FILE, np.uint8)]
        if is_dicom(comparison):
            written.append(write_change_seg(comparison, folder / CHANGE_SEG_FILE))
        write_transform(comparison.registration, folder / TRANSFORM_FILE)
        written.append(folder / TRANSFORM_FILE)
        written.append(render_comparison(comparison, folder / PICTURE_FILE))
        written.append(write_compare_viewer(comparison, folder / VIEWER_FILE))
        names = [p.name for p in written] + [COMPARE_FILE]
        text = json.dumps(comparison.to_json(files=names), indent=2) + "\n"
        written.append(atomic_write_text(folder / COMPARE_FILE, text))
        for name in set(OUTPUT_NAMES) - {p.name for p in written}:
            remove(folder / name)
    return written


def compare(baseline, followup, output, *, model=None, device: str = "auto", force: bool = False,
            force_input: bool = False, segmenter: LazySegmenter | None = None) -> tuple[Comparison, list[Path]]:
    """The whole run of ``neuroseg compare BASELINE FOLLOWUP -o OUTPUT``."""
    from neuroseg.export.files import prepare_output_dir

    output = Path(output)
    for path in (baseline, followup):
        if not Path(path).exists():
            raise InputError(f"Input not found: {path}")
    if output.exists():
        prepare_output_dir(output, OUTPUT_NAMES, force)  # refuse before the model spends time
    segmenter = segmenter or LazySegmenter(model, device, force_input)
    first = read_time_point(baseline, segmenter, exclude=[output])
    second = read_time_point(followup, segmenter, exclude=[output])
    comparison = compare_time_points(first, second)
    return comparison, write_comparison(comparison, output, force)
