"""A corpus of bad inputs, generated here, driven through ``neuroseg run``.

Every case must end with one line ``neuroseg: error: ...`` on stderr, a documented
exit code (see neuroseg/errors.py), no traceback, no file in the output folder
(temporary ones included) and the input's bytes unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import blob_volume

EXIT_INPUT, EXIT_OUTPUT, EXIT_MODEL = 2, 3, 4
NIFTI_DIM_OFFSET = 40  # int16 dim[8] in the NIfTI-1 header
NIFTI_PIXDIM_OFFSET = 76  # float32 pixdim[8]
NIFTI_MAGIC_OFFSET = 344


# --------------------------------------------------------------------------- helpers

def run_cli(args):
    """Invoke ``neuroseg`` in-process; stdout and stderr are kept apart."""
    from typer.testing import CliRunner

    from neuroseg.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def tree_digest(path: Path) -> dict:
    """sha256 of a file, or of every file under a folder, keyed by relative path."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def files_in(folder: Path) -> list[str]:
    """Every entry below ``folder`` that is not a folder (hidden temporary files included)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def assert_clean_failure(result, code: int, output: Path, before: dict | None = None,
                         source: Path | None = None, source_digest: dict | None = None, match: str = ""):
    """One error line, the documented exit code, nothing (new) written, the input untouched."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    last = result.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("neuroseg: error: ") and len(last) > len("neuroseg: error: ") + 10, last
    assert match.lower() in last.lower(), (match, last)
    assert tree_digest(output) == (before or {}), f"output folder changed: {files_in(output)}"
    if source is not None:
        assert tree_digest(source) == source_digest, "the input was modified"


def check_run_fails(input_path: Path, tmp_path: Path, model: Path, code: int, match: str = "", extra=()):
    output = tmp_path / "out"
    digest = tree_digest(input_path)
    result = run_cli(["run", input_path, "-o", output, "--model", model, "--device", "cpu", *extra])
    assert_clean_failure(result, code, output, source=input_path, source_digest=digest, match=match)
    return result


# --------------------------------------------------------------------------- NIfTI makers

AFFINE = np.diag([-0.9, -0.9, 5.0, 1.0])


def save_nifti(path: Path, array, affine=AFFINE, qform_code=1, sform_code=1) -> Path:
    import nibabel as nib

    image = nib.Nifti1Image(array, None)
    if qform_code:
        image.set_qform(affine, code=qform_code)
    image.set_sform(affine, code=sform_code)
    image.to_filename(str(path))
    return path


def good_array() -> np.ndarray:
    return blob_volume().array


def raw_nifti(tmp_path: Path, array=None) -> bytearray:
    """The bytes of an uncompressed .nii holding ``array`` (a valid image by default)."""
    path = save_nifti(tmp_path / "raw.nii", good_array() if array is None else array)
    data = bytearray(path.read_bytes())
    path.unlink()
    return data


def with_header(tmp_path, name, edit, array=None, compress=False) -> Path:
    data = raw_nifti(tmp_path, array)
    edit(data)
    path = tmp_path / name
    path.write_bytes(gzip.compress(bytes(data)) if compress else bytes(data))
    return path


def set_dims(*dims):
    def edit(data):
        struct.pack_into("<8h", data, NIFTI_DIM_OFFSET, len(dims), *dims, *([1] * (7 - len(dims))))
    return edit


def set_pixdim(axis, value):
    def edit(data):
        struct.pack_into("<f", data, NIFTI_PIXDIM_OFFSET + 4 * axis, value)
        struct.pack_into("<hh", data, 252, 1, 0)  # qform_code 1, sform_code 0: geometry from pixdim
    return edit


def truncated_gz(tmp_path):
    data = save_nifti(tmp_path / "full.nii.gz", good_array()).read_bytes()
    (tmp_path / "full.nii.gz").unlink()
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_header(tmp_path):
    path = tmp_path / "short_header.nii"
    path.write_bytes(bytes(raw_nifti(tmp_path)[:200]))
    return path


