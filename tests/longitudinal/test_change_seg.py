"""change.dcm: the change map of a DICOM baseline as a DICOM-SEG over the baseline series, frame for frame."""

from __future__ import annotations

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom

from neuroseg.longitudinal.change_seg import change_content
from neuroseg.longitudinal.compare import TimePoint, compare_time_points, write_comparison
from tests.export.test_dicom_seg import source_slice_index
from tests.longitudinal.visits import visits


def _dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_change_seg_lies_on_the_baseline_series_segment_by_segment(tmp_path):
    import highdicom as hd

    baseline, followup, files = visits(tmp_path)
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

    baseline, followup, _ = visits(tmp_path)
    image = Volume(baseline.image.array, baseline.image.affine, {"format": "nifti", "path": "x.nii.gz"})
    comparison = compare_time_points(TimePoint(image, baseline.mask, {}), followup)
    names = [p.name for p in write_comparison(comparison, tmp_path / "out")]
    assert "change.nii.gz" in names and "change.dcm" not in names



def test_force_after_a_dicom_compare_leaves_no_stale_change_seg(tmp_path):
    """A DICOM compare writes change.dcm; a later --force compare of NIfTI scans into the same folder must not
    leave it there beside the new change.nii.gz, or the folder mixes two comparisons."""
    import json

    import pytest

    from neuroseg.errors import OutputError
    from neuroseg.volume import Volume

    baseline, followup, _ = visits(tmp_path)
    out = tmp_path / "out"
    write_comparison(compare_time_points(baseline, followup), out)
    assert (out / "change.dcm").is_file()
    image = Volume(baseline.image.array, baseline.image.affine, {"format": "nifti", "path": "x.nii.gz"})
    nifti = compare_time_points(TimePoint(image, baseline.mask, {"path": "x.nii.gz"}), followup)
    with pytest.raises(OutputError, match="--force"):
        write_comparison(nifti, out)
    assert (out / "change.dcm").is_file()  # refused: nothing touched
    written = write_comparison(nifti, out, force=True)
    assert not (out / "change.dcm").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert "change.dcm" not in json.loads((out / "compare.json").read_text())["files"]

def test_a_change_seg_of_two_heads_says_not_compared_first():
    content = change_content("m", trusted=False)
    assert content.series_description.startswith("NOT COMPARED - ") and "NOT COMPARED" in content.description
    assert change_content("m", trusted=True, not_flair=True).series_description.startswith("NOT FLAIR input")
