"""The viewer page's images: computed on the mask's box and gzipped fast, the same voxels as the plain way."""

from __future__ import annotations

import base64
import gzip
import io
import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from neuroseg.export.nifti import write_nifti
from neuroseg.export.qc import display_window, every_nth
from neuroseg.export.viewer import (_script_json, compact_image, images_json, mask_layer, nifti_base64, outline,
                                    tumour_centre_mm)
from neuroseg.volume import Volume


def random_masks(count=200, seed=0):
    """Masks of every density, many of them blocks against the array's edges and faces."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        shape = tuple(int(s) for s in rng.integers(1, 12, 3))
        mask = rng.random(shape) < rng.random()
        if n % 3 == 0:  # a block, often reaching the edge
            mask[:] = False
            low = [rng.integers(0, s) for s in shape]
            mask[tuple(slice(a, rng.integers(a, s) + 1) for a, s in zip(low, shape))] = True
        if n % 5 == 0:
            mask = np.asfortranarray(mask)
        yield mask.astype(np.uint8)
    yield np.zeros((5, 6, 7), dtype=np.uint8)
    yield np.ones((5, 6, 7), dtype=np.uint8)


def test_outline_on_the_box_is_the_outline_of_the_whole_grid():
    for mask in random_masks():
        whole = mask > 0
        expected = (whole & ~ndimage.binary_erosion(whole)).astype(np.uint8)
        edge = outline(mask)
        assert edge.dtype == np.uint8 and np.array_equal(edge, expected)


def test_mask_layer_is_the_mask_in_nifti_order():
    for mask in random_masks():
        layer = mask_layer(mask * 3)
        assert layer.dtype == np.uint8 and layer.flags.f_contiguous and np.array_equal(layer, mask * 3)


def test_tumour_centre_is_the_mean_of_every_tumour_voxel():
    affine = np.array([[0.0, -0.9, 0.1, 30.0], [1.1, 0.0, 0.0, -20.0], [0.0, 0.2, 5.0, 4.0], [0, 0, 0, 1]])
    for mask in random_masks():
        voxels = np.argwhere(mask > 0)
        expected = None if voxels.size == 0 else [
            round(float(v), 3) for v in (affine @ np.append(voxels.mean(axis=0), 1.0))[:3]]
        assert tumour_centre_mm(Volume(mask, affine)) == expected


@pytest.mark.parametrize("values, dtype", [
    ([1.0, 2.0, -3.0], np.int16), ([32767.0, -32768.0, -0.0], np.int16), ([1.5, 2.0], np.float32),
    ([32768.0], np.float32), ([-32769.0], np.float32), ([np.nan, 1.0], np.float32), ([np.inf, 1.0], np.float32),
    ([65536.0, 0.0], np.float32), ([1e10, -1e10], np.float32), ([], np.float32)])  # 65536 and 1e10 wrap to int16s
def test_compact_image_is_int16_only_for_whole_numbers_in_range(values, dtype):
    image = compact_image(np.array(values, dtype=np.float32).reshape(-1, 1, 1))
    assert image.dtype == dtype
    np.testing.assert_array_equal(image.ravel(), np.array(values, dtype=dtype))


def test_compact_image_finds_one_fraction_anywhere_in_a_volume():
    volume = np.asfortranarray(np.arange(60 * 50 * 40, dtype=np.float32).reshape(60, 50, 40) % 3000)
    assert compact_image(volume).dtype == np.int16 and compact_image(volume).flags.f_contiguous
    for index in [(0, 0, 0), (59, 49, 39), (17, 3, 21)]:  # on and off the voxels sampled first
        fraction = volume.copy(order="K")
        fraction[index] += 0.25
        assert compact_image(fraction).dtype == np.float32
    assert compact_image(volume.astype(np.uint8)).dtype == np.int16
    assert compact_image(volume.astype(np.int32) * 20).dtype == np.float32  # beyond int16


def test_a_page_image_is_the_nifti_of_the_array_gzipped():
    array = np.asfortranarray(np.random.default_rng(1).integers(-50, 900, (30, 20, 7)).astype(np.int16))
    affine = np.diag([-0.9, 0.9, 5.0, 1.0])
    stream = gzip.decompress(base64.b64decode(nifti_base64(array, affine)))
    image = nib.Nifti1Image.from_bytes(stream)
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), array)
    np.testing.assert_allclose(image.affine, affine)
    assert image.header["sform_code"] == 1 and image.header["qform_code"] == 1


def test_images_json_is_the_script_json_of_the_images():
    images = {"flair": base64.b64encode(bytes(range(256)) * 10).decode("ascii"), "fill": "", "outline": "QUJD"}
    assert images_json(images) == _script_json(images)
    assert json.loads(images_json(images)) == images


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.nii"])
def test_a_written_nifti_holds_the_bytes_nibabel_makes(tmp_path, name):
    volume = Volume(np.random.default_rng(2).integers(0, 2, (9, 8, 7)).astype(np.uint8), np.diag([1.0, 1.1, 3.0, 1]))
    path = write_nifti(volume, tmp_path / name)
    expected = tmp_path / ("nibabel-" + name)
    from neuroseg.export.nifti import to_nifti

    to_nifti(volume, np.uint8).to_filename(str(expected))
    read = gzip.decompress if name.endswith(".gz") else (lambda data: data)
    assert read(path.read_bytes()) == read(expected.read_bytes())
    np.testing.assert_array_equal(np.asanyarray(nib.load(path).dataobj), volume.array)


@pytest.mark.parametrize("shape", [(30, 20, 12), (7, 5, 3), (2, 9, 11), (1, 1, 5)])
def test_every_nth_takes_the_voxels_ravel_takes_whatever_the_layout(shape):
    array = np.random.default_rng(3).random(shape, dtype=np.float32)
    for view in (array, np.asfortranarray(array), array.transpose(2, 0, 1), array[::-1, :, ::-1],
                 np.asfortranarray(array)[:, ::-1][:, :, 1:]):
        for step in (1, 2, 7, 8, 13, 60, 5000):  # runs of 1 plane or several, a tail of planes, no whole run
            taken = every_nth(view, step)
            if step == 1:  # all of them, in memory order
                assert np.array_equal(np.sort(taken), np.sort(view.ravel()))
            else:
                assert np.array_equal(taken, view.ravel()[::step])
        assert display_window(view) == display_window(np.ascontiguousarray(view))


def test_an_orderless_window_is_the_same_for_every_view_of_the_voxels():
    from neuroseg.export.qc import WINDOW_SAMPLE, window_is_orderless

    volume = np.random.default_rng(5).normal(100, 30, (100, 100, 100)).astype(np.float32)  # WINDOW_SAMPLE voxels
    assert volume.size == WINDOW_SAMPLE and window_is_orderless(volume)
    for view in (volume[::-1], volume.transpose(2, 0, 1)[:, ::-1], np.asfortranarray(volume)):
        assert window_is_orderless(view) and display_window(view) == display_window(volume)
    assert window_is_orderless(np.concatenate([volume, volume[:99]]))  # under 2 M voxels: every one is taken
    assert not window_is_orderless(np.concatenate([volume, volume]))  # every 2nd: a sample, in the view's order


def test_display_window_of_a_large_volume_samples_the_same_voxels_in_any_layout():
    array = np.random.default_rng(4).normal(100, 30, (130, 120, 70)).astype(np.float32)  # 1.1 M: every 1st
    big = np.concatenate([array, array + 1], axis=2)  # 2.2 M voxels: every 2nd
    for volume in (array, big):
        copy = np.ascontiguousarray(volume)
        values = copy.ravel()[:: max(1, copy.size // 1_000_000)]
        tissue = values[(values > values.min()) & (values != 0)]
        expected = tuple(float(v) for v in np.percentile(tissue, [1, 99.5]))
        assert display_window(np.asfortranarray(volume)) == display_window(volume.transpose(1, 0, 2).transpose(1, 0, 2)) == expected
