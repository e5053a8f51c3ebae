"""nifti_bytes: the bytes nibabel's to_bytes makes, whatever the header, layout or data type."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neuroseg.export.nifti import nifti_bytes, on_box, to_nifti
from neuroseg.volume import Volume

AFFINE = np.array([[-0.9, 0.0, 0.1, 90.0], [0.0, 0.9, 0.0, -120.0], [0.0, 0.0, 5.5, -40.0], [0, 0, 0, 1]])


def arrays():
    rng = np.random.default_rng(0)
    values = rng.integers(-40, 900, (13, 11, 7))
    for dtype in (np.uint8, np.int16, np.float32, np.float64):
        array = (values % 200 if dtype == np.uint8 else values).astype(dtype)
        yield array
        yield np.asfortranarray(array)
        yield array[::-1, :, ::2]  # neither C- nor Fortran-ordered


@pytest.mark.parametrize("array", list(arrays()), ids=lambda a: f"{a.dtype}-{'C' if a.flags.c_contiguous else 'F' if a.flags.f_contiguous else 'strided'}")
def test_a_new_image_gives_nibabels_bytes(array):
    image = nib.Nifti1Image(array, AFFINE)
    image.set_qform(AFFINE, code=1)
    assert nifti_bytes(image) == nib.Nifti1Image(array, AFFINE, header=image.header).to_bytes()


def source_headers():
    """Headers of inputs a mask is written on: big-endian, with an extension, NIfTI-2, one volume in 4D."""
    plain = nib.Nifti1Image(np.zeros((13, 11, 7), np.int16), AFFINE).header
    big = plain.copy().as_byteswapped(">")
    extended = plain.copy()
    extended.extensions.append(nib.nifti1.Nifti1Extension("comment", b"a note from the scanner"))
    four_d = plain.copy()
    four_d.set_data_shape((13, 11, 7, 1))
    scaled = plain.copy()
    scaled.set_slope_inter(2.0, 10.0)
    nifti2 = nib.Nifti2Image(np.zeros((13, 11, 7), np.float32), AFFINE).header
    return {"plain": plain, "big-endian": big, "extension": extended, "4d": four_d, "scaled": scaled,
            "nifti2": nifti2}


@pytest.mark.parametrize("name", list(source_headers()))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_an_output_on_an_input_header_gives_nibabels_bytes(name, dtype):
    mask = np.zeros((13, 11, 7), dtype=np.float32)
    mask[3:9, 2:6, 1:5] = np.random.default_rng(1).random((6, 4, 4)) > 0.3
    volume = Volume(mask, AFFINE, {"nifti_header": source_headers()[name]})
    image = to_nifti(volume, dtype)
    assert nifti_bytes(image) == image.to_bytes()
    np.testing.assert_array_equal(np.asanyarray(type(image).from_bytes(nifti_bytes(image)).dataobj).reshape(mask.shape),
                                  mask.astype(dtype))


def test_an_image_nibabel_would_scale_is_left_to_nibabel():
    image = nib.Nifti1Image(np.linspace(0, 1000, 13 * 11 * 7).reshape(13, 11, 7), AFFINE)
    image.set_data_dtype(np.int16)  # float data in an int16 file: nibabel scales it
    assert nifti_bytes(image) == image.to_bytes()


def test_on_box_is_astype_in_fortran_order():
    rng = np.random.default_rng(2)
    for shape in [(1, 1, 1), (5, 6, 7), (9, 3, 4)]:
        for density in (0.0, 0.1, 1.0):
            mask = (rng.random(shape) < density) * rng.integers(1, 300, shape)
            for dtype in (np.uint8, np.int16):
                layer = on_box(mask, dtype=dtype)
                assert layer.dtype == dtype and layer.flags.f_contiguous
                np.testing.assert_array_equal(layer, mask.astype(dtype))