def truncated_nii(tmp_path):
    path = tmp_path / "truncated.nii"
    data = raw_nifti(tmp_path)
    path.write_bytes(bytes(data[: len(data) - 1000]))
    return path


def wrong_magic(tmp_path):
    def edit(data):
        data[NIFTI_MAGIC_OFFSET:NIFTI_MAGIC_OFFSET + 4] = b"XYZ\0"
    return with_header(tmp_path, "wrong_magic.nii", edit)


def garbage_gz(tmp_path):
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def gzip_of_garbage(tmp_path):
    path = tmp_path / "gzip_of_garbage.nii.gz"
    path.write_bytes(gzip.compress(np.random.default_rng(1).bytes(4096)))
    return path


def gzipped_named_nii(tmp_path):
    path = save_nifti(tmp_path / "scan.nii.gz", good_array())
    return path.rename(tmp_path / "scan.nii")


def plain_named_gz(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(gzip.decompress(save_nifti(tmp_path / "plain.nii.gz", good_array()).read_bytes()))
    return path


def empty_file(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    return path


def header_lies_nii(tmp_path):  # says 24 slices, holds 12
    return with_header(tmp_path, "lying.nii", set_dims(40, 48, 24))


def header_lies_gz(tmp_path):
    return with_header(tmp_path, "lying.nii.gz", set_dims(40, 48, 24), compress=True)


def nan_voxels(tmp_path):
    array = good_array()
    array[20, 20, 5] = np.nan
    return save_nifti(tmp_path / "nan.nii.gz", array)


def inf_voxels(tmp_path):
    array = good_array()
    array[3, 4, 5] = -np.inf
    return save_nifti(tmp_path / "inf.nii.gz", array)


def all_zero(tmp_path):
    return save_nifti(tmp_path / "zero.nii.gz", np.zeros((40, 48, 12), np.int16))


def constant(tmp_path):
    return save_nifti(tmp_path / "constant.nii.gz", np.full((40, 48, 12), 417, np.int16))


def image_2d(tmp_path):
    return save_nifti(tmp_path / "flat.nii.gz", good_array()[:, :, 5])


def image_4d(tmp_path):
    return save_nifti(tmp_path / "series.nii.gz", np.stack([good_array()] * 3, axis=-1))


def single_slice(tmp_path):
    return save_nifti(tmp_path / "one_slice.nii.gz", good_array()[:, :, 5:6])


def empty_dimension(tmp_path):
    return with_header(tmp_path, "empty_dim.nii", set_dims(40, 0, 12))


def absurd_axis(tmp_path):  # 30000 x 30000 x 3000 int16 would be 5 TB
    return with_header(tmp_path, "absurd_axis.nii.gz", set_dims(30000, 30000, 3000), compress=True)


def absurd_voxels(tmp_path):  # each axis within the limit, 64 G voxels in all
    return with_header(tmp_path, "absurd_voxels.nii", set_dims(4000, 4000, 4000))


def zero_spacing_pixdim(tmp_path):
    return with_header(tmp_path, "zero_pixdim.nii.gz", set_pixdim(2, 0.0), compress=True)


def negative_spacing_pixdim(tmp_path):
    return with_header(tmp_path, "negative_pixdim.nii.gz", set_pixdim(1, -0.9), compress=True)


def nan_spacing_pixdim(tmp_path):
    return with_header(tmp_path, "nan_pixdim.nii.gz", set_pixdim(3, float("nan")), compress=True)


def zero_spacing_sform(tmp_path):
    return save_nifti(tmp_path / "zero_sform.nii.gz", good_array(), np.diag([0.9, 0.0, 5.0, 1.0]), qform_code=0)


def singular_affine(tmp_path):
    affine = np.array([[0.9, 0.9, 0, 0], [0.9, 0.9, 0, 0], [0, 0, 5.0, 0], [0, 0, 0, 1.0]])
    return save_nifti(tmp_path / "singular.nii.gz", good_array(), affine, qform_code=0)


def nan_affine(tmp_path):
    affine = AFFINE.copy()
    affine[0, 3] = np.nan
    return save_nifti(tmp_path / "nan_affine.nii.gz", good_array(), affine, qform_code=0)


def rgb_image(tmp_path):
    array = np.zeros((16, 16, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    array["G"][4:12, 4:12] = 200
    return save_nifti(tmp_path / "rgb.nii.gz", array)


def complex_image(tmp_path):
    return save_nifti(tmp_path / "complex.nii.gz", good_array().astype(np.complex64) * (1 + 1j))


def wrong_suffix(tmp_path):
    path = tmp_path / "scan.mha"
    path.write_bytes(b"ObjectType = Image\nNDims = 3\n")
    return path


def folder_named_like_a_file(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.mkdir()
    return path


def empty_folder(tmp_path):
    path = tmp_path / "empty_series"
    path.mkdir()
    return path


def folder_of_junk(tmp_path):
    path = tmp_path / "junk"
    path.mkdir()
    for k in range(3):
        (path / f"IM{k:04d}.dcm").write_bytes(np.random.default_rng(k).bytes(600))
    (path / "notes.txt").write_text("not an image\n")
    return path


NIFTI_CASES = {
    "truncated_gz": (truncated_gz, EXIT_INPUT, "truncated.nii.gz"),
    "truncated_header": (truncated_header, EXIT_INPUT, "short_header.nii"),
    "truncated_nii": (truncated_nii, EXIT_INPUT, "truncated.nii"),
    "wrong_magic": (wrong_magic, EXIT_INPUT, "wrong_magic.nii"),
    "garbage_gz": (garbage_gz, EXIT_INPUT, "garbage.nii.gz"),
    "gzip_of_garbage": (gzip_of_garbage, EXIT_INPUT, "gzip_of_garbage"),
    "empty_file": (empty_file, EXIT_INPUT, "empty.nii.gz"),
    "gzipped_named_nii": (gzipped_named_nii, EXIT_INPUT, "gzip-compressed: name it .nii.gz"),
    "plain_named_gz": (plain_named_gz, EXIT_INPUT, "not gzip-compressed: name it .nii"),
    "header_lies_nii": (header_lies_nii, EXIT_INPUT, "lying.nii"),
    "header_lies_gz": (header_lies_gz, EXIT_INPUT, "lying.nii.gz"),
    "nan_voxels": (nan_voxels, EXIT_INPUT, "NaN"),
    "inf_voxels": (inf_voxels, EXIT_INPUT, "infinite"),
    "all_zero": (all_zero, EXIT_INPUT, "same value"),
    "constant": (constant, EXIT_INPUT, "same value"),
    "image_2d": (image_2d, EXIT_INPUT, "2D"),
    "image_4d": (image_4d, EXIT_INPUT, "4D"),
    "single_slice": (single_slice, EXIT_INPUT, "single slice"),
    "empty_dimension": (empty_dimension, EXIT_INPUT, "empty"),
    "absurd_axis": (absurd_axis, EXIT_INPUT, "too large"),
    "absurd_voxels": (absurd_voxels, EXIT_INPUT, "voxels"),
    "zero_spacing_pixdim": (zero_spacing_pixdim, EXIT_INPUT, "spacing"),
    "negative_spacing_pixdim": (negative_spacing_pixdim, EXIT_INPUT, "spacing"),
    "nan_spacing_pixdim": (nan_spacing_pixdim, EXIT_INPUT, "spacing"),
    "zero_spacing_sform": (zero_spacing_sform, EXIT_INPUT, "spacing"),
    "singular_affine": (singular_affine, EXIT_INPUT, "singular"),
    "nan_affine": (nan_affine, EXIT_INPUT, "nan_affine.nii.gz: the image's affine holds NaN"),
    "rgb_image": (rgb_image, EXIT_INPUT, "colour"),
    "complex_image": (complex_image, EXIT_INPUT, "complex"),
    "wrong_suffix": (wrong_suffix, EXIT_INPUT, "Unsupported"),
    "folder_named_like_a_file": (folder_named_like_a_file, EXIT_INPUT, "scan.nii.gz"),
    "empty_folder": (empty_folder, EXIT_INPUT, "empty_series"),
    "folder_of_junk": (folder_of_junk, EXIT_INPUT, "junk"),
}


@pytest.mark.parametrize("case", sorted(NIFTI_CASES))
def test_bad_file_input_is_refused_cleanly(case, tmp_path, tiny_model):
    make, code, match = NIFTI_CASES[case]
    source = tmp_path / "in"
    source.mkdir()
    check_run_fails(make(source), tmp_path, tiny_model, code, match)


def test_missing_input(tmp_path, tiny_model):
    check_run_fails(tmp_path / "no_such_scan.nii.gz", tmp_path, tiny_model, EXIT_INPUT, "not found")


def test_unreadable_input(tmp_path, tiny_model, monkeypatch):
    """Permission denied on open (simulated: the tests run as root, which ignores chmod 000)."""
    import builtins
    import io

    source = save_nifti(tmp_path / "locked.nii.gz", good_array())
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).name == source.name:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    digest = tree_digest(source)
    output = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", guarded_open)
        patch.setattr(io, "open", guarded_open)
        result = run_cli(["run", source, "-o", output, "--model", tiny_model, "--device", "cpu"])
    assert_clean_failure(result, EXIT_INPUT, output, source=source, source_digest=digest, match="Permission denied")


def test_absurd_dimensions_are_refused_before_the_data_is_read(tmp_path, tiny_model, monkeypatch):
    """The header alone decides: no voxel data is touched, nothing big is allocated."""
    import nibabel.arrayproxy

    def no_reading(*args, **kwargs):
        raise AssertionError("voxel data was read for an image the header already rules out")

    for name in ("__array__", "get_unscaled", "_get_scaled", "__getitem__"):
        monkeypatch.setattr(nibabel.arrayproxy.ArrayProxy, name, no_reading)
    source = tmp_path / "in"
    source.mkdir()
    for make in (absurd_axis, absurd_voxels):
        check_run_fails(make(source), tmp_path, tiny_model, EXIT_INPUT, "too large")


def test_unknown_device_is_an_input_error(tmp_path, tiny_model):
    source = save_nifti(tmp_path / "good.nii.gz", good_array())
    output = tmp_path / "out"
    result = run_cli(["run", source, "-o", output, "--model", tiny_model, "--device", "tpu"])
    assert_clean_failure(result, EXIT_INPUT, output, match="device")


def test_a_good_input_passes_the_same_checks(tmp_path, tiny_model):
    """The control: the helpers above accept a valid scan, and it is left unchanged."""
    source = save_nifti(tmp_path / "good.nii.gz", good_array())
    digest = tree_digest(source)
    output = tmp_path / "out"
    result = run_cli(["run", source, "-o", output, "--model", tiny_model, "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert files_in(output) == ["mask.nii.gz", "qc.png", "report.json", "viewer.html"]
    assert tree_digest(source) == digest


# --------------------------------------------------------------------------- DICOM makers

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def dicom_dataset(sop_class: str, modality: str, series_uid: str, study_uid: str, number: int):
    from tests.dicom_factory import new_instance

    ds = new_instance(sop_class)
    ds.Modality = modality
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "BAD-INPUT", "Bad^Input", "19700101", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", "A1"
    ds.ReferringPhysicianName, ds.Manufacturer = "", "test"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.SeriesDescription = "AX FLAIR"
    return ds


def mr_slice(folder: Path, k: int, series_uid: str, study_uid: str, frame_uid: str, rows=40, columns=48,
             pixels=True, pixel_bytes=None):
    ds = dicom_dataset(MR_IMAGE_STORAGE, "MR", series_uid, study_uid, k + 1)
    ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing, ds.SliceThickness = [0.9, 0.9], 5.0
    ds.FrameOfReferenceUID = frame_uid
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if pixels:
        image = np.zeros((rows, columns), np.uint16)
        image[rows // 4: 3 * rows // 4, columns // 4: 3 * columns // 4] = 300 + 10 * k
        ds.PixelData = image.tobytes() if pixel_bytes is None else pixel_bytes
    path = folder / f"IM{k:04d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_series(tmp_path, name, n=6, **per_slice):
    """A folder with an n-slice axial MR series; ``per_slice[k]`` overrides slice k's arguments."""
    from pydicom.uid import generate_uid

    folder = tmp_path / name
    folder.mkdir()
    uids = generate_uid(), generate_uid(), generate_uid()
    for k in range(n):
        mr_slice(folder, k, *uids, **per_slice.get(f"s{k}", {}))
    return folder


def dicom_without_pixel_data(tmp_path):
    return dicom_series(tmp_path, "no_pixels", **{f"s{k}": {"pixels": False} for k in range(6)})


def dicom_slice_without_pixel_data(tmp_path):
    return dicom_series(tmp_path, "one_slice_no_pixels", s3={"pixels": False})


def dicom_truncated_pixel_data(tmp_path):
    return dicom_series(tmp_path, "short_pixels", s2={"pixel_bytes": b"\0\1" * 100})


def dicom_mixed_matrix(tmp_path):
    return dicom_series(tmp_path, "mixed_matrix", s2={"rows": 32, "columns": 32}, s4={"rows": 32, "columns": 32})


def dicom_sr(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    folder = tmp_path / "structured_report"
    folder.mkdir()
    ds = dicom_dataset(BASIC_TEXT_SR, "SR", generate_uid(), generate_uid(), 1)
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = "18748-4", "LN", "Report"
    ds.ConceptNameCodeSequence = [concept]
    item = Dataset()
    item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", "No tumour."
    ds.ContentSequence = [item]
    ds.save_as(folder / "report.dcm", enforce_file_format=True)
    return folder


def dicom_seg(tmp_path):
    """A DICOM-SEG (as neuroseg itself writes) given as the input."""
    import highdicom as hd
    import pydicom

    series = dicom_series(tmp_path, "source_series")
    sources = sorted((pydicom.dcmread(p) for p in series.glob("*.dcm")), key=lambda d: d.InstanceNumber)
    mask = np.zeros((len(sources), sources[0].Rows, sources[0].Columns), bool)
    mask[2:4, 10:20, 10:20] = True
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="tumour",
        segmented_property_category=hd.sr.CodedConcept("49755003", "SCT", "Morphologically Abnormal Structure"),
        segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test", manufacturer_model_name="test",
        software_versions="0", device_serial_number="0")
    folder = tmp_path / "seg_only"
    folder.mkdir()
    seg.save_as(folder / "seg.dcm")
    return folder


DICOM_CASES = {
    "dicom_without_pixel_data": (dicom_without_pixel_data, "no_pixels"),
    "dicom_slice_without_pixel_data": (dicom_slice_without_pixel_data, "one_slice_no_pixels"),
    "dicom_truncated_pixel_data": (dicom_truncated_pixel_data, "short_pixels"),
    "dicom_mixed_matrix": (dicom_mixed_matrix, "mixed_matrix"),
    "dicom_sr": (dicom_sr, "structured_report"),
    "dicom_seg": (dicom_seg, "seg_only"),
}


@pytest.mark.parametrize("case", sorted(DICOM_CASES))
def test_bad_dicom_input_is_refused_cleanly(case, tmp_path, tiny_model):
    make, match = DICOM_CASES[case]
    source = tmp_path / "in"
    source.mkdir()
    check_run_fails(make(source), tmp_path, tiny_model, EXIT_INPUT, match)


def test_a_good_dicom_series_passes_the_same_checks(tmp_path, tiny_model):
    source = dicom_series(tmp_path, "good_series")
    digest = tree_digest(source)
    output = tmp_path / "out"
    result = run_cli(["run", source, "-o", output, "--model", tiny_model, "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert "mask.nii.gz" in files_in(output)
    assert tree_digest(source) == digest


def test_corpus_has_at_least_25_cases():
    assert len(NIFTI_CASES) + len(DICOM_CASES) + 3 >= 25
