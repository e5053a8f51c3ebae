"""NIfTI output on exactly the input's grid (shape, qform and sform)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroseg.io.atomic import atomic_path
from neuroseg.io.compress import gzip_bytes
from neuroseg.volume import Volume


def to_nifti(volume: Volume, dtype) -> "nib.Nifti1Image":
    """A NIfTI image of ``volume``; the source header's qform/sform (and codes) are kept."""
    import nibabel as nib

    data = np.asarray(volume.array).astype(dtype)
    source = volume.meta.get("nifti_header")
    if source is None:
        image = nib.Nifti1Image(data, volume.affine)
        image.set_qform(volume.affine, code=1)
        image.set_sform(volume.affine, code=1)
        return image
    header = source.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    # the input's own shape (a 4D file with one volume stays 4D) and NIfTI version
    data = data.reshape(header.get_data_shape())
    image_type = nib.Nifti2Image if isinstance(source, nib.Nifti2Header) else nib.Nifti1Image
    image = image_type(data, None, header=header)
    qform, qcode = source.get_qform(coded=True)
    sform, scode = source.get_sform(coded=True)
    # neither form set: codes stay 0, so a viewer places the mask as it places the input
    image.set_qform(qform if qform is not None else volume.affine, code=int(qcode) if qform is not None else 0)
    image.set_sform(sform if sform is not None else volume.affine, code=int(scode) if sform is not None else 0)
    return image


def write_nifti(volume: Volume, path, dtype=np.uint8) -> Path:
    """``volume`` as ``dtype`` in a .nii or .nii.gz file (by ``path``'s name), written atomically."""
    image = to_nifti(volume, dtype)
    path = Path(path)
    data = image.to_bytes()  # the bytes nibabel's to_filename writes; gzipped here, faster than nibabel does
    if path.name.lower().endswith(".gz"):
        data = gzip_bytes(data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
