"""The JSON report of one segmentation: built from a SegmentationResult here, written by neuroseg.export."""

from __future__ import annotations

import numpy as np


def bounding_box_mm(mask_volume) -> dict | None:
    """Bounding box of the mask's voxel centres in scanner RAS+ mm.

    Every tumour voxel is mapped, not just the corners of its voxel box: on an oblique grid
    the corners lie outside the tumour and would widen the box by millimetres.
    """
    from neuroseg.measure import tumour_voxels

    index = tumour_voxels(mask_volume.array)
    if index.size == 0:
        return None
    lo, hi = index.min(axis=0), index.max(axis=0)
    world = index @ mask_volume.affine[:3, :3].T + mask_volume.affine[:3, 3]
    return {"convention": "RAS+ (nibabel); DICOM LPS is x and y negated",
            "min": np.round(world.min(axis=0), 2).tolist(), "max": np.round(world.max(axis=0), 2).tolist(),
            "voxel_min": lo.tolist(), "voxel_max": hi.tolist()}


def dicom_slices(result) -> dict:
    """Tumour slices named as a DICOM viewer shows them (array axis 2 is the sorted series).

    Returns ``{"tumour_slices_dicom": [...]}`` when each tumour slice is one source image (or
    one frame of a multi-frame image), ``{"tumour_slices_dicom_omitted": why}`` for DICOM
    input whose slices cut across its images (e.g. a sagittal series), and ``{}`` otherwise.
    """
    meta = result.image.meta
    if meta.get("format") != "dicom" or "source_instance_numbers" not in meta:
        return {}
    if result.slice_axis != 2:
        return {"tumour_slices_dicom_omitted": f"the series' images lie along array axis 2, tumour slices along "
                                               f"axis {result.slice_axis}: each slice crosses many images"}
    named = []
    for k in result.tumour_slices:
        entry = {"index": k, "instance_number": meta["source_instance_numbers"][k],
                 "sop_instance_uid": meta["source_sop_instance_uids"][k]}
        frame = (meta.get("source_frames") or [None] * (k + 1))[k]
        if frame is not None:  # all frames of a multi-frame image share its UID and number
            entry["frame"] = frame
        named.append(entry)
    return {"tumour_slices_dicom": named}


def build_report(result, files=()) -> dict:
    """report.json of a SegmentationResult: the one place the report is made. ``files``: the outputs written."""
    from neuroseg._version import __version__

    image = result.image
    return {
        "neuroseg_version": __version__,
        "input": {
            "path": image.meta.get("path"),
            "format": image.meta.get("format"),
            "shape": list(image.shape),
            "spacing_mm": np.round(image.spacing, 4).tolist(),
            "axis_codes": "".join(image.axcodes),
            "affine": np.round(image.affine, 6).tolist(),
            **{k: image.meta[k] for k in ("series_uid", "series_description", "looks_like_flair") if k in image.meta},
            **result.source,
        },
        "tumour_found": result.tumour_voxels > 0,
        "tumour_volume_ml": round(result.volume_ml, 3),
        "tumour_voxels": result.tumour_voxels,
        "slice_axis": result.slice_axis,
        "tumour_slices": result.tumour_slices,
        **dicom_slices(result),
        "slices": [
            {"index": k, "classifier_probability": round(float(p), 4), "tumour_voxels": int(n)}
            for k, (p, n) in enumerate(zip(result.slice_probabilities, result.per_slice_voxels))
        ],
        "bounding_box_mm": result.bounding_box_mm,
        "lesions": result.lesions.to_json(),  # neuroseg.measure: per lesion and total, RAS and LPS
        "model": _model(result.model),
        "device": result.model.device if result.model else None,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "warnings": list(image.meta.get("warnings", [])) + list(result.notes),
        "input_checks": result.input_checks,  # neuroseg.checks: level, forced, flagged, findings
        "files": list(files),
    }


def _model(info) -> dict | None:
    if info is None:
        return None
    return {"name": info.name, "version": info.version, "created": info.created, "path": info.path,
            "weights_sha256": dict(info.weights_sha256), "settings": dict(info.settings)}
