"""NIfTI reading through nibabel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.io.checks import check_dimensions, check_spacing, check_values
from neuroseg.volume import Volume


def load_nifti(path) -> Volume:
    """Read a 3D NIfTI file; the header is kept in ``meta`` for writing outputs."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for bad files
        raise InputError(f"{path}: not a readable NIfTI image ({_first_line(error)})") from error
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"{path}: not a NIfTI image")
    shape = check_dimensions(img.shape, path)
    check_spacing(img.affine, path)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except Exception as error:  # truncated or lying headers surface here
        raise InputError(f"{path}: image data cannot be read ({_first_line(error)})") from error
    check_values(data, path)
    meta = {"path": str(path), "format": "nifti", "nifti_header": img.header.copy()}
    return Volume(data, img.affine, meta)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
