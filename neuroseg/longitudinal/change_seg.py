"""The change map as a DICOM-SEG over the baseline series (for DICOM input): three segments, stable, new
and resolved, written by the same highdicom writer as a run's ``seg.dcm``.

The change map lies on the baseline grid, so each SEG frame is the change map over one baseline image.
Each segment is a Neoplasm (as the run's tumour segment) refined by a SNOMED CT change code (DICOM CID 6002):
voxel by voxel the map says where tumour stayed, appeared (a new lesion or growth) or went (resolved or shrunk).
"""

from __future__ import annotations

from pathlib import Path

from neuroseg.errors import InputError
from neuroseg.export.dicom_seg import NOT_FLAIR_PREFIX, Algorithm, Content, Segment, build_dicom_seg, source_datasets
from neuroseg.export.files import save_dataset
from neuroseg.longitudinal.response import NEW_LABEL, RESOLVED_LABEL, STABLE_LABEL

CHANGE_SEGMENTS = (
    Segment(STABLE_LABEL, "Stable tumor", "neuroseg change stable", "Tumour at both visits",
            ("129723006", "SCT", "No significant changes in the finding")),
    Segment(NEW_LABEL, "New tumor", "neuroseg change new", "Tumour at follow-up only (new or grown)",
            ("15454001", "SCT", "Increase in size")),
    Segment(RESOLVED_LABEL, "Resolved tumor", "neuroseg change resolved", "Tumour at baseline only (resolved or shrunk)",
            ("19776001", "SCT", "Decrease in size")),
)
NOT_COMPARED_PREFIX = "NOT COMPARED - "


def change_content(model_name: str, trusted: bool, not_flair: bool = False) -> Content:
    """The SEG's texts; when the scans may not be one head, or the baseline did not look like FLAIR, the
    series description says so before anything else (a PACS list shows little more)."""
    description = ("" if trusted else NOT_COMPARED_PREFIX) + (NOT_FLAIR_PREFIX if not_flair else "") + \
        f"neuroseg tumour change ({model_name})"
    text = "Tumour change since baseline, FLAIR alone: stable, new, resolved" if trusted else \
        "NOT COMPARED: the scans may not be the same head"
    return Content(description[:64], "CHANGE", text)


def is_dicom(comparison) -> bool:
    return comparison.baseline.image.meta.get("format") == "dicom"


def write_change_seg(comparison, path) -> Path:
    """``comparison``'s change map as a SEG referencing the baseline series; ``path`` written atomically."""
    if not is_dicom(comparison):
        raise InputError("A DICOM-SEG of the change map needs a DICOM baseline series")
    model = comparison.baseline.source.get("model") or {}
    name = str(model.get("name") or "unknown model") if isinstance(model, dict) else str(model)
    not_flair = comparison.baseline.image.meta.get("looks_like_flair") is False
    content = change_content(name, comparison.registration.trusted, not_flair)
    seg = build_dicom_seg(comparison.change, source_datasets(comparison.baseline.image.meta), Algorithm(name),
                          segments=CHANGE_SEGMENTS, content=content)
    return save_dataset(seg, path)
