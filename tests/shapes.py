"""Synthetic tumours of known geometry: ellipsoids voxelised on any grid, measured in scanner mm."""

from __future__ import annotations

import numpy as np

from neuroseg.volume import Volume


def grid_affine(spacing, degrees=0.0, axis=0, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An affine with voxel ``spacing`` (mm), tilted by ``degrees`` around world axis ``axis``."""
    from tests.geometry import rotate_affine

    affine = rotate_affine(np.diag([*spacing, 1.0]), degrees, axis)
    affine[:3, 3] = origin
    return affine


def ellipsoid(shape, affine, centre_ras, semi_axes_mm, axes=None) -> Volume:
    """A uint8 mask of the ellipsoid of ``semi_axes_mm`` about ``centre_ras`` (scanner RAS+ mm).

    ``axes``: a 3x3 matrix whose columns are the ellipsoid's axes in the world (default: R, A, S).
    A voxel is tumour when its centre lies inside.
    """
    axes = np.eye(3) if axes is None else np.asarray(axes, dtype=float)
    index = np.indices(shape).reshape(3, -1).T.astype(float)
    world = index @ affine[:3, :3].T + affine[:3, 3] - np.asarray(centre_ras, dtype=float)
    local = world @ axes / np.asarray(semi_axes_mm, dtype=float)
    inside = (local ** 2).sum(axis=1) <= 1.0
    return Volume(inside.reshape(shape).astype(np.uint8), affine)


def ellipsoid_ml(semi_axes_mm) -> float:
    a, b, c = semi_axes_mm
    return 4.0 / 3.0 * np.pi * a * b * c / 1000.0
