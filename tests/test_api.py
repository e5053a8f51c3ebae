"""The Python API the README shows: neuroseg.segment on a path or a Volume."""

import numpy as np
import pytest

import neuroseg
from neuroseg.errors import InputError
from neuroseg.export.writer import write_outputs
from neuroseg.inference import Segmenter
from tests.conftest import blob_volume


def test_segment_a_volume_returns_mask_on_its_grid_and_a_report(tiny_model):
    volume = blob_volume()
    result = neuroseg.segment(volume, model=tiny_model, device="cpu")
    assert result.mask.same_grid(volume) and result.mask.array.dtype == np.uint8
    assert result.report["input"]["shape"] == list(volume.shape)
    assert result.report["tumour_volume_ml"] == round(result.volume_ml, 3)


def test_segmenter_loaded_once_serves_many_volumes(tiny_model, tmp_path):
    segmenter = Segmenter(tiny_model, device="cpu")
    for index, shape in enumerate([(40, 48, 12), (32, 32, 8)]):
        result = segmenter.segment(blob_volume(shape=shape, centre=(10, 10, 4), radius=3))
        written = write_outputs(result, tmp_path / str(index))
        assert [p.name for p in written][-1] == "report.json"
        assert result.mask.shape == shape


def test_neuroseg_volume_is_the_readers_volume_type():
    from neuroseg.volume import Volume

    assert neuroseg.Volume is Volume


@pytest.mark.parametrize("change, message", [
    (lambda a: np.where(a > a.mean(), np.nan, a), "NaN or infinite"),
    (lambda a: np.where(a > a.mean(), np.inf, a), "NaN or infinite"),
    (lambda a: np.zeros_like(a), "empty"),
    (lambda a: a > a.mean(), "not an MR intensity"),
])
def test_a_volume_passed_in_python_gets_the_readers_checks(tiny_model, change, message):
    volume = blob_volume()
    bad = neuroseg.Volume(change(volume.array), volume.affine)
    with pytest.raises(InputError, match=message):
        neuroseg.segment(bad, model=tiny_model, device="cpu")


def test_segment_takes_a_series_held_in_memory(tmp_path):
    import pydicom

    from tests.conftest import bright_model
    from tests.dicom_factory import write_series

    files = write_series(blob_volume(), tmp_path / "series")
    from_files = neuroseg.segment(tmp_path / "series", model=bright_model(), device="cpu")
    from_memory = neuroseg.segment([pydicom.dcmread(f) for f in files], model=bright_model(), device="cpu")
    assert from_memory.mask.array.any()
    np.testing.assert_array_equal(from_memory.mask.array, from_files.mask.array)
    assert from_memory.report["tumour_slices_dicom"] == from_files.report["tumour_slices_dicom"]
