"""The synthetic follow-up of the test-retest: thick slices average what they span, centred where the slice is,
so that the retest measures the registration, not an offset of the simulation."""

from __future__ import annotations

import numpy as np
import pytest

from neuroseg.longitudinal.simulate import box_kernel, moved_copy, rigid_matrix
from neuroseg.volume import Volume


def gaussian_volume(thickness: float, centre_mm=(20.3, 24.1, 41.3), sigma_mm=6.0) -> Volume:
    """A smooth blob at a known point (RAS mm), on a 1 x 1 x ``thickness`` mm grid."""
    shape = (44, 48, round(90 / thickness))
    affine = np.diag([1.0, 1.0, thickness, 1.0])
    world = np.indices(shape).astype(np.float64) * np.array([1.0, 1.0, thickness])[:, None, None, None]
    squared = ((world - np.array(centre_mm)[:, None, None, None]) ** 2).sum(0)
    return Volume(np.exp(-squared / (2 * sigma_mm**2)).astype(np.float32), affine)


def centre_of_mass_mm(volume: Volume) -> np.ndarray:
    array = np.asarray(volume.array, dtype=np.float64)
    voxel = (np.indices(array.shape) * array).reshape(3, -1).sum(1) / array.sum()
    return (volume.affine @ np.r_[voxel, 1.0])[:3]


@pytest.mark.parametrize("thickness", [1.0, 2.0, 2.38, 2.5])
def test_thick_slices_stay_centred_where_the_source_is_thinner(thickness):
    # 2.38 mm is TCGA_DU_7014's; 2 and 2.5 mm made a box of two voxels, half a voxel off centre
    volume = gaussian_volume(thickness)
    moved = moved_copy(volume, np.eye(4), spacing=(1.0, 1.0, 5.0))
    assert moved.spacing[2] == pytest.approx(5.0)
    np.testing.assert_allclose(centre_of_mass_mm(moved), centre_of_mass_mm(volume), atol=0.1)


def test_a_moved_thick_copy_lands_where_the_motion_puts_it():
    volume = gaussian_volume(2.38)
    motion = rigid_matrix((0.0, 10.0, 0.0), (0.0, 0.0, 8.0), centre=(22.0, 24.0, 45.0))
    moved = moved_copy(volume, motion, spacing=(1.0, 1.0, 5.0))
    expected = (motion @ np.r_[centre_of_mass_mm(volume), 1.0])[:3]
    np.testing.assert_allclose(centre_of_mass_mm(moved), expected, atol=0.15)


@pytest.mark.parametrize("width", [1.0, 1.375, 2.0, 2.07, 3.0])
def test_box_kernel_is_symmetric_and_as_wide_as_asked(width):
    kernel = box_kernel(width)
    assert len(kernel) % 2 == 1
    np.testing.assert_allclose(kernel, kernel[::-1])
    assert kernel.sum() == pytest.approx(1.0)
    # the middle voxel is covered whole; all the voxels' covered shares add up to the width
    assert (kernel / kernel[len(kernel) // 2]).sum() == pytest.approx(width)
