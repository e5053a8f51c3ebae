"""Readers: NIfTI files and DICOM series folders into :class:`~neuroseg.volume.Volume`."""

from __future__ import annotations

from pathlib import Path

from neuroseg.errors import InputError
from neuroseg.io.files import NIFTI_SUFFIXES, is_nifti, walk_tree


def load_volume(path, series_uid: str | None = None, exclude=()):
    """Read a NIfTI file, a folder holding a DICOM series (not searching the folders in ``exclude``),
    or a list of pydicom Datasets held in memory."""
    if isinstance(path, (list, tuple)):
        from neuroseg.io.catalogue import load_dicom_datasets

        return load_dicom_datasets(path, series_uid=series_uid)
    path = Path(path)
    if not path.exists():
        raise InputError(f"Input not found: {path}")
    if path.is_dir():
        from neuroseg.io.catalogue import load_dicom_series

        return load_dicom_series(path, series_uid=series_uid, exclude=exclude)  # refuses other inputs beside it
    if is_nifti(path):
        from neuroseg.io.nifti import load_nifti

        return load_nifti(path)
    raise InputError(
        f"Unsupported input {path}: expected a NIfTI file (.nii, .nii.gz) or a folder of DICOM files"
    )


__all__ = ["load_volume", "is_nifti", "walk_tree", "NIFTI_SUFFIXES"]
