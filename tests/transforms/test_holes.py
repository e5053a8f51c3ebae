import numpy as np
import pytest
from scipy import ndimage

from neuroseg.transforms.holes import fill_holes_in_plane


def rings(shape, seed):
    """Random blobs and hollow squares, some cut by the image's edge, on each slice."""
    rng = np.random.default_rng(seed)
    mask = ndimage.binary_opening(rng.random(shape) > 0.55, np.ones((2, 2, 1)))
    for k in range(shape[2]):
        i, j = rng.integers(-3, shape[0] - 4, size=2)
        mask[max(i, 0):i + 8, max(j, 0):j + 8, k] = True
        mask[max(i + 2, 0):i + 6, max(j + 2, 0):j + 6, k] = False
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_fill_holes_in_plane_is_scipys_fill_of_each_slice(seed):
    mask = rings((30, 24, 5), seed).astype(np.uint8)
    mask[:, :, 2] = 0  # an empty slice among full ones
    expected = np.stack([ndimage.binary_fill_holes(mask[:, :, k]) for k in range(mask.shape[2])], axis=-1)
    filled = fill_holes_in_plane(mask)
    assert filled.dtype == np.uint8 and np.array_equal(filled, expected.astype(np.uint8))
    assert filled.sum() > mask.sum()  # the hollow squares' holes were filled


def test_fill_holes_in_plane_takes_2d_masks_and_empty_ones():
    mask = rings((20, 20, 1), 0)[:, :, 0]
    assert np.array_equal(fill_holes_in_plane(mask), ndimage.binary_fill_holes(mask))
    empty = np.zeros((5, 6, 3), dtype=np.uint8)
    assert np.array_equal(fill_holes_in_plane(empty), empty)


def test_fill_holes_in_plane_on_random_masks_of_every_size():
    rng = np.random.default_rng(3)
    for _ in range(400):
        shape = tuple(int(s) for s in rng.integers(1, 30, 2)) + (int(rng.integers(1, 4)),)
        mask = rng.random(shape) < rng.uniform(0.2, 0.8)
        expected = np.stack([ndimage.binary_fill_holes(mask[:, :, k]) for k in range(shape[2])], axis=-1)
        assert np.array_equal(fill_holes_in_plane(mask), expected), shape
