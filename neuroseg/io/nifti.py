"""NIfTI reading through nibabel: the header is checked in full before any voxel is read."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError, first_line
from neuroseg.io.validate import check_dimensions, check_nifti_header, check_spacing, check_values
from neuroseg.volume import Volume

# qform is stored as a quaternion in float32, so tiny disagreements with the sform are normal
QFORM_SFORM_TOLERANCE_MM = 0.5


def load_nifti(path) -> Volume:
    """Read a 3D NIfTI file; the header is kept in ``meta`` for writing outputs.

    Shape, data type, voxel spacing, affine and (for an uncompressed file) file size are
    checked from the header alone, so an absurd or lying header is refused before its
    data is allocated.
    """
    import nibabel as nib

    path = Path(path)
    try:  # nibabel hides why a file cannot be opened
        with open(path, "rb"):
            pass
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror or error})") from error
    with _quiet_nibabel():  # nibabel logs "fixing" bad pixdims to stderr; the checks below decide
        try:
            img = nib.load(str(path))
        except Exception as error:  # nibabel raises many types for bad files
            why = _misnamed(path) or first_line(error, type(error).__name__)
            raise InputError(f"{path}: not a readable NIfTI image ({why})") from error
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(f"{path}: not a NIfTI image")
        shape = check_dimensions(img.shape, path)
        check_nifti_header(_raw_header(img, path), path)
        try:
            affine = img.affine
        except Exception as error:
            why = first_line(error, type(error).__name__)
            raise InputError(f"{path}: the header's affine is invalid ({why})") from error
    check_spacing(affine, path)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except MemoryError as error:
        raise InputError(f"{path}: not enough memory to read a {shape} image") from error
    except Exception as error:  # truncated or lying headers surface here
        raise InputError(f"{path}: image data cannot be read; the file is damaged or shorter than its "
                         f"header says ({first_line(error, type(error).__name__)})") from error
    check_values(data, path)
    meta = {"path": str(path), "format": "nifti", "nifti_header": img.header.copy(),
            "warnings": _orientation_warnings(img.header, shape)}
    return Volume(data, affine, meta)


def _orientation_warnings(header, shape) -> list[str]:
    """Headers that viewers may place differently from neuroseg (which reads them as nibabel does)."""
    qform, qcode = header.get_qform(coded=True)
    sform, scode = header.get_sform(coded=True)
    if not qcode and not scode:
        return ["the header sets neither qform nor sform: the orientation is unknown (voxel spacing only), "
                "so left and right may be swapped; the mask is written the same way"]
    if qcode and scode:
        corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                            for k in (0, shape[2] - 1)], dtype=np.float64).T
        gap = float(np.linalg.norm((qform @ corners - sform @ corners)[:3], axis=0).max())
        if gap > QFORM_SFORM_TOLERANCE_MM:
            return [f"the header's qform and sform disagree by up to {gap:.1f} mm; neuroseg uses the sform "
                    "(as nibabel does), so a viewer that reads the qform shows the scan and mask elsewhere"]
    return []


def _misnamed(path: Path) -> str | None:
    """Say so when the name and the compression disagree (a common renaming slip)."""
    with open(path, "rb") as handle:
        start = handle.read(4)
    gzipped = start[:2] == b"\x1f\x8b"
    if gzipped and not path.name.lower().endswith(".gz"):
        return "the file is gzip-compressed: name it .nii.gz"
    header_size = {int.from_bytes(start, order) for order in ("little", "big")} if len(start) == 4 else set()
    if path.name.lower().endswith(".gz") and header_size & {348, 540}:  # NIfTI-1 / NIfTI-2 sizeof_hdr
        return "the file is not gzip-compressed: name it .nii"
    return None


def _raw_header(img, path):
    """The header as stored: nibabel's loader silently 'fixes' zero or negative pixdims."""
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as handle:
            return type(img.header).from_fileobj(handle, check=False)
    except Exception as error:
        why = first_line(error, type(error).__name__)
        raise InputError(f"{path}: the NIfTI header cannot be read ({why})") from error


@contextmanager
def _quiet_nibabel():
    logger = logging.getLogger("nibabel.global")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
