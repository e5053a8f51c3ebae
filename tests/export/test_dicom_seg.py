"""DICOM-SEG output: valid for dciodvfy, and its frames lie voxel for voxel on the NIfTI mask's slices."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from neuroseg.errors import GeometryError, InputError
from neuroseg.export.dicom_seg import mask_on_source_grid
from neuroseg.export.writer import write_outputs
from neuroseg.inference import Segmenter
from neuroseg.transforms import Reorientation
from neuroseg.volume import Volume
from tests.conftest import blob_volume
from tests.dicom_factory import axial_affine, oblique_affine, sagittal_affine, write_enhanced, write_series

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def segmenter(tiny_model):
    return Segmenter(tiny_model, device="cpu")


def with_known_mask(result, array):
    """The result with a mask we chose (the random-weight model's own mask is arbitrary)."""
    return dataclasses.replace(result, mask=result.mask.with_array(array.astype(np.uint8)))


def dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def source_slice_index(dataset, nifti_affine, frame=None) -> int:
    """Which NIfTI slice (axis 2) a source image lies on, from its own ImagePositionPatient."""
    if frame is None:
        position = dataset.ImagePositionPatient
    else:
        position = dataset.PerFrameFunctionalGroupsSequence[frame - 1].PlanePositionSequence[0].ImagePositionPatient
    voxel = np.linalg.inv(nifti_affine) @ LPS_TO_RAS @ np.array([*map(float, position), 1.0])
    np.testing.assert_allclose(voxel[:2], 0, atol=1e-3)
    assert abs(voxel[2] - round(voxel[2])) < 1e-3
    return int(round(voxel[2]))


@pytest.mark.parametrize("orientation, affine", [("axial", axial_affine()), ("sagittal", sagittal_affine()),
                                                 ("oblique", oblique_affine())])
def test_seg_matches_nifti_mask_voxel_for_voxel(tmp_path, segmenter, orientation, affine):
    import highdicom as hd

    volume = blob_volume(affine=affine)
    files = write_series(volume, tmp_path / "dicom", names="shuffled")
    result = segmenter.segment(tmp_path / "dicom")
    result = with_known_mask(result, volume.array > 200)  # the blob: on some slices only
    written = write_outputs(result, tmp_path / "out", output_format="both")
    assert [p.name for p in written] == ["seg.dcm", "mask.nii.gz", "qc.png", "viewer.html", "report.json"]
    seg_path = tmp_path / "out" / "seg.dcm"
    assert dciodvfy_errors(seg_path) == []

    nifti = nib.load(tmp_path / "out" / "mask.nii.gz")
    mask = np.asarray(nifti.dataobj)
    seg = hd.seg.segread(seg_path)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    frames = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], segment_numbers=[1])[..., 0]
    for source, frame in zip(sources, frames):
        k = source_slice_index(source, nifti.affine)
        np.testing.assert_array_equal(frame, mask[:, :, k].T)  # rows = j, columns = i
    assert mask.any() and not mask.all(axis=(0, 1)).any()
    # empty frames are omitted; each kept frame sits where its source image is
    assert seg.NumberOfFrames == int(mask.any(axis=(0, 1)).sum())
    by_uid = {s.SOPInstanceUID: s for s in sources}
    for item in seg.PerFrameFunctionalGroupsSequence:
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        np.testing.assert_allclose([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
                                   [float(v) for v in by_uid[uid].ImagePositionPatient], atol=1e-3)
    first = sources[0]
    assert seg.StudyInstanceUID == first.StudyInstanceUID and seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert seg.PatientName == first.PatientName and seg.PatientID == first.PatientID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert seg.SegmentationType == "BINARY"
    (segment,) = seg.SegmentSequence
    assert segment.SegmentLabel == "Tumor" and segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Neoplasm"
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "neuroseg" and "tiny-test-model" in str(algorithm.AlgorithmParameters)


def test_seg_over_enhanced_multiframe_source(tmp_path, segmenter):
    import highdicom as hd

    volume = blob_volume(affine=oblique_affine())
    order = [int(k) for k in np.random.default_rng(3).permutation(volume.shape[2])]
    source_path = write_enhanced(volume, tmp_path / "dicom" / "mf.dcm", frame_order=order)
    result = with_known_mask(segmenter.segment(tmp_path / "dicom"), volume.array > 200)
    write_outputs(result, tmp_path / "out", output_format="both")
    assert dciodvfy_errors(tmp_path / "out" / "seg.dcm") == []
    nifti = nib.load(tmp_path / "out" / "mask.nii.gz")
    mask = np.asarray(nifti.dataobj)
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    numbers = list(range(1, len(order) + 1))
    frames = hd.seg.segread(tmp_path / "out" / "seg.dcm").get_pixels_by_source_frame(
        source.SOPInstanceUID, numbers, segment_numbers=[1])[..., 0]
    for number, frame in zip(numbers, frames):
        np.testing.assert_array_equal(frame, mask[:, :, source_slice_index(source, nifti.affine, number)].T)


def test_empty_mask_gives_a_valid_seg(tmp_path, segmenter):
    write_series(blob_volume(), tmp_path / "dicom")
    result = with_known_mask(segmenter.segment(tmp_path / "dicom"), np.zeros((40, 48, 12)))
    write_outputs(result, tmp_path / "out", output_format="dicom-seg")
    assert dciodvfy_errors(tmp_path / "out" / "seg.dcm") == []


def test_mask_mapped_through_reorientation_and_refused_off_grid():
    volume = blob_volume(affine=sagittal_affine())
    mask = volume.with_array((volume.array > 200).astype(np.uint8))
    working = Reorientation.to_working(mask).apply_volume(mask)  # axes permuted and flipped
    assert working.shape != mask.shape
    np.testing.assert_array_equal(mask_on_source_grid(working, volume.affine, volume.shape), mask.array)
    shifted = Volume(mask.array, mask.affine @ np.diag([0.5, 1, 1, 1]))
    with pytest.raises(GeometryError, match="would need resampling"):
        mask_on_source_grid(shifted, volume.affine, volume.shape)


def test_nifti_input_refuses_dicom_seg(tmp_path, segmenter):
    result = segmenter.segment(blob_volume())
    with pytest.raises(InputError, match="needs a DICOM input series"):
        write_outputs(result, tmp_path / "out", output_format="dicom-seg")
    assert not (tmp_path / "out").exists()


def test_seg_of_a_series_that_is_not_flair_says_so(tmp_path, segmenter):
    volume = blob_volume()
    write_series(volume, tmp_path / "t1", series_uid="1.2.40", description="AX T1 SE", inversion_time=None)
    result = with_known_mask(segmenter.segment(tmp_path / "t1", series_uid="1.2.40"), volume.array > 200)
    assert result.report["warnings"][0].startswith("NOT FLAIR")
    write_outputs(result, tmp_path / "out", output_format="dicom-seg")
    assert dciodvfy_errors(tmp_path / "out" / "seg.dcm") == []
    seg = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    assert seg.SeriesDescription.startswith("NOT FLAIR input - neuroseg tumour")
    assert "NOT FLAIR" in seg.ContentDescription
    assert "not FLAIR" in seg.SegmentSequence[0].SegmentDescription
    assert seg.SegmentSequence[0].SegmentLabel == "Tumor"


def test_seg_of_a_flair_series_has_no_warning(tmp_path, segmenter):
    write_series(blob_volume(), tmp_path / "flair")
    write_outputs(segmenter.segment(tmp_path / "flair"), tmp_path / "out", output_format="dicom-seg")
    seg = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    assert seg.SeriesDescription == "neuroseg tumour (tiny-test-model)"
    assert seg.ContentDescription == "Automatic FLAIR tumour segmentation"
    assert "SegmentDescription" not in seg.SegmentSequence[0]


def test_report_names_no_images_for_a_sagittal_series(tmp_path):
    from tests.conftest import bright_model

    write_series(blob_volume(affine=sagittal_affine()), tmp_path / "sag")
    result = Segmenter(bright_model(), device="cpu").segment(tmp_path / "sag")
    report = result.report
    assert report["slice_axis"] != 2 and report["tumour_slices"]  # axial planes across the sagittal images
    assert "tumour_slices_dicom" not in report
    assert f"axis {report['slice_axis']}" in report["tumour_slices_dicom_omitted"]


def test_report_names_frames_of_a_multiframe_source(tmp_path):
    from tests.conftest import bright_model

    volume = blob_volume(affine=axial_affine())
    order = [int(k) for k in np.random.default_rng(5).permutation(volume.shape[2])]
    path = write_enhanced(volume, tmp_path / "mf" / "mf.dcm", frame_order=order)
    result = Segmenter(bright_model(), device="cpu").segment(tmp_path / "mf")
    named = result.report["tumour_slices_dicom"]
    source = pydicom.dcmread(path, stop_before_pixels=True)
    assert [entry["index"] for entry in named] == result.tumour_slices and len(named) >= 5
    for entry in named:
        assert entry["sop_instance_uid"] == source.SOPInstanceUID and entry["instance_number"] == 1
        assert source_slice_index(source, result.mask.affine, entry["frame"]) == entry["index"]
    assert "tumour_slices_dicom_omitted" not in result.report


def test_secondary_capture_is_the_qc_picture_in_the_source_study(tmp_path, segmenter):
    from PIL import Image

    volume = blob_volume()
    files = write_series(volume, tmp_path / "dicom")
    result = with_known_mask(segmenter.segment(tmp_path / "dicom"), volume.array > 200)
    written = write_outputs(result, tmp_path / "out", output_format="dicom-seg", viewer=False,
                            secondary_capture=True)
    assert [p.name for p in written] == ["seg.dcm", "qc.png", "sc.dcm", "report.json"]
    sc = pydicom.dcmread(tmp_path / "out" / "sc.dcm")
    source = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and sc.Modality == "OT"
    assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.PatientID == source.PatientID
    assert sc.SeriesInstanceUID != source.SeriesInstanceUID
    np.testing.assert_array_equal(sc.pixel_array, np.asarray(Image.open(tmp_path / "out" / "qc.png").convert("RGB")))
    assert dciodvfy_errors(tmp_path / "out" / "sc.dcm") == []


def test_secondary_capture_needs_dicom_input(tmp_path, segmenter):
    result = segmenter.segment(blob_volume())
    with pytest.raises(InputError, match="--secondary-capture needs a DICOM input"):
        write_outputs(result, tmp_path / "out", secondary_capture=True)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
