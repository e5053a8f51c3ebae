"""A DICOM Secondary Capture of the QC picture, in the source study: a PACS that cannot show a SEG shows this.

The picture (qc.png: tumour slices, outline drawn, radiological view) becomes one RGB image of the
source study with its own series; it is a picture for the eye, not a measurement, and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.export.dicom_seg import source_datasets
from neuroseg.export.files import save_dataset

SERIES_NUMBER_OFFSET = 1001  # beside the SEG's series number (source + 1000)
DESCRIPTION = "neuroseg tumour outline (picture, not for measurement)"


def build_secondary_capture(result, qc_png):
    """A highdicom SCImage of ``qc_png`` referencing the study of ``result.image``'s first source image."""
    import highdicom as hd
    import pydicom
    from PIL import Image
    from pydicom.uid import generate_uid

    from neuroseg._version import __version__

    meta = result.image.meta
    if meta.get("format") != "dicom":
        raise InputError("--secondary-capture needs a DICOM input series (its study holds the picture)")
    reference = source_datasets(meta)[0]  # held in memory, or read again from its file
    pixels = np.ascontiguousarray(np.asarray(Image.open(qc_png).convert("RGB")), dtype=np.uint8)
    number = min(int(meta.get("series_number") or 0) + SERIES_NUMBER_OFFSET, 2**31 - 1)
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference, pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=generate_uid(), series_number=number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="neuroseg",
        patient_orientation=("L", "P"), transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian)
    image.SeriesDescription = DESCRIPTION
    image.ImageComments = "Tumour slices with the automatic outline; research tool, not a medical device"
    image.SoftwareVersions = f"neuroseg {__version__}"
    image.BurnedInAnnotation = "YES"
    image.Laterality = ""  # type 2C; the brain is no paired structure
    return image


def write_secondary_capture(result, qc_png, path) -> Path:
    return save_dataset(build_secondary_capture(result, qc_png), path)
