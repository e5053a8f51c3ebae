"""The input checks' per-slice morphology and distances are scipy's, on any mask (edges included)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from neuroseg.checks.slicewise import dilation, distance_mm, opening
from neuroseg.transforms.holes import IN_PLANE_CROSS
SPACINGS = [(1.0, 1.0), (0.898, 0.898), (0.9, 1.1), (0.47, 0.47), (1.7, 0.6)]


def masks(count, seed, slices=True):
    """Random masks of every size and density: noise, blobs and blobs with noise, many touching the edges."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        shape = tuple(int(s) for s in rng.integers(1, 40, 2)) + ((int(rng.integers(1, 4)),) if slices else ())
        rows, columns = np.indices(shape[:2])
        blobs = np.zeros(shape[:2], dtype=bool)
        for _ in range(int(rng.integers(1, 4))):
            centre, radii = rng.uniform(0, shape[:2]), rng.uniform(1, shape[:2])
            blobs |= ((rows - centre[0]) / radii[0]) ** 2 + ((columns - centre[1]) / radii[1]) ** 2 < 1
        if slices:
            blobs = np.repeat(blobs[..., None], shape[2], axis=2)
        noise = rng.random(shape) < rng.random()
        yield (noise, blobs, blobs ^ (rng.random(shape) < 0.05))[n % 3]


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_opening_and_dilation_are_scipys_with_in_plane_elements(iterations):
    square = np.zeros((3, 3, 1), dtype=bool)
    square[:, :, 0] = True
    for mask in masks(300, iterations):
        np.testing.assert_array_equal(opening(mask, iterations),
                                      ndimage.binary_opening(mask, IN_PLANE_CROSS, iterations=iterations))
        np.testing.assert_array_equal(dilation(mask, iterations),
                                      ndimage.binary_dilation(mask, square, iterations=iterations))


def test_distance_on_the_box_is_scipys_distance_to_the_outside():
    for n, inside in enumerate(masks(1500, 7, slices=False)):
        spacing = SPACINGS[n % len(SPACINGS)]
        # bit for bit: the thresholds on these depths must fall where they did
        np.testing.assert_array_equal(distance_mm(inside, spacing),
                                      ndimage.distance_transform_edt(inside, sampling=spacing))


def test_distance_to_points_within_a_region_is_scipys_there():
    rng = np.random.default_rng(8)
    for n, region in enumerate(masks(1500, 9, slices=False)):
        spacing = SPACINGS[n % len(SPACINGS)]
        points = region & (rng.random(region.shape) < (0.1, 0.0)[n % 7 == 0])  # some regions hold none
        expected = ndimage.distance_transform_edt(~points, sampling=spacing)
        np.testing.assert_array_equal(distance_mm(~points, spacing, within=region)[region], expected[region])
