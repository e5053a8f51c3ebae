import numpy as np

from neuroseg.inference.postprocess import remove_small_components


def test_small_components_go_and_large_ones_stay_in_place():
    mask = np.zeros((30, 30, 10), dtype=np.uint8)
    mask[5:15, 5:15, 2:6] = 1  # 400 voxels
    mask[25, 25, 8] = 1  # a speck
    mask[20:22, 3:5, 1] = 1  # 4 voxels
    out = remove_small_components(mask, min_voxels=5)
    assert out.dtype == np.uint8 and out.shape == mask.shape
    np.testing.assert_array_equal(out[5:15, 5:15, 2:6], 1)
    assert out.sum() == 400


def test_diagonal_neighbours_count_as_one_component():
    mask = np.zeros((10, 10, 10), dtype=np.uint8)
    for k in range(4):
        mask[k, k, k] = 1
    assert remove_small_components(mask, min_voxels=4).sum() == 4
    assert remove_small_components(mask, min_voxels=5).sum() == 0


def test_holes_the_lesion_encloses_are_filled_slice_by_slice():
    from neuroseg.inference.postprocess import fill_holes

    mask = np.zeros((9, 9, 3), dtype=np.uint8)
    mask[2:7, 2:7, 1] = 1
    mask[4, 4, 1] = 0  # a dark core inside the rim
    mask[0:3, 0:3, 2] = 1
    mask[0, 0, 2] = 0  # open to the edge: not a hole
    out = fill_holes(mask)
    assert out[4, 4, 1] == 1 and out[0, 0, 2] == 0
    assert out.dtype == np.uint8 and (out >= mask).all() and out.sum() == mask.sum() + 1
