"""A synthetic follow-up for test-retest: the same scan, the head moved by a known rigid transform and
resampled onto another grid. There is no longitudinal data set to test on; this is how the registration
error and the volume-change spread of ``neuroseg compare`` are measured (tests and scripts/compare_retest.py).
"""

from __future__ import annotations

import numpy as np

from neuroseg.volume import Volume


def rigid_matrix(rotation_degrees=(10.0, 0.0, 0.0), translation_mm=(8.0, 0.0, 0.0), centre=(0.0, 0.0, 0.0)):
    """A 4x4 rigid transform on RAS mm: rotations about x, y then z (degrees) around ``centre``, then a shift."""
    rotation = np.eye(3)
    for axis, degrees in enumerate(rotation_degrees):
        a = np.radians(degrees)
        c, s = np.cos(a), np.sin(a)
        i, j = [n for n in range(3) if n != axis]
        step = np.eye(3)
        step[i, i], step[i, j], step[j, i], step[j, j] = c, -s, s, c
        rotation = step @ rotation
    centre = np.asarray(centre, dtype=float)
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = centre - rotation @ centre + np.asarray(translation_mm, dtype=float)
    return out


def moved_copy(volume: Volume, motion: np.ndarray, spacing=(1.0, 1.0, 5.0), order: int = 1) -> Volume:
    """``volume`` as a scanner would see it after the head moved by ``motion`` (RAS mm, old point -> new
    point), on a new grid: the source's axis directions, voxel size ``spacing`` (mm along its array axes),
    covering the moved image. A thick slice averages what it spans (a box over the slice thickness), as
    a 2D acquisition does, rather than picking one thin plane."""
    from scipy import ndimage

    directions = volume.affine[:3, :3] / volume.spacing
    spacing = np.asarray(spacing, dtype=float)
    corners = np.array([[i, j, k, 1.0] for i in (0, volume.shape[0] - 1) for j in (0, volume.shape[1] - 1)
                        for k in (0, volume.shape[2] - 1)])
    moved_corners = (motion @ volume.affine @ corners.T)[:3]
    along = np.linalg.solve(directions, moved_corners)  # mm along the new grid's axes
    low, high = along.min(axis=1), along.max(axis=1)
    shape = tuple(int(n) for n in np.floor((high - low) / spacing) + 1)
    affine = np.eye(4)
    affine[:3, :3] = directions * spacing
    affine[:3, 3] = directions @ low
    # new voxel -> new world -> old world (inverse motion) -> old voxel
    to_old = np.linalg.inv(volume.affine) @ np.linalg.inv(motion) @ affine
    source = _thick(volume, to_old, spacing)
    array = ndimage.affine_transform(source, to_old[:3, :3], to_old[:3, 3], output_shape=shape, order=order,
                                     mode="constant", cval=0.0)
    return Volume(array.astype(np.float32), affine, {"format": "nifti", "path": "(simulated follow-up)"})


def _thick(volume: Volume, to_old: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """The source smoothed along the new slice axis over the new slice thickness (where it is thicker)."""
    from scipy import ndimage

    array = np.asarray(volume.array, dtype=np.float32)
    # the new slice axis (2) in old voxels: how many old voxels one new slice spans along each old axis
    step = np.abs(to_old[:3, 2])
    if spacing[2] <= spacing[:2].max() * 1.5:
        return array
    for axis, width in enumerate(step):
        array = ndimage.correlate1d(array, box_kernel(width), axis=axis, mode="nearest")
    return array


def box_kernel(width: float) -> np.ndarray:
    """A box ``width`` voxels wide, centred on the middle voxel: odd length, the end voxels weighted by the
    share of them it covers. A box of an even whole number of voxels (scipy's uniform_filter) sits half a
    voxel off centre: on TCGA_DU_7014 (2.38 mm slices, two a 5 mm slice) that moved the simulated follow-up
    1.2 mm along the slice axis, which the retest then read as a registration error."""
    half = max(float(width), 1.0) / 2
    reach = int(np.ceil(half - 0.5))
    offsets = np.arange(-reach, reach + 1)
    # the overlap of each voxel [o - 0.5, o + 0.5] with the box [-half, half]
    weights = np.clip(np.minimum(offsets + 0.5, half) - np.maximum(offsets - 0.5, -half), 0.0, None)
    return weights / weights.sum()
