"""The tumour mesh as DICOM Encapsulated STL: dciodvfy-clean, in the source study and frame of reference,
its STL the very tumour.stl (LPS mm) that lands on the mask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest

pytest.importorskip("skimage", reason="the mesh extra (scikit-image, trimesh) is not installed")

from neuroseg.export.writer import output_names, write_outputs
from neuroseg.inference import Segmenter
from tests.conftest import blob_volume
from tests.dicom_factory import oblique_affine, write_series
from tests.export.test_dicom_seg import dciodvfy_errors


@pytest.fixture(scope="module")
def dicom_run(tmp_path_factory, tiny_model):
    """A DICOM series with a blob, segmented with the blob as the mask, written with --format both --mesh."""
    folder = tmp_path_factory.mktemp("stl")
    volume = blob_volume(affine=oblique_affine())
    files = write_series(volume, folder / "dicom")
    result = Segmenter(tiny_model, device="cpu").segment(folder / "dicom")
    result = dataclasses.replace(result, mask=result.mask.with_array((volume.array > 200).astype(np.uint8)))
    written = write_outputs(result, folder / "out", output_format="both", mesh=True)
    return folder / "out", files, written


def test_stl_dcm_is_written_beside_the_seg_only(dicom_run):
    out, _, written = dicom_run
    assert "stl.dcm" in [p.name for p in written] and (out / "stl.dcm").is_file()
    assert "stl.dcm" in output_names("dicom-seg", mesh=True) and "stl.dcm" in output_names("both", mesh=True)
    assert "stl.dcm" not in output_names("nifti", mesh=True) and "stl.dcm" not in output_names("both")


def test_encapsulated_stl_is_valid_and_references_the_source_series(dicom_run):
    out, files, _ = dicom_run
    assert dciodvfy_errors(out / "stl.dcm") == []
    stl = pydicom.dcmread(out / "stl.dcm")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert stl.SOPClassUID == pydicom.uid.EncapsulatedSTLStorage and stl.Modality == "M3D"
    assert stl.StudyInstanceUID == sources[0].StudyInstanceUID
    assert stl.FrameOfReferenceUID == sources[0].FrameOfReferenceUID  # the STL's LPS mm are the scan's
    assert stl.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert stl.PatientID == sources[0].PatientID
    assert {item.ReferencedSOPInstanceUID for item in stl.SourceInstanceSequence} == \
        {s.SOPInstanceUID for s in sources}
    assert stl.MIMETypeOfEncapsulatedDocument == "model/stl"
    assert stl.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    assert bytes(stl.EncapsulatedDocument) == (out / "tumour.stl").read_bytes()
    assert stl.EncapsulatedDocumentLength == len(stl.EncapsulatedDocument)
    seg = pydicom.dcmread(out / "seg.dcm", stop_before_pixels=True)
    assert stl.SeriesNumber != seg.SeriesNumber


def test_the_encapsulated_mesh_lies_on_the_tumour_in_patient_coordinates(dicom_run):
    """Read back from the DICOM file, the closed mesh's centre of mass is the lesion's centroid in LPS."""
    import io
    import json

    import trimesh

    out, _, _ = dicom_run
    document = bytes(pydicom.dcmread(out / "stl.dcm").EncapsulatedDocument)
    mesh = trimesh.load(io.BytesIO(document), file_type="stl")
    assert mesh.is_watertight and len(mesh.faces) > 0
    lesion = json.loads((out / "report.json").read_text())["lesions"]["lesions"][0]
    assert np.linalg.norm(mesh.center_mass - lesion["centroid_lps_mm"]) < 0.5
