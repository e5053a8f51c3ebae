"""NIfTI output on exactly the input's grid (shape, qform and sform)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from neuroseg.io.atomic import atomic_path
from neuroseg.io.compress import gzip_bytes
from neuroseg.volume import Volume


def to_nifti(volume: Volume, dtype) -> "nib.Nifti1Image":
    """A NIfTI image of ``volume``; the source header's qform/sform (and codes) are kept."""
    import nibabel as nib

    array = np.asarray(volume.array)
    # in NIfTI's voxel order (Fortran), so its bytes are copied in one piece (nifti_bytes); a mask from its
    # box only, as copying a C-ordered grid into Fortran order is slow (15 ms on BraTS, 3 ms from the box)
    data = on_box(array, dtype=dtype) if np.dtype(dtype).kind in "biu" else array.astype(dtype, order="F")
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
    data = nifti_bytes(image)  # the bytes nibabel's to_filename writes; gzipped here, faster than nibabel does
    if path.name.lower().endswith(".gz"):
        data = gzip_bytes(data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def nifti_bytes(image) -> bytes:
    """``image.to_bytes()``, the same bytes, with the voxels copied in one piece: nibabel writes them a
    slice at a time (155 small writes for BraTS), which cost more than gzipping them. An image nibabel
    would scale or cast on writing (its slope and intercept set, or a dtype its data cannot be cast to
    safely) is left to nibabel."""
    image.update_header()  # shape and affine into the header, as to_bytes does first
    data = np.asanyarray(image.dataobj)
    header = image.header.copy()
    out_dtype = header.get_data_dtype()
    scaling = (float(header["scl_slope"]), float(header["scl_inter"]))
    if not (np.isnan(scaling).all() or scaling == (1.0, 0.0)) or not np.can_cast(data.dtype, out_dtype):
        return image.to_bytes()
    header.set_slope_inter(1.0, 0.0)  # what nibabel writes for data it need not scale
    stream = io.BytesIO()
    header.write_to(stream)  # the header and its extensions; sets vox_offset when it is 0
    stream.write(bytes(header.get_data_offset() - stream.tell()))
    # one copy in NIfTI's voxel order (Fortran), none when the array already lies so
    stream.write(np.asarray(data, dtype=out_dtype).ravel(order="F"))
    return stream.getvalue()


def on_box(mask: np.ndarray, draw=None, dtype=np.uint8) -> np.ndarray:
    """A ``dtype`` layer shaped like ``mask``, Fortran-ordered, zero but for ``draw(mask[box])`` (``mask[box]``
    itself by default) on the box of ``mask``'s non-zero voxels: ``mask.astype(dtype)`` by default."""
    from neuroseg.transforms.box import bounding_box

    layer = np.zeros(mask.shape, dtype=dtype, order="F")
    box = bounding_box(mask)
    if box is not None:
        layer[box] = mask[box] if draw is None else draw(mask[box])
    return layer
