"""DICOM Segmentation (SEG) output with highdicom, referencing the source series.

The mask Volume lies on the input grid, but its array axes need not be the DICOM
(column, row, sorted slice) axes of the source series. :func:`mask_on_source_frames`
maps it onto the source images through the affines (a permutation and flips, no
resampling) and refuses anything else, so frame ``n`` of the SEG is exactly the mask
over source image ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroseg.errors import GeometryError, InputError
from neuroseg.export.files import save_dataset
from neuroseg.io.dicom import collect_datasets, plan_series
from neuroseg.io.values import as_int

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


@dataclass(frozen=True)
class Segment:
    """One segment of a SEG: the mask value it marks, its label and what it holds. Every segment is a
    Neoplasm (CATEGORY, PROPERTY_TYPE); ``modifier`` (a SNOMED CT code, meaning) refines it, e.g. how it changed."""

    value: int
    label: str  # SegmentLabel, at most 64 characters
    tracking_id: str
    description: str = ""
    modifier: tuple | None = None


TUMOUR = Segment(1, SEGMENT_LABEL, "neuroseg tumour")


@dataclass(frozen=True)
class Content:
    """The SEG series' own texts (a viewer lists the series by them)."""

    series_description: str  # at most 64 characters
    label: str  # ContentLabel: upper case, at most 16 characters
    description: str  # at most 64 characters


@dataclass(frozen=True)
class Algorithm:
    """What made a segmentation, as its SEG says: the model, and whether its input was not FLAIR."""

    model_name: str = "unknown model"
    input_not_flair: bool = False  # segmented only because the user named the series (--series)


def tumour_content(algorithm: Algorithm) -> Content:
    """The texts of the tumour SEG of one scan, which say so when its input did not look like FLAIR."""
    not_flair = algorithm.input_not_flair
    description = (NOT_FLAIR_PREFIX if not_flair else "") + f"neuroseg tumour ({algorithm.model_name})"
    return Content(description[:64], "TUMOR",
                   NOT_FLAIR_CONTENT if not_flair else "Automatic FLAIR tumour segmentation")


