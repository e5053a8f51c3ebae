"""Report fields that tie the result back to the source."""

import numpy as np
import pydicom
from nibabel.affines import apply_affine

from neuroseg.inference import Segmenter
from tests.conftest import blob_volume, bright_model
from tests.dicom_factory import write_series


def test_dicom_tumour_slices_name_their_source_images(tmp_path):
    files = write_series(blob_volume(), tmp_path / "series", names="shuffled")
    result = Segmenter(bright_model(), device="cpu").segment(tmp_path / "series")
    named = result.report["tumour_slices_dicom"]
    assert len(named) >= 5
    assert [entry["index"] for entry in named] == result.tumour_slices
    by_uid = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f for f in files}
    for entry in named:
        source = pydicom.dcmread(by_uid[entry["sop_instance_uid"]], stop_before_pixels=True)
        assert int(source.InstanceNumber) == entry["instance_number"]
        # the named image holds the mask's slice: its position is that slice's origin
        position = np.asarray(source.ImagePositionPatient, dtype=float) * [-1, -1, 1]  # LPS -> RAS
        corner = (result.mask.affine @ [0, 0, entry["index"], 1])[:3]
        np.testing.assert_allclose(position, corner, atol=1e-3)


def test_nifti_reports_have_no_dicom_slice_names(tmp_path, tiny_model):
    result = Segmenter(tiny_model, device="cpu").segment(blob_volume())
    assert "tumour_slices_dicom" not in result.report


def test_the_bounding_box_is_tight_around_the_tumour_on_an_oblique_grid():
    from neuroseg.inference.report import bounding_box_mm
    from tests.geometry import rotate_affine

    volume = blob_volume()
    oblique = type(volume)(volume.array > volume.array.mean(), rotate_affine(volume.affine, 20, 0))
    box = bounding_box_mm(oblique)
    world = apply_affine(oblique.affine, np.argwhere(oblique.array))  # every tumour voxel's centre
    np.testing.assert_allclose(box["min"], world.min(axis=0), atol=0.01)
    np.testing.assert_allclose(box["max"], world.max(axis=0), atol=0.01)


def test_the_console_summary_names_the_dicom_instance_numbers(tmp_path):
    from neuroseg.cli.console import _instances, _ranges

    write_series(blob_volume(), tmp_path / "series", names="shuffled")
    report = Segmenter(bright_model(), device="cpu").segment(tmp_path / "series").report
    numbers = sorted(entry["instance_number"] for entry in report["tumour_slices_dicom"])
    assert _instances(report) == f"; DICOM instance numbers {_ranges(numbers)}" and len(numbers) >= 5
    assert _instances({"tumour_slices": [3]}) == ""


def test_the_report_is_made_from_the_result_alone(tmp_path, tiny_model):
    """Steps after segmenting add typed facts to the result; report.json says them, and the files written."""
    import json

    from neuroseg.export.writer import write_outputs

    result = Segmenter(tiny_model, device="cpu").segment(blob_volume())
    result.timings["load"] = 0.25
    result.source.update(resolved_path="/data/scan.nii.gz")
    result.notes.append("a note from the batch")
    assert result.report["timings_s"]["load"] == 0.25
    assert result.report["input"]["resolved_path"] == "/data/scan.nii.gz"
    assert result.report["warnings"][-1] == "a note from the batch"
    assert result.report["model"]["name"] == "tiny-test-model" and result.report["device"] == "cpu"
    written = write_outputs(result, tmp_path / "out", listed_as={"mask.nii.gz": "sub-1_mask.nii.gz"},
                            also_listed=["sub-1_mask.json"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["files"] == ["sub-1_mask.nii.gz", "qc.png", "viewer.html", "report.json", "sub-1_mask.json"]
    assert [p.name for p in written][0] == "mask.nii.gz"  # written under its own name; the caller renames
    assert {k: v for k, v in report.items() if k != "files"} == {k: v for k, v in json.loads(
        json.dumps(result.report)).items() if k != "files"}


def test_the_reported_tumour_counts_are_the_masks_own():
    result = Segmenter(bright_model(), device="cpu").segment(blob_volume())
    voxels = int(np.count_nonzero(result.mask.array))
    report = result.report
    assert voxels > 0
    assert report["tumour_voxels"] == voxels
    assert report["tumour_found"] is True
    assert report["tumour_volume_ml"] == round(voxels * result.mask.voxel_volume_ml, 3)
    assert sum(s["tumour_voxels"] for s in report["slices"]) == voxels
