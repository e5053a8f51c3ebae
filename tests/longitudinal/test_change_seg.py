"""change.dcm: the change map of a DICOM baseline as a DICOM-SEG over the baseline series, frame for frame."""

from __future__ import annotations

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom

from neuroseg.io import load_volume
from neuroseg.longitudinal.change_seg import change_content
from neuroseg.longitudinal.compare import TimePoint, compare_time_points, write_comparison
from tests.dicom_factory import oblique_affine, write_series
from tests.export.test_dicom_seg import source_slice_index

SHAPE = (48, 56, 16)


def _ball(centre, radius) -> np.ndarray:
    grid = np.indices(SHAPE).astype(np.float32)
    return ((grid - np.array(centre, dtype=np.float32)[:, None, None, None]) ** 2).sum(0) < radius ** 2


def _head() -> np.ndarray:
    """A head-like ellipsoid with grey/white-like texture, something for the registration to align."""
    grid = np.indices(SHAPE).astype(np.float32)
    middle = (np.array(SHAPE) - 1) / 2
    head = (((grid - middle[:, None, None, None]) / (np.array(SHAPE)[:, None, None, None] * 0.42)) ** 2).sum(0) < 1
    i, j, k = grid
    texture = 30 * np.sin(i / 3.0) * np.cos(j / 4.0) + 10 * np.cos(k / 2.0)
    return np.where(head, 100 + texture, 0).astype(np.int16)


def _visits(tmp_path):
    """A DICOM baseline on an oblique grid, and a follow-up (the same scan) whose lesions changed: lesion A grew,
    lesion B went, lesion C is new."""
    from neuroseg.volume import Volume

    files = write_series(Volume(_head(), oblique_affine()), tmp_path / "baseline", names="shuffled")
    image = load_volume(tmp_path / "baseline")
    assert image.meta["format"] == "dicom" and np.allclose(image.affine, oblique_affine(), atol=1e-4)
    before = _ball((16, 30, 8), 4) | _ball((34, 20, 8), 3)
    after = _ball((16, 30, 8), 5.5) | _ball((30, 40, 5), 3)
    baseline = TimePoint(image, image.with_array(before.astype(np.uint8)), {"path": "baseline"})
    followup = TimePoint(image, image.with_array(after.astype(np.uint8)), {"path": "follow-up"})
    return baseline, followup, files


def _dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_change_seg_lies_on_the_baseline_series_segment_by_segment(tmp_path):
    import highdicom as hd

    baseline, followup, files = _visits(tmp_path)
    comparison = compare_time_points(baseline, followup)
    assert comparison.registration.trusted, comparison.registration.problems
    written = write_comparison(comparison, tmp_path / "out")
    path = tmp_path / "out" / "change.dcm"
    assert path in written
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(path) == []

    change_nifti = nib.load(tmp_path / "out" / "change.nii.gz")
    change = np.asarray(change_nifti.dataobj)
    assert set(np.unique(change)) == {0, 1, 2, 3}  # each segment has voxels
    seg = hd.seg.segread(path)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    referenced = {item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                  for item in seg.PerFrameFunctionalGroupsSequence}
    assert referenced <= {s.SOPInstanceUID for s in sources}
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    frames = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], segment_numbers=[1, 2, 3])
    for source, frame in zip(sources, frames):
        k = source_slice_index(source, change_nifti.affine)
        for number in (1, 2, 3):
            np.testing.assert_array_equal(frame[..., number - 1], change[:, :, k].T == number)  # rows = j
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Stable tumor", "New tumor", "Resolved tumor"]
    modifiers = [s.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0].CodeValue
                 for s in seg.SegmentSequence]
    assert modifiers == ["129723006", "15454001", "19776001"]
    assert all(s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Neoplasm" for s in seg.SegmentSequence)
    assert "resolved or shrunk" in seg.SegmentSequence[2].SegmentDescription
    assert seg.ContentLabel == "CHANGE" and not seg.SeriesDescription.startswith("NOT")


def test_a_nifti_baseline_gets_no_change_seg(tmp_path):
    from neuroseg.volume import Volume

    baseline, followup, _ = _visits(tmp_path)
    image = Volume(baseline.image.array, baseline.image.affine, {"format": "nifti", "path": "x.nii.gz"})
    comparison = compare_time_points(TimePoint(image, baseline.mask, {}), followup)
    names = [p.name for p in write_comparison(comparison, tmp_path / "out")]
    assert "change.nii.gz" in names and "change.dcm" not in names


def test_a_change_seg_of_two_heads_says_not_compared_first():
    content = change_content("m", trusted=False)
    assert content.series_description.startswith("NOT COMPARED - ") and "NOT COMPARED" in content.description
    assert change_content("m", trusted=True, not_flair=True).series_description.startswith("NOT FLAIR input")
