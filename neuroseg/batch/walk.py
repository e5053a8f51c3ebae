"""The NIfTI files under a batch's folder, leaving out the folders that hold no scans (label maps, earlier
outputs): what ``neuroseg batch`` takes besides DICOM series."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from neuroseg.io.files import is_nifti, walk_tree
from neuroseg.io.outputs import REPORT_FILE, is_output_folder

# Decathlon-style datasets keep label maps beside the images (imagesTr/labelsTr): they are not scans.
LABEL_FOLDERS = ("labelstr", "labelsts")
LABEL_MAPS = "in labelsTr/labelsTs (label maps, not scans)"
EARLIER_OUTPUTS = "in earlier neuroseg output folders (they hold a report.json)"


@dataclass
class FolderWalk:
    """The NIfTI files under a folder, and the folders left out because they hold no scans."""

    nifti: list = field(default_factory=list)  # Paths, sorted
    left_out: list = field(default_factory=list)  # folders not searched (neither for NIfTI nor for DICOM)
    skipped: dict = field(default_factory=dict)  # why -> how many image files were left out


def describe_skipped(skipped: dict) -> str:
    """e.g. "skipped 5 files: 3 in labelsTr/labelsTs (label maps, not scans), 2 in earlier ..."; "" when none."""
    if not skipped:
        return ""
    total = sum(skipped.values())
    parts = ", ".join(f"{n} {why}" for why, n in skipped.items())
    return f"skipped {total} file{'s' if total != 1 else ''}: {parts}"


def walk_nifti(folder, exclude=()) -> FolderWalk:
    """Every NIfTI file under ``folder``, sorted; not under ``exclude``, earlier outputs or label-map folders."""
    excluded = {Path(p).resolve() for p in exclude}
    walk = FolderWalk()
    for root, dirs, names in walk_tree(folder):
        root = Path(root)
        dirs.sort()
        if root.resolve() in excluded:
            dirs[:] = []
            continue
        why = _not_scans(root, names)
        if why:
            dirs[:] = []
            walk.left_out.append(root)
            walk.skipped[why] = walk.skipped.get(why, 0) + _count_images(root)
            continue
        walk.nifti.extend(root / name for name in names if is_nifti(root / name) and (root / name).is_file())
    walk.nifti.sort()
    return walk


def _not_scans(folder: Path, names) -> str:
    """Why ``folder`` holds no scans to segment, or "" when it may."""
    if folder.resolve().name.lower() in LABEL_FOLDERS:
        return LABEL_MAPS
    if REPORT_FILE in names and is_output_folder(folder):
        return EARLIER_OUTPUTS
    return ""


def _count_images(folder: Path) -> int:
    """NIfTI and .dcm files under ``folder``: what a walk would otherwise have taken for scans."""
    return sum(is_nifti(Path(root) / name) or name.lower().endswith(".dcm")
               for root, _, names in os.walk(folder) for name in names)
