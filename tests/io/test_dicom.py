"""DICOM series reading: geometry against SimpleITK, sorting, localizers, gaps, compression, multi-frame."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from neuroseg.errors import InputError
from neuroseg.io import load_volume
from neuroseg.io.catalogue import load_dicom_series
from tests.conftest import blob_volume, shared_path
from tests.dicom_factory import (axial_affine, new_study, oblique_affine, sagittal_affine, sitk_volume,
                                 write_enhanced, write_localizer, write_series)

AFFINES = {"axial": axial_affine(), "sagittal": sagittal_affine(), "oblique": oblique_affine()}
AXCODES = {"axial": ("L", "P", "S"), "sagittal": ("P", "I", "R"), "oblique": ("L", "P", "S")}


@pytest.mark.parametrize("orientation", sorted(AFFINES))
@pytest.mark.parametrize("names", ["ordered", "shuffled"])
def test_series_matches_source_and_simpleitk(tmp_path, orientation, names):
    volume = blob_volume(affine=AFFINES[orientation])
    files = write_series(volume, tmp_path / "series", names=names)
    loaded = load_dicom_series(tmp_path / "series")
    reference_array, reference_affine = sitk_volume(files)
    assert loaded.axcodes == AXCODES[orientation]
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.affine, volume.affine, atol=1e-4)
    np.testing.assert_array_equal(loaded.array, reference_array)
    np.testing.assert_allclose(loaded.affine, reference_affine, atol=1e-4)
    assert loaded.meta["format"] == "dicom" and loaded.meta["looks_like_flair"] is True
    assert loaded.meta["warnings"] == []
    # slice k comes from the file written for slice k, whatever its name
    assert loaded.meta["source_files"] == [str(p) for p in files]


def test_missing_slice_is_refused_saying_where(tmp_path):
    write_series(blob_volume(), tmp_path, skip=(5,))
    with pytest.raises(InputError, match=r"1 missing slice: gap of 10\.00 mm between sorted slices 4 and 5 of 11 "
                       r".*files IM0005\.dcm and IM0007\.dcm"):
        load_volume(tmp_path)


def test_localizer_is_left_out_with_a_note(tmp_path):
    study = new_study()
    volume = blob_volume()
    write_series(volume, tmp_path, study=study, series_uid="1.2.3.4")
    write_localizer(tmp_path, study=study, series_uid="1.2.3.4")
    loaded = load_dicom_series(tmp_path)
    np.testing.assert_array_equal(loaded.array, volume.array)
    assert any("left out 1 image with another orientation" in w for w in loaded.meta["warnings"])
    assert len(loaded.meta["source_files"]) == volume.shape[2]


def test_flair_chosen_among_series_and_series_override_warns(tmp_path):
    study = new_study()
    flair, t1 = blob_volume(), blob_volume(affine=sagittal_affine())
    write_series(flair, tmp_path / "a", study=study, series_uid="1.2.3.10", number=4)
    write_series(t1, tmp_path / "b", study=study, series_uid="1.2.3.20", number=2, description="T1 SE",
                 inversion_time=None)
    assert load_dicom_series(tmp_path).meta["series_uid"] == "1.2.3.10"
    chosen = load_dicom_series(tmp_path, series_uid="1.2.3.20")
    np.testing.assert_array_equal(chosen.array, t1.array)
    assert chosen.meta["looks_like_flair"] is False
    assert chosen.meta["warnings"][0].startswith("NOT FLAIR")
    with pytest.raises(InputError, match="no series with UID 9.9"):
        load_dicom_series(tmp_path, series_uid="9.9")


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
def test_compressed_copy_reads_the_same_with_rescale(tmp_path, syntax):
    volume = blob_volume(affine=oblique_affine())
    write_series(volume, tmp_path / "plain")
    write_series(volume, tmp_path / "packed", transfer_syntax=syntax, slope=0.5, intercept=10.0, names="shuffled")
    plain, packed = load_dicom_series(tmp_path / "plain"), load_dicom_series(tmp_path / "packed")
    np.testing.assert_array_equal(packed.array, volume.array)
    np.testing.assert_array_equal(packed.array, plain.array)
    np.testing.assert_allclose(packed.affine, plain.affine, atol=1e-6)


def test_enhanced_multiframe_with_frames_out_of_order(tmp_path):
    volume = blob_volume(affine=sagittal_affine())
    order = list(np.random.default_rng(1).permutation(volume.shape[2]))
    write_enhanced(volume, tmp_path / "enhanced.dcm", frame_order=order)
    loaded = load_dicom_series(tmp_path)
    np.testing.assert_array_equal(loaded.array, volume.array)  # slope 2, intercept -10 undone
    np.testing.assert_allclose(loaded.affine, volume.affine, atol=1e-4)
    assert loaded.meta["source_frames"] == [order.index(k) + 1 for k in range(volume.shape[2])]
    assert loaded.meta["looks_like_flair"] is True


def test_other_files_are_ignored_and_broken_pixels_refused(tmp_path):
    volume = blob_volume()
    files = write_series(volume, tmp_path)
    (tmp_path / "README.txt").write_text("not dicom")
    (tmp_path / "IM0001.dcm.nfo").write_text("# Dicom-File-Format\n")
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 200)
    np.testing.assert_array_equal(load_dicom_series(tmp_path).array, volume.array)
    data = files[3].read_bytes()
    files[3].write_bytes(data[: len(data) - 500])  # pixel data cut short
    with pytest.raises(InputError, match="IM0004.dcm"):
        load_dicom_series(tmp_path)


def test_empty_folder_and_single_slice(tmp_path):
    with pytest.raises(InputError, match="no DICOM series found"):
        load_volume(tmp_path)
    write_series(blob_volume(shape=(40, 48, 3)), tmp_path, skip=(1, 2))
    with pytest.raises(InputError, match="single slice"):
        load_volume(tmp_path)


def test_real_study_is_not_flair_and_t1_reads_when_asked():
    folder = shared_path("dicom", "study-trio-b17")
    with pytest.raises(InputError, match="none of its 3 series looks like a usable FLAIR"):
        load_dicom_series(folder)
    from neuroseg.io.catalogue import scan_dicom

    t1 = next(s for s in scan_dicom(folder).series if s.number == 19)
    loaded = load_dicom_series(folder, series_uid=t1.uid)
    assert loaded.shape == (256, 256, 176) and loaded.axcodes == ("P", "I", "R")
    assert loaded.meta["looks_like_flair"] is False and "NOT FLAIR" in loaded.meta["warnings"][0]
    reference_array, reference_affine = sitk_volume(loaded.meta["source_files"])
    np.testing.assert_array_equal(loaded.array, reference_array)
    np.testing.assert_allclose(loaded.affine, reference_affine, atol=1e-3)


def test_duplicate_file_is_left_out_with_a_warning(tmp_path):
    volume = blob_volume()
    files = write_series(volume, tmp_path)
    copy = tmp_path / "IM0003 (copy).dcm"
    shutil.copy(files[2], copy)
    loaded = load_volume(tmp_path)
    np.testing.assert_array_equal(loaded.array, volume.array)
    assert loaded.meta["source_files"] == [str(p) for p in files]
    (warning,) = loaded.meta["warnings"]
    assert "left out 1 duplicate file" in warning and f"{copy} (copy of IM0003.dcm)" in warning


@pytest.mark.parametrize("damage", ["pixels", "truncated"])
def test_duplicates_that_differ_are_refused_naming_both_files(tmp_path, damage):
    files = write_series(blob_volume(), tmp_path)
    dataset = pydicom.dcmread(files[2])
    if damage == "pixels":
        pixels = dataset.pixel_array.copy()
        pixels[0, 0] += 1
        dataset.PixelData = pixels.tobytes()
        dataset.save_as(tmp_path / "IM0003 copy.dcm")
        expected = "but different pixel data"
    else:
        (tmp_path / "IM0003 copy.dcm").write_bytes(files[2].read_bytes()[:-500])
        expected = "pixel data cannot be decoded"
    with pytest.raises(InputError, match=r"IM0003\.dcm and .*IM0003 copy\.dcm have the same SOPInstanceUID") as error:
        load_volume(tmp_path)
    assert expected in str(error.value)
