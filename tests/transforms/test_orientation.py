import nibabel as nib
import numpy as np
import pytest

from neuroseg.constants import WORKING_AXCODES
from neuroseg.transforms import Reorientation
from tests.conftest import blob_volume
from tests.geometry import FLIPS, PERMUTATIONS, reorder, rotate_affine


@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("flips", FLIPS)
def test_every_axis_order_reaches_the_same_working_volume(permutation, flips):
    base = blob_volume()
    stored = reorder(base, permutation, flips)
    reorientation = Reorientation.to_working(stored)
    working = reorientation.apply_volume(stored)
    reference = Reorientation.to_working(base).apply_volume(base)
    assert tuple(nib.aff2axcodes(working.affine)) == WORKING_AXCODES
    np.testing.assert_array_equal(working.array, reference.array)
    np.testing.assert_allclose(working.affine, reference.affine, atol=1e-9)
    np.testing.assert_array_equal(reorientation.invert(working.array), stored.array)
    view = reorientation.apply_volume(stored, copy=False)  # the same volume, its array not copied
    assert working.array.flags.c_contiguous and np.shares_memory(view.array, stored.array)
    np.testing.assert_array_equal(view.array, working.array)
    np.testing.assert_array_equal(view.affine, working.affine)


@pytest.mark.parametrize("permutation", PERMUTATIONS)
def test_slice_axis_is_the_one_nearest_superior(permutation):
    stored = reorder(blob_volume(), permutation, (False, False, False))
    assert Reorientation.to_working(stored).slice_axis == permutation.index(2)


def test_oblique_scan_slices_along_its_most_superior_axis():
    base = blob_volume()
    tilted = type(base)(base.array, rotate_affine(base.affine, 25, axis=0))
    reorientation = Reorientation.to_working(tilted)
    assert reorientation.slice_axis == 2
    np.testing.assert_array_equal(reorientation.invert(reorientation.apply(tilted.array)), tilted.array)


def test_working_slice_maps_back_to_source_slice():
    stored = reorder(blob_volume(), (0, 1, 2), (False, False, True))
    reorientation = Reorientation.to_working(stored)
    working = reorientation.apply(stored.array)
    n = stored.shape[2]
    for k in range(n):
        np.testing.assert_array_equal(working[:, :, k],
                                      stored.array[:, :, reorientation.working_to_source_slice(k, n)])


def test_per_slice_values_follow_the_source_slice_order():
    for flips in ((False, False, False), (False, False, True)):
        stored = reorder(blob_volume(), (0, 1, 2), flips)
        reorientation = Reorientation.to_working(stored)
        n = stored.shape[2]
        values = np.arange(n) * 10
        source = reorientation.to_source_order(values)
        for k in range(n):
            assert source[reorientation.working_to_source_slice(k, n)] == values[k]
