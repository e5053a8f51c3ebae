"""Checks every reader applies before a volume enters the engine."""

from __future__ import annotations

import numpy as np

from neuroseg.constants import MAX_DIM, MAX_VOXELS
from neuroseg.errors import InputError


def check_dimensions(shape, source) -> tuple[int, int, int]:
    """Refuse shapes that are not 3D (a trailing 1 is allowed) or absurdly large."""
    shape = tuple(int(n) for n in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise InputError(f"{source}: expected a 3D image, got {len(shape)}D with shape {shape}")
    if min(shape) < 1:
        raise InputError(f"{source}: image has an empty dimension, shape {shape}")
    if min(shape) < 2:
        raise InputError(f"{source}: expected a 3D volume, got a single slice, shape {shape}")
    if max(shape) > MAX_DIM or int(np.prod(shape, dtype=np.int64)) > MAX_VOXELS:
        raise InputError(f"{source}: image dimensions {shape} are too large (limit {MAX_DIM} per axis)")
    return shape


def check_spacing(affine, source) -> None:
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    if not np.all(np.isfinite(spacing)) or np.any(spacing < 1e-3):
        raise InputError(f"{source}: voxel spacing {np.round(spacing, 4).tolist()} mm is zero or invalid")
    if abs(np.linalg.det(np.asarray(affine)[:3, :3])) < 1e-9:
        raise InputError(f"{source}: the image's affine is singular")


def check_values(array: np.ndarray, source) -> None:
    if not np.all(np.isfinite(array)):
        raise InputError(f"{source}: image holds NaN or infinite values")
    if array.size == 0 or float(array.max()) == float(array.min()):
        raise InputError(f"{source}: image is empty (every voxel has the same value)")
