"""The whole pipeline returns the mask on the input's grid, with the blob where it was put."""

import numpy as np
import pytest

from neuroseg.errors import GeometryError
from neuroseg.inference import Segmenter
from neuroseg.inference.engine import check_same_grid
from neuroseg.volume import Volume
from tests.conftest import blob_volume, bright_model
from tests.geometry import FLIPS, PERMUTATIONS, reorder, rotate_affine


@pytest.fixture(scope="module")
def bright_segmenter():
    return Segmenter(bright_model(), device="cpu")


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _truth(volume):
    return volume.array > 125  # the blob, also where it pokes out of the head


@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("flips", FLIPS)
def test_mask_on_input_grid_for_all_axis_orders(bright_segmenter, permutation, flips):
    volume = reorder(blob_volume(), permutation, flips)
    result = bright_segmenter.segment(volume)
    assert result.mask.shape == volume.shape
    assert np.array_equal(result.mask.affine, volume.affine)
    assert result.mask.array.dtype == np.uint8
    assert _dice(result.mask.array > 0, _truth(volume)) > 0.85


def test_mask_on_input_grid_for_an_oblique_affine(bright_segmenter):
    base = blob_volume()
    volume = Volume(base.array, rotate_affine(rotate_affine(base.affine, 17, 0), -11, 2))
    result = bright_segmenter.segment(volume)
    assert result.mask.same_grid(volume) and np.array_equal(result.mask.affine, volume.affine)
    assert _dice(result.mask.array > 0, _truth(volume)) > 0.85


def test_blob_world_position_is_the_same_whatever_the_storage(bright_segmenter):
    base = blob_volume()
    reference = bright_segmenter.segment(base)
    centre = np.argwhere(reference.mask.array).mean(axis=0)
    world = (base.affine @ np.append(centre, 1))[:3]
    stored = reorder(base, (2, 0, 1), (True, False, True))
    moved = bright_segmenter.segment(stored)
    moved_centre = np.argwhere(moved.mask.array).mean(axis=0)
    np.testing.assert_allclose((stored.affine @ np.append(moved_centre, 1))[:3], world, atol=1e-6)


def test_tumour_slices_and_volume_are_reported_along_the_input_slice_axis(bright_segmenter):
    stored = reorder(blob_volume(), (2, 0, 1), (False, False, False))  # slices stored along axis 0
    result = bright_segmenter.segment(stored)
    assert result.slice_axis == 0
    truth_slices = np.flatnonzero(_truth(stored).any(axis=(1, 2))).tolist()
    assert result.tumour_slices == truth_slices
    assert result.volume_ml == pytest.approx(_truth(stored).sum() * stored.voxel_volume_ml, rel=0.2)
    assert len(result.slice_probabilities) == stored.shape[0]


def test_grid_check_raises_on_any_difference():
    volume = blob_volume()
    shifted = Volume(volume.array, volume.affine + np.pad(np.eye(3) * 0, ((0, 1), (0, 1))) + 1e-3)
    with pytest.raises(GeometryError):
        check_same_grid(volume, shifted)
    with pytest.raises(GeometryError):
        check_same_grid(volume, Volume(volume.array[:, :, :-1], volume.affine))
