"""DICOM series reading through SimpleITK (GDCM sorts slices by position)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.io.checks import check_dimensions, check_spacing, check_values
from neuroseg.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load_dicom_series(folder, series_uid: str | None = None) -> Volume:
    """Read one DICOM series from ``folder`` into a Volume with a RAS+ affine."""
    import SimpleITK as sitk

    folder = Path(folder)
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(f"{folder}: no DICOM series found")
    if series_uid is None:
        if len(series_ids) > 1:
            raise InputError(f"{folder}: holds {len(series_ids)} DICOM series; choose one with --series UID")
        series_uid = series_ids[0]
    elif series_uid not in series_ids:
        raise InputError(f"{folder}: no series with UID {series_uid}")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{folder}: DICOM series cannot be read ({str(error).strip().splitlines()[-1]})") from error
    return volume_from_sitk(image, {"path": str(folder), "format": "dicom", "series_uid": series_uid,
                                    "files": list(files)})


def volume_from_sitk(image, meta: dict) -> Volume:
    """Convert a SimpleITK image (LPS, array [z, y, x]) to a Volume (RAS+, array [i, j, k])."""
    import SimpleITK as sitk

    if image.GetDimension() != 3:
        raise InputError(f"{meta.get('path')}: expected a 3D series, got {image.GetDimension()}D")
    array = sitk.GetArrayFromImage(image)
    if array.ndim == 4:  # vector pixels, e.g. RGB
        raise InputError(f"{meta.get('path')}: colour DICOM images are not MR intensities")
    array = np.ascontiguousarray(array.transpose(2, 1, 0), dtype=np.float32)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(image.GetSpacing())[None, :]
    lps[:3, 3] = image.GetOrigin()
    affine = LPS_TO_RAS @ lps
    source = meta.get("path")
    check_dimensions(array.shape, source)
    check_spacing(affine, source)
    check_values(array, source)
    return Volume(array, affine, meta)