def build_dicom_seg(mask, sources, algorithm: Algorithm, segments=(TUMOUR,), content: Content | None = None):
    """A highdicom Segmentation of the ``mask`` Volume over the source images ``sources``.

    ``sources``: the pydicom Datasets (headers suffice) of the images the mask was segmented on,
    from files or held in memory, in any order: their geometry is planned as the reader plans it,
    so frame ``n`` of the SEG lies on the source image (or frame) of sorted slice ``n``.
    ``segments``: one (any non-zero voxel is the tumour) or several, each marking the voxels of its value;
    segment ``n`` of the SEG is ``segments[n - 1]``.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    from neuroseg._version import __version__

    plan = _plan(sources)
    grid = _segment_numbers(mask_on_source_grid(mask, plan.affine_ras, plan.shape), segments)
    frames = grid.transpose(2, 1, 0)  # (sorted slice, row, column)
    images, pixel_array = _frames_on_sources(plan, frames)
    ai = hd.AlgorithmIdentificationSequence(
        name="neuroseg", version=__version__, family=_ai_family(), source=f"neuroseg {__version__}",
        parameters={"model": algorithm.model_name})
    descriptions = [_segment_description(n, segment, ai, algorithm) for n, segment in enumerate(segments, start=1)]
    content = content or tumour_content(algorithm)
    number = min(as_int(images[0].get("SeriesNumber")) + SERIES_NUMBER_OFFSET, 2**31 - 1)
    return hd.seg.Segmentation(
        source_images=images, pixel_array=pixel_array, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="neuroseg",
        manufacturer_model_name=algorithm.model_name[:64], software_versions=f"neuroseg {__version__}",
        device_serial_number="none", series_description=content.series_description[:64],
        content_label=content.label, content_description=content.description[:64],
        omit_empty_frames=bool(pixel_array.any()))  # an all-empty mask keeps its frames


def _segment_numbers(grid: np.ndarray, segments) -> np.ndarray:
    """Each voxel's segment number (0: none): for one segment any non-zero voxel, else the segment's value."""
    if len(segments) == 1:
        return grid > 0
    out = np.zeros(grid.shape, dtype=np.uint8)
    for number, segment in enumerate(segments, start=1):
        out[grid == segment.value] = number
    return out


def _segment_description(number: int, segment: Segment, ai, algorithm: Algorithm):
    import highdicom as hd
    from pydicom.sr.coding import Code
    from pydicom.uid import generate_uid

    out = hd.seg.SegmentDescription(
        segment_number=number, segment_label=segment.label,
        segmented_property_category=Code(*CATEGORY), segmented_property_type=Code(*PROPERTY_TYPE),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=ai,
        tracking_uid=generate_uid(), tracking_id=segment.tracking_id)
    if segment.modifier:
        out.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = \
            [hd.sr.CodedConcept(*segment.modifier)]
    text = NOT_FLAIR_SEGMENT if algorithm.input_not_flair else segment.description
    if text:
        out.SegmentDescription = text[:64]
    return out


def _plan(sources):
    """The source images planned as the reader plans a series: sorted slices and the grid they span."""
    series = collect_datasets(sources)
    if len(series) != 1:
        raise InputError(f"DICOM-SEG output needs the images of one source series, got {len(series)} series")
    plan = plan_series(next(iter(series.values())))
    if plan.problem:
        raise InputError(f"The source images of the SEG are not one volume: {plan.problem}")
    return plan


def _frames_on_sources(plan, frames: np.ndarray):
    """highdicom's source images and pixel array: one image per slice, or the frames of one multi-frame image."""
    if plan.slices[0].frame is None:  # one single-frame image per slice: frame n goes with image n
        return [s.dataset for s in plan.slices], frames
    images = {id(s.dataset): s.dataset for s in plan.slices}
    if len(images) != 1:
        raise InputError("DICOM-SEG output over several multi-frame files is not supported")
    image = next(iter(images.values()))
    pixel_array = np.zeros((int(image.NumberOfFrames),) + frames.shape[1:], dtype=frames.dtype)
    pixel_array[np.asarray([s.frame for s in plan.slices]) - 1] = frames  # SEG frame n is source frame n + 1
    return [image], pixel_array


def source_datasets(meta: dict) -> list:
    """The headers of a DICOM Volume's source images: held in memory, or read again from their files."""
    import pydicom

    if meta.get("format") != "dicom" or not (meta.get("source_datasets") or meta.get("source_files")):
        raise InputError("DICOM-SEG output needs a DICOM input series to reference; use --format nifti")
    if meta.get("source_datasets"):
        return list({id(d): d for d in meta["source_datasets"]}.values())
    try:
        return [pydicom.dcmread(path, stop_before_pixels=True) for path in dict.fromkeys(meta["source_files"])]
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"Source DICOM files cannot be read again for the SEG: {error}") from error


def algorithm_of(result) -> Algorithm:
    """The SEG's description of what made ``result``."""
    name = result.model.name if result.model is not None else None
    return Algorithm(model_name=str(name or "unknown model"),
                     input_not_flair=result.image.meta.get("looks_like_flair") is False)


def _ai_family():
    from pydicom.sr.codedict import codes

    return codes.cid7162.ArtificialIntelligence


def write_dicom_seg(result, path) -> Path:
    """Write the SEG of ``result`` to ``path`` atomically; returns ``path``."""
    return save_dataset(build_dicom_seg(result.mask, source_datasets(result.image.meta), algorithm_of(result)), path)


__all__ = ["write_dicom_seg", "build_dicom_seg", "source_datasets", "Algorithm", "Segment", "Content", "TUMOUR",
           "mask_on_source_grid", "SEGMENT_LABEL"]
