"""Whether what a reader made can be a volume at all (size, spacing, finite values): every reader applies
these before a volume enters the engine. The input checks that judge a scan for the model are neuroseg.checks."""

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
    if max(shape) > MAX_DIM:
        raise InputError(f"{source}: image dimensions {shape} are too large (limit {MAX_DIM} per axis)")
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > MAX_VOXELS:
        raise InputError(f"{source}: image dimensions {shape} are too large ({voxels:,} voxels; "
                         f"limit {MAX_VOXELS:,})")
    return shape


def check_nifti_header(header, source) -> None:
    """Header-only checks of a NIfTI image: voxel type, spacing fields and file size."""
    dtype = header.get_data_dtype()
    if dtype.fields is not None:
        raise InputError(f"{source}: colour (RGB) NIfTI images are not MR intensities")
    if dtype.kind == "c":
        raise InputError(f"{source}: complex-valued images are not supported; give the magnitude image")
    if dtype.kind not in "biuf":
        raise InputError(f"{source}: unsupported voxel type {dtype}")
    if int(header["sform_code"]) == 0:  # the geometry comes from pixdim (qform or the base affine)
        ndim = len(header.get_data_shape())
        pixdim = np.asarray(header["pixdim"][1:1 + min(ndim, 3)], dtype=np.float64)
        if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
            raise InputError(f"{source}: voxel spacing {np.round(pixdim, 4).tolist()} mm in the header is zero, "
                             "negative or not a number")
    _check_file_size(header, source)


def _check_file_size(header, source) -> None:
    """An uncompressed file must hold the bytes its header describes (refused before reading)."""
    import os

    name = str(source)
    if not name.lower().endswith(".nii"):
        return
    shape = header.get_data_shape()
    expected = int(header.get_data_offset()) + int(np.prod(shape, dtype=np.int64)) * header.get_data_dtype().itemsize
    actual = os.path.getsize(name)
    if actual < expected:
        raise InputError(f"{source}: file holds {actual} bytes but its header describes {expected} "
                         "(truncated, or the header does not match the data)")


def check_spacing(affine, source) -> None:
    if not np.all(np.isfinite(np.asarray(affine, dtype=np.float64))):
        raise InputError(f"{source}: the image's affine holds NaN or infinite values")
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    if not np.all(np.isfinite(spacing)) or np.any(spacing < 1e-3):
        raise InputError(f"{source}: voxel spacing {np.round(spacing, 4).tolist()} mm is zero or invalid")
    if abs(np.linalg.det(np.asarray(affine)[:3, :3])) < 1e-9:
        raise InputError(f"{source}: the image's affine is singular")


def check_image(volume, source="volume") -> None:
    """What the readers check, for a Volume built in Python and passed in directly."""
    kind = np.asarray(volume.array).dtype.kind
    if kind not in "iuf":
        raise InputError(f"{source}: voxel type {volume.array.dtype} is not an MR intensity"
                         + (" (a mask?)" if kind == "b" else ""))
    check_dimensions(volume.shape, source)
    check_spacing(volume.affine, source)
    check_values(volume.array, source)


def check_values(array: np.ndarray, source) -> None:
    if not np.all(np.isfinite(array)):
        raise InputError(f"{source}: image holds NaN or infinite values")
    if array.size == 0 or float(array.max()) == float(array.min()):
        raise InputError(f"{source}: image is empty (every voxel has the same value)")
