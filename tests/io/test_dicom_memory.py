"""A DICOM series held in memory (as a DICOM node receives it) reads and exports as its files do.

The SEG builder takes the mask, the source datasets and the algorithm description; from memory
it needs no file at all, so these tests delete the files before the SEG is written.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pydicom
import pytest

from neuroseg.errors import InputError
from neuroseg.export.dicom_seg import Algorithm, build_dicom_seg, write_dicom_seg
from neuroseg.export.writer import write_outputs
from neuroseg.inference import Segmenter
from neuroseg.io import load_volume
from tests.conftest import blob_volume
from tests.dicom_factory import oblique_affine, sagittal_affine, write_enhanced, write_series


@pytest.fixture(scope="module")
def segmenter(tiny_model):
    return Segmenter(tiny_model, device="cpu")


def in_memory(files) -> list:
    return [pydicom.dcmread(path) for path in files]


def seg_frames(seg) -> dict:
    """SEG frame pixels by the SOPInstanceUID (and frame) of the source image each lies on."""
    frames = {}
    for item, pixels in zip(seg.PerFrameFunctionalGroupsSequence, seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)):
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        frames[(source.ReferencedSOPInstanceUID, source.get("ReferencedFrameNumber"))] = pixels
    return frames


@pytest.mark.parametrize("affine", [sagittal_affine(), oblique_affine()], ids=["sagittal", "oblique"])
def test_datasets_in_memory_read_as_their_files(tmp_path, affine):
    files = write_series(blob_volume(affine=affine), tmp_path / "dicom", names="shuffled")
    from_files = load_volume(tmp_path / "dicom")
    from_memory = load_volume(in_memory(reversed(files)))  # any order: the reader sorts by position
    np.testing.assert_array_equal(from_memory.array, from_files.array)
    np.testing.assert_allclose(from_memory.affine, from_files.affine)
    assert from_memory.meta["source_sop_instance_uids"] == from_files.meta["source_sop_instance_uids"]
    assert len(from_memory.meta["source_datasets"]) == len(files) and "source_datasets" not in from_files.meta


def test_seg_from_memory_equals_seg_from_files_with_no_file_left(tmp_path, segmenter):
    volume = blob_volume(affine=oblique_affine())
    files = write_series(volume, tmp_path / "dicom", names="shuffled")
    datasets = in_memory(files)
    known = volume.array > 200  # the random-weight model's own mask is arbitrary: use the blob
    from_files = segmenter.segment(tmp_path / "dicom")
    from_files = dataclasses.replace(from_files, mask=from_files.mask.with_array(known.astype(np.uint8)))
    write_dicom_seg(from_files, tmp_path / "files-seg.dcm")
    shutil.rmtree(tmp_path / "dicom")

    from_memory = segmenter.segment(load_volume(datasets))
    from_memory = dataclasses.replace(from_memory, mask=from_memory.mask.with_array(known.astype(np.uint8)))
    write_outputs(from_memory, tmp_path / "out", output_format="dicom-seg", secondary_capture=True)
    a = seg_frames(pydicom.dcmread(tmp_path / "files-seg.dcm"))
    b = seg_frames(pydicom.dcmread(tmp_path / "out" / "seg.dcm"))
    assert a.keys() == b.keys() and len(a) == int(known.any(axis=(0, 1)).sum())
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    capture = pydicom.dcmread(tmp_path / "out" / "sc.dcm")
    assert capture.StudyInstanceUID == datasets[0].StudyInstanceUID


def test_seg_over_an_enhanced_multiframe_image_in_memory(tmp_path, segmenter):
    volume = blob_volume(affine=oblique_affine())
    order = [int(k) for k in np.random.default_rng(5).permutation(volume.shape[2])]
    path = write_enhanced(volume, tmp_path / "mf.dcm", frame_order=order)
    (dataset,) = in_memory([path])
    path.unlink()
    result = segmenter.segment(load_volume([dataset]))
    known = (volume.array > 200).astype(np.uint8)
    seg = build_dicom_seg(result.mask.with_array(known), [dataset], Algorithm("tiny-test-model"))
    frames = seg_frames(seg)
    assert len(frames) == int(known.any(axis=(0, 1)).sum())
    for (uid, frame), pixels in frames.items():
        assert uid == dataset.SOPInstanceUID
        np.testing.assert_array_equal(pixels, known[:, :, order[int(frame) - 1]].T)


def test_the_builder_needs_the_images_of_one_series(tmp_path, segmenter):
    first = in_memory(write_series(blob_volume(), tmp_path / "a", series_uid="1.2.3.1"))
    second = in_memory(write_series(blob_volume(), tmp_path / "b", series_uid="1.2.3.2"))
    result = segmenter.segment(load_volume(first))
    with pytest.raises(InputError, match="one source series"):
        build_dicom_seg(result.mask, first + second, Algorithm())
    with pytest.raises(InputError, match="not one volume"):
        build_dicom_seg(result.mask, first[:3] + first[5:], Algorithm())  # a slice missing


def test_a_not_flair_input_is_said_in_the_seg(tmp_path, segmenter):
    datasets = in_memory(write_series(blob_volume(), tmp_path / "t1", description="AX T1", inversion_time=None))
    volume = load_volume(datasets, series_uid=str(datasets[0].SeriesInstanceUID))
    seg = build_dicom_seg(segmenter.segment(volume).mask, datasets, Algorithm("m", input_not_flair=True))
    assert seg.SeriesDescription.startswith("NOT FLAIR")


def test_a_list_of_other_things_is_one_clear_error():
    with pytest.raises(InputError, match="Expected pydicom Datasets of one series, got a str"):
        load_volume(["IM0001.dcm"])
    with pytest.raises(InputError, match="no DICOM series found"):
        load_volume([])
