"""DICOM Segmentation (SEG) output with highdicom, referencing the source series.

The mask Volume lies on the input grid, but its array axes need not be the DICOM
(column, row, sorted slice) axes of the source series. :func:`mask_on_source_frames`
maps it onto the source images through the affines (a permutation and flips, no
resampling) and refuses anything else, so frame ``n`` of the SEG is exactly the mask
over source image ``n``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroseg.errors import GeometryError, InputError
from neuroseg.export.files import atomic_path

SEGMENT_LABEL = "Tumor"
# Where a viewer user sees that the source series did not look like FLAIR (each text at most 64 characters, LO).
NOT_FLAIR_PREFIX = "NOT FLAIR input - "
NOT_FLAIR_CONTENT = "Tumour segmentation of a NOT FLAIR series: unreliable"
NOT_FLAIR_SEGMENT = "Input series is not FLAIR; the model was trained on FLAIR only"
SERIES_NUMBER_OFFSET = 1000
# SNOMED CT codes of the segment (DICOM CID 7150 / 7151).
CATEGORY = ("49755003", "SCT", "Morphologically Altered Structure")
PROPERTY_TYPE = ("108369006", "SCT", "Neoplasm")


def mask_on_source_grid(mask, source_affine, source_shape) -> np.ndarray:
    """The mask as an array indexed ``[column, row, sorted slice]`` of the source series.

    Raises GeometryError unless the mask's grid is the source grid up to a permutation and
    flips of its axes (what reorientation does; anything else would need resampling).
    """
    source_affine = np.asarray(source_affine, dtype=np.float64)
    source_shape = tuple(int(n) for n in source_shape)
    mapping = np.linalg.inv(mask.affine) @ source_affine  # source index -> mask index
    linear = np.round(mapping[:3, :3])
    offset = np.round(mapping[:3, 3])
    if not (np.allclose(mapping[:3, :3], linear, atol=1e-3) and np.allclose(mapping[:3, 3], offset, atol=1e-2)
            and np.all(np.abs(linear).sum(axis=0) == 1) and np.all(np.abs(linear).sum(axis=1) == 1)):
        raise GeometryError("The mask's grid is not the source series' grid (it would need resampling); "
                            "a DICOM-SEG must lie on the source images")
    axes = [int(np.flatnonzero(linear[:, a])[0]) for a in range(3)]  # mask axis of each source axis
    index = []
    for a, b in enumerate(axes):
        positions = linear[b, a] * np.arange(source_shape[a]) + offset[b]
        if positions.min() < 0 or positions.max() > mask.shape[b] - 1 or source_shape[a] != mask.shape[b]:
            raise GeometryError(f"The mask's grid {mask.shape} does not cover the source series {source_shape}")
        index.append(positions.astype(int))
    return np.ascontiguousarray(mask.array.transpose(axes)[np.ix_(*index)])


def build_dicom_seg(result):
    """A highdicom Segmentation of ``result.mask`` over the source series of ``result.image``."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.coding import Code
    from pydicom.uid import generate_uid

    from neuroseg._version import __version__

    meta = result.image.meta
    if meta.get("format") != "dicom" or not meta.get("source_files"):
        raise InputError("DICOM-SEG output needs a DICOM input series to reference; use --format nifti")
    grid = mask_on_source_grid(result.mask, meta["source_affine"], meta["source_shape"]) > 0
    frames = grid.transpose(2, 1, 0)  # (sorted slice, row, column)
    files, frame_numbers = list(meta["source_files"]), list(meta["source_frames"])
    try:
        if frame_numbers[0] is None:  # one single-frame image per slice: frame n goes with image n
            sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
            pixel_array = frames
        else:  # one enhanced multi-frame image: frame n of the SEG array is source frame n + 1
            if len(set(files)) != 1:
                raise InputError("DICOM-SEG output over several multi-frame files is not supported")
            sources = [pydicom.dcmread(files[0], stop_before_pixels=True)]
            pixel_array = np.zeros((int(sources[0].NumberOfFrames),) + frames.shape[1:], dtype=bool)
            pixel_array[np.asarray(frame_numbers) - 1] = frames
    except OSError as error:
        raise InputError(f"Source DICOM files cannot be read again for the SEG: {error}") from error
    model = result.report.get("model", {}) if result.report else {}
    model_name = str(model.get("name") or "unknown model")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="neuroseg", version=__version__, family=_ai_family(), source=f"neuroseg {__version__}",
        parameters={"model": model_name})
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL,
        segmented_property_category=Code(*CATEGORY), segmented_property_type=Code(*PROPERTY_TYPE),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
        tracking_uid=generate_uid(), tracking_id="neuroseg tumour")
    not_flair = meta.get("looks_like_flair") is False  # processed only because the user named it (--series)
    if not_flair:
        segment.SegmentDescription = NOT_FLAIR_SEGMENT
    number = min(int(meta.get("series_number") or 0) + SERIES_NUMBER_OFFSET, 2**31 - 1)
    description = (NOT_FLAIR_PREFIX if not_flair else "") + f"neuroseg tumour ({model_name})"
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=pixel_array, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment], series_instance_uid=generate_uid(), series_number=number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="neuroseg",
        manufacturer_model_name=model_name[:64], software_versions=f"neuroseg {__version__}",
        device_serial_number="none", series_description=description[:64], content_label="TUMOR",
        content_description=NOT_FLAIR_CONTENT if not_flair else "Automatic FLAIR tumour segmentation",
        omit_empty_frames=bool(pixel_array.any()))  # an all-empty mask keeps its frames


def _ai_family():
    from pydicom.sr.codedict import codes

    return codes.cid7162.ArtificialIntelligence


def write_dicom_seg(result, path) -> Path:
    """Write the SEG of ``result`` to ``path`` atomically; returns ``path``."""
    segmentation = build_dicom_seg(result)
    path = Path(path)
    with atomic_path(path) as tmp:
        segmentation.save_as(tmp, enforce_file_format=True)
    return path


__all__ = ["write_dicom_seg", "build_dicom_seg", "mask_on_source_grid", "SEGMENT_LABEL"]
